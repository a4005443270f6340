//! Helpers shared by the builder tests (temp stores and the busybox base come from
//! strata-testkit): context files, layer listings in `tar -tv` form and a recording reporter.

use std::path::Path;
use std::sync::Mutex;

use strata_oci::Digest;
use strata_store::Store;

use crate::BuildOptions;

pub(crate) fn write(dir: &Path, files: &[(&str, &str)]) {
    for (path, body) in files {
        let p = dir.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, body).unwrap();
    }
}

pub(crate) fn sde(t: i64) -> BuildOptions {
    BuildOptions {
        source_date_epoch: Some(t),
        ..BuildOptions::default()
    }
}

/// `path type mode uid/gid size` of every entry of a layer blob, as `tar -tv` shows them.
pub(crate) fn listing(store: &Store, diff_id: &Digest) -> Vec<String> {
    let mut out = Vec::new();
    let mut ar = tar::Archive::new(store.content().open(diff_id).unwrap());
    for e in ar.entries().unwrap() {
        let e = e.unwrap();
        let h = e.header();
        let kind = match h.entry_type() {
            tar::EntryType::Directory => 'd',
            tar::EntryType::Symlink => 'l',
            _ => '-',
        };
        out.push(format!(
            "{} {kind} {:o} {}/{} {}",
            String::from_utf8_lossy(&e.path_bytes()),
            h.mode().unwrap() & 0o7777,
            h.uid().unwrap(),
            h.gid().unwrap(),
            h.size().unwrap()
        ));
    }
    out
}

/// Records which steps started and which came from the cache.
#[derive(Default)]
pub(crate) struct Recorder {
    pub(crate) events: Mutex<Vec<String>>,
}

impl crate::Reporter for Recorder {
    fn step_started(
        &self,
        stage: usize,
        step: usize,
        _label: Option<&crate::StepLabel<'_>>,
        text: &str,
        _key: &crate::CacheKey,
    ) {
        self.events
            .lock()
            .unwrap()
            .push(format!("{stage}.{step} {text}"));
    }
    fn step_cached(&self, stage: usize, step: usize, _image: &strata_oci::Digest) {
        self.events
            .lock()
            .unwrap()
            .push(format!("{stage}.{step} cached"));
    }
}
