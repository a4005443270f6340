//! `--log-driver` / `--log-opt` as Docker reads them, and the store-wide defaults
//! (`strata system config log-max-size|log-max-file`).

use strata_store::Store;

use crate::error::ContainerError;
use crate::log::LogConfig;

/// Store settings holding the default rotation of new containers' logs.
pub const LOG_MAX_SIZE_SETTING: &str = "log-max-size";
pub const LOG_MAX_FILE_SETTING: &str = "log-max-file";

/// The log configuration new containers get without `--log-opt`: the store's settings, or
/// [`LogConfig::DEFAULT`] (20 MB × 5, Docker's `local` driver caps).
pub fn default_log_config(store: &Store) -> Result<LogConfig, ContainerError> {
    let mut config = LogConfig::DEFAULT;
    if let Some(size) = store.setting(LOG_MAX_SIZE_SETTING)? {
        config.max_size = parse_max_size(&size, LOG_MAX_SIZE_SETTING)?;
    }
    if let Some(files) = store.setting(LOG_MAX_FILE_SETTING)? {
        config.max_file = parse_max_file(&files, LOG_MAX_FILE_SETTING)?;
    }
    Ok(config)
}

/// Checks a value for one of the store's log settings before it is written.
pub fn validate_log_setting(key: &str, value: &str) -> Result<(), ContainerError> {
    match key {
        LOG_MAX_SIZE_SETTING => parse_max_size(value, LOG_MAX_SIZE_SETTING).map(|_| ()),
        LOG_MAX_FILE_SETTING => parse_max_file(value, LOG_MAX_FILE_SETTING).map(|_| ()),
        _ => Err(ContainerError::InvalidOption {
            option: "setting",
            value: key.to_owned(),
            reason: format!(
                "unknown setting; known: {LOG_MAX_SIZE_SETTING}, {LOG_MAX_FILE_SETTING}"
            ),
        }),
    }
}

impl LogConfig {
    /// `--log-driver` (json-file, or none) and `--log-opt key=value` on top of `defaults`.
    /// Docker's rules: `max-size` in RAMInBytes units (`10m`, `-1` unlimited), `max-file` ≥ 1
    /// and only with a `max-size`.
    pub fn from_options(
        driver: Option<&str>,
        opts: &[String],
        defaults: LogConfig,
    ) -> Result<LogConfig, ContainerError> {
        let mut config = defaults;
        match driver {
            None | Some("json-file") => {}
            Some("none") => {
                if let Some(opt) = opts.first() {
                    return Err(bad_opt(opt, "the none log driver takes no options"));
                }
                config.enabled = false;
                return Ok(config);
            }
            Some(other) => {
                return Err(ContainerError::InvalidOption {
                    option: "--log-driver",
                    value: other.to_owned(),
                    reason: "strata keeps logs with the json-file driver (or none)".to_owned(),
                })
            }
        }
        let mut size_given = false;
        let mut files_given = None;
        for opt in opts {
            let Some((key, value)) = opt.split_once('=') else {
                return Err(bad_opt(opt, "expected key=value"));
            };
            match key {
                "max-size" => {
                    config.max_size = parse_max_size(value, "--log-opt max-size")?;
                    size_given = true;
                }
                "max-file" => {
                    let n = parse_max_file(value, "--log-opt max-file")?;
                    config.max_file = n;
                    files_given = Some(n);
                }
                // Accepted by Docker's json-file driver; they change nothing strata writes.
                "compress" | "labels" | "labels-regex" | "env" | "env-regex" | "tag" | "mode"
                | "max-buffer-size" => {}
                _ => return Err(bad_opt(opt, "unknown log option for the json-file driver")),
            }
        }
        if let Some(n) = files_given {
            if n > 1 && config.max_size == 0 && size_given {
                return Err(bad_opt(
                    "max-file",
                    "max-file needs a max-size to rotate by",
                ));
            }
        }
        Ok(config)
    }
}

fn bad_opt(value: &str, reason: &str) -> ContainerError {
    ContainerError::InvalidOption {
        option: "--log-opt",
        value: value.to_owned(),
        reason: reason.to_owned(),
    }
}

/// `10m`, `1g`, `512k`, plain bytes, or `-1` for unlimited (0 here).
fn parse_max_size(value: &str, option: &'static str) -> Result<u64, ContainerError> {
    if value.trim() == "-1" {
        return Ok(0);
    }
    match parse_ram_size(value) {
        Some(n) if n > 0 => Ok(n),
        _ => Err(ContainerError::InvalidOption {
            option,
            value: value.to_owned(),
            reason: "give a size such as 10m or 1g (1024-based), or -1 for no limit".to_owned(),
        }),
    }
}

fn parse_max_file(value: &str, option: &'static str) -> Result<u32, ContainerError> {
    match value.trim().parse::<u32>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(ContainerError::InvalidOption {
            option,
            value: value.to_owned(),
            reason: "give a number of files, at least 1".to_owned(),
        }),
    }
}

/// Docker's RAMInBytes: a number (decimals allowed) with an optional 1024-based unit
/// `b k m g t p`, optionally followed by `i` and/or `b` (`512m`, `1.5GiB`, `100000`).
pub fn parse_ram_size(text: &str) -> Option<u64> {
    let lower = text.trim().to_ascii_lowercase();
    let rest = lower.strip_suffix('b').unwrap_or(&lower);
    let rest = rest.strip_suffix('i').unwrap_or(rest);
    let (number, unit) = match rest.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&rest[..i], &rest[i..]),
        _ => (rest, ""),
    };
    if number.is_empty() || !number.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return None;
    }
    let value: f64 = number.parse().ok()?;
    let multiplier = match unit {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024f64.powi(2),
        "g" => 1024f64.powi(3),
        "t" => 1024f64.powi(4),
        "p" => 1024f64.powi(5),
        _ => return None,
    };
    let bytes = value * multiplier;
    (bytes.is_finite() && bytes >= 0.0 && bytes < u64::MAX as f64).then_some(bytes as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn sizes_follow_docker_ram_in_bytes() {
        for (text, bytes) in [
            ("512m", 512 << 20),
            ("1g", 1 << 30),
            ("1GiB", 1 << 30),
            ("1.5k", 1536),
            ("100000", 100_000),
            ("10mb", 10 << 20),
        ] {
            assert_eq!(parse_ram_size(text), Some(bytes), "{text}");
        }
        for bad in ["", "m", "ten", "1x", "-5", "1..2m"] {
            assert_eq!(parse_ram_size(bad), None, "{bad}");
        }
    }

    #[test]
    fn log_options_as_docker() {
        let d = LogConfig::DEFAULT;
        let c = LogConfig::from_options(None, &opts(&["max-size=10m", "max-file=3"]), d).unwrap();
        assert_eq!((c.enabled, c.max_size, c.max_file), (true, 10 << 20, 3));
        let c = LogConfig::from_options(Some("json-file"), &opts(&["max-size=-1"]), d).unwrap();
        assert_eq!(c.max_size, 0);
        let c = LogConfig::from_options(Some("none"), &[], d).unwrap();
        assert!(!c.enabled);
        for (driver, list) in [
            (Some("syslog"), vec![]),
            (None, vec!["max-size"]),
            (None, vec!["max-size=lots"]),
            (None, vec!["max-file=0"]),
            (None, vec!["max-size=-1", "max-file=3"]),
            (None, vec!["colour=blue"]),
            (Some("none"), vec!["max-size=1m"]),
        ] {
            let list: Vec<&str> = list;
            assert!(
                LogConfig::from_options(driver, &opts(&list), d).is_err(),
                "{driver:?} {list:?}"
            );
        }
    }
}
