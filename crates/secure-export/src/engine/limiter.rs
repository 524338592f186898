//! The per-backend call limiter shared by all workers of a connection.
//!
//! * **Shared pause.** A throttled answer (`429`/`503` with `Retry-After`) pauses *every* call
//!   to the backend until the wait is over, not only the worker that received it: the others
//!   would only collect more refusals.
//! * **Pacing.** The throttled answer also sets a call rate: 97 % of the successful calls of
//!   the last second (about what the backend allowed). Calls then start at most at that rate,
//!   so a backend with a per-window limit is kept just under it instead of being hit, refused
//!   and waited for (a `Retry-After` is whole seconds, so every refusal wastes part of a
//!   window). Each second without a refusal raises the rate by 0.5 %; the next refusal measures
//!   it again.
//! * **Ceiling.** A configured rate (`max_calls_per_second`) paces from the first call and is
//!   never exceeded: a backend whose limit is known is not probed with a burst of refusals.

use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

/// How far back successful calls are counted to estimate the allowed rate.
const WINDOW: Duration = Duration::from_secs(1);
/// Share of the measured rate used for pacing after a refusal.
const BACKOFF: f64 = 0.97;
/// Rate increase per second without a refusal.
const RAISE: f64 = 1.005;

#[derive(Debug)]
struct State {
    paused_until: Option<Instant>,
    /// Calls per second, once a refusal has been seen (or from the start, with a ceiling).
    rate: Option<f64>,
    /// The configured most calls per second.
    ceiling: Option<f64>,
    next_slot: Instant,
    last_change: Instant,
    /// Start times of successful calls within the last [`WINDOW`].
    recent: VecDeque<Instant>,
}

/// See the [module docs](self).
#[derive(Debug)]
pub(crate) struct Limiter {
    state: Mutex<State>,
}

impl Default for Limiter {
    fn default() -> Self {
        Self::with_ceiling(None)
    }
}

impl Limiter {
    /// A limiter that never starts more than `ceiling` calls per second (`None`: no ceiling,
    /// pacing only after a refusal). A ceiling that is not a positive finite number is ignored.
    pub(crate) fn with_ceiling(ceiling: Option<f64>) -> Self {
        let ceiling = ceiling.filter(|c| c.is_finite() && *c > 0.0);
        let now = Instant::now();
        Self {
            state: Mutex::new(State {
                paused_until: None,
                rate: ceiling,
                ceiling,
                next_slot: now,
                last_change: now,
                recent: VecDeque::new(),
            }),
        }
    }

    /// Sets the configured ceiling (see [`with_ceiling`](Self::with_ceiling)); the engine calls
    /// this with the connection's `max_calls_per_second` when it starts.
    pub(crate) fn set_ceiling(&self, ceiling: Option<f64>) {
        let ceiling = ceiling.filter(|c| c.is_finite() && *c > 0.0);
        let mut s = self.lock();
        s.ceiling = ceiling;
        s.rate = match (s.rate, ceiling) {
            (Some(rate), Some(c)) => Some(rate.min(c)),
            (rate, None) => rate,
            (None, c) => c,
        };
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The end of the current pause, if one is running.
    pub(crate) fn paused_until(&self) -> Option<Instant> {
        self.lock().paused_until.filter(|p| *p > Instant::now())
    }

    /// The pacing rate in calls per second (`None` until the backend refused a call).
    #[cfg(test)]
    pub(crate) fn rate(&self) -> Option<f64> {
        self.lock().rate
    }

    /// Waits until a call may start: after any pause, and in its slot when pacing.
    pub(crate) async fn acquire(&self) {
        let slot = {
            let mut s = self.lock();
            let now = Instant::now();
            let start = s.paused_until.filter(|p| *p > now).unwrap_or(now);
            match s.rate {
                Some(rate) => {
                    let slot = s.next_slot.max(start);
                    s.next_slot = slot + Duration::from_secs_f64(1.0 / rate.max(0.01));
                    slot
                }
                None => start,
            }
        };
        tokio::time::sleep_until(slot).await;
        // A refusal may have paused the backend meanwhile.
        if let Some(until) = self.paused_until() {
            tokio::time::sleep_until(until).await;
        }
    }

    /// Records a successful call that started at `started`.
    pub(crate) fn succeeded(&self, started: Instant) {
        self.succeeded_at(started, Instant::now());
    }

    fn succeeded_at(&self, started: Instant, now: Instant) {
        let mut s = self.lock();
        s.recent.push_back(started);
        while s
            .recent
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) > WINDOW)
        {
            s.recent.pop_front();
        }
        if let Some(rate) = s.rate
            && now.saturating_duration_since(s.last_change) >= Duration::from_secs(1)
        {
            let raised = rate * RAISE;
            s.rate = Some(s.ceiling.map_or(raised, |c| raised.min(c)));
            s.last_change = now;
        }
    }

    /// Records a refusal asking to wait `wait`: pauses every call and sets the pacing rate.
    pub(crate) fn throttled(&self, wait: Duration) {
        self.throttled_at(wait, Instant::now());
    }

    fn throttled_at(&self, wait: Duration, now: Instant) {
        let mut s = self.lock();
        // A connector may ask for any wait; cap it like a `Retry-After` header.
        let until = now + wait.min(secure_export_itsm::MAX_RETRY_AFTER);
        if s.paused_until.is_none_or(|p| p < until) {
            s.paused_until = Some(until);
        }
        while s
            .recent
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) > WINDOW)
        {
            s.recent.pop_front();
        }
        let allowed = s.recent.len() as f64 / WINDOW.as_secs_f64();
        if allowed >= 1.0 {
            let paced = allowed * BACKOFF;
            s.rate = Some(s.ceiling.map_or(paced, |c| paced.min(c)));
        }
        s.last_change = now;
        s.next_slot = s.next_slot.max(until);
    }
}

/// CMDB lookups share the backend's limiter with the ITSM calls: the same instance, the same
/// rate limit (a ServiceNow or BMC rate limit counts every request of the integration user).
#[async_trait::async_trait]
impl secure_export_cmdb::LookupPacer for Limiter {
    async fn acquire(&self) {
        Limiter::acquire(self).await;
    }

    fn throttled(&self, wait: Duration) {
        Limiter::throttled(self, wait);
    }

    fn succeeded(&self, started: Instant) {
        Limiter::succeeded(self, started);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_refusal_pauses_every_caller_and_sets_a_rate() {
        let limiter = Limiter::default();
        let t0 = Instant::now();
        limiter.acquire().await;
        assert!(
            t0.elapsed() < Duration::from_millis(20),
            "no pause, no pacing: at once"
        );
        for _ in 0..200 {
            limiter.succeeded(Instant::now());
        }
        limiter.throttled(Duration::from_millis(50));
        assert_eq!(limiter.rate(), Some(200.0 * BACKOFF));
        assert!(limiter.paused_until().is_some());
        limiter.acquire().await;
        assert!(
            t0.elapsed() >= Duration::from_millis(50),
            "waited out the pause"
        );
        // Paced at 194/s: 19 more calls take about 100 ms.
        let start = Instant::now();
        for _ in 0..19 {
            limiter.acquire().await;
        }
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(90), "{took:?}");
    }

    #[tokio::test]
    async fn a_ceiling_paces_from_the_first_call_and_is_never_exceeded() {
        let limiter = Limiter::with_ceiling(Some(100.0));
        assert_eq!(limiter.rate(), Some(100.0));
        // 100/s: 11 calls take about 100 ms, with no refusal seen.
        let start = Instant::now();
        for _ in 0..11 {
            limiter.acquire().await;
        }
        assert!(
            start.elapsed() >= Duration::from_millis(95),
            "{:?}",
            start.elapsed()
        );
        let t0 = Instant::now();
        limiter.succeeded_at(t0, t0 + Duration::from_secs(2));
        assert_eq!(limiter.rate(), Some(100.0), "not raised above the ceiling");
        for _ in 0..500 {
            limiter.succeeded_at(t0, t0);
        }
        limiter.throttled_at(Duration::from_millis(1), t0);
        assert_eq!(
            limiter.rate(),
            Some(100.0),
            "a refusal does not lift it either"
        );
        assert_eq!(Limiter::with_ceiling(Some(f64::NAN)).rate(), None);
        assert_eq!(Limiter::with_ceiling(Some(0.0)).rate(), None);
    }

    #[test]
    fn the_rate_rises_without_refusals_and_old_calls_do_not_count() {
        let limiter = Limiter::default();
        let t0 = Instant::now();
        for _ in 0..10 {
            limiter.succeeded_at(t0, t0);
        }
        limiter.throttled_at(Duration::from_millis(10), t0);
        let first = limiter.rate().unwrap_or_default();
        assert!((first - 10.0 * BACKOFF).abs() < 1e-9, "{first}");
        limiter.succeeded_at(t0, t0 + Duration::from_secs(2));
        assert!(limiter.rate().unwrap_or_default() > first, "raised");
        // Three seconds later the early calls are out of the window: one call counted.
        let later = t0 + Duration::from_secs(5);
        limiter.succeeded_at(later, later);
        limiter.throttled_at(Duration::from_millis(10), later);
        assert_eq!(limiter.rate(), Some(BACKOFF));
    }
}
