//! Writes a container's per-container directory: `config.json` and the bind-mounted `/etc` files.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use oci_spec::runtime::Spec;

use crate::error::RuntimeError;
use crate::spec::ContainerSpec;

/// Creates `spec.dir` (and `etc/`, `state/` inside it) and writes `config.json` plus the
/// `/etc/{hostname,hosts,resolv.conf}` files the spec asks for.
pub(crate) fn write_bundle(spec: &ContainerSpec, oci: &Spec) -> Result<(), RuntimeError> {
    // The bundle holds the environment (secrets included): root's only. The /etc files are
    // bind-mounted, so the container's users need no way through these dirs.
    for dir in [spec.dir.clone(), spec.etc_dir(), spec.state_root()] {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|source| RuntimeError::Write { path: dir, source })?;
    }
    let etc = &spec.etc_files;
    let hostname = etc.hostname.then(|| format!("{}\n", spec.hostname));
    for (name, contents) in [
        ("hostname", hostname.as_deref()),
        ("hosts", etc.hosts.as_deref()),
        ("resolv.conf", etc.resolv_conf.as_deref()),
    ] {
        if let Some(contents) = contents {
            // Readable by every user in the container, as the files they replace.
            write_file(&spec.etc_dir().join(name), contents.as_bytes(), 0o644)?;
        }
    }
    let config = serde_json::to_vec(oci).map_err(|err| RuntimeError::Write {
        path: spec.dir.join("config.json"),
        source: err.into(),
    })?;
    write_file(&spec.dir.join("config.json"), &config, 0o600)
}

/// Writes `contents` to `path` with exactly `mode` (also when the file existed: a restart).
fn write_file(path: &Path, contents: &[u8], mode: u32) -> Result<(), RuntimeError> {
    let err = |source| RuntimeError::Write {
        path: path.to_owned(),
        source,
    };
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .map_err(err)?;
    file.set_permissions(fs::Permissions::from_mode(mode))
        .map_err(err)?;
    file.write_all(contents).map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::oci_spec;

    #[test]
    fn writes_config_and_requested_etc_files_only() {
        let tmp = tempfile::tempdir().unwrap();
        let mut spec = ContainerSpec::new(
            "bundle-test",
            "/nonexistent/rootfs",
            tmp.path().join("c"),
            vec!["true".into()],
        );
        spec.hostname = "box".into();
        spec.etc_files.hosts = Some("127.0.0.1\tlocalhost\n".into());
        let oci = oci_spec(&spec, &crate::oci::tests::host()).unwrap();
        write_bundle(&spec, &oci).unwrap();

        let dir = tmp.path().join("c");
        let back: Spec =
            serde_json::from_slice(&fs::read(dir.join("config.json")).unwrap()).unwrap();
        assert_eq!(back, oci);
        assert_eq!(
            fs::read_to_string(dir.join("etc/hostname")).unwrap(),
            "box\n"
        );
        assert_eq!(
            fs::read_to_string(dir.join("etc/hosts")).unwrap(),
            "127.0.0.1\tlocalhost\n"
        );
        assert!(!dir.join("etc/resolv.conf").exists());
        assert!(dir.join("state").is_dir());
    }
}
