//! `SharedNetwork`: one bridge-like network namespace, connected by one `pasta`, that many
//! short-lived containers join in turn (a build's RUN steps), so each of them pays a `setns`
//! instead of a namespace and a pasta of its own (≈50 ms each).
//!
//! The namespace is made by a thread of this process (`unshare(CLONE_NEWNET)` affects only the
//! calling thread) and held only as a descriptor, named to containers as
//! `/proc/<our pid>/fd/<n>`: nothing is mounted, and the namespace is gone once this process
//! and the containers in it are. pasta is started by a thread that lives exactly as long as
//! the `SharedNetwork` (`PR_SET_PDEATHSIG` fires when the *thread* that started pasta ends),
//! so pasta dies with the value or with the process, whichever goes first.

use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread::JoinHandle;

use crate::error::RuntimeError;
use crate::loopback::set_loopback_up;
use crate::pasta::Pasta;

/// A network namespace with outbound TCP/UDP through pasta (the `Bridge` network's set-up:
/// `10.88.0.2/16`, no route to the host's loopback) that containers join through
/// [`ContainerSpec::network_namespace`](crate::ContainerSpec::network_namespace). Dropping it
/// stops pasta; the namespace itself goes with the last container still in it.
pub struct SharedNetwork {
    netns: OwnedFd,
    stop: Option<mpsc::Sender<()>>,
    owner: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for SharedNetwork {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedNetwork")
            .field("namespace", &self.namespace_path())
            .finish_non_exhaustive()
    }
}

impl SharedNetwork {
    /// Creates the namespace and starts its pasta (pid file and log in `dir`, which must
    /// exist; `id` names it in errors). Returns once the network is configured.
    pub fn start(id: &str, dir: &Path) -> Result<SharedNetwork, RuntimeError> {
        let (ready_tx, ready_rx) = mpsc::channel();
        let (stop_tx, stop_rx) = mpsc::channel::<()>();
        let failed = |id: &str, source| RuntimeError::SharedNetwork {
            id: id.to_owned(),
            source,
        };
        let (name, dir) = (id.to_owned(), dir.to_path_buf());
        let owner = std::thread::Builder::new()
            .name("strata-network".into())
            .spawn(move || {
                let started = new_network_namespace()
                    .and_then(|netns| Ok((netns.try_clone()?, netns)))
                    .map_err(|source| failed(&name, source))
                    .and_then(|(netns, for_pasta)| {
                        Ok((netns, Pasta::attach(for_pasta, &name, &dir, &[])?))
                    });
                let pasta = match started {
                    Ok((netns, pasta)) => {
                        let _ = ready_tx.send(Ok(netns));
                        pasta
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                // Until stopped, or until the SharedNetwork is dropped without a word.
                let _ = stop_rx.recv();
                pasta.stop();
            })
            .map_err(|source| failed(id, source))?;
        let netns = match ready_rx.recv() {
            Ok(Ok(netns)) => netns,
            Ok(Err(e)) => {
                let _ = owner.join();
                return Err(e);
            }
            Err(_) => {
                let _ = owner.join();
                return Err(failed(
                    id,
                    std::io::Error::other("its thread ended before the network was ready"),
                ));
            }
        };
        Ok(SharedNetwork {
            netns,
            stop: Some(stop_tx),
            owner: Some(owner),
        })
    }

    /// The namespace as a path other processes can `setns` into while this one lives:
    /// `/proc/<pid>/fd/<n>` (no mount, so nothing to clean up).
    pub fn namespace_path(&self) -> PathBuf {
        PathBuf::from(format!(
            "/proc/{}/fd/{}",
            std::process::id(),
            self.netns.as_raw_fd()
        ))
    }
}

impl Drop for SharedNetwork {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(owner) = self.owner.take() {
            let _ = owner.join();
        }
    }
}

/// A new network namespace with `lo` up, as a descriptor. Made on a short-lived thread:
/// `unshare(CLONE_NEWNET)` moves only the calling thread, and that thread then ends.
fn new_network_namespace() -> std::io::Result<OwnedFd> {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                // SAFETY: a new network namespace changes no memory or descriptor this
                // process relies on; only this thread enters it, and it ends right after.
                unsafe { rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::NEWNET) }?;
                set_loopback_up()?;
                Ok(File::open("/proc/thread-self/ns/net")?.into())
            })
            .join()
            .unwrap_or_else(|_| Err(std::io::Error::other("the namespace thread panicked")))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_namespace_is_new_and_named_by_a_descriptor_of_ours() {
        let ns = new_network_namespace().unwrap();
        let own = std::fs::read_link("/proc/self/ns/net").unwrap();
        let made = std::fs::read_link(format!("/proc/self/fd/{}", ns.as_raw_fd())).unwrap();
        assert_ne!(own, made);
        assert!(made.to_string_lossy().starts_with("net:["), "{made:?}");
        // The calling thread never left its namespace.
        assert_eq!(std::fs::read_link("/proc/thread-self/ns/net").unwrap(), own);
    }

    #[test]
    fn a_joining_container_names_the_namespace_instead_of_a_new_one() {
        let mut spec = crate::ContainerSpec::new("j1", "/r", "/d", vec!["true".into()]);
        spec.network = crate::Network::Bridge;
        spec.network_namespace = Some("/proc/1/fd/9".into());
        let oci = crate::oci_spec(&spec, &crate::oci::tests::host()).unwrap();
        let namespaces = oci.linux().as_ref().unwrap().namespaces().clone().unwrap();
        let net: Vec<_> = namespaces
            .iter()
            .filter(|n| n.typ() == oci_spec::runtime::LinuxNamespaceType::Network)
            .collect();
        assert_eq!(net.len(), 1);
        assert_eq!(net[0].path().as_deref(), Some(Path::new("/proc/1/fd/9")));
    }
}
