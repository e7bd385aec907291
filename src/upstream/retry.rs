//! When and how long to wait before another attempt: exponential backoff with jitter,
//! the answers worth another try, and the server's `Retry-After`. Pure functions of
//! their inputs (the randomness is passed in), so the arithmetic is tested as is.

use std::time::Duration;

use crate::limits;

/// How often, and how patiently, a retryable request is tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first one included; 1 never retries.
    pub max_attempts: u32,
    /// The wait before the first retry; each further retry doubles it.
    pub base_delay: Duration,
    /// The longest wait between two attempts, also the cap on `Retry-After`.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy {
            max_attempts: limits::UPSTREAM_ATTEMPTS_DEFAULT_MAX,
            base_delay: Duration::from_millis(limits::UPSTREAM_RETRY_BASE_DELAY_DEFAULT_MILLIS),
            max_delay: Duration::from_millis(limits::UPSTREAM_RETRY_DELAY_MAX_DEFAULT_MILLIS),
        }
    }
}

impl RetryPolicy {
    /// A policy that makes one attempt only.
    pub const NEVER: RetryPolicy = RetryPolicy {
        max_attempts: 1,
        base_delay: Duration::ZERO,
        max_delay: Duration::ZERO,
    };

    /// The wait before retry number `retry` (1 for the first): `base_delay * 2^(retry-1)`
    /// capped at `max_delay`, of which the upper half is jitter drawn from `random`
    /// ("equal jitter": the wait still grows, but clients that failed together do not
    /// come back together).
    pub fn backoff(&self, retry: u32, random: u64) -> Duration {
        let doublings = retry.saturating_sub(1).min(31);
        let ceiling = self
            .base_delay
            .saturating_mul(1u32 << doublings)
            .min(self.max_delay);
        let ceiling_nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        let floor = ceiling_nanos / 2;
        let spread = ceiling_nanos - floor;
        let jitter = if spread == 0 {
            0
        } else {
            random % (spread + 1)
        };
        Duration::from_nanos(floor + jitter)
    }

    /// The wait before retry `retry` after an answer that said `Retry-After`
    /// (`retry_after`, when it held a number of seconds): that, capped at `max_delay`;
    /// else the backoff.
    pub fn delay_after_answer(
        &self,
        retry: u32,
        retry_after: Option<Duration>,
        random: u64,
    ) -> Duration {
        match retry_after {
            Some(wait) => wait.min(self.max_delay),
            None => self.backoff(retry, random),
        }
    }
}

/// Statuses that say "not now" rather than "no": throttling (429) and the server
/// errors a retry may get past (500, 502, 503, 504).
pub fn is_retryable_status(status: u16) -> bool {
    matches!(status, 429 | 500 | 502 | 503 | 504)
}

/// A `Retry-After` value in delta-seconds; `None` for anything else (the HTTP-date
/// form is not used by the servers this client talks to, and is ignored).
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if value.is_empty() || value.len() > 10 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse::<u64>().ok().map(Duration::from_secs)
}

/// A small xorshift generator: jitter needs spread, not secrecy.
#[derive(Debug)]
pub(crate) struct Jitter {
    state: u64,
}

impl Jitter {
    /// Seeds from the process's hash keys (random per process) and a per-generator count.
    pub(crate) fn new() -> Jitter {
        use std::hash::{BuildHasher, Hasher};
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u64(0x9e37_79b9_7f4a_7c15);
        Jitter {
            state: hasher.finish() | 1,
        }
    }

    pub(crate) fn next(&mut self) -> u64 {
        let mut x = self.state;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.state = x;
        x
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(base_ms: u64, max_ms: u64) -> RetryPolicy {
        RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_millis(base_ms),
            max_delay: Duration::from_millis(max_ms),
        }
    }

    #[test]
    fn backoff_doubles_within_jitter_and_caps() {
        let p = policy(100, 1000);
        let ms = |retry, random| p.backoff(retry, random).as_millis();
        // Lowest and highest draw of each retry: [ceiling/2, ceiling].
        assert_eq!((ms(1, 0), ms(1, 50_000_000)), (50, 100));
        assert_eq!((ms(2, 0), ms(2, 100_000_000)), (100, 200));
        assert_eq!((ms(3, 0), ms(3, 200_000_000)), (200, 400));
        assert_eq!((ms(4, 0), ms(4, 400_000_000)), (400, 800));
        assert_eq!((ms(5, 0), ms(5, 500_000_000)), (500, 1000), "capped");
        assert_eq!(ms(60, 0), 500, "no overflow on huge retry numbers");
        let mut jitter = Jitter::new();
        for _ in 0..1000 {
            let d = p.backoff(3, jitter.next());
            assert!(d >= Duration::from_millis(200) && d <= Duration::from_millis(400));
        }
        assert_eq!(RetryPolicy::NEVER.backoff(1, 12345), Duration::ZERO);
    }

    #[test]
    fn retry_after_is_honoured_up_to_the_cap() {
        let p = policy(100, 2000);
        assert_eq!(parse_retry_after(" 1 "), Some(Duration::from_secs(1)));
        assert_eq!(parse_retry_after("0"), Some(Duration::ZERO));
        for ignored in [
            "",
            "-1",
            "1.5",
            "Wed, 21 Oct 2015 07:28:00 GMT",
            "99999999999",
        ] {
            assert_eq!(parse_retry_after(ignored), None, "{ignored:?}");
        }
        let after = |secs| p.delay_after_answer(1, Some(Duration::from_secs(secs)), 0);
        assert_eq!(after(1), Duration::from_secs(1));
        assert_eq!(after(3600), Duration::from_secs(2), "capped at max_delay");
        assert_eq!(p.delay_after_answer(2, None, 0), Duration::from_millis(100));
    }

    #[test]
    fn retryable_statuses() {
        for status in [429, 500, 502, 503, 504] {
            assert!(is_retryable_status(status));
        }
        for status in [200, 204, 301, 400, 403, 404, 409, 412, 501, 505] {
            assert!(!is_retryable_status(status));
        }
    }
}
