//! Writes a container's per-container directory: `config.json` and the bind-mounted `/etc` files.

use std::fs;
use std::path::Path;

use oci_spec::runtime::Spec;

use crate::error::RuntimeError;
use crate::spec::ContainerSpec;

/// Creates `spec.dir` (and `etc/`, `state/` inside it) and writes `config.json` plus the
/// `/etc/{hostname,hosts,resolv.conf}` files the spec asks for.
pub(crate) fn write_bundle(spec: &ContainerSpec, oci: &Spec) -> Result<(), RuntimeError> {
    for dir in [spec.dir.clone(), spec.etc_dir(), spec.state_root()] {
        fs::create_dir_all(&dir).map_err(|source| RuntimeError::Write { path: dir, source })?;
    }
    let etc = &spec.etc_files;
    let hostname = etc.hostname.then(|| format!("{}\n", spec.hostname));
    for (name, contents) in [
        ("hostname", hostname.as_deref()),
        ("hosts", etc.hosts.as_deref()),
        ("resolv.conf", etc.resolv_conf.as_deref()),
    ] {
        if let Some(contents) = contents {
            write_file(&spec.etc_dir().join(name), contents.as_bytes())?;
        }
    }
    let config = serde_json::to_vec(oci).map_err(|err| RuntimeError::Write {
        path: spec.dir.join("config.json"),
        source: err.into(),
    })?;
    write_file(&spec.dir.join("config.json"), &config)
}

fn write_file(path: &Path, contents: &[u8]) -> Result<(), RuntimeError> {
    fs::write(path, contents).map_err(|source| RuntimeError::Write {
        path: path.to_owned(),
        source,
    })
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
        let oci = oci_spec(&spec).unwrap();
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
