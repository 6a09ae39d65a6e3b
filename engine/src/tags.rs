//! Tags on state machines, activities, event buses and rules, checked as AWS checks them.

use crate::error::{Error, Result};
use crate::model::Tags;

/// AWS's limit of tags per resource (Step Functions and EventBridge alike).
pub(crate) const MAX_TAGS: usize = 50;

/// Refuses a tag AWS would refuse: keys of 1 to 128 characters, values of up to 256, only
/// letters, digits, separators (`\p{Z}`: spaces, not tabs or line breaks) and `_ . : / = + - @`,
/// and no `aws:` key prefix (reserved for AWS's own tags).
pub(crate) fn check(tags: &Tags) -> Result<()> {
    // Unicode's white space minus the control characters (tab, line feed...) is `\p{Z}`.
    let allowed = |c: char| {
        c.is_alphanumeric() || (c.is_whitespace() && !c.is_control()) || "_.:/=+-@".contains(c)
    };
    for (key, value) in tags {
        check_key(key)?;
        if value.chars().count() > 256 {
            return Err(Error::ValidationException(format!(
                "tag {key:?}: its value must be at most 256 characters long"
            )));
        }
        if let Some(c) = key.chars().chain(value.chars()).find(|c| !allowed(*c)) {
            return Err(Error::ValidationException(format!(
                "tag {key:?} contains {c:?}; tags may only contain letters, digits, spaces and _ . : / = + - @"
            )));
        }
        if key.len() >= 4 && key[..4].eq_ignore_ascii_case("aws:") {
            return Err(Error::ValidationException(format!(
                "tag key {key:?} starts with the reserved prefix aws:"
            )));
        }
    }
    Ok(())
}

/// A tag key's length, as AWS checks it (also the keys UntagResource names).
pub(crate) fn check_key(key: &str) -> Result<()> {
    let key_len = key.chars().count();
    if key_len == 0 || key_len > 128 {
        return Err(Error::ValidationException(format!(
            "tag key {key:?} must be 1 to 128 characters long"
        )));
    }
    Ok(())
}

/// `current` without `keys` (a key it does not have is ignored, a key AWS would refuse is not).
pub(crate) fn without(current: &Tags, keys: &[String]) -> Result<Tags> {
    let mut out = current.clone();
    for key in keys {
        check_key(key)?;
        out.remove(key);
    }
    Ok(out)
}

/// The tags of a new resource, checked.
pub(crate) fn checked(tags: Tags, resource_arn: &str) -> Result<Tags> {
    merged(&Tags::new(), tags, resource_arn)
}

/// Sets `tags` to `change(tags)`: `Ok(false)` when that is what they were (nothing to write).
pub(crate) fn apply(tags: &mut Tags, change: impl FnOnce(&Tags) -> Result<Tags>) -> Result<bool> {
    let changed = change(tags)?;
    if changed == *tags {
        return Ok(false);
    }
    *tags = changed;
    Ok(true)
}

/// `current` with `added` laid over it (a key already there takes the new value), or
/// [`Error::LimitExceeded`] when that makes more than [`MAX_TAGS`].
pub(crate) fn merged(current: &Tags, added: Tags, resource_arn: &str) -> Result<Tags> {
    check(&added)?;
    let mut out = current.clone();
    out.extend(added);
    if out.len() > MAX_TAGS {
        return Err(Error::LimitExceeded(format!(
            "{resource_arn} would have {} tags; a resource may have at most {MAX_TAGS}",
            out.len()
        )));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(pairs: &[(&str, &str)]) -> Tags {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn accepts_what_aws_accepts() {
        check(&tags(&[
            ("team", "platform"),
            ("cost center", ""),
            ("app:tier/x", "a=b+c-d@e.f_g"),
            ("ключ", "значение"),
            ("no\u{a0}break", "ideographic\u{3000}space"),
        ]))
        .unwrap();
        check(&tags(&[(&"k".repeat(128), &"v".repeat(256))])).unwrap();
    }

    #[test]
    fn refuses_what_aws_refuses() {
        for (key, value, says) in [
            ("", "v", "1 to 128"),
            (&*"k".repeat(129), "v", "1 to 128"),
            ("k", &*"v".repeat(257), "at most 256"),
            ("semi;colon", "v", "contains ';'"),
            ("k", "v*", "contains '*'"),
            ("tab\there", "v", "contains '\\t'"),
            ("k", "line\nbreak", "contains '\\n'"),
            ("AWS:cloudformation", "v", "reserved prefix"),
        ] {
            let err = check(&tags(&[(key, value)])).unwrap_err().to_string();
            assert!(err.contains(says), "{key:?}={value:?}: {err}");
        }
    }

    #[test]
    fn untag_ignores_missing_keys_and_refuses_bad_ones() {
        let current = tags(&[("a", "1"), ("b", "2")]);
        let keys = |ks: &[&str]| ks.iter().map(|k| k.to_string()).collect::<Vec<_>>();
        assert_eq!(
            without(&current, &keys(&["a", "never"])).unwrap(),
            tags(&[("b", "2")])
        );
        assert!(without(&current, &keys(&[""])).is_err());
        assert!(without(&current, &keys(&[&"k".repeat(129)])).is_err());
    }

    #[test]
    fn merge_overwrites_and_counts_the_result() {
        let current = tags(&[("a", "1"), ("b", "2")]);
        let out = merged(&current, tags(&[("b", "3"), ("c", "4")]), "arn").unwrap();
        assert_eq!(out, tags(&[("a", "1"), ("b", "3"), ("c", "4")]));

        let full: Tags = (0..MAX_TAGS)
            .map(|i| (format!("k{i}"), String::new()))
            .collect();
        // Overwriting a key of a full set is fine; one more key is not.
        merged(&full, tags(&[("k0", "x")]), "arn").unwrap();
        let err = merged(&full, tags(&[("new", "x")]), "arn").unwrap_err();
        assert!(matches!(err, Error::LimitExceeded(m) if m.contains("at most 50")));
    }
}
