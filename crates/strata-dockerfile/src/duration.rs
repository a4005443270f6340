//! Go's `time.ParseDuration`, which HEALTHCHECK flags use: `1h30m`, `1.5s`, `300ms`, `0`.

use std::time::Duration;

/// Parses a Go duration string. Negative durations are rejected (no Dockerfile flag allows them).
pub fn parse_go_duration(s: &str) -> Result<Duration, String> {
    let invalid = || format!("time: invalid duration {s:?}");
    let body = s.strip_prefix('+').unwrap_or(s);
    if let Some(negative) = body.strip_prefix('-') {
        return if !negative.is_empty() && negative.chars().all(|c| c == '0') {
            Ok(Duration::ZERO)
        } else {
            Err(format!("duration {s:?} cannot be negative"))
        };
    }
    if body == "0" {
        return Ok(Duration::ZERO);
    }
    if body.is_empty() {
        return Err(invalid());
    }
    let mut total_nanos: u128 = 0;
    let mut rest = body;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| format!("time: missing unit in duration {s:?}"))?;
        let number = &rest[..num_end];
        let (int_part, frac_part) = match number.split_once('.') {
            Some((i, f)) => (i, f),
            None => (number, ""),
        };
        if (int_part.is_empty() && frac_part.is_empty()) || frac_part.contains('.') {
            return Err(invalid());
        }
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit_nanos: u128 = match &rest[..unit_end] {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "" => return Err(format!("time: missing unit in duration {s:?}")),
            u => return Err(format!("time: unknown unit {u:?} in duration {s:?}")),
        };
        rest = &rest[unit_end..];
        let int: u128 = if int_part.is_empty() {
            0
        } else {
            int_part.parse().map_err(|_| invalid())?
        };
        let mut nanos = int.checked_mul(unit_nanos).ok_or_else(invalid)?;
        let mut scale = unit_nanos;
        for d in frac_part.chars().take(30) {
            scale /= 10;
            nanos += u128::from(d.to_digit(10).unwrap_or(0)) * scale;
        }
        total_nanos = total_nanos.checked_add(nanos).ok_or_else(invalid)?;
        // Go durations are int64 nanoseconds.
        if total_nanos > i64::MAX as u128 {
            return Err(invalid());
        }
    }
    Ok(Duration::from_nanos(total_nanos as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        let ok = [
            ("0", 0u64),
            ("30s", 30_000_000_000),
            ("1m30s", 90_000_000_000),
            ("1.5h", 5_400_000_000_000),
            ("300ms", 300_000_000),
            ("2us", 2_000),
            (".5s", 500_000_000),
            ("+1s", 1_000_000_000),
        ];
        for (s, nanos) in ok {
            assert_eq!(parse_go_duration(s), Ok(Duration::from_nanos(nanos)), "{s}");
        }
        for bad in ["", "10", "1x", "s", "1..2s", "-1s", ".s", "9999999999h"] {
            assert!(parse_go_duration(bad).is_err(), "{bad}");
        }
    }
}
