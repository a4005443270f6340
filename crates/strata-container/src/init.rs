//! `--init`: strata-init's static executable, installed once under the store root and
//! bind-mounted read-only at Docker's `/sbin/docker-init`, where it runs the container's
//! command as its child.

use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use strata_init::INIT_BINARY;
use strata_runtime::BindMount;

use crate::error::ContainerError;

use strata_init::INIT_PATH_IN_CONTAINER;

const INIT_FILE: &str = "strata-init";
/// Temp files are `.strata-init.<pid>.tmp`: a dead writer's leftover is recognisable.
const TEMP_PREFIX: &str = ".strata-init.";
const TEMP_SUFFIX: &str = ".tmp";

/// `<root>/init/strata-init`, holding exactly this strata's init (written when missing or
/// different, e.g. after an upgrade). Checked byte for byte on every call, and only ever
/// replaced by an atomic rename of a complete, fsynced file: a crash mid-write can leave a
/// stray temp file, never a truncated init that a container would run.
pub(crate) fn installed_init(root: &Path) -> Result<PathBuf, ContainerError> {
    let dir = root.join(strata_store::StoreDir::Init.name());
    let path = dir.join(INIT_FILE);
    if holds_this_init(&path)? {
        return Ok(path);
    }
    // Private like every top-level store dir: the container gets the file by bind mount.
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(ContainerError::io("creating", &dir))?;
    remove_dead_temps(&dir);
    let temp = dir.join(format!("{TEMP_PREFIX}{}{TEMP_SUFFIX}", std::process::id()));
    // Our own pid's name: any file there is a leftover of an earlier process with this pid.
    let _ = std::fs::remove_file(&temp);
    let written = write_synced(&temp).and_then(|()| {
        std::fs::rename(&temp, &path)?;
        File::open(&dir)?.sync_all()
    });
    if let Err(e) = written {
        let _ = std::fs::remove_file(&temp);
        return Err(ContainerError::io("installing the init at", &path)(e));
    }
    Ok(path)
}

/// The bind mount that puts the installed init at `/sbin/docker-init`, read-only.
pub(crate) fn init_mount(installed: PathBuf) -> BindMount {
    BindMount {
        source: installed,
        destination: INIT_PATH_IN_CONTAINER.to_owned(),
        readonly: true,
    }
}

/// The container's argv with `--init`: Docker's `/sbin/docker-init -- command args…`.
pub(crate) fn init_args(process_args: Vec<String>) -> Vec<String> {
    let mut args = vec![INIT_PATH_IN_CONTAINER.to_owned(), "--".to_owned()];
    args.extend(process_args);
    args
}

/// Whether `path` is an executable regular file with exactly [`INIT_BINARY`]'s bytes.
fn holds_this_init(path: &Path) -> Result<bool, ContainerError> {
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(ContainerError::io("opening", path)(e)),
    };
    let meta = file
        .metadata()
        .map_err(ContainerError::io("reading the metadata of", path))?;
    if !meta.is_file()
        || meta.len() != INIT_BINARY.len() as u64
        || meta.permissions().mode() & 0o777 != 0o755
    {
        return Ok(false);
    }
    let mut bytes = Vec::with_capacity(INIT_BINARY.len());
    file.read_to_end(&mut bytes)
        .map_err(ContainerError::io("reading", path))?;
    Ok(bytes == INIT_BINARY)
}

fn write_synced(temp: &Path) -> std::io::Result<()> {
    let mut file = File::options()
        .write(true)
        .create_new(true)
        .mode(0o755)
        .open(temp)?;
    file.write_all(INIT_BINARY)?;
    // The umask may have cut the mode at creation.
    file.set_permissions(std::fs::Permissions::from_mode(0o755))?;
    file.sync_all()
}

/// Removes temp files whose writer process no longer exists (it crashed mid-write).
fn remove_dead_temps(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(TEMP_PREFIX))
            .and_then(|n| n.strip_suffix(TEMP_SUFFIX))
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        // SAFETY: kill with signal 0 only checks whether the process exists.
        let gone = unsafe { libc::kill(pid, 0) } != 0
            && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH);
        if gone {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn installed(root: &Path) -> PathBuf {
        root.join(strata_store::StoreDir::Init.name())
            .join(INIT_FILE)
    }

    #[test]
    fn installs_an_executable_copy_of_the_embedded_init() {
        let root = tempfile::tempdir().unwrap();
        let path = installed_init(root.path()).unwrap();
        assert_eq!(path, installed(root.path()));
        assert_eq!(std::fs::read(&path).unwrap(), INIT_BINARY);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o755);
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, [INIT_FILE], "no temp file left");
    }

    #[test]
    fn a_correct_init_is_reused_in_place() {
        let root = tempfile::tempdir().unwrap();
        let path = installed_init(root.path()).unwrap();
        let inode = |p: &Path| std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(p).unwrap());
        let before = inode(&path);
        assert_eq!(installed_init(root.path()).unwrap(), path);
        assert_eq!(inode(&path), before, "not rewritten");
    }

    #[test]
    fn a_damaged_or_foreign_init_is_replaced() {
        let mut flipped = INIT_BINARY.to_vec();
        let last = flipped.len() - 1;
        flipped[last] ^= 0xff;
        let cases: [(&str, &[u8], u32); 4] = [
            (
                "truncated by a crash",
                &INIT_BINARY[..INIT_BINARY.len() / 2],
                0o755,
            ),
            ("same size, other bytes", &flipped, 0o755),
            ("right bytes, not executable", INIT_BINARY, 0o644),
            ("empty", b"", 0o755),
        ];
        for (what, bytes, mode) in cases {
            let root = tempfile::tempdir().unwrap();
            let path = installed(root.path());
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, bytes).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            installed_init(root.path()).unwrap();
            assert_eq!(std::fs::read(&path).unwrap(), INIT_BINARY, "{what}");
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o755, "{what}");
        }
    }

    #[test]
    fn leftovers_of_dead_writers_are_removed_and_live_ones_kept() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join(strata_store::StoreDir::Init.name());
        std::fs::create_dir_all(&dir).unwrap();
        // Pid 1 always exists; i32::MAX is above any pid_max.
        let live = dir.join(format!("{TEMP_PREFIX}1{TEMP_SUFFIX}"));
        let dead = dir.join(format!("{TEMP_PREFIX}{}{TEMP_SUFFIX}", i32::MAX));
        let other = dir.join("unrelated");
        for p in [&live, &dead, &other] {
            std::fs::write(p, b"partial").unwrap();
        }
        installed_init(root.path()).unwrap();
        assert!(live.exists());
        assert!(!dead.exists());
        assert!(other.exists());
    }

    #[test]
    fn init_args_put_the_command_after_a_double_dash() {
        let args = init_args(vec!["sh".into(), "-c".into(), "exit 3".into()]);
        assert_eq!(args, ["/sbin/docker-init", "--", "sh", "-c", "exit 3"]);
    }
}
