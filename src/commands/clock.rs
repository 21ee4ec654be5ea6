//! The clock, read here at the edge and passed down: the model computes with
//! the times it is given, so its rules and reports are the same in a test
//! as at 03:17 in cron.

/// Milliseconds since the epoch now.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

/// Seconds since the epoch now, for Prometheus timestamps.
pub(crate) fn now_secs() -> f64 {
    now_ms() as f64 / 1000.0
}

/// Today's date in UTC, `YYYY-MM-DD`: what acceptances' `until` is compared with.
pub(crate) fn today() -> String {
    crate::model::log::time::utc_text(now_ms())[..10].to_string()
}
