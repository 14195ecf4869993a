//! When a `[[runners]]` entry may ask for a job again after trouble.
//!
//! Two mechanisms, as gitlab-runner has them, plus a back-off so that a
//! failing server is never hammered:
//! - answers that say the server is there (a job, no job, 409, 5xx after
//!   the client's retries) keep the entry healthy;
//! - 403 and connection errors count; after `unhealthy_requests_limit` in a
//!   row the entry rests for `unhealthy_interval`, then is tried again;
//! - every failed request (of either kind) delays the entry's next request
//!   by a back-off that doubles from one second to a minute, with jitter so
//!   that many runners restarted together do not ask in lockstep.

use std::time::Duration;

use tokio::time::Instant;

/// How the last request of an entry ended, for its health.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestResult {
    /// A job or no job: all is well.
    Answered,
    /// The server is there but failed the request (5xx, 409, 429...).
    ServerTrouble,
    /// 403 or no connection: the entry itself may be broken.
    Unhealthy,
}

/// The health settings of an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthSettings {
    pub unhealthy_requests_limit: u32,
    pub unhealthy_interval: Duration,
}

const BACKOFF_FIRST: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(60);

/// One entry's record.
#[derive(Debug, Default)]
pub struct Health {
    unhealthy_in_a_row: u32,
    failures_in_a_row: u32,
    not_before: Option<Instant>,
}

impl Health {
    /// Whether the entry may send a request at `now`.
    pub fn may_request(&self, now: Instant) -> bool {
        self.not_before.is_none_or(|t| now >= t)
    }

    /// When the entry may send its next request, if it has to wait.
    pub fn not_before(&self) -> Option<Instant> {
        self.not_before
    }

    /// Records how a request ended. Returns true when the entry has just
    /// become unhealthy (worth a log line).
    pub fn record(
        &mut self,
        result: RequestResult,
        settings: HealthSettings,
        now: Instant,
    ) -> bool {
        match result {
            RequestResult::Answered => {
                *self = Health::default();
                false
            }
            RequestResult::ServerTrouble => {
                self.unhealthy_in_a_row = 0;
                self.back_off(now);
                false
            }
            RequestResult::Unhealthy => {
                self.unhealthy_in_a_row += 1;
                if self.unhealthy_in_a_row >= settings.unhealthy_requests_limit.max(1) {
                    // Rest, then start counting afresh: the next failure
                    // after the rest is the first of a new series.
                    self.unhealthy_in_a_row = 0;
                    self.failures_in_a_row = 0;
                    self.not_before = Some(now + settings.unhealthy_interval);
                    true
                } else {
                    self.back_off(now);
                    false
                }
            }
        }
    }

    fn back_off(&mut self, now: Instant) {
        let exp = self.failures_in_a_row.min(16);
        self.failures_in_a_row += 1;
        let base = BACKOFF_FIRST.saturating_mul(1u32 << exp).min(BACKOFF_MAX);
        self.not_before = Some(now + spread(base));
    }
}

/// `base` scaled by a random factor in [0.5, 1.5).
fn spread(base: Duration) -> Duration {
    let factor = 0.5 + (crate::gitlab::random_u64() % 1000) as f64 / 1000.0;
    base.mul_f64(factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SETTINGS: HealthSettings = HealthSettings {
        unhealthy_requests_limit: 3,
        unhealthy_interval: Duration::from_secs(3600),
    };

    #[test]
    fn three_unhealthy_answers_in_a_row_rest_the_entry_for_the_interval() {
        let mut h = Health::default();
        let now = Instant::now();
        assert!(!h.record(RequestResult::Unhealthy, SETTINGS, now));
        assert!(!h.record(RequestResult::Unhealthy, SETTINGS, now));
        assert!(h.record(RequestResult::Unhealthy, SETTINGS, now));
        assert!(!h.may_request(now + Duration::from_secs(3599)));
        assert!(h.may_request(now + Duration::from_secs(3600)));
    }

    #[test]
    fn a_healthy_answer_resets_the_count_and_the_wait() {
        let mut h = Health::default();
        let now = Instant::now();
        h.record(RequestResult::Unhealthy, SETTINGS, now);
        h.record(RequestResult::Unhealthy, SETTINGS, now);
        assert!(!h.may_request(now));
        h.record(RequestResult::Answered, SETTINGS, now);
        assert!(h.may_request(now));
        // The count started again: two more are not enough to rest.
        h.record(RequestResult::Unhealthy, SETTINGS, now);
        assert!(!h.record(RequestResult::Unhealthy, SETTINGS, now));
    }

    #[test]
    fn server_trouble_backs_off_doubling_up_to_a_minute_with_jitter() {
        let mut h = Health::default();
        let now = Instant::now();
        let mut waits = Vec::new();
        for _ in 0..10 {
            h.record(RequestResult::ServerTrouble, SETTINGS, now);
            waits.push(h.not_before().unwrap() - now);
        }
        assert!(waits[0] >= Duration::from_millis(500) && waits[0] < Duration::from_millis(1500));
        assert!(waits[3] >= Duration::from_secs(4) && waits[3] < Duration::from_secs(12));
        for w in &waits[7..] {
            assert!(
                *w >= Duration::from_secs(30) && *w < Duration::from_secs(90),
                "{w:?}"
            );
        }
        // Never an immediate retry: that would spin.
        assert!(waits.iter().all(|w| !w.is_zero()));
    }
}
