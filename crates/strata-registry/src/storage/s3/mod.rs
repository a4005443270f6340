//! The S3 backend: keys are object names under `[s3] prefix` in one bucket, reached through
//! `object_store`'s S3 client (SigV4 on ring, our hyper client: `http.rs`). Several replicas
//! may serve the same bucket at once; each holds nothing but caches.
//!
//! ```text
//! <prefix>/blobs/sha256/<ab>/<hex>            blobs and manifests (by layout.rs)
//! <prefix>/repositories/<name>/_…             tags, links, referrers
//! <prefix>/uploads/<id>/state                 the registry's session document
//! <prefix>/uploads/<id>/ingest/<offset>       the ingest's record at that offset (ingest.rs)
//! <prefix>/uploads/<id>/data                  the multipart upload, completed at commit
//! <prefix>/touched/<key>                      when `key` was last referenced (`touch`)
//! <prefix>/locks/…                            reference intents, sweep flag, GC leases,
//!                                             clock probes (coordination.rs)
//! ```
//! What S3 gives and what this relies on: single-object PUT, COPY and DELETE are atomic, and
//! reads and listings see every completed write (AWS S3 since 2020, Garage, MinIO, Ceph).
//! Objects cannot be modified in place, so:
//! - `touch` writes an empty marker under `touched/` rather than rewriting a blob;
//!   [`Storage::last_used`] is the later of the object's and the marker's times. Times are
//!   the store's clock (`Last-Modified`, whole seconds), never a replica's.
//! - an ingest is a multipart upload plus a record of its parts and its tail (the bytes short
//!   of a whole part), so any replica can continue it (`ingest.rs`).
//! - the reference/sweep guards and the GC lease are objects under `locks/`: each side writes
//!   its own marker, then looks for the other's (`coordination.rs`).

mod coordination;
mod http;
mod ingest;

use std::io;
use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjectPath;
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt, PutPayload};

use super::{ByteStream, Guard, Lease, Listing, ObjectMeta, Storage, StorageError};
use crate::config::S3Config;

/// `Last-Modified` has whole seconds: a time read back may be up to this much early.
const CLOCK_GRAIN: Duration = Duration::from_secs(1);

pub struct S3Storage {
    store: Arc<AmazonS3>,
    /// `""` or `"prefix/"`.
    prefix: String,
    describe: String,
    part_size: usize,
    coordination: coordination::Coordination,
}

impl S3Storage {
    /// Builds the client; nothing is sent before the first operation (see [`Storage::check`]).
    pub fn open(config: &S3Config) -> Result<S3Storage, StorageError> {
        let mut b = AmazonS3Builder::from_env()
            .with_bucket_name(&config.bucket)
            .with_http_connector(http::Connector::new(config.ca_file.as_deref())?);
        let region = config
            .region
            .clone()
            .or_else(|| std::env::var("AWS_REGION").ok())
            .or_else(|| std::env::var("AWS_DEFAULT_REGION").ok())
            .unwrap_or_else(|| "us-east-1".to_string());
        b = b.with_region(&region);
        if let Some(endpoint) = &config.endpoint {
            b = b
                .with_endpoint(endpoint)
                .with_allow_http(endpoint.starts_with("http://"));
        }
        let path_style = config.path_style.unwrap_or(config.endpoint.is_some());
        b = b.with_virtual_hosted_style_request(!path_style);
        if let (Some(id), Some(secret)) = (&config.access_key_id, &config.secret_access_key) {
            b = b.with_access_key_id(id).with_secret_access_key(secret);
            if let Some(token) = &config.session_token {
                b = b.with_token(token);
            }
        }
        let store = b
            .build()
            .map_err(|e| StorageError::Config(format!("s3: {e}")))?;
        let prefix = config.prefix.trim_matches('/');
        let prefix = if prefix.is_empty() {
            String::new()
        } else {
            format!("{prefix}/")
        };
        let describe = format!(
            "s3 {}/{}/{prefix}",
            config
                .endpoint
                .as_deref()
                .unwrap_or("https://s3.amazonaws.com"),
            config.bucket
        );
        Ok(S3Storage {
            store: Arc::new(store),
            prefix,
            describe,
            part_size: config.part_size.0 as usize,
            coordination: coordination::Coordination::new(),
        })
    }

    fn path(&self, key: &str) -> Result<ObjectPath, StorageError> {
        super::check_key(key)?;
        Ok(ObjectPath::from(format!(
            "{}{}",
            self.prefix,
            key.trim_end_matches('/')
        )))
    }

    fn touched(&self, key: &str) -> Result<ObjectPath, StorageError> {
        super::check_key(key)?;
        Ok(ObjectPath::from(format!(
            "{}touched/{}",
            self.prefix,
            key.trim_end_matches('/')
        )))
    }

    /// Every object under `prefix` (a key prefix ending with `/`), recursively.
    async fn list_all(&self, prefix: &str) -> Result<Vec<object_store::ObjectMeta>, StorageError> {
        let path = self.path(prefix)?;
        self.store
            .list(Some(&path))
            .try_collect()
            .await
            .map_err(|e| s3_error(prefix, e))
    }

    /// Deletes every object under `prefix` (a key prefix ending with `/`).
    async fn delete_under(&self, prefix: &str) -> Result<(), StorageError> {
        let objects = self.list_all(prefix).await?;
        let paths = objects.into_iter().map(|m| m.location).collect();
        self.delete_paths(prefix, paths).await
    }

    async fn delete_paths(&self, what: &str, paths: Vec<ObjectPath>) -> Result<(), StorageError> {
        let stream = futures_util::stream::iter(paths.into_iter().map(Ok)).boxed();
        let mut results = self.store.delete_stream(stream);
        while let Some(r) = results.next().await {
            match r {
                Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(s3_error(what, e)),
            }
        }
        Ok(())
    }

    async fn head_path(&self, path: &ObjectPath) -> Result<Option<ObjectMeta>, StorageError> {
        match self.store.head(path).await {
            Ok(m) => Ok(Some(meta_of(&m))),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(s3_error(path.as_ref(), e)),
        }
    }
}

fn meta_of(m: &object_store::ObjectMeta) -> ObjectMeta {
    ObjectMeta {
        size: m.size,
        modified: SystemTime::from(m.last_modified),
    }
}

/// A failure of the store as the trait's error, naming the key.
fn s3_error(key: &str, e: object_store::Error) -> StorageError {
    StorageError::Io {
        key: key.to_string(),
        source: io::Error::other(e.to_string()),
    }
}

/// The last component of an object path.
fn last_component(p: &ObjectPath) -> String {
    p.filename().unwrap_or_default().to_string()
}

#[async_trait::async_trait]
impl Storage for S3Storage {
    fn describe(&self) -> String {
        self.describe.clone()
    }

    async fn check(&self) -> Result<(), StorageError> {
        // A listing proves the endpoint, the bucket and the credentials at once.
        let path = self.path("locks/")?;
        self.store
            .list_with_delimiter(Some(&path))
            .await
            .map(|_| ())
            .map_err(|e| s3_error(&self.describe, e))
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>, StorageError> {
        let path = self.path(key)?;
        match self.store.get(&path).await {
            Ok(r) => Ok(Some(r.bytes().await.map_err(|e| s3_error(key, e))?)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(s3_error(key, e)),
        }
    }

    async fn put(&self, key: &str, value: Bytes) -> Result<(), StorageError> {
        let path = self.path(key)?;
        self.store
            .put(&path, PutPayload::from(value))
            .await
            .map(|_| ())
            .map_err(|e| s3_error(key, e))
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectMeta>, StorageError> {
        let path = self.path(key)?;
        self.head_path(&path).await
    }

    async fn delete(&self, key: &str) -> Result<bool, StorageError> {
        let path = self.path(key)?;
        // S3 answers a DELETE of a missing key with success: ask first.
        if self.head_path(&path).await?.is_none() {
            return Ok(false);
        }
        let touched = self.touched(key)?;
        self.delete_paths(key, vec![path, touched]).await?;
        Ok(true)
    }

    async fn delete_prefix(&self, prefix: &str) -> Result<(), StorageError> {
        self.delete_under(prefix).await?;
        // and the `touch` markers of what was there
        self.delete_under(&format!("touched/{prefix}")).await
    }

    async fn list(&self, prefix: &str) -> Result<Listing, StorageError> {
        let path = if prefix.is_empty() {
            None
        } else {
            Some(self.path(prefix)?)
        };
        let path = match (&path, self.prefix.is_empty()) {
            (Some(p), _) => Some(p.clone()),
            (None, true) => None,
            (None, false) => Some(ObjectPath::from(self.prefix.trim_end_matches('/'))),
        };
        let r = self
            .store
            .list_with_delimiter(path.as_ref())
            .await
            .map_err(|e| s3_error(prefix, e))?;
        let mut listing = Listing {
            objects: r
                .objects
                .iter()
                .map(|m| last_component(&m.location))
                .collect(),
            prefixes: r.common_prefixes.iter().map(last_component).collect(),
        };
        listing.objects.sort();
        listing.prefixes.sort();
        Ok(listing)
    }

    async fn touch(&self, key: &str) -> Result<bool, StorageError> {
        let path = self.path(key)?;
        if self.head_path(&path).await?.is_none() {
            return Ok(false);
        }
        let touched = self.touched(key)?;
        self.store
            .put(&touched, PutPayload::default())
            .await
            .map_err(|e| s3_error(key, e))?;
        Ok(true)
    }

    async fn last_used(&self, key: &str) -> Result<Option<SystemTime>, StorageError> {
        let path = self.path(key)?;
        let touched = self.touched(key)?;
        let (object, marker) = tokio::join!(self.head_path(&path), self.head_path(&touched));
        let Some(object) = object? else {
            return Ok(None);
        };
        let last = match marker? {
            Some(m) => m.modified.max(object.modified),
            None => object.modified,
        };
        Ok(Some(last + CLOCK_GRAIN))
    }

    async fn now(&self) -> Result<SystemTime, StorageError> {
        self.coordination.store_clock(self).await
    }

    async fn read(
        &self,
        key: &str,
        range: Option<Range<u64>>,
    ) -> Result<Option<(ObjectMeta, ByteStream)>, StorageError> {
        let path = self.path(key)?;
        let opts = GetOptions {
            range: range.clone().map(GetRange::Bounded),
            ..GetOptions::default()
        };
        // An empty range is not something S3 can express; the caller only needs the size.
        if range.as_ref().is_some_and(|r| r.is_empty()) {
            return Ok(self.head_path(&path).await?.map(|m| {
                let empty: ByteStream = Box::pin(futures_util::stream::empty());
                (m, empty)
            }));
        }
        match self.store.get_opts(&path, opts).await {
            Ok(r) => {
                let meta = meta_of(&r.meta);
                let key = key.to_string();
                let stream = r
                    .into_stream()
                    .map_err(move |e| io::Error::other(format!("reading {key}: {e}")));
                Ok(Some((meta, Box::pin(stream))))
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(s3_error(key, e)),
        }
    }

    async fn ingest_append(
        &self,
        id: &str,
        offset: u64,
        data: &mut ByteStream,
        limit: u64,
    ) -> Result<u64, StorageError> {
        ingest::append(self, id, offset, data, limit).await
    }

    async fn ingest_read(&self, id: &str, len: u64) -> Result<ByteStream, StorageError> {
        ingest::read(self, id, len).await
    }

    async fn ingest_commit(&self, id: &str, len: u64, key: &str) -> Result<(), StorageError> {
        ingest::commit(self, id, len, key).await
    }

    async fn ingest_abort(&self, id: &str) -> Result<(), StorageError> {
        ingest::abort(self, id).await
    }

    async fn ingest_lock(&self, id: &str) -> Result<Option<Guard>, StorageError> {
        ingest::valid_id(id)?;
        self.coordination.upload_lock(self, id).await
    }

    async fn ingest_list(&self) -> Result<Vec<(String, SystemTime)>, StorageError> {
        let mut last: std::collections::BTreeMap<String, SystemTime> = Default::default();
        for m in self.list_all("uploads/").await? {
            let rel = m
                .location
                .as_ref()
                .strip_prefix(&self.prefix)
                .and_then(|r| r.strip_prefix("uploads/"))
                .unwrap_or("");
            let Some((id, _)) = rel.split_once('/') else {
                continue;
            };
            let t = SystemTime::from(m.last_modified);
            let e = last.entry(id.to_string()).or_insert(t);
            *e = (*e).max(t);
        }
        Ok(last.into_iter().collect())
    }

    async fn reference_guard(&self) -> Result<Guard, StorageError> {
        self.coordination.reference_guard(self).await
    }

    async fn sweep_guard(&self) -> Result<Guard, StorageError> {
        self.coordination.sweep_guard(self).await
    }

    async fn gc_lease(&self, ttl: Duration) -> Result<Option<Lease>, StorageError> {
        self.coordination.gc_lease(self, ttl).await
    }

    async fn close(&self) {
        self.coordination.finish_releases().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_s3::TestS3;

    fn open(server: &TestS3, prefix: &str) -> S3Storage {
        let config: crate::Config = crate::Config::parse(&server.config("test", prefix)).unwrap();
        let mut s3 = config.s3.unwrap();
        s3.part_size = crate::ByteSize(5 << 20);
        S3Storage::open(&s3).unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn conformance() {
        let dir = tempfile::tempdir().unwrap();
        let server = TestS3::start(dir.path(), "test");
        let storage = open(&server, "reg");
        storage.check().await.unwrap();
        super::super::conformance::run(&storage).await;
        // a second replica on the same bucket sees the same objects and obeys the same locks
        let other = open(&server, "reg");
        super::super::conformance::two_replicas(&storage, &other).await;
        storage.close().await;
        other.close().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn deleting_a_prefix_drops_its_touch_markers() {
        let dir = tempfile::tempdir().unwrap();
        let server = TestS3::start(dir.path(), "test");
        let s = open(&server, "");
        s.put("repositories/z/_manifests/l", Bytes::from_static(b"x"))
            .await
            .unwrap();
        assert!(s.touch("repositories/z/_manifests/l").await.unwrap());
        assert_eq!(
            s.list("touched/repositories/").await.unwrap().prefixes,
            ["z"]
        );
        s.delete_prefix("repositories/z/").await.unwrap();
        assert_eq!(s.list("touched/").await.unwrap(), Listing::default());
        assert_eq!(s.list("repositories/").await.unwrap(), Listing::default());
    }

    /// A self-signed certificate for 127.0.0.1 (openssl, as the registry's TLS tests).
    fn self_signed(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
        let (cert, key) = (dir.join("s3.crt"), dir.join("s3.key"));
        let status = std::process::Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
            ])
            .args(["-nodes", "-days", "2", "-subj", "/CN=127.0.0.1"])
            .args(["-addext", "subjectAltName=IP:127.0.0.1"])
            .args(["-addext", "basicConstraints=critical,CA:FALSE"])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .stderr(std::process::Stdio::null())
            .status()
            .expect("openssl");
        assert!(status.success());
        (cert, key)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_endpoint_with_a_private_ca_is_trusted_only_with_ca_file() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = self_signed(dir.path());
        let server = TestS3::start_tls(&dir.path().join("s3"), "test", &cert, &key);
        assert!(server.endpoint().starts_with("https://"));
        let text = server.config("test", "p");
        // not trusted by the system's roots
        let plain = crate::Config::parse(&text).unwrap().s3.unwrap();
        let err = S3Storage::open(&plain).unwrap().check().await.unwrap_err();
        assert!(matches!(err, StorageError::Io { .. }), "{err}");
        // trusted with the CA file: the whole conformance of an ingest works over TLS
        let with_ca = format!(
            "{text}ca_file = \"{}\"\npart_size = \"5MiB\"\n",
            cert.display()
        );
        let s = S3Storage::open(&crate::Config::parse(&with_ca).unwrap().s3.unwrap()).unwrap();
        s.check().await.unwrap();
        let mut body: ByteStream = Box::pin(futures_util::stream::iter(
            [Bytes::from(vec![7u8; 6 << 20])].into_iter().map(Ok),
        ));
        let n = s.ingest_append("t1", 0, &mut body, u64::MAX).await.unwrap();
        s.ingest_commit("t1", n, "blobs/sha256/t1/t1")
            .await
            .unwrap();
        assert_eq!(
            s.head("blobs/sha256/t1/t1").await.unwrap().unwrap().size,
            6 << 20
        );
        // a CA file without a certificate is a configuration error, said at once
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "not a certificate").unwrap();
        let bad = format!("{text}ca_file = \"{}\"\n", junk.display());
        let err = S3Storage::open(&crate::Config::parse(&bad).unwrap().s3.unwrap())
            .err()
            .unwrap();
        assert!(err.to_string().contains("ca_file"), "{err}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_wrong_secret_fails_the_check() {
        let dir = tempfile::tempdir().unwrap();
        let server = TestS3::start(dir.path(), "test");
        let text = server
            .config("test", "")
            .replace(crate::test_s3::SECRET_KEY, "wrong");
        let config = crate::Config::parse(&text).unwrap();
        let storage = S3Storage::open(&config.s3.unwrap()).unwrap();
        assert!(storage.check().await.is_err());
    }
}
