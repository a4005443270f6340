//! Ingests on S3: an upload session's bytes stream into a multipart upload at
//! `uploads/<id>/data`, one part per `part_size` bytes; the bytes short of a whole part (the
//! *tail*) wait in the session's record until more arrive or the upload is committed. So a
//! replica buffers at most one part, never the whole blob, and keeps no local copy.
//!
//! After every append the record of the new offset is written:
//! `uploads/<id>/ingest/<offset, 20 digits>` = 8-byte big-endian length of a JSON header
//! (multipart upload id, parts' ETags and sizes), the header, then the tail. Any replica can
//! continue from it. The record of the previous offset is kept until the next append, because
//! the registry records the new offset in its own session document only after this returns:
//! if it dies in between, the session continues from the old offset and its record.
//!
//! Commit: a blob smaller than one part is PUT straight to its key from the tail; a bigger one
//! gets the tail as its last part, the multipart upload is completed at `uploads/<id>/data`
//! and copied server-side to the blob's key, so the key appears whole or not at all. A commit
//! retried after the completion (the copy failed) goes straight to the copy.

use bytes::{Buf, Bytes, BytesMut};
use futures_util::StreamExt;
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};

use super::{s3_error, S3Storage};
use crate::storage::{ByteStream, Storage, StorageError};

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Header {
    /// The multipart upload, once the first whole part was sent.
    upload: Option<String>,
    /// ETag and size of each part sent, in order.
    parts: Vec<(String, u64)>,
}

#[derive(Default)]
struct Record {
    header: Header,
    tail: Bytes,
}

impl Record {
    fn encode(&self) -> Bytes {
        let header = serde_json::to_vec(&self.header).unwrap_or_default();
        let mut out = BytesMut::with_capacity(8 + header.len() + self.tail.len());
        out.extend_from_slice(&(header.len() as u64).to_be_bytes());
        out.extend_from_slice(&header);
        out.extend_from_slice(&self.tail);
        out.freeze()
    }

    fn decode(id: &str, mut bytes: Bytes) -> Result<Record, StorageError> {
        let bad = || StorageError::io(id, std::io::Error::other("unreadable ingest record"));
        if bytes.len() < 8 {
            return Err(bad());
        }
        let len = bytes.get_u64() as usize;
        if bytes.len() < len {
            return Err(bad());
        }
        let header = serde_json::from_slice(&bytes[..len]).map_err(|_| bad())?;
        Ok(Record {
            header,
            tail: bytes.slice(len..),
        })
    }

    /// Bytes held, in parts and in the tail.
    fn len(&self) -> u64 {
        self.header.parts.iter().map(|(_, n)| n).sum::<u64>() + self.tail.len() as u64
    }
}

pub(super) fn valid_id(id: &str) -> Result<(), StorageError> {
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return Err(StorageError::InvalidKey(id.to_string()));
    }
    Ok(())
}

fn records_prefix(id: &str) -> String {
    format!("uploads/{id}/ingest/")
}

fn record_key(id: &str, offset: u64) -> String {
    format!("uploads/{id}/ingest/{offset:020}")
}

fn data_key(id: &str) -> String {
    format!("uploads/{id}/data")
}

/// The offsets that have a record.
async fn record_offsets(s: &S3Storage, id: &str) -> Result<Vec<u64>, StorageError> {
    Ok(s.list(&records_prefix(id))
        .await?
        .objects
        .iter()
        .filter_map(|o| o.parse().ok())
        .collect())
}

/// The record at `offset`; offset 0 needs none.
async fn load(s: &S3Storage, id: &str, offset: u64) -> Result<Record, StorageError> {
    if let Some(bytes) = s.get(&record_key(id, offset)).await? {
        let r = Record::decode(id, bytes)?;
        if r.len() == offset {
            return Ok(r);
        }
    } else if offset == 0 {
        return Ok(Record::default());
    }
    let have = record_offsets(s, id)
        .await?
        .into_iter()
        .filter(|o| *o < offset)
        .max()
        .unwrap_or(0);
    Err(StorageError::IngestLost {
        id: id.to_string(),
        have,
        expected: offset,
    })
}

async fn put_part(
    s: &S3Storage,
    id: &str,
    data: &ObjectPath,
    header: &mut Header,
    part: Bytes,
) -> Result<(), StorageError> {
    let upload = match &header.upload {
        Some(u) => u.clone(),
        None => {
            let u = s
                .store
                .create_multipart(data)
                .await
                .map_err(|e| s3_error(id, e))?;
            header.upload = Some(u.clone());
            u
        }
    };
    let size = part.len() as u64;
    let PartId { content_id } = s
        .store
        .put_part(data, &upload, header.parts.len(), PutPayload::from(part))
        .await
        .map_err(|e| s3_error(id, e))?;
    header.parts.push((content_id, size));
    Ok(())
}

pub(super) async fn append(
    s: &S3Storage,
    id: &str,
    offset: u64,
    data: &mut ByteStream,
    limit: u64,
) -> Result<u64, StorageError> {
    valid_id(id)?;
    let record = load(s, id, offset).await?;
    let had_upload = record.header.upload.is_some();
    let mut header = record.header;
    let mut buf = BytesMut::from(record.tail);
    let data_path = s.path(&data_key(id))?;
    let mut total = offset;
    let mut result = Ok(());
    while let Some(item) = data.next().await {
        let chunk = match item {
            Ok(c) => c,
            Err(e) => {
                result = Err(StorageError::Body(e));
                break;
            }
        };
        total += chunk.len() as u64;
        if total > limit {
            result = Err(StorageError::IngestTooLarge {
                id: id.to_string(),
                limit,
            });
            break;
        }
        buf.extend_from_slice(&chunk);
        while buf.len() >= s.part_size {
            let part = buf.split_to(s.part_size).freeze();
            if let Err(e) = put_part(s, id, &data_path, &mut header, part).await {
                result = Err(e);
                break;
            }
        }
        if result.is_err() {
            break;
        }
    }
    let written = match result {
        Ok(()) if total == offset => return Ok(offset),
        Ok(()) => {
            let record = Record {
                header: header.clone(),
                tail: buf.freeze(),
            };
            s.put(&record_key(id, total), record.encode()).await
        }
        Err(e) => Err(e),
    };
    if let Err(e) = written {
        // Parts sent past the old record are simply not listed at commit; an upload created
        // by this call and recorded nowhere is given back now.
        if !had_upload {
            if let Some(upload) = &header.upload {
                let _ = s.store.abort_multipart(&data_path, upload).await;
            }
        }
        return Err(e);
    }
    // Records other than this one and the previous one can no longer be continued from.
    let stale: Vec<ObjectPath> = record_offsets(s, id)
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|o| *o != offset && *o != total)
        .filter_map(|o| s.path(&record_key(id, o)).ok())
        .collect();
    if !stale.is_empty() {
        let _ = s.delete_paths(id, stale).await;
    }
    Ok(total)
}

pub(super) async fn read(s: &S3Storage, id: &str, len: u64) -> Result<ByteStream, StorageError> {
    valid_id(id)?;
    let record = load(s, id, len).await?;
    if record.header.upload.is_some() {
        // S3 cannot read back the parts of an unfinished multipart upload.
        return Err(StorageError::io(
            id,
            std::io::Error::other("the parts of an unfinished S3 upload cannot be read back"),
        ));
    }
    let tail = record.tail;
    Ok(Box::pin(futures_util::stream::once(
        async move { Ok(tail) },
    )))
}

pub(super) async fn commit(
    s: &S3Storage,
    id: &str,
    len: u64,
    key: &str,
) -> Result<(), StorageError> {
    valid_id(id)?;
    let record = load(s, id, len).await?;
    let data_path = s.path(&data_key(id))?;
    if s.touch(key).await? {
        // The same blob is already there: keep it, drop this copy.
        return abort_record(s, id, &record.header).await;
    }
    let dest = s.path(key)?;
    let mut header = record.header;
    match header.upload.clone() {
        None => {
            s.store
                .put(&dest, PutPayload::from(record.tail))
                .await
                .map_err(|e| s3_error(key, e))?;
        }
        Some(upload) => {
            // A commit that completed the upload, then failed to copy it, is continued.
            let completed = s
                .head_path(&data_path)
                .await?
                .is_some_and(|m| m.size == len);
            if !completed {
                if !record.tail.is_empty() {
                    put_part(s, id, &data_path, &mut header, record.tail).await?;
                }
                let parts = header
                    .parts
                    .iter()
                    .map(|(etag, _)| PartId {
                        content_id: etag.clone(),
                    })
                    .collect();
                s.store
                    .complete_multipart(&data_path, &upload, parts)
                    .await
                    .map_err(|e| s3_error(id, e))?;
                let size = s.head_path(&data_path).await?.map(|m| m.size);
                if size != Some(len) {
                    return Err(StorageError::IngestLost {
                        id: id.to_string(),
                        have: size.unwrap_or(0),
                        expected: len,
                    });
                }
            }
            s.store
                .copy(&data_path, &dest)
                .await
                .map_err(|e| s3_error(key, e))?;
        }
    }
    s.delete_under(&format!("uploads/{id}/")).await
}

async fn abort_record(s: &S3Storage, id: &str, header: &Header) -> Result<(), StorageError> {
    if let Some(upload) = &header.upload {
        let data_path = s.path(&data_key(id))?;
        // Already completed or aborted: nothing to give back.
        let _ = s.store.abort_multipart(&data_path, upload).await;
    }
    s.delete_under(&format!("uploads/{id}/")).await
}

pub(super) async fn abort(s: &S3Storage, id: &str) -> Result<(), StorageError> {
    valid_id(id)?;
    // Every record names the same multipart upload (or none yet).
    let mut header = Header::default();
    for offset in record_offsets(s, id).await? {
        if let Some(bytes) = s.get(&record_key(id, offset)).await? {
            if let Ok(r) = Record::decode(id, bytes) {
                if r.header.upload.is_some() {
                    header = r.header;
                    break;
                }
            }
        }
    }
    abort_record(s, id, &header).await
}
