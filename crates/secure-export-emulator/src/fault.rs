//! Fault injection shared by both emulators, set per test through [`Faults`].
//!
//! Faults are checked in this order for every request: added latency (always
//! applied first), dropped connections, the rate limit, scripted error statuses,
//! and the HTML answer. Each "next N" fault is consumed by the requests it hits.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The page a hibernating ServiceNow developer instance answers with (status 200).
pub const HIBERNATING_HTML: &str = "<!DOCTYPE html>\n<html><head><title>Instance Hibernating page</title></head>\n<body><div class=\"container\"><h1>Your instance is hibernating</h1>\n<p>Developer instances hibernate after a period of inactivity. Sign in to the developer site to wake it up.</p>\n<p><a href=\"https://developer.servicenow.com/\">Want to find out why instances hibernate?</a></p></div></body></html>\n";

/// The sys_id reported in `X-RateLimit-Rule` by the emulated rate-limit rule.
pub const RATE_LIMIT_RULE_SYS_ID: &str = "9f4e3c1a2b3c4d5e6f708192a3b4c5d6";

/// Handle to an emulator's fault settings. Cheap to clone; all clones share state.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    inner: Arc<Mutex<FaultState>>,
}

#[derive(Debug, Default)]
struct FaultState {
    latency: Duration,
    rate_limit: Option<RateLimit>,
    fail_next: VecDeque<u16>,
    drop_next: u32,
    html_next: u32,
}

#[derive(Debug)]
struct RateLimit {
    max_requests: u32,
    window: Duration,
    window_start: Instant,
    window_start_wall: SystemTime,
    count: u32,
}

/// What the server does with a request after the faults were consulted.
#[derive(Debug)]
pub(crate) enum Decision {
    /// Close the connection without answering.
    Drop,
    /// Answer with a rate-limit refusal (headers included).
    RateLimited { headers: Vec<(String, String)> },
    /// Answer with this error status.
    Fail(u16),
    /// Answer 200 with [`HIBERNATING_HTML`].
    Html,
    /// Handle normally, adding these headers to the answer.
    Proceed { headers: Vec<(String, String)> },
}

impl Faults {
    fn lock(&self) -> MutexGuard<'_, FaultState> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Allow at most `max_requests` per `window`; further requests get 429 with
    /// `Retry-After` (seconds until the window resets, rounded up) and the
    /// `X-RateLimit-Limit` / `X-RateLimit-Reset` / `X-RateLimit-Rule` headers,
    /// which also accompany every allowed request. The window starts now.
    pub fn set_rate_limit(&self, max_requests: u32, window: Duration) {
        self.lock().rate_limit = Some(RateLimit {
            max_requests,
            window,
            window_start: Instant::now(),
            window_start_wall: SystemTime::now(),
            count: 0,
        });
    }

    /// Remove the rate limit.
    pub fn clear_rate_limit(&self) {
        self.lock().rate_limit = None;
    }

    /// Delay every answer by `latency` (zero turns it off).
    pub fn set_latency(&self, latency: Duration) {
        self.lock().latency = latency;
    }

    /// Answer the next `n` requests with `status` (e.g. 500, 502, 503) and the
    /// emulator's error body, without touching its state.
    pub fn fail_next(&self, n: u32, status: u16) {
        let mut state = self.lock();
        for _ in 0..n {
            state.fail_next.push_back(status);
        }
    }

    /// Close the connection of the next `n` requests without answering.
    pub fn drop_next(&self, n: u32) {
        self.lock().drop_next = n;
    }

    /// Answer the next `n` requests with status 200 and the hibernating-instance
    /// HTML page ([`HIBERNATING_HTML`]).
    pub fn html_next(&self, n: u32) {
        self.lock().html_next = n;
    }

    /// Remove every fault.
    pub fn clear(&self) {
        *self.lock() = FaultState::default();
    }

    /// The configured latency.
    pub(crate) fn latency(&self) -> Duration {
        self.lock().latency
    }

    /// Consult (and consume) the faults for one request.
    pub(crate) fn decide(&self) -> Decision {
        let mut state = self.lock();
        if state.drop_next > 0 {
            state.drop_next -= 1;
            return Decision::Drop;
        }
        let mut headers = Vec::new();
        if let Some(limit) = state.rate_limit.as_mut() {
            let now = Instant::now();
            if now.duration_since(limit.window_start) >= limit.window {
                // Start a new window aligned on the previous ones.
                let elapsed = now.duration_since(limit.window_start);
                let windows = elapsed.as_nanos() / limit.window.as_nanos().max(1);
                let advance = limit
                    .window
                    .saturating_mul(u32::try_from(windows).unwrap_or(u32::MAX));
                limit.window_start += advance;
                limit.window_start_wall += advance;
                limit.count = 0;
            }
            let reset_wall = limit.window_start_wall + limit.window;
            let reset_unix = reset_wall
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            headers.push((
                "X-RateLimit-Limit".to_owned(),
                limit.max_requests.to_string(),
            ));
            headers.push(("X-RateLimit-Reset".to_owned(), reset_unix.to_string()));
            headers.push((
                "X-RateLimit-Rule".to_owned(),
                RATE_LIMIT_RULE_SYS_ID.to_owned(),
            ));
            if limit.count >= limit.max_requests {
                let remaining = (limit.window_start + limit.window).saturating_duration_since(now);
                let secs = remaining.as_secs() + u64::from(remaining.subsec_nanos() > 0);
                headers.push(("Retry-After".to_owned(), secs.to_string()));
                return Decision::RateLimited { headers };
            }
            limit.count += 1;
        }
        if let Some(status) = state.fail_next.pop_front() {
            return Decision::Fail(status);
        }
        if state.html_next > 0 {
            state.html_next -= 1;
            return Decision::Html;
        }
        Decision::Proceed { headers }
    }
}

#[cfg(test)]
#[allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn next_n_faults_are_consumed_in_order() {
        let faults = Faults::default();
        faults.drop_next(1);
        faults.fail_next(2, 503);
        faults.html_next(1);
        assert!(matches!(faults.decide(), Decision::Drop));
        assert!(matches!(faults.decide(), Decision::Fail(503)));
        assert!(matches!(faults.decide(), Decision::Fail(503)));
        assert!(matches!(faults.decide(), Decision::Html));
        assert!(matches!(faults.decide(), Decision::Proceed { .. }));
    }

    #[test]
    fn rate_limit_refuses_after_max_and_reports_headers() {
        let faults = Faults::default();
        faults.set_rate_limit(2, Duration::from_secs(60));
        for _ in 0..2 {
            match faults.decide() {
                Decision::Proceed { headers } => {
                    assert!(
                        headers
                            .iter()
                            .any(|(n, v)| n == "X-RateLimit-Limit" && v == "2")
                    );
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        match faults.decide() {
            Decision::RateLimited { headers } => {
                let retry = headers
                    .iter()
                    .find(|(n, _)| n == "Retry-After")
                    .map(|(_, v)| v.clone());
                let secs: u64 = retry.unwrap_or_default().parse().unwrap_or(0);
                assert!((59..=60).contains(&secs), "Retry-After {secs}");
            }
            other => panic!("unexpected {other:?}"),
        }
        faults.clear();
        assert!(matches!(faults.decide(), Decision::Proceed { .. }));
    }

    #[test]
    fn rate_limit_window_resets() {
        let faults = Faults::default();
        faults.set_rate_limit(1, Duration::from_millis(150));
        assert!(matches!(faults.decide(), Decision::Proceed { .. }));
        assert!(matches!(faults.decide(), Decision::RateLimited { .. }));
        std::thread::sleep(Duration::from_millis(170));
        assert!(matches!(faults.decide(), Decision::Proceed { .. }));
    }
}
