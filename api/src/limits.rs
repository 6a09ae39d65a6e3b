//! Per-client rate limiting (a token bucket per client address) and bearer-token auth.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

/// Token buckets keyed by client address: `rate` requests per second with bursts of `rate`.
pub struct RateLimiter {
    rate: u32,
    buckets: Mutex<HashMap<Option<IpAddr>, Bucket>>,
}

struct Bucket {
    tokens: f64,
    refilled: Instant,
}

/// Past this many clients, buckets that have refilled completely are dropped.
const MAX_TRACKED_CLIENTS: usize = 10_000;

impl RateLimiter {
    pub fn new(rate: u32) -> Self {
        RateLimiter {
            rate,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `client` at `now`; `false` means the client is over its rate.
    pub fn allow(&self, client: Option<IpAddr>, now: Instant) -> bool {
        if self.rate == 0 {
            return true;
        }
        let rate = f64::from(self.rate);
        let mut buckets = match self.buckets.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        if buckets.len() > MAX_TRACKED_CLIENTS {
            buckets.retain(|_, bucket| {
                bucket.tokens + now.duration_since(bucket.refilled).as_secs_f64() * rate < rate
            });
        }
        let bucket = buckets.entry(client).or_insert(Bucket {
            tokens: rate,
            refilled: now,
        });
        let elapsed = now.saturating_duration_since(bucket.refilled).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(rate);
        bucket.refilled = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Compares a presented bearer token with the configured ones without early exit on the first
/// differing byte.
pub fn token_allowed(presented: &str, tokens: &[String]) -> bool {
    tokens.iter().fold(false, |found, token| {
        let same = token.len() == presented.len()
            && token
                .bytes()
                .zip(presented.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0;
        found | same
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn bucket_allows_rate_then_refuses_then_refills() {
        let limiter = RateLimiter::new(3);
        let start = Instant::now();
        let client = Some(IpAddr::from([127, 0, 0, 1]));
        assert!((0..3).all(|_| limiter.allow(client, start)));
        assert!(!limiter.allow(client, start));
        // Another client has its own bucket.
        assert!(limiter.allow(Some(IpAddr::from([127, 0, 0, 2])), start));
        assert!(limiter.allow(client, start + Duration::from_millis(400)));
        assert!(!limiter.allow(client, start + Duration::from_millis(400)));
    }

    #[test]
    fn zero_rate_is_unlimited() {
        let limiter = RateLimiter::new(0);
        let now = Instant::now();
        assert!((0..10_000).all(|_| limiter.allow(None, now)));
    }

    #[test]
    fn tokens_compare_exactly() {
        let tokens = vec!["alpha".to_owned(), "beta".to_owned()];
        assert!(token_allowed("beta", &tokens));
        assert!(!token_allowed("bet", &tokens));
        assert!(!token_allowed("", &tokens));
    }
}
