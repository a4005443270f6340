//! The behaviour every [`Storage`] backend must show, run against each one (the filesystem
//! and S3 on an in-process server), plus what two replicas on one shared store must show.

use std::io;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;

use super::{ByteStream, Storage, StorageError};

fn chunks(parts: &[&'static [u8]]) -> ByteStream {
    let items: Vec<io::Result<Bytes>> = parts.iter().map(|p| Ok(Bytes::from_static(p))).collect();
    Box::pin(futures_util::stream::iter(items))
}

async fn collect(mut s: ByteStream) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(c) = s.next().await {
        out.extend_from_slice(&c.unwrap());
    }
    out
}

pub(crate) async fn run(s: &dyn Storage) {
    documents(s).await;
    listing_and_prefix_delete(s).await;
    reading_ranges(s).await;
    ingests(s).await;
    coordination(s).await;
}

async fn documents(s: &dyn Storage) {
    assert_eq!(s.get("repositories/a/_tags/x").await.unwrap(), None);
    assert_eq!(s.head("repositories/a/_tags/x").await.unwrap(), None);
    s.put("repositories/a/_tags/x", Bytes::from_static(b"one"))
        .await
        .unwrap();
    s.put("repositories/a/_tags/x", Bytes::from_static(b"two"))
        .await
        .unwrap();
    assert_eq!(
        s.get("repositories/a/_tags/x").await.unwrap().as_deref(),
        Some(&b"two"[..])
    );
    let meta = s.head("repositories/a/_tags/x").await.unwrap().unwrap();
    assert_eq!(meta.size, 3);
    // touch moves the last use forward (stores may keep whole seconds); the store's clock is
    // never ahead of a use that happens after it is read
    let before = s
        .last_used("repositories/a/_tags/x")
        .await
        .unwrap()
        .unwrap();
    assert!(before >= meta.modified);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let now = s.now().await.unwrap();
    assert!(s.touch("repositories/a/_tags/x").await.unwrap());
    let after = s
        .last_used("repositories/a/_tags/x")
        .await
        .unwrap()
        .unwrap();
    assert!(
        after > before && after >= now,
        "{before:?} {now:?} {after:?}"
    );
    assert_eq!(
        s.last_used("repositories/a/_tags/none").await.unwrap(),
        None
    );
    assert!(!s.touch("repositories/a/_tags/none").await.unwrap());
    assert!(s.delete("repositories/a/_tags/x").await.unwrap());
    assert!(!s.delete("repositories/a/_tags/x").await.unwrap());
    assert!(matches!(
        s.get("../escape").await,
        Err(StorageError::InvalidKey(_))
    ));
}

async fn listing_and_prefix_delete(s: &dyn Storage) {
    for key in [
        "repositories/l/b/_tags/t2",
        "repositories/l/b/_tags/t1",
        "repositories/l/b/c/_tags/t",
        "repositories/l/a/_tags/t",
    ] {
        s.put(key, Bytes::from_static(b"x")).await.unwrap();
    }
    let top = s.list("repositories/l/").await.unwrap();
    assert_eq!(top.prefixes, ["a", "b"]);
    assert!(top.objects.is_empty());
    let tags = s.list("repositories/l/b/_tags/").await.unwrap();
    assert_eq!(tags.objects, ["t1", "t2"]);
    assert_eq!(
        s.list("repositories/none/").await.unwrap(),
        Default::default()
    );
    s.delete_prefix("repositories/l/b/").await.unwrap();
    assert_eq!(s.list("repositories/l/").await.unwrap().prefixes, ["a"]);
    assert_eq!(s.get("repositories/l/b/c/_tags/t").await.unwrap(), None);
    s.delete_prefix("repositories/l/nothing/").await.unwrap();
}

async fn reading_ranges(s: &dyn Storage) {
    // Bigger than one part of the S3 backend in the tests (5 MiB), so it is committed through
    // a multipart upload and a copy.
    let big: Vec<u8> = (0..6_000_000u32).map(|i| (i % 251) as u8).collect();
    let mut body: ByteStream = Box::pin(futures_util::stream::once({
        let b = Bytes::from(big.clone());
        async move { Ok(b) }
    }));
    s.ingest_append("r1", 0, &mut body, u64::MAX).await.unwrap();
    s.ingest_commit("r1", big.len() as u64, "blobs/sha256/bi/big")
        .await
        .unwrap();
    let (meta, stream) = s.read("blobs/sha256/bi/big", None).await.unwrap().unwrap();
    assert_eq!(meta.size, big.len() as u64);
    assert_eq!(collect(stream).await, big);
    let (_, stream) = s
        .read("blobs/sha256/bi/big", Some(100..300_100))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(collect(stream).await, &big[100..300_100]);
    let (_, stream) = s
        .read("blobs/sha256/bi/big", Some(5..10))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(collect(stream).await, &big[5..10]);
    let (_, stream) = s
        .read("blobs/sha256/bi/big", Some(5_999_990..6_000_000))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(collect(stream).await, &big[5_999_990..]);
    assert!(s
        .read("blobs/sha256/no/none", None)
        .await
        .unwrap()
        .is_none());
    // chunks smaller and larger than a part, committed by another call
    let mut offset = 0;
    for piece in big.chunks(1_500_000) {
        let mut body = chunks_owned(vec![Bytes::copy_from_slice(piece)]);
        offset = s
            .ingest_append("r2", offset, &mut body, u64::MAX)
            .await
            .unwrap();
    }
    assert_eq!(offset, big.len() as u64);
    s.ingest_commit("r2", offset, "blobs/sha256/bi/big2")
        .await
        .unwrap();
    let (meta, stream) = s.read("blobs/sha256/bi/big2", None).await.unwrap().unwrap();
    assert_eq!(meta.size, big.len() as u64);
    assert_eq!(collect(stream).await, big);
    assert!(s
        .ingest_list()
        .await
        .unwrap()
        .iter()
        .all(|(id, _)| id != "r2"));
}

fn chunks_owned(parts: Vec<Bytes>) -> ByteStream {
    Box::pin(futures_util::stream::iter(parts.into_iter().map(Ok)))
}

async fn ingests(s: &dyn Storage) {
    // chunks append in order; a failed chunk leaves the ingest as it was
    assert_eq!(
        s.ingest_append("i1", 0, &mut chunks(&[b"ab", b"cd"]), 100)
            .await
            .unwrap(),
        4
    );
    let failing: ByteStream = Box::pin(futures_util::stream::iter(vec![
        Ok(Bytes::from_static(b"zz")),
        Err(io::Error::other("client went away")),
    ]));
    let mut failing = failing;
    assert!(matches!(
        s.ingest_append("i1", 4, &mut failing, 100).await,
        Err(StorageError::Body(_))
    ));
    assert!(matches!(
        s.ingest_append("i1", 4, &mut chunks(&[b"0123456789"]), 8)
            .await,
        Err(StorageError::IngestTooLarge { .. })
    ));
    assert_eq!(
        s.ingest_append("i1", 4, &mut chunks(&[b"ef"]), 100)
            .await
            .unwrap(),
        6
    );
    assert_eq!(
        collect(s.ingest_read("i1", 6).await.unwrap()).await,
        b"abcdef"
    );
    let ids: Vec<String> = s
        .ingest_list()
        .await
        .unwrap()
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert!(ids.contains(&"i1".to_string()));
    // commit publishes exactly the recorded length and removes the ingest
    s.ingest_commit("i1", 6, "blobs/sha256/ab/abcdef")
        .await
        .unwrap();
    assert_eq!(
        s.get("blobs/sha256/ab/abcdef").await.unwrap().as_deref(),
        Some(&b"abcdef"[..])
    );
    assert!(!s
        .ingest_list()
        .await
        .unwrap()
        .iter()
        .any(|(id, _)| id == "i1"));
    // committing the same content again keeps the existing object
    s.ingest_append("i2", 0, &mut chunks(&[b"abcdef"]), 100)
        .await
        .unwrap();
    s.ingest_commit("i2", 6, "blobs/sha256/ab/abcdef")
        .await
        .unwrap();
    assert_eq!(
        s.get("blobs/sha256/ab/abcdef").await.unwrap().as_deref(),
        Some(&b"abcdef"[..])
    );
    // an empty blob needs no append
    s.ingest_commit("i3", 0, "blobs/sha256/e3/empty")
        .await
        .unwrap();
    assert_eq!(
        s.get("blobs/sha256/e3/empty").await.unwrap().as_deref(),
        Some(&b""[..])
    );
    // abort removes the ingest and its documents
    s.ingest_append("i4", 0, &mut chunks(&[b"x"]), 100)
        .await
        .unwrap();
    s.put("uploads/i4/state", Bytes::from_static(b"{}"))
        .await
        .unwrap();
    s.ingest_abort("i4").await.unwrap();
    assert_eq!(s.get("uploads/i4/state").await.unwrap(), None);
    s.ingest_abort("i4").await.unwrap();
}

async fn coordination(s: &dyn Storage) {
    let lease = s.gc_lease(Duration::from_secs(60)).await.unwrap();
    assert!(lease.is_some());
    assert!(s.gc_lease(Duration::from_secs(60)).await.unwrap().is_none());
    drop(lease);
    s.close().await;
    assert!(s.gc_lease(Duration::from_secs(60)).await.unwrap().is_some());
    s.close().await;
    // shared references run together; a sweep waits for them
    let a = s.reference_guard().await.unwrap();
    let b = s.reference_guard().await.unwrap();
    let sweep = tokio::time::timeout(Duration::from_millis(100), s.sweep_guard()).await;
    assert!(sweep.is_err(), "a sweep must wait for references in flight");
    drop((a, b));
    let sweep = s.sweep_guard().await.unwrap();
    let r = tokio::time::timeout(Duration::from_millis(100), s.reference_guard()).await;
    assert!(r.is_err(), "a reference must wait for the sweep batch");
    drop(sweep);
    s.close().await;
    s.reference_guard().await.unwrap();
    s.close().await;
}

/// Two replicas `a` and `b` on one shared store (the S3 backend).
pub(crate) async fn two_replicas(a: &dyn Storage, b: &dyn Storage) {
    // a write through one is read through the other at once
    a.put("repositories/r/_tags/t", Bytes::from_static(b"one"))
        .await
        .unwrap();
    assert_eq!(
        b.get("repositories/r/_tags/t").await.unwrap().as_deref(),
        Some(&b"one"[..])
    );
    b.put("repositories/r/_tags/t", Bytes::from_static(b"two"))
        .await
        .unwrap();
    assert_eq!(
        a.get("repositories/r/_tags/t").await.unwrap().as_deref(),
        Some(&b"two"[..])
    );
    // an ingest started on one continues and commits on the other, across part boundaries
    let data: Vec<u8> = (0..7_000_000u32).map(|i| (i % 253) as u8).collect();
    let n = a
        .ingest_append(
            "x1",
            0,
            &mut chunks_owned(vec![Bytes::copy_from_slice(&data[..3_000_000])]),
            u64::MAX,
        )
        .await
        .unwrap();
    let n = b
        .ingest_append(
            "x1",
            n,
            &mut chunks_owned(vec![Bytes::copy_from_slice(&data[3_000_000..6_500_000])]),
            u64::MAX,
        )
        .await
        .unwrap();
    // a replica that died before recording its append: the session goes on from the old offset
    let _lost = a
        .ingest_append(
            "x1",
            n,
            &mut chunks_owned(vec![Bytes::from_static(b"lost")]),
            u64::MAX,
        )
        .await
        .unwrap();
    let n = a
        .ingest_append(
            "x1",
            n,
            &mut chunks_owned(vec![Bytes::copy_from_slice(&data[6_500_000..])]),
            u64::MAX,
        )
        .await
        .unwrap();
    assert_eq!(n, data.len() as u64);
    assert!(matches!(
        b.ingest_append("x1", n + 10, &mut chunks(&[b"x"]), u64::MAX)
            .await,
        Err(StorageError::IngestLost { .. })
    ));
    b.ingest_commit("x1", n, "blobs/sha256/x1/x1")
        .await
        .unwrap();
    let (_, stream) = a.read("blobs/sha256/x1/x1", None).await.unwrap().unwrap();
    assert_eq!(collect(stream).await, data);
    // one request at a time on an upload session across replicas
    let held = a.ingest_lock("x2").await.unwrap();
    assert!(held.is_some());
    assert!(b.ingest_lock("x2").await.unwrap().is_none());
    drop(held);
    a.close().await;
    let held = b.ingest_lock("x2").await.unwrap();
    assert!(held.is_some());
    drop(held);
    b.close().await;
    b.ingest_abort("x2").await.unwrap();
    // one collector at a time across replicas
    let lease = a.gc_lease(Duration::from_secs(60)).await.unwrap();
    assert!(lease.is_some());
    assert!(b.gc_lease(Duration::from_secs(60)).await.unwrap().is_none());
    drop(lease);
    a.close().await;
    let lease = b.gc_lease(Duration::from_secs(60)).await.unwrap();
    assert!(lease.is_some());
    drop(lease);
    b.close().await;
    // a reference in flight on one replica holds a sweep on the other, and the other way round
    let r = a.reference_guard().await.unwrap();
    let sweep = tokio::time::timeout(Duration::from_millis(500), b.sweep_guard()).await;
    assert!(
        sweep.is_err(),
        "a sweep must wait for another replica's references"
    );
    drop(r);
    a.close().await;
    b.close().await;
    let sweep = b.sweep_guard().await.unwrap();
    let r = tokio::time::timeout(Duration::from_millis(500), a.reference_guard()).await;
    assert!(
        r.is_err(),
        "a reference must wait for another replica's sweep"
    );
    drop(sweep);
    b.close().await;
    a.reference_guard().await.unwrap();
    a.close().await;
}
