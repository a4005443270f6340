//! `USER` / `-u` resolution against the image's own `/etc/passwd` and `/etc/group`, as runc does it.

use std::io::Read;
use std::path::Path;

use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;

use crate::error::RuntimeError;
use crate::spec::User;

/// A resolved `user[:group]`: numeric ids plus the home directory for `HOME`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedUser {
    pub user: User,
    /// The passwd entry's home, or `/` when there is none (Docker's default `HOME`).
    pub home: String,
}

/// Resolves `spec` (`""`, `name`, `uid`, `name:group`, `uid:gid`, …) inside `rootfs`.
///
/// Names come from the rootfs's `/etc/passwd` and `/etc/group`, opened with
/// `RESOLVE_IN_ROOT` so the image's symlinks cannot point at the host's files. Supplementary
/// groups are those listing the user as a member, unless a group is given explicitly.
pub fn resolve_user(rootfs: &Path, spec: &str) -> Result<ResolvedUser, RuntimeError> {
    let passwd = read_in_root(rootfs, "etc/passwd")?;
    let group = read_in_root(rootfs, "etc/group")?;
    resolve_user_in(passwd.as_deref(), group.as_deref(), spec)
}

/// [`resolve_user`] on file contents (`None`: the file does not exist). Pure.
pub fn resolve_user_in(
    passwd: Option<&str>,
    group: Option<&str>,
    spec: &str,
) -> Result<ResolvedUser, RuntimeError> {
    let (user_part, group_part) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    // An empty user is root, looked up like "0".
    let user_part = if user_part.is_empty() { "0" } else { user_part };
    let invalid = |reason: &str| RuntimeError::InvalidUser {
        user: spec.to_owned(),
        reason: reason.to_owned(),
    };
    let numeric_uid = parse_id(user_part).map_err(|()| invalid("uid out of range"))?;

    let entry = passwd.into_iter().flat_map(str::lines).find_map(|line| {
        let entry = PasswdEntry::parse(line)?;
        let matches = match numeric_uid {
            Some(uid) => entry.uid == uid,
            None => entry.name == user_part,
        };
        matches.then_some(entry)
    });
    let (uid, primary_gid, name, home) = match (entry, numeric_uid) {
        (Some(e), _) => (e.uid, e.gid, Some(e.name), e.home),
        (None, Some(uid)) => (uid, 0, None, "/"),
        (None, None) => {
            return Err(RuntimeError::UnknownUser {
                user: user_part.to_owned(),
            })
        }
    };

    let groups: Vec<GroupEntry> = group
        .into_iter()
        .flat_map(str::lines)
        .filter_map(GroupEntry::parse)
        .collect();
    let (gid, additional_gids) = match group_part {
        Some(g) if !g.is_empty() => {
            let gid = match parse_id(g).map_err(|()| invalid("gid out of range"))? {
                Some(gid) => gid,
                None => groups
                    .iter()
                    .find(|e| e.name == g)
                    .map(|e| e.gid)
                    .ok_or_else(|| RuntimeError::UnknownGroup {
                        group: g.to_owned(),
                    })?,
            };
            (gid, Vec::new())
        }
        Some(_) => return Err(invalid("empty group after ':'")),
        None => {
            let mut extra: Vec<u32> = match name {
                Some(name) => groups
                    .iter()
                    .filter(|e| e.members.contains(&name))
                    .map(|e| e.gid)
                    .collect(),
                None => Vec::new(),
            };
            extra.dedup();
            (primary_gid, extra)
        }
    };
    Ok(ResolvedUser {
        user: User {
            uid,
            gid,
            additional_gids,
        },
        home: if home.is_empty() { "/" } else { home }.to_owned(),
    })
}

/// Resolves `--group-add` values (names or gids) against the rootfs's `/etc/group`, in
/// order, as Docker adds them to the supplementary groups.
pub fn resolve_groups(rootfs: &Path, names: &[String]) -> Result<Vec<u32>, RuntimeError> {
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let group = read_in_root(rootfs, "etc/group")?;
    resolve_groups_in(group.as_deref(), names)
}

/// [`resolve_groups`] on the file's contents (`None`: no such file). Pure.
pub fn resolve_groups_in(group: Option<&str>, names: &[String]) -> Result<Vec<u32>, RuntimeError> {
    let entries: Vec<GroupEntry> = group
        .into_iter()
        .flat_map(str::lines)
        .filter_map(GroupEntry::parse)
        .collect();
    names
        .iter()
        .map(|name| {
            let by_name = entries.iter().find(|e| e.name == name).map(|e| e.gid);
            match (by_name, parse_id(name)) {
                (Some(gid), _) | (None, Ok(Some(gid))) => Ok(gid),
                (None, Err(())) => Err(RuntimeError::InvalidUser {
                    user: name.clone(),
                    reason: "gid out of range".to_owned(),
                }),
                (None, Ok(None)) => Err(RuntimeError::UnknownGroup {
                    group: name.clone(),
                }),
            }
        })
        .collect()
}

/// `Ok(Some(n))` for a decimal id, `Ok(None)` for a name, `Err` for a number too large.
fn parse_id(text: &str) -> Result<Option<u32>, ()> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(None);
    }
    match text.parse::<u32>() {
        Ok(id) if id <= i32::MAX as u32 => Ok(Some(id)),
        _ => Err(()),
    }
}

struct PasswdEntry<'a> {
    name: &'a str,
    uid: u32,
    gid: u32,
    home: &'a str,
}

impl<'a> PasswdEntry<'a> {
    /// `name:password:uid:gid:gecos:home:shell`; malformed lines and comments are skipped.
    fn parse(line: &'a str) -> Option<Self> {
        if line.starts_with('#') {
            return None;
        }
        let mut fields = line.split(':');
        let name = fields.next()?;
        let _password = fields.next();
        let uid = fields.next()?.parse().ok()?;
        let gid = fields.next()?.parse().ok()?;
        let _gecos = fields.next();
        let home = fields.next().unwrap_or("");
        Some(Self {
            name,
            uid,
            gid,
            home,
        })
    }
}

struct GroupEntry<'a> {
    name: &'a str,
    gid: u32,
    members: Vec<&'a str>,
}

impl<'a> GroupEntry<'a> {
    /// `name:password:gid:member,member`.
    fn parse(line: &'a str) -> Option<Self> {
        if line.starts_with('#') {
            return None;
        }
        let mut fields = line.split(':');
        let name = fields.next()?;
        let _password = fields.next();
        let gid = fields.next()?.parse().ok()?;
        let members = fields
            .next()
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|m| !m.is_empty())
            .collect();
        Some(Self { name, gid, members })
    }
}

/// Reads `path` (relative) inside `rootfs` without ever leaving it; `None` when absent.
fn read_in_root(rootfs: &Path, path: &str) -> Result<Option<String>, RuntimeError> {
    let err = |source: std::io::Error| RuntimeError::Read {
        path: rootfs.join(path),
        source,
    };
    let root = rustix::fs::open(
        rootfs,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| err(e.into()))?;
    let fd = match strata_inroot::open_in_root(&root, path, OFlags::RDONLY) {
        Ok(fd) => fd,
        Err(Errno::NOENT | Errno::NOTDIR) => return Ok(None),
        Err(e) => return Err(err(e.into())),
    };
    let mut bytes = Vec::new();
    std::fs::File::from(fd)
        .read_to_end(&mut bytes)
        .map_err(err)?;
    Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "\
root:x:0:0:root:/root:/bin/sh
# a comment
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
app:x:1000:1000:App:/home/app:/bin/sh
broken line
nohome:x:1001:1001::
";
    const GROUP: &str = "\
root:x:0:
wheel:x:10:root,app
app:x:1000:
docker:x:999:app
audio:x:29: app ,other
";

    fn user(uid: u32, gid: u32, extra: &[u32], home: &str) -> ResolvedUser {
        ResolvedUser {
            user: User {
                uid,
                gid,
                additional_gids: extra.to_vec(),
            },
            home: home.to_owned(),
        }
    }

    #[test]
    fn resolves_like_runc() {
        let cases = [
            ("", user(0, 0, &[10], "/root")),
            ("root", user(0, 0, &[10], "/root")),
            ("app", user(1000, 1000, &[10, 999, 29], "/home/app")),
            ("1000", user(1000, 1000, &[10, 999, 29], "/home/app")),
            ("app:docker", user(1000, 999, &[], "/home/app")),
            ("app:4242", user(1000, 4242, &[], "/home/app")),
            ("4242", user(4242, 0, &[], "/")),
            ("4242:4242", user(4242, 4242, &[], "/")),
            ("daemon", user(1, 1, &[], "/usr/sbin")),
            ("nohome", user(1001, 1001, &[], "/")),
        ];
        for (spec, expected) in cases {
            let got = resolve_user_in(Some(PASSWD), Some(GROUP), spec)
                .unwrap_or_else(|e| panic!("{spec:?}: {e}"));
            assert_eq!(got, expected, "{spec:?}");
        }
    }

    #[test]
    fn unknown_names_and_bad_ids_are_errors() {
        let cases = [
            ("nobody", "UnknownUser"),
            ("app:nogroup", "UnknownGroup"),
            ("99999999999", "InvalidUser"),
            ("app:", "InvalidUser"),
        ];
        for (spec, kind) in cases {
            let err = resolve_user_in(Some(PASSWD), Some(GROUP), spec).unwrap_err();
            assert!(format!("{err:?}").starts_with(kind), "{spec:?}: {err:?}");
        }
    }

    #[test]
    fn added_groups_resolve_by_name_or_number() {
        let names = |list: &[&str]| list.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            resolve_groups_in(Some(GROUP), &names(&["docker", "27", "wheel"])).unwrap(),
            [999, 27, 10]
        );
        let err = resolve_groups_in(Some(GROUP), &names(&["nope"])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unable to find group nope: no matching entries in group file"
        );
        assert_eq!(resolve_groups_in(None, &names(&["42"])).unwrap(), [42]);
    }

    #[test]
    fn missing_files_allow_numeric_ids_only() {
        assert_eq!(
            resolve_user_in(None, None, "1000:1000").unwrap(),
            user(1000, 1000, &[], "/")
        );
        assert_eq!(
            resolve_user_in(None, None, "").unwrap(),
            user(0, 0, &[], "/")
        );
        assert!(resolve_user_in(None, None, "app").is_err());
    }

    #[test]
    fn reads_the_rootfs_files_without_leaving_it() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        let outside = tmp.path().join("outside");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("passwd"), "evil:x:0:0::/:/bin/sh\n").unwrap();
        std::fs::write(root.join("etc/group"), GROUP).unwrap();
        // An absolute symlink out of the root resolves inside it, where nothing exists.
        std::os::unix::fs::symlink(outside.join("passwd"), root.join("etc/passwd")).unwrap();
        assert!(matches!(
            resolve_user(&root, "evil"),
            Err(RuntimeError::UnknownUser { .. })
        ));
        std::fs::remove_file(root.join("etc/passwd")).unwrap();
        std::fs::write(root.join("etc/passwd"), PASSWD).unwrap();
        assert_eq!(
            resolve_user(&root, "app").unwrap(),
            user(1000, 1000, &[10, 999, 29], "/home/app")
        );
    }
}
