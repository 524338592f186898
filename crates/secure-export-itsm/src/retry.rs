//! Retry classification and `Retry-After` parsing.

use std::time::{Duration, SystemTime};

/// The longest wait a `Retry-After` header can impose; longer values are capped to this.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(600);

/// What the caller should do with a failed ITSM call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryClass {
    /// A transient fault: retry with exponential backoff.
    Retryable,
    /// The backend asked us to slow down: wait at least this long before the next call.
    Throttled(Duration),
    /// Retrying will not help (bad request, bad credentials, not found): dead-letter it.
    Permanent,
}

impl RetryClass {
    /// Whether another attempt may succeed.
    #[must_use]
    pub fn is_retryable(self) -> bool {
        !matches!(self, Self::Permanent)
    }
}

/// Parses a `Retry-After` header value: delay-seconds or an HTTP date (relative to `now`).
///
/// Returns `None` for an unparseable value. The result is capped at [`MAX_RETRY_AFTER`]; a date
/// in the past gives zero.
#[must_use]
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    let wait = at.duration_since(now).unwrap_or(Duration::ZERO);
    Some(wait.min(MAX_RETRY_AFTER))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_seconds_and_dates_and_caps() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("999999", now), Some(MAX_RETRY_AFTER));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(30));
        assert_eq!(
            parse_retry_after(&later, now),
            Some(Duration::from_secs(30))
        );
        let past = httpdate::fmt_http_date(now - Duration::from_secs(30));
        assert_eq!(parse_retry_after(&past, now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-5", now), None);
        assert_eq!(parse_retry_after("", now), None);
        assert!(RetryClass::Throttled(Duration::ZERO).is_retryable());
        assert!(!RetryClass::Permanent.is_retryable());
    }

    proptest::proptest! {
        #[test]
        fn never_panics_and_never_exceeds_the_cap(value in "\\PC{0,40}", secs in 0u64..4_000_000_000) {
            let now = SystemTime::UNIX_EPOCH + Duration::from_secs(secs);
            if let Some(wait) = parse_retry_after(&value, now) {
                proptest::prop_assert!(wait <= MAX_RETRY_AFTER);
            }
        }

        #[test]
        fn seconds_round_trip_below_the_cap(n in 0u64..600) {
            let now = SystemTime::now();
            proptest::prop_assert_eq!(parse_retry_after(&n.to_string(), now), Some(Duration::from_secs(n)));
        }
    }
}
