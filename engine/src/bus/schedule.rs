//! Schedule expressions of scheduled rules: `rate(...)`, AWS's six-field `cron(...)` and the
//! one-time `at(...)`. Pure: "when does it fire next after T" is a function of the expression,
//! the rule's anchor time (for `rate`) and T, all in UTC milliseconds.
//!
//! - `rate(N unit)`: unit `minute|minutes|hour|hours|day|days`, singular exactly when N is 1
//!   (AWS's rule). Fires every period counted from the anchor (when the rule was created or
//!   last enabled), first one period after it.
//! - `cron(Minutes Hours Day-of-month Month Day-of-week Year)` in UTC, with AWS's wildcards:
//!   `, - * /` everywhere, `?` in one of the two day fields (exactly one of them must be `?`),
//!   `L` and `W` in day-of-month (`L`, `LW`, `15W`), `L` and `#` in day-of-week (`6L` = last
//!   Friday, `2#1` = first Monday), months `JAN-DEC`, days `SUN-SAT` (1 = Sunday), years
//!   1970-2199.
//! - `at(yyyy-mm-ddThh:mm:ss)` (UTC): fires once, as in EventBridge Scheduler.

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, TimeZone, Timelike, Utc};

/// A parsed schedule expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Schedule {
    Rate { period_ms: u64 },
    Cron(Box<Cron>),
    At { at_ms: u64 },
}

/// Why an expression is invalid (AWS answers `ValidationException: Parameter ScheduleExpression is not valid.`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Parameter ScheduleExpression is not valid: {0}")]
pub struct ScheduleError(pub String);

fn bad(msg: impl Into<String>) -> ScheduleError {
    ScheduleError(msg.into())
}

impl Schedule {
    pub fn parse(expression: &str) -> Result<Schedule, ScheduleError> {
        let e = expression.trim();
        if let Some(body) = e.strip_prefix("rate(").and_then(|r| r.strip_suffix(')')) {
            return parse_rate(body);
        }
        if let Some(body) = e.strip_prefix("cron(").and_then(|r| r.strip_suffix(')')) {
            return Ok(Schedule::Cron(Box::new(Cron::parse(body)?)));
        }
        if let Some(body) = e.strip_prefix("at(").and_then(|r| r.strip_suffix(')')) {
            let t =
                NaiveDateTime::parse_from_str(body.trim(), "%Y-%m-%dT%H:%M:%S").map_err(|_| {
                    bad(format!(
                        "'{body}' is not a time of the form yyyy-mm-ddThh:mm:ss"
                    ))
                })?;
            let at_ms = Utc.from_utc_datetime(&t).timestamp_millis();
            if at_ms < 0 {
                return Err(bad("at() times before 1970 are not supported"));
            }
            return Ok(Schedule::At {
                at_ms: at_ms as u64,
            });
        }
        Err(bad(format!(
            "'{expression}' is neither rate(...), cron(...) nor at(...)"
        )))
    }

    /// The first firing strictly after `after_ms`; `anchor_ms` is where a rate counts from.
    pub fn next_after(&self, anchor_ms: u64, after_ms: u64) -> Option<u64> {
        match self {
            Schedule::Rate { period_ms } => {
                if after_ms < anchor_ms {
                    return Some(anchor_ms + period_ms);
                }
                let periods = (after_ms - anchor_ms) / period_ms + 1;
                Some(anchor_ms + periods * period_ms)
            }
            Schedule::At { at_ms } => (*at_ms > after_ms).then_some(*at_ms),
            Schedule::Cron(cron) => cron.next_after(after_ms),
        }
    }
}

fn parse_rate(body: &str) -> Result<Schedule, ScheduleError> {
    let mut parts = body.split_whitespace();
    let (Some(value), Some(unit), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(bad("rate() takes a value and a unit, e.g. rate(5 minutes)"));
    };
    let n: u64 = value.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
        bad(format!(
            "rate value '{value}' is not a positive whole number"
        ))
    })?;
    let (unit_ms, singular) = match unit {
        "minute" => (60_000, true),
        "minutes" => (60_000, false),
        "hour" => (3_600_000, true),
        "hours" => (3_600_000, false),
        "day" => (86_400_000, true),
        "days" => (86_400_000, false),
        other => {
            return Err(bad(format!(
                "rate unit '{other}' is not minute(s), hour(s) or day(s)"
            )));
        }
    };
    if singular != (n == 1) {
        return Err(bad(format!(
            "rate({body}): the unit is singular for 1 and plural otherwise"
        )));
    }
    Ok(Schedule::Rate {
        period_ms: n
            .checked_mul(unit_ms)
            .ok_or_else(|| bad("rate is too long"))?,
    })
}

/// A set of allowed values of one field, as a bit set.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Set(u128);

impl Set {
    fn has(&self, v: u32) -> bool {
        v < 128 && self.0 & (1u128 << v) != 0
    }
    fn first_from(&self, v: u32, max: u32) -> Option<u32> {
        (v..=max).find(|x| self.has(*x))
    }
}

/// The day-of-month field.
#[derive(Debug, Clone, PartialEq, Eq)]
enum DayOfMonth {
    Any,
    Days(Set),
    Last,
    LastWeekday,
    NearestWeekday(u32),
}

/// The day-of-week field (1 = Sunday .. 7 = Saturday).
#[derive(Debug, Clone, PartialEq, Eq)]
enum DayOfWeek {
    Any,
    Days(Set),
    /// `6L`: the last Friday of the month.
    Last(u32),
    /// `2#1`: the first Monday of the month.
    Nth(u32, u32),
}

/// A parsed `cron(...)` expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron {
    minutes: Set,
    hours: Set,
    dom: DayOfMonth,
    months: Set,
    dow: DayOfWeek,
    /// Years 1970..=2199 as offsets from 1970 (fits the 128-bit set up to 2097) — kept as a list.
    years: Vec<bool>,
}

const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const DAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];
const MIN_YEAR: i32 = 1970;
const MAX_YEAR: i32 = 2199;

fn parse_number(text: &str, names: &[&str], first_name_value: u32) -> Option<u32> {
    if let Ok(n) = text.parse::<u32>() {
        return Some(n);
    }
    let upper = text.to_ascii_uppercase();
    names
        .iter()
        .position(|n| *n == upper)
        .map(|i| i as u32 + first_name_value)
}

/// Parses a list field into the allowed values within `min..=max`.
fn parse_list(
    field: &str,
    what: &str,
    min: u32,
    max: u32,
    names: &[&str],
    name_base: u32,
) -> Result<Vec<u32>, ScheduleError> {
    let mut out = Vec::new();
    for item in field.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((r, s)) => {
                let step: u32 =
                    s.parse().ok().filter(|s| *s > 0).ok_or_else(|| {
                        bad(format!("{what}: step '{s}' is not a positive number"))
                    })?;
                (r, step)
            }
            None => (item, 1),
        };
        let (lo, hi) = if range == "*" {
            (min, max)
        } else if let Some((a, b)) = range.split_once('-') {
            let a = parse_number(a, names, name_base)
                .ok_or_else(|| bad(format!("{what}: '{a}' is not a value")))?;
            let b = parse_number(b, names, name_base)
                .ok_or_else(|| bad(format!("{what}: '{b}' is not a value")))?;
            (a, b)
        } else {
            let a = parse_number(range, names, name_base)
                .ok_or_else(|| bad(format!("{what}: '{range}' is not a value")))?;
            // `a/step` runs from a to the end of the field.
            (a, if item.contains('/') { max } else { a })
        };
        for v in [lo, hi] {
            if v < min || v > max {
                return Err(bad(format!("{what}: {v} is outside {min}-{max}")));
            }
        }
        // A range that wraps (FRI-MON, NOV-FEB) runs to the end and on from the start.
        let values: Vec<u32> = if lo <= hi {
            (lo..=hi).collect()
        } else {
            (lo..=max).chain(min..=hi).collect()
        };
        out.extend(values.into_iter().step_by(step as usize));
    }
    Ok(out)
}

fn set_of(values: &[u32]) -> Set {
    Set(values.iter().fold(0u128, |acc, v| acc | (1u128 << v)))
}

impl Cron {
    pub fn parse(body: &str) -> Result<Cron, ScheduleError> {
        let fields: Vec<&str> = body.split_whitespace().collect();
        if fields.len() != 6 {
            return Err(bad(format!(
                "cron() has six fields (minutes hours day-of-month month day-of-week year); '{body}' has {}",
                fields.len()
            )));
        }
        let minutes = set_of(&parse_list(fields[0], "minutes", 0, 59, &[], 0)?);
        let hours = set_of(&parse_list(fields[1], "hours", 0, 23, &[], 0)?);
        let months = set_of(&parse_list(fields[3], "month", 1, 12, &MONTHS, 1)?);
        let dom = match fields[2] {
            "?" => DayOfMonth::Any,
            "L" => DayOfMonth::Last,
            "LW" => DayOfMonth::LastWeekday,
            f if f.ends_with('W') => {
                let n: u32 = f[..f.len() - 1]
                    .parse()
                    .ok()
                    .filter(|n| (1..=31).contains(n))
                    .ok_or_else(|| bad(format!("day-of-month: '{f}' is not nW with n in 1-31")))?;
                DayOfMonth::NearestWeekday(n)
            }
            f => DayOfMonth::Days(set_of(&parse_list(f, "day-of-month", 1, 31, &[], 0)?)),
        };
        let dow = match fields[4] {
            "?" => DayOfWeek::Any,
            "L" => DayOfWeek::Days(set_of(&[7])),
            f if f.len() > 1 && f.ends_with('L') => {
                let d = parse_number(&f[..f.len() - 1], &DAYS, 1)
                    .filter(|d| (1..=7).contains(d))
                    .ok_or_else(|| bad(format!("day-of-week: '{f}' is not dL with d in 1-7")))?;
                DayOfWeek::Last(d)
            }
            f if f.contains('#') => {
                let (d, n) = f.split_once('#').unwrap_or_default();
                let d = parse_number(d, &DAYS, 1)
                    .filter(|d| (1..=7).contains(d))
                    .ok_or_else(|| bad(format!("day-of-week: '{f}' is not d#n")))?;
                let n: u32 = n
                    .parse()
                    .ok()
                    .filter(|n| (1..=5).contains(n))
                    .ok_or_else(|| bad(format!("day-of-week: '{f}': n is 1-5")))?;
                DayOfWeek::Nth(d, n)
            }
            f => DayOfWeek::Days(set_of(&parse_list(f, "day-of-week", 1, 7, &DAYS, 1)?)),
        };
        match (&dom, &dow) {
            (DayOfMonth::Any, DayOfWeek::Any) => {
                return Err(bad("only one of day-of-month and day-of-week can be '?'"));
            }
            (DayOfMonth::Any, _) | (_, DayOfWeek::Any) => {}
            _ => {
                return Err(bad(
                    "day-of-month and day-of-week cannot both be set: one of them must be '?'",
                ));
            }
        }
        let mut years = vec![false; (MAX_YEAR - MIN_YEAR + 1) as usize];
        for y in parse_list(fields[5], "year", MIN_YEAR as u32, MAX_YEAR as u32, &[], 0)? {
            years[(y as i32 - MIN_YEAR) as usize] = true;
        }
        Ok(Cron {
            minutes,
            hours,
            dom,
            months,
            dow,
            years,
        })
    }

    fn year_ok(&self, y: i32) -> bool {
        (MIN_YEAR..=MAX_YEAR).contains(&y) && self.years[(y - MIN_YEAR) as usize]
    }

    fn day_ok(&self, date: NaiveDate) -> bool {
        let last = last_day_of_month(date);
        let dom_ok = match &self.dom {
            DayOfMonth::Any => true,
            DayOfMonth::Days(s) => s.has(date.day()),
            DayOfMonth::Last => date.day() == last,
            DayOfMonth::LastWeekday => {
                let mut d = last;
                while is_weekend(date.with_day(d).unwrap_or(date)) {
                    d -= 1;
                }
                date.day() == d
            }
            DayOfMonth::NearestWeekday(n) => nearest_weekday(date, *n) == Some(date.day()),
        };
        // chrono: Sunday = 0; AWS: Sunday = 1.
        let dow = date.weekday().num_days_from_sunday() + 1;
        let dow_ok = match &self.dow {
            DayOfWeek::Any => true,
            DayOfWeek::Days(s) => s.has(dow),
            DayOfWeek::Last(d) => dow == *d && date.day() + 7 > last,
            DayOfWeek::Nth(d, n) => dow == *d && (date.day() - 1) / 7 + 1 == *n,
        };
        dom_ok && dow_ok
    }

    /// The first minute strictly after `after_ms` that the expression names.
    pub fn next_after(&self, after_ms: u64) -> Option<u64> {
        let start = DateTime::<Utc>::from_timestamp_millis(after_ms as i64)?;
        // Next whole minute strictly after.
        let mut t = start
            .with_second(0)?
            .with_nanosecond(0)?
            .checked_add_signed(Duration::minutes(1))?
            .naive_utc();
        // Each step moves to the next candidate year, month, day, hour or minute; 100k steps
        // cover centuries of days.
        for _ in 0..100_000 {
            let date = t.date();
            if date.year() > MAX_YEAR {
                return None;
            }
            if !self.year_ok(date.year()) {
                t = NaiveDate::from_ymd_opt(date.year() + 1, 1, 1)?.and_hms_opt(0, 0, 0)?;
                continue;
            }
            if !self.months.has(date.month()) {
                t = first_of_next_month(date)?.and_hms_opt(0, 0, 0)?;
                continue;
            }
            if !self.day_ok(date) {
                t = date.succ_opt()?.and_hms_opt(0, 0, 0)?;
                continue;
            }
            let Some(hour) = self.hours.first_from(t.hour(), 23) else {
                t = date.succ_opt()?.and_hms_opt(0, 0, 0)?;
                continue;
            };
            if hour != t.hour() {
                t = date.and_hms_opt(hour, 0, 0)?;
            }
            match self.minutes.first_from(t.minute(), 59) {
                Some(minute) => {
                    let found = date.and_hms_opt(hour, minute, 0)?;
                    return Some(Utc.from_utc_datetime(&found).timestamp_millis() as u64);
                }
                None => {
                    t = date.and_hms_opt(hour, 0, 0)? + Duration::hours(1);
                }
            }
        }
        None
    }
}

fn first_of_next_month(date: NaiveDate) -> Option<NaiveDate> {
    if date.month() == 12 {
        NaiveDate::from_ymd_opt(date.year() + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(date.year(), date.month() + 1, 1)
    }
}

fn last_day_of_month(date: NaiveDate) -> u32 {
    first_of_next_month(date)
        .and_then(|d| d.pred_opt())
        .map(|d| d.day())
        .unwrap_or(28)
}

fn is_weekend(date: NaiveDate) -> bool {
    matches!(date.weekday(), chrono::Weekday::Sat | chrono::Weekday::Sun)
}

/// The weekday nearest to day `n` of the month, without leaving the month (Quartz's `nW`).
fn nearest_weekday(date: NaiveDate, n: u32) -> Option<u32> {
    let last = last_day_of_month(date);
    if n > last {
        return None;
    }
    let d = date.with_day(n)?;
    Some(match d.weekday() {
        chrono::Weekday::Sat if n == 1 => 3,
        chrono::Weekday::Sat => n - 1,
        chrono::Weekday::Sun if n == last => n - 2,
        chrono::Weekday::Sun => n + 1,
        _ => n,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(text: &str) -> u64 {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .timestamp_millis() as u64
    }

    fn next(expr: &str, after: &str) -> String {
        let s = Schedule::parse(expr).unwrap();
        let t = s.next_after(0, ms(after)).expect("fires");
        DateTime::<Utc>::from_timestamp_millis(t as i64)
            .unwrap()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    }

    #[test]
    fn rates_count_from_the_anchor() {
        let s = Schedule::parse("rate(5 minutes)").unwrap();
        assert_eq!(s.next_after(1_000, 1_000), Some(301_000));
        assert_eq!(s.next_after(1_000, 300_999), Some(301_000));
        assert_eq!(s.next_after(1_000, 301_000), Some(601_000));
        assert!(Schedule::parse("rate(1 minute)").is_ok());
        assert!(Schedule::parse("rate(1 minutes)").is_err());
        assert!(Schedule::parse("rate(2 hour)").is_err());
        assert!(Schedule::parse("rate(0 minutes)").is_err());
        assert!(Schedule::parse("rate(5 weeks)").is_err());
    }

    #[test]
    fn cron_examples_from_aws() {
        // 10:15 UTC every day.
        assert_eq!(
            next("cron(15 10 * * ? *)", "2026-12-02T11:00:00Z"),
            "2026-12-03T10:15:00Z"
        );
        // 6 PM Monday through Friday.
        assert_eq!(
            next("cron(0 18 ? * MON-FRI *)", "2026-12-04T18:00:00Z"),
            "2026-12-07T18:00:00Z"
        );
        // 8 AM on the first day of every month.
        assert_eq!(
            next("cron(0 8 1 * ? *)", "2026-12-02T00:00:00Z"),
            "2027-01-01T08:00:00Z"
        );
        // Every 10 minutes, weekdays.
        assert_eq!(
            next("cron(0/10 * ? * MON-FRI *)", "2026-12-04T23:55:00Z"),
            "2026-12-07T00:00:00Z"
        );
        // Every 5 minutes between 8:00 and 17:55, weekdays.
        assert_eq!(
            next("cron(0/5 8-17 ? * MON-FRI *)", "2026-12-02T17:55:00Z"),
            "2026-12-03T08:00:00Z"
        );
        // 9 AM on the first Monday of every month (2026-12-01 is a Tuesday).
        assert_eq!(
            next("cron(0 9 ? * 2#1 *)", "2026-12-02T00:00:00Z"),
            "2026-12-07T09:00:00Z"
        );
        assert_eq!(
            next("cron(0 9 ? * 2#1 *)", "2026-12-07T09:00:00Z"),
            "2027-01-04T09:00:00Z"
        );
        // Last day of the month, last Friday, nearest weekday.
        assert_eq!(
            next("cron(0 0 L * ? *)", "2027-02-01T00:00:00Z"),
            "2027-02-28T00:00:00Z"
        );
        assert_eq!(
            next("cron(0 12 ? * 6L *)", "2026-12-01T00:00:00Z"),
            "2026-12-25T12:00:00Z"
        );
        // 2027-05-01 is a Saturday: 1W is Monday the 3rd.
        assert_eq!(
            next("cron(0 0 1W * ? *)", "2027-04-02T00:00:00Z"),
            "2027-05-03T00:00:00Z"
        );
        // A year that has passed never fires again.
        assert!(
            Schedule::parse("cron(0 0 1 1 ? 2020)")
                .unwrap()
                .next_after(0, ms("2026-01-01T00:00:00Z"))
                .is_none()
        );
    }

    #[test]
    fn cron_rejects_what_aws_rejects() {
        for bad in [
            "cron(0 0 * * * *)",
            "cron(0 0 ? * ? *)",
            "cron(0 0 1 * MON *)",
            "cron(60 0 * * ? *)",
            "cron(0 24 * * ? *)",
            "cron(0 0 * * ?)",
            "cron(0 0 32 * ? *)",
            "cron(0 0 ? * 8 *)",
            "cron(0 0 ? FOO * *)",
            "cron(0/0 0 * * ? *)",
            "every(5 minutes)",
        ] {
            assert!(Schedule::parse(bad).is_err(), "{bad} should be invalid");
        }
    }

    #[test]
    fn at_fires_once() {
        let s = Schedule::parse("at(2026-12-02T12:00:00)").unwrap();
        let t = ms("2026-12-02T12:00:00Z");
        assert_eq!(s.next_after(0, t - 1), Some(t));
        assert_eq!(s.next_after(0, t), None);
        assert!(Schedule::parse("at(2026-12-02 12:00)").is_err());
    }
}
