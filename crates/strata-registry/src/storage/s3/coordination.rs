//! Coordination of replicas through the bucket, without locks S3 does not have.
//!
//! **Reference and sweep guards** (see `gc.rs` for why they exist). Each side writes its own
//! marker, then looks for the other's:
//! - a replica referencing blobs keeps an *intent* `locks/references/<replica>-<n>` while any
//!   of its reference operations runs (written once, shared by concurrent operations,
//!   rewritten every [`REFRESH`], removed when the last one ends), and each operation, after
//!   the intent is stored, reads `locks/sweep`: when a sweep is on, it withdraws and waits;
//! - the collector writes `locks/sweep` (rewritten every [`REFRESH`]), then lists the intents
//!   and waits until none is live.
//!
//! With read-after-write consistency at least one side sees the other: if the operation's
//! read missed the flag, the flag was written after that read, so after the intent, and the
//! collector's listing finds the intent. So no blob is swept while a reference to it is being
//! written. A marker not rewritten within [`TTL`] belongs to a dead replica and is ignored.
//! Within a process, a `RwLock` gives the same exclusion without any request.
//!
//! **GC lease**: `locks/gc/<replica>-<nonce>`, written, then the listing of `locks/gc/` must
//! hold no other live lease, else it is withdrawn (both may withdraw; never both win). It is
//! rewritten while held, so a dead collector blocks others for at most its TTL.
//!
//! **Upload session lock**: the same scheme under `uploads/<id>/lock/`, held by the request
//! that appends to or commits a session. Without it, two requests on one session through two
//! replicas could leave the session's hash state from one and its data from the other, and a
//! blob would be committed under a digest its bytes do not have.
//!
//! **Clock**: times are compared in the store's clock: [`Coordination::store_clock`] writes a
//! probe and reads its `Last-Modified` back.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use object_store::path::Path as ObjectPath;
use object_store::ObjectStoreExt;
use tokio::sync::RwLock;
use tokio::task::JoinHandle;

use super::{s3_error, S3Storage};
use crate::storage::{Guard, Lease, Storage, StorageError};

/// A marker not rewritten for this long belongs to a process that is gone.
const TTL: Duration = Duration::from_secs(60);
/// How often a held marker is rewritten.
const REFRESH: Duration = Duration::from_secs(15);
/// How often a waiting side looks again.
const POLL: Duration = Duration::from_millis(50);
/// A collector gives up waiting for references in flight after this long.
const SWEEP_WAIT: Duration = Duration::from_secs(300);
/// After an operation saw a sweep, new operations of this process wait this long before they
/// write an intent again (so a busy replica cannot keep its intent alive forever).
const BACKOFF: Duration = Duration::from_millis(200);

/// An upload session's lock: a holder killed mid-request blocks the session this long.
const UPLOAD_TTL: Duration = Duration::from_secs(30);
const UPLOAD_REFRESH: Duration = Duration::from_secs(10);
/// A request waits this long for another one on the same session before giving up.
const UPLOAD_WAIT: Duration = Duration::from_secs(2);

const INTENTS: &str = "locks/references/";
const SWEEP: &str = "locks/sweep";
const LEASES: &str = "locks/gc/";

pub(super) struct Coordination {
    replica: String,
    local: Arc<RwLock<()>>,
    intent: Arc<Mutex<Intent>>,
    /// Serializes the writing of a new intent.
    creating: tokio::sync::Mutex<()>,
    backoff_until: Mutex<Option<Instant>>,
    /// Deletions started by dropped guards and leases; `close` waits for them.
    releases: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

#[derive(Default)]
struct Intent {
    holders: usize,
    generation: u64,
    key: Option<ObjectPath>,
    refresher: Option<JoinHandle<()>>,
}

fn random_hex(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    let _ = getrandom::fill(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Rewrites `path` every `every` until aborted.
fn refresher(
    store: Arc<object_store::aws::AmazonS3>,
    path: ObjectPath,
    body: Bytes,
    every: Duration,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        loop {
            tick.tick().await;
            if let Err(e) = store.put(&path, body.clone().into()).await {
                tracing::warn!(key = %path, error = %e, "refreshing a coordination marker failed");
            }
        }
    })
}

/// Holds one share of the replica's intent; the last one out removes it.
struct IntentShare {
    intent: Arc<Mutex<Intent>>,
    store: Arc<object_store::aws::AmazonS3>,
    releases: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Drop for IntentShare {
    fn drop(&mut self) {
        let mut i = self.intent.lock().unwrap_or_else(|p| p.into_inner());
        i.holders = i.holders.saturating_sub(1);
        if i.holders > 0 {
            return;
        }
        if let Some(r) = i.refresher.take() {
            r.abort();
        }
        if let Some(key) = i.key.take() {
            spawn_delete(&self.store, key, &self.releases);
        }
    }
}

fn spawn_delete(
    store: &Arc<object_store::aws::AmazonS3>,
    key: ObjectPath,
    releases: &Arc<Mutex<Vec<JoinHandle<()>>>>,
) {
    let Ok(handle) = tokio::runtime::Handle::try_current() else {
        return; // no runtime left: the marker expires by itself
    };
    let store = store.clone();
    let task = handle.spawn(async move {
        if let Err(e) = store.delete(&key).await {
            tracing::warn!(key = %key, error = %e, "removing a coordination marker failed");
        }
    });
    let mut r = releases.lock().unwrap_or_else(|p| p.into_inner());
    r.retain(|t| !t.is_finished());
    r.push(task);
}

/// A held marker: stops its refresher and removes it on drop.
struct Marker {
    path: ObjectPath,
    refresher: JoinHandle<()>,
    store: Arc<object_store::aws::AmazonS3>,
    releases: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Drop for Marker {
    fn drop(&mut self) {
        self.refresher.abort();
        spawn_delete(&self.store, self.path.clone(), &self.releases);
    }
}

impl Coordination {
    pub(super) fn new() -> Coordination {
        Coordination {
            replica: random_hex(8),
            local: Arc::new(RwLock::new(())),
            intent: Arc::new(Mutex::new(Intent::default())),
            creating: tokio::sync::Mutex::new(()),
            backoff_until: Mutex::new(None),
            releases: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// Waits for markers removed by dropped guards and leases.
    pub(super) async fn finish_releases(&self) {
        let tasks: Vec<JoinHandle<()>> =
            std::mem::take(&mut *self.releases.lock().unwrap_or_else(|p| p.into_inner()));
        for t in tasks {
            let _ = t.await;
        }
    }

    /// The store's current time (a lower bound: `Last-Modified` has whole seconds).
    pub(super) async fn store_clock(&self, s: &S3Storage) -> Result<SystemTime, StorageError> {
        let key = format!("locks/clock/{}", self.replica);
        s.put(&key, Bytes::new()).await?;
        let meta = s.head(&key).await?;
        meta.map(|m| m.modified)
            .ok_or_else(|| StorageError::io(key, std::io::Error::other("the clock probe vanished")))
    }

    async fn join_intent(&self, s: &S3Storage) -> Result<IntentShare, StorageError> {
        let _creating = self.creating.lock().await;
        let share = IntentShare {
            intent: self.intent.clone(),
            store: s.store.clone(),
            releases: self.releases.clone(),
        };
        {
            let mut i = self.intent.lock().unwrap_or_else(|p| p.into_inner());
            if i.holders > 0 {
                i.holders += 1;
                return Ok(share);
            }
        }
        let generation = {
            let mut i = self.intent.lock().unwrap_or_else(|p| p.into_inner());
            i.generation += 1;
            i.generation
        };
        let key = format!("{INTENTS}{}-{generation}", self.replica);
        let path = s.path(&key)?;
        let body = Bytes::from(self.replica.clone());
        s.store
            .put(&path, body.clone().into())
            .await
            .map_err(|e| s3_error(&key, e))?;
        let mut i = self.intent.lock().unwrap_or_else(|p| p.into_inner());
        i.holders += 1;
        i.key = Some(path.clone());
        i.refresher = Some(refresher(s.store.clone(), path, body, REFRESH));
        Ok(share)
    }

    /// Whether a collector's sweep flag is up and fresh.
    async fn sweep_on(&self, s: &S3Storage) -> Result<bool, StorageError> {
        let path = s.path(SWEEP)?;
        match s.store.head(&path).await {
            Ok(m) => {
                let written = SystemTime::from(m.last_modified);
                // Compared with this replica's clock: clocks a few seconds apart only shift
                // when a dead collector's flag stops counting.
                Ok(written + TTL + super::CLOCK_GRAIN > SystemTime::now())
            }
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(s3_error(SWEEP, e)),
        }
    }

    pub(super) async fn reference_guard(&self, s: &S3Storage) -> Result<Guard, StorageError> {
        let local = self.local.clone().read_owned().await;
        loop {
            let wait = {
                let b = self.backoff_until.lock().unwrap_or_else(|p| p.into_inner());
                b.and_then(|until| until.checked_duration_since(Instant::now()))
            };
            if let Some(wait) = wait {
                tokio::time::sleep(wait).await;
                continue;
            }
            let share = self.join_intent(s).await?;
            if !self.sweep_on(s).await? {
                return Ok(Guard::new((local, share)));
            }
            drop(share);
            *self.backoff_until.lock().unwrap_or_else(|p| p.into_inner()) =
                Some(Instant::now() + BACKOFF);
        }
    }

    pub(super) async fn sweep_guard(&self, s: &S3Storage) -> Result<Guard, StorageError> {
        let local = self.local.clone().write_owned().await;
        let path = s.path(SWEEP)?;
        let body = Bytes::from(self.replica.clone());
        s.store
            .put(&path, body.clone().into())
            .await
            .map_err(|e| s3_error(SWEEP, e))?;
        let marker = Marker {
            refresher: refresher(s.store.clone(), path.clone(), body, REFRESH),
            path: path.clone(),
            store: s.store.clone(),
            releases: self.releases.clone(),
        };
        let started = Instant::now();
        loop {
            let now = match s.store.head(&path).await {
                Ok(m) => SystemTime::from(m.last_modified),
                Err(e) => return Err(s3_error(SWEEP, e)),
            };
            let live = s
                .list_all(INTENTS)
                .await?
                .into_iter()
                .filter(|m| SystemTime::from(m.last_modified) + TTL + super::CLOCK_GRAIN > now)
                .count();
            if live == 0 {
                return Ok(Guard::new((local, marker)));
            }
            if started.elapsed() > SWEEP_WAIT {
                return Err(StorageError::io(
                    SWEEP,
                    std::io::Error::other(format!(
                        "{live} reference operations of other replicas still in flight after {SWEEP_WAIT:?}"
                    )),
                ));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    pub(super) async fn gc_lease(
        &self,
        s: &S3Storage,
        ttl: Duration,
    ) -> Result<Option<Lease>, StorageError> {
        // A lease is rewritten every REFRESH while held; the TTL bounds a dead holder.
        let held = self
            .exclusive(s, LEASES, ttl.max(REFRESH * 2), REFRESH)
            .await?;
        Ok(held.map(Lease::new))
    }

    /// Upload session `id` for one request at a time, across replicas; `None` when another
    /// request holds it for longer than [`UPLOAD_WAIT`].
    pub(super) async fn upload_lock(
        &self,
        s: &S3Storage,
        id: &str,
    ) -> Result<Option<Guard>, StorageError> {
        let prefix = format!("uploads/{id}/lock/");
        let started = Instant::now();
        loop {
            if let Some(m) = self
                .exclusive(s, &prefix, UPLOAD_TTL, UPLOAD_REFRESH)
                .await?
            {
                return Ok(Some(Guard::new(m)));
            }
            if started.elapsed() > UPLOAD_WAIT {
                return Ok(None);
            }
            // Two contenders may both have withdrawn: try again at different times.
            let mut b = [0u8; 1];
            let _ = getrandom::fill(&mut b);
            tokio::time::sleep(Duration::from_millis(40 + u64::from(b[0]))).await;
        }
    }

    /// Writes a marker of its own under `prefix`, then lists the prefix: when another marker
    /// there is live (rewritten within `ttl`), withdraws (both may withdraw; never both hold).
    /// A held marker is rewritten every `refresh`.
    async fn exclusive(
        &self,
        s: &S3Storage,
        prefix: &str,
        ttl: Duration,
        refresh: Duration,
    ) -> Result<Option<Marker>, StorageError> {
        let name = format!("{}-{}", self.replica, random_hex(4));
        let key = format!("{prefix}{name}");
        let path = s.path(&key)?;
        let body = Bytes::from(name.clone());
        s.store
            .put(&path, body.clone().into())
            .await
            .map_err(|e| s3_error(&key, e))?;
        let marker = Marker {
            refresher: refresher(s.store.clone(), path.clone(), body, refresh),
            path: path.clone(),
            store: s.store.clone(),
            releases: self.releases.clone(),
        };
        let markers = s.list_all(prefix).await?;
        let mine = markers
            .iter()
            .find(|m| m.location == path)
            .map(|m| SystemTime::from(m.last_modified));
        let Some(mine) = mine else {
            return Err(StorageError::io(
                key,
                std::io::Error::other(
                    "a marker just written is not listed: the store is not consistent",
                ),
            ));
        };
        let other = markers
            .iter()
            .any(|m| m.location != path && SystemTime::from(m.last_modified) + ttl > mine);
        if other {
            drop(marker);
            return Ok(None);
        }
        Ok(Some(marker))
    }
}
