//! `--chown` and `--chmod` values: numeric ids, or names looked up in the stage's own
//! `/etc/passwd` and `/etc/group` (never the host's), as BuildKit resolves them.

use crate::rootfs::RootfsView;
use crate::BuildError;

/// uid and gid of copied files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Owner {
    pub(crate) uid: u32,
    pub(crate) gid: u32,
}

/// Resolves `user[:group]`. A user alone gets its primary group when named, or the same
/// number as group when numeric (BuildKit's rule).
pub(crate) fn resolve_owner(
    spec: &str,
    rootfs: &RootfsView,
    line: usize,
) -> Result<Owner, BuildError> {
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let unknown = |name: &str| BuildError::UnknownOwner {
        line,
        name: name.to_string(),
    };
    let (uid, primary_gid) = match user.parse::<u32>() {
        Ok(n) => (n, n),
        Err(_) => {
            let passwd = rootfs.read("/etc/passwd").unwrap_or_default();
            lookup(&passwd, user, 2)
                .and_then(|f| Some((f[2].parse().ok()?, f[3].parse().ok()?)))
                .ok_or_else(|| unknown(user))?
        }
    };
    let gid = match group {
        None | Some("") => primary_gid,
        Some(g) => match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => {
                let groups = rootfs.read("/etc/group").unwrap_or_default();
                lookup(&groups, g, 2)
                    .and_then(|f| f[2].parse().ok())
                    .ok_or_else(|| unknown(g))?
            }
        },
    };
    Ok(Owner { uid, gid })
}

/// The owner of the directories a `WORKDIR` creates: the stage's `USER` resolved like
/// `--chown` against the stage's own passwd/group files. BuildKit (Docker 20.10) falls back to
/// root when the name is not found there instead of failing the step; so do we.
pub(crate) fn workdir_owner(user: &str, rootfs: &RootfsView) -> Owner {
    if user.is_empty() {
        return Owner::default();
    }
    resolve_owner(user, rootfs, 0).unwrap_or_default()
}

/// The `:`-separated fields of the first line of a passwd/group file naming `name`, when it
/// has more than `min_index` fields.
fn lookup(file: &[u8], name: &str, min_index: usize) -> Option<Vec<String>> {
    String::from_utf8_lossy(file)
        .lines()
        .map(|l| l.split(':').map(str::to_string).collect::<Vec<_>>())
        .find(|f| f.len() > min_index + 1 && f[0] == name)
}

/// `--chmod=0644`: octal permission bits only (what BuildKit of Docker 20.10 accepts).
pub(crate) fn parse_chmod(value: &str, line: usize) -> Result<u32, BuildError> {
    match u32::from_str_radix(value, 8) {
        Ok(m) if m <= 0o7777 && !value.is_empty() => Ok(m),
        _ => Err(BuildError::BadChmod {
            line,
            value: value.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view_with(passwd: &str, group: &str) -> (tempfile::TempDir, RootfsView) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("etc")).unwrap();
        std::fs::write(dir.path().join("etc/passwd"), passwd).unwrap();
        std::fs::write(dir.path().join("etc/group"), group).unwrap();
        let view = RootfsView::from_dirs(vec![dir.path().to_path_buf()]);
        (dir, view)
    }

    #[test]
    fn owners_resolve_like_buildkit() {
        let (_d, view) = view_with(
            "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n",
            "root:x:0:\nstaff:x:50:\n",
        );
        for (spec, uid, gid) in [
            ("1", 1, 1),
            ("1:2", 1, 2),
            ("app", 1000, 1001),
            ("app:staff", 1000, 50),
            ("0:staff", 0, 50),
            ("app:7", 1000, 7),
        ] {
            assert_eq!(
                resolve_owner(spec, &view, 3).unwrap(),
                Owner { uid, gid },
                "{spec}"
            );
        }
        for bad in ["nobody", "app:nogroup"] {
            assert!(matches!(
                resolve_owner(bad, &view, 3),
                Err(BuildError::UnknownOwner { line: 3, .. })
            ));
        }
    }

    #[test]
    fn chmod_is_octal() {
        assert_eq!(parse_chmod("600", 1).unwrap(), 0o600);
        assert_eq!(parse_chmod("0755", 1).unwrap(), 0o755);
        for bad in ["", "u+x", "9", "77777"] {
            assert!(parse_chmod(bad, 1).is_err(), "{bad}");
        }
    }
}
