//! The automatic retry of API calls (runner-api.md §1): statuses that say
//! "try again later" are retried a few times, waiting as long as the
//! server asks or backing off exponentially. Network errors are not
//! retried here: the callers (the poll loop, the trace loop, the final
//! update) have their own, longer rhythms for an unreachable server.

use std::hash::{BuildHasher, RandomState};
use std::time::{Duration, SystemTime};

use reqwest::header::HeaderMap;

/// How often and how long to retry a call answered with a retryable status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (gitlab-runner: 5).
    pub max_attempts: u32,
    /// The first back-off wait when the server names none (100 ms).
    pub min_backoff: Duration,
    /// The longest wait, whoever names it (60 s).
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            min_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// No retry at all: every answer is returned as it came.
    pub fn none() -> Self {
        RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        }
    }

    /// Whether GitLab's answer `status` is worth another attempt: request
    /// timeout, rate limit, and the server errors of a busy or restarting
    /// instance (500, 502, 503, 504 and everything from 512 on).
    pub fn is_retryable(status: u16) -> bool {
        matches!(status, 408 | 429 | 500 | 502 | 503 | 504) || status >= 512
    }

    /// How long to wait before attempt `attempt + 1`, after attempt
    /// `attempt` (1-based) was answered with `headers`:
    /// `RateLimit-ResetTime` (an HTTP date) first, then `Retry-After`
    /// (seconds), else exponential back-off with jitter. Never more than
    /// `max_backoff`.
    pub fn wait(&self, headers: &HeaderMap, attempt: u32, now: SystemTime) -> Duration {
        let named = reset_time(headers, now).or_else(|| retry_after(headers));
        named
            .unwrap_or_else(|| self.backoff(attempt))
            .min(self.max_backoff)
    }

    /// `min_backoff × 2^(attempt-1)`, capped, then a random point in its
    /// upper half so that runners restarted together do not retry together.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = attempt.saturating_sub(1).min(30);
        let full = self
            .min_backoff
            .saturating_mul(1u32 << exp)
            .min(self.max_backoff);
        let half = full / 2;
        half + jitter(full - half)
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name)?.to_str().ok().map(str::trim)
}

fn reset_time(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let at = httpdate::parse_http_date(header(headers, "ratelimit-resettime")?).ok()?;
    // A reset time already past means "now".
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let secs: u64 = header(headers, "retry-after")?.parse().ok()?;
    Some(Duration::from_secs(secs))
}

/// A random duration in `[0, range]`.
fn jitter(range: Duration) -> Duration {
    let nanos = u64::try_from(range.as_nanos()).unwrap_or(u64::MAX);
    if nanos == 0 {
        return Duration::ZERO;
    }
    Duration::from_nanos(random_u64() % nanos.saturating_add(1))
}

/// A random number, good enough for jitter and request ids: std's hasher
/// keys are random per process and change with every `RandomState`.
pub(crate) fn random_u64() -> u64 {
    RandomState::new().hash_one(SystemTime::now())
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn the_retryable_statuses_are_gitlab_runners() {
        for status in [408, 429, 500, 502, 503, 504, 512, 599] {
            assert!(RetryPolicy::is_retryable(status), "{status}");
        }
        for status in [
            200, 201, 204, 400, 403, 404, 409, 412, 413, 416, 422, 501, 505, 511,
        ] {
            assert!(!RetryPolicy::is_retryable(status), "{status}");
        }
    }

    #[test]
    fn retry_after_is_honoured_and_capped() {
        let policy = RetryPolicy::default();
        let now = SystemTime::now();
        assert_eq!(
            policy.wait(&headers(&[("retry-after", "7")]), 1, now),
            Duration::from_secs(7)
        );
        assert_eq!(
            policy.wait(&headers(&[("retry-after", "3600")]), 1, now),
            Duration::from_secs(60)
        );
    }

    #[test]
    fn the_reset_time_wins_over_retry_after() {
        let policy = RetryPolicy::default();
        let now = httpdate::parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        let h = headers(&[
            ("ratelimit-resettime", "Sun, 06 Nov 1994 08:49:49 GMT"),
            ("retry-after", "2"),
        ]);
        assert_eq!(policy.wait(&h, 1, now), Duration::from_secs(12));
        let past = headers(&[("ratelimit-resettime", "Sun, 06 Nov 1994 08:00:00 GMT")]);
        assert_eq!(policy.wait(&past, 1, now), Duration::ZERO);
    }

    #[test]
    fn back_off_doubles_within_its_bounds() {
        let policy = RetryPolicy::default();
        for attempt in 1..=12 {
            let full = (Duration::from_millis(100) * (1 << (attempt - 1))).min(policy.max_backoff);
            for _ in 0..20 {
                let wait = policy.wait(&HeaderMap::new(), attempt, SystemTime::now());
                assert!(wait >= full / 2 && wait <= full, "{attempt}: {wait:?}");
            }
        }
    }
}
