//! The registry's operations, independent of HTTP: what each route of the distribution spec
//! does to the storage. Blobs, uploads and manifests have their own files (`blobs.rs`,
//! `uploads.rs`, `manifests.rs`); repositories, tags and the catalog live here.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use crate::api_error::ApiError;
use crate::layout;
use crate::metrics::Metrics;
use crate::names;
use crate::quota::Quotas;
use crate::storage::{Storage, StorageError};

/// Limits the registry enforces on what clients send.
#[derive(Clone, Debug)]
pub struct Limits {
    pub max_manifest_size: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_manifest_size: 4 << 20,
        }
    }
}

pub struct Registry {
    pub(crate) storage: Arc<dyn Storage>,
    pub(crate) limits: Limits,
    pub(crate) quotas: Quotas,
    pub(crate) metrics: Arc<Metrics>,
    /// One request at a time per upload session (chunks must apply in order).
    upload_locks: Mutex<HashMap<String, Weak<tokio::sync::Mutex<()>>>>,
}

/// One page of a listing (tags or catalog) and whether more follow.
#[derive(Debug, PartialEq, Eq)]
pub struct Page {
    pub items: Vec<String>,
    pub more: bool,
}

impl Page {
    /// Entries after `last` (exclusive), at most `n` of them, from a sorted list.
    pub fn of(sorted: Vec<String>, n: Option<usize>, last: Option<&str>) -> Page {
        let start = match last {
            Some(l) => sorted.partition_point(|x| x.as_str() <= l),
            None => 0,
        };
        let rest = sorted.len() - start;
        let take = n.unwrap_or(rest).min(rest);
        Page {
            more: take < rest,
            items: sorted.into_iter().skip(start).take(take).collect(),
        }
    }
}

impl Registry {
    pub fn new(storage: Arc<dyn Storage>, limits: Limits, quotas: Quotas) -> Registry {
        Registry {
            storage,
            limits,
            quotas,
            metrics: Arc::new(Metrics::default()),
            upload_locks: Mutex::new(HashMap::new()),
        }
    }

    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.storage
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    pub(crate) async fn lock_upload(&self, id: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = {
            let mut map = self.upload_locks.lock().unwrap_or_else(|p| p.into_inner());
            if map.len() > 1024 {
                map.retain(|_, w| w.strong_count() > 0);
            }
            match map.get(id).and_then(Weak::upgrade) {
                Some(l) => l,
                None => {
                    let l = Arc::new(tokio::sync::Mutex::new(()));
                    map.insert(id.to_string(), Arc::downgrade(&l));
                    l
                }
            }
        };
        lock.lock_owned().await
    }

    /// Whether a repository has anything (a blob, manifest, tag or referrer).
    pub async fn repository_exists(&self, name: &str) -> Result<bool, StorageError> {
        let listing = self.storage.list(&layout::repository(name)).await?;
        Ok(listing
            .prefixes
            .iter()
            .chain(&listing.objects)
            .any(|e| layout::is_repository_entry(e)))
    }

    /// A page of a repository's tags, in byte order.
    pub async fn tags(
        &self,
        name: &str,
        n: Option<usize>,
        last: Option<&str>,
    ) -> Result<Page, ApiError> {
        let tags = self.storage.list(&layout::tags(name)).await?.objects;
        if tags.is_empty() && !self.repository_exists(name).await? {
            return Err(ApiError::name_unknown(name));
        }
        Ok(Page::of(tags, n, last))
    }

    /// Every repository name, sorted.
    pub async fn repositories(&self) -> Result<Vec<String>, StorageError> {
        self.repositories_under("").await
    }

    /// Repository names at or under `namespace` (`""` for all), sorted.
    pub async fn repositories_under(&self, namespace: &str) -> Result<Vec<String>, StorageError> {
        let mut out = Vec::new();
        let mut pending = vec![namespace.to_string()];
        while let Some(name) = pending.pop() {
            let prefix = if name.is_empty() {
                layout::REPOSITORIES.to_string()
            } else {
                layout::repository(&name)
            };
            let listing = self.storage.list(&prefix).await?;
            if !name.is_empty()
                && listing
                    .prefixes
                    .iter()
                    .chain(&listing.objects)
                    .any(|e| layout::is_repository_entry(e))
            {
                out.push(name.clone());
            }
            for child in listing.prefixes {
                if layout::is_repository_entry(&child) {
                    continue;
                }
                pending.push(if name.is_empty() {
                    child
                } else {
                    format!("{name}/{child}")
                });
            }
        }
        out.sort();
        Ok(out)
    }

    /// A page of the catalog, with only the repositories `visible` lets the client see.
    pub async fn catalog(
        &self,
        n: Option<usize>,
        last: Option<&str>,
        visible: impl Fn(&str) -> bool,
    ) -> Result<Page, ApiError> {
        let mut names = self.repositories().await?;
        names.retain(|r| names::valid_repository(r) && visible(r));
        Ok(Page::of(names, n, last))
    }

    /// Deletes a repository: its tags, manifests, links and referrers (not nested
    /// repositories). Blobs no other repository needs are left to the collector.
    pub async fn delete_repository(&self, name: &str) -> Result<(), ApiError> {
        let listing = self.storage.list(&layout::repository(name)).await?;
        let own: Vec<String> = listing
            .prefixes
            .into_iter()
            .filter(|e| layout::is_repository_entry(e))
            .collect();
        if own.is_empty() {
            return Err(ApiError::name_unknown(name));
        }
        // Tags first: from then on the repository serves nothing by tag.
        for entry in ["_tags", "_referrers", "_manifests", "_blobs"]
            .into_iter()
            .filter(|e| own.iter().any(|o| o == e))
        {
            self.storage
                .delete_prefix(&format!("{}{entry}/", layout::repository(name)))
                .await?;
        }
        self.quotas.forget(name);
        tracing::info!(repository = name, "repository deleted");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages() {
        let all: Vec<String> = ["a", "b", "c", "d"].iter().map(|s| s.to_string()).collect();
        assert_eq!(
            Page::of(all.clone(), Some(2), None),
            Page {
                items: vec!["a".into(), "b".into()],
                more: true
            }
        );
        assert_eq!(
            Page::of(all.clone(), Some(2), Some("b")),
            Page {
                items: vec!["c".into(), "d".into()],
                more: false
            }
        );
        assert_eq!(Page::of(all.clone(), None, Some("bb")).items, ["c", "d"]);
        assert_eq!(
            Page::of(all.clone(), Some(0), None),
            Page {
                items: vec![],
                more: true
            }
        );
        assert_eq!(Page::of(all, Some(10), Some("z")).items.len(), 0);
    }
}
