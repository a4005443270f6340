//! Seccomp profiles: Docker's default (`seccomp_default`) or one in Docker's JSON format
//! (`--security-opt seccomp=FILE`), resolved for one container — its bounding capabilities,
//! the host's architecture and kernel — into the OCI `linux.seccomp` that libcontainer
//! compiles with libseccomp and loads right before the container's process starts.

use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompArgBuilder,
    LinuxSeccompFilterFlag, LinuxSeccompOperator, LinuxSyscall,
};
use serde::{Deserialize, Serialize};

/// Which filter a container gets.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum SeccompPolicy {
    /// Docker's default profile.
    #[default]
    Default,
    /// No filter (`--security-opt seccomp=unconfined`, `--privileged`).
    Unconfined,
    /// A profile in Docker's JSON format, kept as text so that a container keeps the profile it
    /// was created with whatever happens to the file.
    Profile(String),
}

impl SeccompPolicy {
    /// Checks that a [`SeccompPolicy::Profile`] is a profile strata can apply.
    pub fn validate(&self) -> Result<(), SeccompProfileError> {
        match self {
            Self::Profile(text) => Profile::parse(text).map(drop),
            Self::Default | Self::Unconfined => Ok(()),
        }
    }

    /// The filter for a process whose bounding set is `bounding` (`CAP_…` names) on `host`;
    /// `None` for no filter.
    pub(crate) fn resolve(
        &self,
        bounding: &[String],
        host: &HostPlatform,
    ) -> Result<Option<LinuxSeccomp>, SeccompProfileError> {
        match self {
            Self::Default => crate::seccomp_default::docker_default().resolve(bounding, host),
            Self::Unconfined => Ok(None),
            Self::Profile(text) => Profile::parse(text)?.resolve(bounding, host),
        }
    }
}

/// Why a seccomp profile cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SeccompProfileError {
    #[error("decoding the seccomp profile failed: {0}")]
    Decode(#[from] serde_json::Error),
    #[error("'architectures' and 'archMap' were specified in the seccomp profile, use either 'architectures' or 'archMap'")]
    ArchitecturesAndArchMap,
    #[error(
        "'name' and 'names' were specified in the seccomp profile, use either 'name' or 'names'"
    )]
    NameAndNames,
    #[error("invalid kernel version {0:?} in the seccomp profile, expected \"<kernel>.<major>\"")]
    KernelVersion(String),
    #[error("seccomp action {0:?} is not supported (strata runs no seccomp agent)")]
    Notify(String),
}

/// The host facts a profile's conditions are checked against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HostPlatform {
    /// Docker's name of the architecture (`amd64`, `arm64`, …), as its filters spell it.
    pub(crate) arch: &'static str,
    /// `(version, major revision)` of the running kernel.
    pub(crate) kernel: (u32, u32),
}

impl HostPlatform {
    /// This machine.
    pub(crate) fn current() -> Self {
        Self {
            arch: docker_arch(std::env::consts::ARCH),
            kernel: running_kernel().unwrap_or((0, 0)),
        }
    }

    /// The libseccomp architecture of `arch`, if Docker knows it.
    fn seccomp_arch(&self) -> Option<Arch> {
        Some(match self.arch {
            "amd64" => Arch::ScmpArchX86_64,
            "x86" => Arch::ScmpArchX86,
            "arm64" => Arch::ScmpArchAarch64,
            "arm" => Arch::ScmpArchArm,
            "mips64" => Arch::ScmpArchMips64,
            "mips64n32" => Arch::ScmpArchMips64n32,
            "mipsel64" => Arch::ScmpArchMipsel64,
            "mipsel" => Arch::ScmpArchMipsel,
            "ppc" => Arch::ScmpArchPpc,
            "ppc64" => Arch::ScmpArchPpc64,
            "ppc64le" => Arch::ScmpArchPpc64le,
            "s390" => Arch::ScmpArchS390,
            "s390x" => Arch::ScmpArchS390x,
            _ => return None,
        })
    }
}

/// Rust's name of an architecture → Docker's (GOARCH through libseccomp's spelling).
fn docker_arch(rust_arch: &str) -> &'static str {
    match rust_arch {
        "x86_64" => "amd64",
        "x86" => "x86",
        "aarch64" => "arm64",
        "arm" => "arm",
        "s390x" => "s390x",
        "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
        "powerpc64" => "ppc64",
        "mips64" if cfg!(target_endian = "little") => "mipsel64",
        "mips64" => "mips64",
        "riscv64" => "riscv64",
        _ => "unknown",
    }
}

/// `(version, major)` from `uname -r` (`6.18.0-1-amd64` → `(6, 18)`).
fn running_kernel() -> Option<(u32, u32)> {
    let uname = rustix::system::uname();
    parse_kernel_release(&uname.release().to_string_lossy())
}

fn parse_kernel_release(release: &str) -> Option<(u32, u32)> {
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    let version = parts.next()?.parse().ok()?;
    let major = parts.next()?.parse().ok()?;
    Some((version, major))
}

/// A profile before it is resolved for a container.
pub(crate) struct Profile {
    pub(crate) default_action: LinuxSeccompAction,
    pub(crate) default_errno_ret: Option<u32>,
    /// Fixed architectures (old profiles), or
    pub(crate) architectures: Vec<Arch>,
    /// the host's architecture and the ones its kernel also runs.
    pub(crate) arch_map: Vec<(Arch, Vec<Arch>)>,
    pub(crate) flags: Vec<LinuxSeccompFilterFlag>,
    pub(crate) rules: Vec<Rule>,
}

/// Syscalls sharing an action and argument filters, with the conditions that apply them.
#[derive(Debug, Clone, Default)]
pub(crate) struct Rule {
    names: Vec<String>,
    action: LinuxSeccompAction,
    errno_ret: Option<u32>,
    args: Vec<LinuxSeccompArg>,
    includes: Condition,
    excludes: Condition,
}

/// Docker's `includes`/`excludes`: capabilities, architectures (Docker's names), kernel.
#[derive(Debug, Clone, Default)]
struct Condition {
    caps: Vec<String>,
    arches: Vec<String>,
    min_kernel: Option<(u32, u32)>,
}

impl Rule {
    pub(crate) fn allow(names: &[&str]) -> Self {
        Self {
            names: names.iter().map(|n| (*n).to_owned()).collect(),
            action: LinuxSeccompAction::ScmpActAllow,
            ..Self::default()
        }
    }

    pub(crate) fn errno(names: &[&str], errno: u32) -> Self {
        Self {
            action: LinuxSeccompAction::ScmpActErrno,
            errno_ret: Some(errno),
            ..Self::allow(names)
        }
    }

    pub(crate) fn arg(
        mut self,
        index: usize,
        op: LinuxSeccompOperator,
        value: u64,
        value_two: Option<u64>,
    ) -> Self {
        self.args.push(seccomp_arg(index, op, value, value_two));
        self
    }

    pub(crate) fn includes_caps(mut self, caps: &[&str]) -> Self {
        self.includes.caps = owned(caps);
        self
    }

    pub(crate) fn excludes_caps(mut self, caps: &[&str]) -> Self {
        self.excludes.caps = owned(caps);
        self
    }

    pub(crate) fn includes_arches(mut self, arches: &[&str]) -> Self {
        self.includes.arches = owned(arches);
        self
    }

    pub(crate) fn excludes_arches(mut self, arches: &[&str]) -> Self {
        self.excludes.arches = owned(arches);
        self
    }

    pub(crate) fn includes_min_kernel(mut self, version: u32, major: u32) -> Self {
        self.includes.min_kernel = Some((version, major));
        self
    }

    /// Docker's `setupSeccomp` filter: applies unless an exclusion matches or an inclusion
    /// fails.
    fn applies(&self, bounding: &[String], host: &HostPlatform) -> bool {
        let has = |cap: &String| bounding.contains(cap);
        let ex = &self.excludes;
        if ex.arches.iter().any(|a| a == host.arch)
            || ex.caps.iter().any(has)
            || ex.min_kernel.is_some_and(|k| host.kernel >= k)
        {
            return false;
        }
        let inc = &self.includes;
        (inc.arches.is_empty() || inc.arches.iter().any(|a| a == host.arch))
            && inc.caps.iter().all(has)
            && inc.min_kernel.is_none_or(|k| host.kernel >= k)
    }
}

fn owned(items: &[&str]) -> Vec<String> {
    items.iter().map(|i| (*i).to_owned()).collect()
}

impl Profile {
    /// A profile in Docker's JSON format (unknown fields are ignored, as Docker does).
    pub(crate) fn parse(text: &str) -> Result<Self, SeccompProfileError> {
        let json: ProfileJson = serde_json::from_str(text)?;
        if !json.architectures.is_empty() && !json.arch_map.is_empty() {
            return Err(SeccompProfileError::ArchitecturesAndArchMap);
        }
        let mut rules = Vec::new();
        for call in json.syscalls {
            if !call.name.is_empty() && !call.names.is_empty() {
                return Err(SeccompProfileError::NameAndNames);
            }
            if call.action == LinuxSeccompAction::ScmpActNotify {
                return Err(SeccompProfileError::Notify("SCMP_ACT_NOTIFY".to_owned()));
            }
            rules.push(Rule {
                names: if call.name.is_empty() {
                    call.names
                } else {
                    vec![call.name]
                },
                action: call.action,
                errno_ret: call.errno_ret,
                args: call.args.unwrap_or_default(),
                includes: call.includes.condition()?,
                excludes: call.excludes.condition()?,
            });
        }
        let default_action = match json.default_action.as_deref() {
            None | Some("") => None,
            Some(action) => Some(parse_action(action)?),
        };
        if default_action == Some(LinuxSeccompAction::ScmpActNotify) {
            return Err(SeccompProfileError::Notify("SCMP_ACT_NOTIFY".to_owned()));
        }
        Ok(Self {
            // "No default action and no syscalls" means seccomp disabled; `resolve` sees that.
            default_action: default_action.unwrap_or(LinuxSeccompAction::ScmpActAllow),
            default_errno_ret: json.default_errno_ret,
            architectures: json.architectures,
            arch_map: json
                .arch_map
                .into_iter()
                .map(|a| (a.architecture, a.sub_architectures))
                .collect(),
            flags: json.flags,
            rules,
        })
    }

    /// The OCI filter for a process with bounding set `bounding` on `host`, or `None` when the
    /// profile disables seccomp (allows everything and names no syscall).
    pub(crate) fn resolve(
        &self,
        bounding: &[String],
        host: &HostPlatform,
    ) -> Result<Option<LinuxSeccomp>, SeccompProfileError> {
        if self.default_action == LinuxSeccompAction::ScmpActAllow && self.rules.is_empty() {
            return Ok(None);
        }
        let mut architectures = self.architectures.clone();
        if let Some(native) = host.seccomp_arch() {
            if let Some((arch, subs)) = self.arch_map.iter().find(|(a, _)| *a == native) {
                architectures.push(*arch);
                architectures.extend(subs.iter().copied());
            }
        }
        let syscalls: Vec<LinuxSyscall> = self
            .rules
            .iter()
            .filter(|rule| rule.applies(bounding, host))
            .map(|rule| {
                let mut call = LinuxSyscall::default();
                call.set_names(rule.names.clone());
                call.set_action(rule.action);
                call.set_errno_ret(rule.errno_ret);
                let args: Vec<LinuxSeccompArg> = rule.args.iter().map(libcontainer_arg).collect();
                call.set_args((!args.is_empty()).then_some(args));
                call
            })
            .collect();
        let mut seccomp = LinuxSeccomp::default();
        seccomp.set_default_action(self.default_action);
        seccomp.set_default_errno_ret(self.default_errno_ret);
        seccomp.set_architectures((!architectures.is_empty()).then_some(architectures));
        seccomp.set_flags((!self.flags.is_empty()).then(|| self.flags.clone()));
        seccomp.set_syscalls(Some(syscalls));
        Ok(Some(seccomp))
    }
}

/// libcontainer 0.7 reads a masked comparison as `(arg & valueTwo) == value`, runc (and so
/// every Docker profile) as `(arg & value) == valueTwo`: swapped here so profiles mean what
/// they say (otherwise Docker's clone rule would refuse every fork).
fn libcontainer_arg(arg: &LinuxSeccompArg) -> LinuxSeccompArg {
    if arg.op() != LinuxSeccompOperator::ScmpCmpMaskedEq {
        return *arg;
    }
    seccomp_arg(
        arg.index(),
        arg.op(),
        arg.value_two().unwrap_or(0),
        Some(arg.value()),
    )
}

fn seccomp_arg(
    index: usize,
    op: LinuxSeccompOperator,
    value: u64,
    value_two: Option<u64>,
) -> LinuxSeccompArg {
    let mut builder = LinuxSeccompArgBuilder::default()
        .index(index)
        .op(op)
        .value(value);
    if let Some(two) = value_two {
        builder = builder.value_two(two);
    }
    // Every field has a default, so building cannot fail.
    builder.build().unwrap_or_default()
}

fn parse_action(action: &str) -> Result<LinuxSeccompAction, SeccompProfileError> {
    Ok(serde_json::from_value(serde_json::Value::String(
        action.to_owned(),
    ))?)
}

/// Docker's profile format (moby `profiles/seccomp/seccomp.go`).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ProfileJson {
    #[serde(default)]
    default_action: Option<String>,
    #[serde(default)]
    default_errno_ret: Option<u32>,
    #[serde(default)]
    architectures: Vec<Arch>,
    #[serde(default)]
    arch_map: Vec<ArchMapJson>,
    #[serde(default)]
    flags: Vec<LinuxSeccompFilterFlag>,
    #[serde(default)]
    syscalls: Vec<SyscallJson>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ArchMapJson {
    architecture: Arch,
    #[serde(default)]
    sub_architectures: Vec<Arch>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SyscallJson {
    #[serde(default)]
    name: String,
    #[serde(default)]
    names: Vec<String>,
    action: LinuxSeccompAction,
    #[serde(default)]
    errno_ret: Option<u32>,
    #[serde(default)]
    args: Option<Vec<LinuxSeccompArg>>,
    #[serde(default)]
    includes: FilterJson,
    #[serde(default)]
    excludes: FilterJson,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct FilterJson {
    #[serde(default)]
    caps: Vec<String>,
    #[serde(default)]
    arches: Vec<String>,
    #[serde(default)]
    min_kernel: Option<String>,
}

impl FilterJson {
    fn condition(self) -> Result<Condition, SeccompProfileError> {
        let min_kernel = match self.min_kernel.as_deref() {
            None | Some("") => None,
            Some(text) => {
                let parsed = text
                    .split_once('.')
                    .and_then(|(v, m)| Some((v.parse::<u32>().ok()?, m.parse::<u32>().ok()?)));
                match parsed {
                    Some(version) if version != (0, 0) => Some(version),
                    _ => return Err(SeccompProfileError::KernelVersion(text.to_owned())),
                }
            }
        };
        Ok(Condition {
            caps: self.caps,
            arches: self.arches,
            min_kernel,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AMD64: HostPlatform = HostPlatform {
        arch: "amd64",
        kernel: (6, 1),
    };

    fn docker_caps() -> Vec<String> {
        crate::security::DEFAULT_CAPABILITY_NAMES
            .iter()
            .map(|c| (*c).to_owned())
            .collect()
    }

    fn rules_for<'a>(seccomp: &'a LinuxSeccomp, name: &str) -> Vec<&'a LinuxSyscall> {
        seccomp
            .syscalls()
            .iter()
            .flatten()
            .filter(|s| s.names().iter().any(|n| n == name))
            .collect()
    }

    fn resolved(bounding: &[String], host: &HostPlatform) -> LinuxSeccomp {
        SeccompPolicy::Default
            .resolve(bounding, host)
            .unwrap()
            .unwrap()
    }

    #[test]
    fn default_profile_refuses_with_eperm_and_covers_32_bit_entry_points() {
        let s = resolved(&docker_caps(), &AMD64);
        assert_eq!(s.default_action(), LinuxSeccompAction::ScmpActErrno);
        assert_eq!(
            s.architectures().as_deref(),
            Some(&[Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32][..])
        );
        for refused in [
            "keyctl",
            "add_key",
            "request_key",
            "userfaultfd",
            "move_pages",
            "perf_event_open",
            "unshare",
            "mount",
            "bpf",
            "name_to_handle_at",
            "set_mempolicy",
            "open_by_handle_at",
            "reboot",
        ] {
            assert!(rules_for(&s, refused).is_empty(), "{refused} is allowed");
        }
        for allowed in [
            "read",
            "openat2",
            "arch_prctl",
            "modify_ldt",
            "ptrace",
            "chroot",
        ] {
            assert_eq!(rules_for(&s, allowed).len(), 1, "{allowed}");
        }
    }

    #[test]
    fn clone_is_filtered_and_clone3_gets_enosys_without_sys_admin() {
        let s = resolved(&docker_caps(), &AMD64);
        let clone = rules_for(&s, "clone");
        assert_eq!(clone.len(), 1);
        let arg = clone[0].args().as_ref().unwrap()[0];
        assert_eq!(arg.index(), 0);
        assert_eq!(arg.op(), LinuxSeccompOperator::ScmpCmpMaskedEq);
        // libcontainer's order: value is the expected result, valueTwo the mask.
        assert_eq!(arg.value(), 0);
        assert_eq!(arg.value_two(), Some(0x7e02_0000));
        let clone3 = rules_for(&s, "clone3");
        assert_eq!(clone3[0].action(), LinuxSeccompAction::ScmpActErrno);
        assert_eq!(clone3[0].errno_ret(), Some(38));
        let personality = rules_for(&s, "personality");
        let values: Vec<u64> = personality
            .iter()
            .map(|p| p.args().as_ref().unwrap()[0].value())
            .collect();
        assert_eq!(values, [0, 8, 0x20000, 0x20008, 0xffff_ffff]);
    }

    #[test]
    fn capabilities_unlock_their_syscalls() {
        let mut caps = docker_caps();
        caps.push("CAP_SYS_ADMIN".into());
        caps.push("CAP_SYS_NICE".into());
        let s = resolved(&caps, &AMD64);
        let clone = rules_for(&s, "clone");
        assert_eq!(clone.len(), 1, "unfiltered clone only");
        assert!(clone[0].args().is_none());
        assert_eq!(
            rules_for(&s, "clone3")[0].action(),
            LinuxSeccompAction::ScmpActAllow
        );
        for name in ["unshare", "mount", "set_mempolicy", "move_mount"] {
            assert_eq!(rules_for(&s, name).len(), 1, "{name}");
        }
        // Dropping CAP_SYS_CHROOT removes chroot.
        let without: Vec<String> = docker_caps()
            .into_iter()
            .filter(|c| c != "CAP_SYS_CHROOT")
            .collect();
        assert!(rules_for(&resolved(&without, &AMD64), "chroot").is_empty());
    }

    #[test]
    fn arch_and_kernel_conditions_apply() {
        let old = HostPlatform {
            arch: "amd64",
            kernel: (4, 4),
        };
        assert!(rules_for(&resolved(&docker_caps(), &old), "ptrace").is_empty());
        let arm = HostPlatform {
            arch: "arm64",
            kernel: (6, 1),
        };
        let s = resolved(&docker_caps(), &arm);
        assert!(rules_for(&s, "arch_prctl").is_empty());
        assert_eq!(rules_for(&s, "set_tls").len(), 1);
        assert_eq!(
            s.architectures().as_deref(),
            Some(&[Arch::ScmpArchAarch64, Arch::ScmpArchArm][..])
        );
    }

    #[test]
    fn docker_json_profiles_parse_and_resolve() {
        let text = r#"{
            "defaultAction": "SCMP_ACT_ERRNO",
            "defaultErrnoRet": 38,
            "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86"]}],
            "syscalls": [
                {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW", "args": [], "comment": "", "includes": {}, "excludes": {}},
                {"name": "mkdir", "action": "SCMP_ACT_ERRNO", "errnoRet": 13, "args": null},
                {"names": ["mount"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"], "minKernel": "4.8"}},
                {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 0, "value": 8, "valueTwo": 0, "op": "SCMP_CMP_EQ"}]}
            ],
            "somethingNew": true
        }"#;
        let s = SeccompPolicy::Profile(text.into())
            .resolve(&docker_caps(), &AMD64)
            .unwrap()
            .unwrap();
        assert_eq!(s.default_errno_ret(), Some(38));
        assert_eq!(
            s.architectures().as_deref(),
            Some(&[Arch::ScmpArchX86_64, Arch::ScmpArchX86][..])
        );
        assert_eq!(rules_for(&s, "mkdir")[0].errno_ret(), Some(13));
        assert!(rules_for(&s, "mount").is_empty());
        assert_eq!(
            rules_for(&s, "personality")[0].args().as_ref().unwrap()[0].value(),
            8
        );
    }

    #[test]
    fn bad_profiles_are_refused_with_dockers_reasons() {
        let cases = [
            ("{", "decoding the seccomp profile failed"),
            (
                r#"{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_X86"],"archMap":[{"architecture":"SCMP_ARCH_X86_64"}]}"#,
                "use either 'architectures' or 'archMap'",
            ),
            (
                r#"{"syscalls":[{"name":"a","names":["b"],"action":"SCMP_ACT_ALLOW"}]}"#,
                "use either 'name' or 'names'",
            ),
            (
                r#"{"syscalls":[{"names":["b"],"action":"SCMP_ACT_ALLOW","includes":{"minKernel":"4"}}]}"#,
                "invalid kernel version",
            ),
            (
                r#"{"defaultAction":"SCMP_ACT_BOGUS"}"#,
                "decoding the seccomp profile failed",
            ),
        ];
        for (text, expected) in cases {
            let err = SeccompPolicy::Profile(text.into()).validate().unwrap_err();
            assert!(err.to_string().contains(expected), "{text}: {err}");
        }
    }

    #[test]
    fn an_empty_profile_means_no_filter() {
        let policy = SeccompPolicy::Profile("{}".into());
        assert!(policy.resolve(&docker_caps(), &AMD64).unwrap().is_none());
        assert!(SeccompPolicy::Unconfined
            .resolve(&docker_caps(), &AMD64)
            .unwrap()
            .is_none());
    }

    #[test]
    fn kernel_releases_parse() {
        assert_eq!(parse_kernel_release("6.18.0-1-amd64"), Some((6, 18)));
        assert_eq!(parse_kernel_release("4.8"), Some((4, 8)));
        assert_eq!(parse_kernel_release("x"), None);
    }
}
