//! A container's isolation settings as the user gave them (`--privileged`, `--cap-add`,
//! `--cap-drop`, `--security-opt`, `--device`, `--group-add`): validated at create, kept in
//! the record, turned into the runtime's [`Security`] at each start.

use std::path::Path;

use serde::{Deserialize, Serialize};
use strata_runtime::{normalize_capabilities, DeviceMapping, SeccompPolicy, Security};

use crate::error::ContainerError;

/// What `create` recorded about the container's isolation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecurityConfig {
    pub privileged: bool,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    /// `--security-opt` values as Docker keeps them (a seccomp file's JSON in place of its
    /// path), for `inspect`.
    pub security_opt: Vec<String>,
    pub seccomp: SeccompPolicy,
    /// On unless `--security-opt no-new-privileges=false` (strata's default; Docker's is off).
    pub no_new_privileges: bool,
    pub devices: Vec<DeviceMapping>,
    /// `--group-add`: names or gids, resolved in the container's `/etc/group` at start.
    pub group_add: Vec<String>,
}

impl Default for SecurityConfig {
    /// What records written before these options existed get: the defaults.
    fn default() -> Self {
        Self {
            privileged: false,
            cap_add: Vec::new(),
            cap_drop: Vec::new(),
            security_opt: Vec::new(),
            seccomp: SeccompPolicy::Default,
            no_new_privileges: true,
            devices: Vec::new(),
            group_add: Vec::new(),
        }
    }
}

/// The flags as given on the command line.
#[derive(Debug, Clone, Default)]
pub struct SecurityFlags {
    pub privileged: bool,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub security_opt: Vec<String>,
    pub devices: Vec<String>,
    pub group_add: Vec<String>,
}

impl SecurityConfig {
    /// Validates `flags` as Docker does (unknown capabilities, bad device syntax, unreadable
    /// or invalid seccomp profiles, unknown `--security-opt` keys are errors).
    pub fn from_flags(flags: &SecurityFlags) -> Result<Self, ContainerError> {
        let mut config = Self {
            privileged: flags.privileged,
            // Kept as `inspect` shows them: CAP_NAME, upper case.
            cap_add: normalize_capabilities(&flags.cap_add)?,
            cap_drop: normalize_capabilities(&flags.cap_drop)?,
            group_add: flags.group_add.clone(),
            ..Self::default()
        };
        for opt in &flags.security_opt {
            config.apply_security_opt(opt)?;
        }
        // Checked now so that `create` fails, not every later start.
        config.runtime_security()?;
        config.devices = flags
            .devices
            .iter()
            .map(|d| DeviceMapping::parse(d))
            .collect::<Result<_, _>>()?;
        Ok(config)
    }

    /// One `--security-opt` (Docker's `KEY=VALUE`; the old `KEY:VALUE` too).
    fn apply_security_opt(&mut self, opt: &str) -> Result<(), ContainerError> {
        let invalid = || ContainerError::InvalidOption {
            option: "--security-opt",
            value: opt.to_owned(),
            reason: "expected seccomp=unconfined|PROFILE.json, no-new-privileges[=true|false], \
                     apparmor=unconfined or label=disable"
                .to_owned(),
        };
        if opt == "no-new-privileges" {
            self.no_new_privileges = true;
            self.security_opt.push(opt.to_owned());
            return Ok(());
        }
        let (key, value) = opt
            .split_once('=')
            .or_else(|| opt.split_once(':'))
            .ok_or_else(invalid)?;
        match key {
            "seccomp" if value == "unconfined" => self.seccomp = SeccompPolicy::Unconfined,
            "seccomp" => {
                let text =
                    std::fs::read_to_string(value).map_err(|e| ContainerError::InvalidOption {
                        option: "--security-opt",
                        value: opt.to_owned(),
                        reason: format!("opening seccomp profile ({value}) failed: {e}"),
                    })?;
                let compact = compact_json(&text).map_err(|e| ContainerError::InvalidOption {
                    option: "--security-opt",
                    value: opt.to_owned(),
                    reason: format!("compacting json for seccomp profile ({value}) failed: {e}"),
                })?;
                let policy = SeccompPolicy::Profile(compact.clone());
                policy
                    .validate()
                    .map_err(strata_runtime::RuntimeError::from)?;
                self.seccomp = policy;
                self.security_opt.push(format!("seccomp={compact}"));
                return Ok(());
            }
            "no-new-privileges" => {
                self.no_new_privileges = parse_bool(value).ok_or_else(invalid)?;
            }
            // No AppArmor or SELinux confinement to lift: only their "off" values are
            // accepted, anything else would silently promise a profile.
            "apparmor" if value == "unconfined" => {}
            "label" if value == "disable" => {}
            _ => return Err(invalid()),
        }
        self.security_opt.push(opt.to_owned());
        Ok(())
    }

    /// The runtime's settings for this container (devices resolved by the runtime at start).
    pub fn runtime_security(&self) -> Result<Security, ContainerError> {
        let mut security = Security::docker(
            self.privileged,
            &self.cap_add,
            &self.cap_drop,
            self.seccomp.clone(),
        )?;
        security.no_new_privileges = self.no_new_privileges;
        security.devices = self.devices.clone();
        Ok(security)
    }

    /// The `--group-add` gids, resolved in `rootfs`.
    pub(crate) fn added_groups(&self, rootfs: &Path) -> Result<Vec<u32>, ContainerError> {
        Ok(strata_runtime::resolve_groups(rootfs, &self.group_add)?)
    }
}

/// Go's `strconv.ParseBool`.
fn parse_bool(text: &str) -> Option<bool> {
    match text {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// The JSON text without insignificant whitespace (what Docker's CLI sends).
fn compact_json(text: &str) -> Result<String, serde_json::Error> {
    let value: serde_json::Value = serde_json::from_str(text)?;
    serde_json::to_string(&value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(opts: &[&str]) -> SecurityFlags {
        SecurityFlags {
            security_opt: opts.iter().map(|o| (*o).to_owned()).collect(),
            ..SecurityFlags::default()
        }
    }

    #[test]
    fn security_opts_parse_like_docker() {
        let c = SecurityConfig::from_flags(&flags(&["seccomp=unconfined"])).unwrap();
        assert_eq!(c.seccomp, SeccompPolicy::Unconfined);
        assert_eq!(c.security_opt, ["seccomp=unconfined"]);
        assert!(c.no_new_privileges);
        let c = SecurityConfig::from_flags(&flags(&["no-new-privileges=false"])).unwrap();
        assert!(!c.no_new_privileges);
        assert!(!c.runtime_security().unwrap().no_new_privileges);
        let c = SecurityConfig::from_flags(&flags(&["no-new-privileges:true"])).unwrap();
        assert!(c.no_new_privileges);
        for bad in [
            "bogus",
            "seccomp",
            "no-new-privileges=maybe",
            "apparmor=docker-default",
            "nope=1",
            "seccomp=/nonexistent/profile.json",
        ] {
            assert!(SecurityConfig::from_flags(&flags(&[bad])).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_seccomp_file_is_kept_compact_and_validated() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good.json");
        std::fs::write(
            &good,
            "{\n  \"defaultAction\": \"SCMP_ACT_ALLOW\",\n  \"syscalls\": [\n    {\"names\": [\"mkdir\"], \"action\": \"SCMP_ACT_ERRNO\"}\n  ]\n}\n",
        )
        .unwrap();
        let opt = format!("seccomp={}", good.display());
        let c = SecurityConfig::from_flags(&flags(&[&opt])).unwrap();
        assert!(matches!(&c.seccomp, SeccompPolicy::Profile(text) if !text.contains('\n')));
        assert!(c.security_opt[0].starts_with("seccomp={\"defaultAction\""));
        let bad = dir.path().join("bad.json");
        std::fs::write(
            &bad,
            r#"{"syscalls":[{"name":"a","names":["b"],"action":"SCMP_ACT_ALLOW"}]}"#,
        )
        .unwrap();
        let opt = format!("seccomp={}", bad.display());
        let err = SecurityConfig::from_flags(&flags(&[&opt])).unwrap_err();
        assert!(
            strata_exit::ErrorChain(&err)
                .to_string()
                .contains("use either 'name' or 'names'"),
            "{err}"
        );
    }

    #[test]
    fn capabilities_and_devices_are_checked_at_create() {
        let bad_cap = SecurityFlags {
            cap_add: vec!["NOT_A_CAP".into()],
            ..SecurityFlags::default()
        };
        assert!(SecurityConfig::from_flags(&bad_cap).is_err());
        let bad_device = SecurityFlags {
            devices: vec!["/dev/fuse:relative".into()],
            ..SecurityFlags::default()
        };
        assert!(SecurityConfig::from_flags(&bad_device).is_err());
        let privileged = SecurityConfig::from_flags(&SecurityFlags {
            privileged: true,
            ..SecurityFlags::default()
        })
        .unwrap();
        let security = privileged.runtime_security().unwrap();
        assert!(security.privileged);
        assert_eq!(security.seccomp, SeccompPolicy::Unconfined);
    }
}
