//! Human-readable sizes and durations, in the exact shapes Docker's CLI prints
//! (decimal units with three significant digits; "4 minutes ago").

/// Docker's `units.HumanSize`: decimal units, `%.3g` precision, no space ("1.98MB", "512B").
pub(crate) fn size(bytes: u64) -> String {
    size_with_precision(bytes, 3)
}

/// `units.HumanSizeWithPrecision`, as `system df` prints sizes ("1.984MB").
pub(crate) fn size_with_precision(bytes: u64, digits: i32) -> String {
    const UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    format!("{}{}", significant(value, digits), UNITS[unit])
}

/// Formats like Go's `%.Ng` for values in [0, 1000): N significant digits, trailing zeros
/// trimmed, and `1e+03` where rounding reaches a digit too many (Docker prints that too).
fn significant(v: f64, digits: i32) -> String {
    if v <= 0.0 {
        return "0".to_string();
    }
    let decimals = (digits - 1 - v.log10().floor() as i32).max(0) as usize;
    let s = format!("{v:.decimals$}");
    if !s.contains('.') && s.len() > digits as usize {
        return "1e+03".to_string();
    }
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// Docker's `units.HumanDuration` ("About a minute", "4 minutes", "2 weeks").
pub(crate) fn duration(seconds: i64) -> String {
    let s = seconds.max(0);
    let minutes = s / 60;
    let hours = (s as f64 / 3600.0 + 0.5) as i64;
    match () {
        _ if s < 1 => "Less than a second".to_string(),
        _ if s == 1 => "1 second".to_string(),
        _ if s < 60 => format!("{s} seconds"),
        _ if minutes == 1 => "About a minute".to_string(),
        _ if minutes < 60 => format!("{minutes} minutes"),
        _ if hours == 1 => "About an hour".to_string(),
        _ if hours < 48 => format!("{hours} hours"),
        _ if hours < 24 * 7 * 2 => format!("{} days", hours / 24),
        _ if hours < 24 * 30 * 2 => format!("{} weeks", hours / 24 / 7),
        _ if hours < 24 * 365 * 2 => format!("{} months", hours / 24 / 30),
        _ => format!("{} years", s / 3600 / 24 / 365),
    }
}

/// "4 minutes ago" for an RFC 3339 timestamp; "N/A" when it is missing or unreadable.
pub(crate) fn since(rfc3339: Option<&str>) -> String {
    match rfc3339.and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok()) {
        Some(t) => {
            let secs = chrono::Utc::now().signed_duration_since(t).num_seconds();
            format!("{} ago", duration(secs))
        }
        None => "N/A".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_match_docker() {
        for (bytes, want) in [
            (0, "0B"),
            (512, "512B"),
            (1000, "1kB"),
            (1_984_230, "1.98MB"),
            (2_129_920, "2.13MB"),
            (123_456, "123kB"),
            (10_500_000, "10.5MB"),
            (999_999, "1e+03kB"),
        ] {
            assert_eq!(size(bytes), want, "{bytes}");
        }
        assert_eq!(size_with_precision(1_984_230, 4), "1.984MB");
        assert_eq!(size_with_precision(27_780, 4), "27.78kB");
    }

    #[test]
    fn durations_match_docker() {
        for (secs, want) in [
            (0, "Less than a second"),
            (1, "1 second"),
            (59, "59 seconds"),
            (60, "About a minute"),
            (240, "4 minutes"),
            (3600, "About an hour"),
            (5 * 3600, "5 hours"),
            (3 * 86400, "3 days"),
            (20 * 86400, "2 weeks"),
            (100 * 86400, "3 months"),
            (800 * 86400, "2 years"),
        ] {
            assert_eq!(duration(secs), want, "{secs}");
        }
    }
}
