//! Storage quotas per repository or per namespace.
//!
//! A repository's usage is the size of every blob and manifest it links (a layer shared by
//! two repositories counts in both: each could be the only one keeping it). Usage is computed
//! from the storage the first time a quota needs it and then kept up to date in memory as
//! links are added; deletions and collections drop the cached figure so it is recomputed.
//! Concurrent pushes may overshoot a quota by what they upload at the same moment.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::config::QuotaConfig;
use crate::layout;
use crate::names::glob_matches;
use crate::registry::Registry;
use crate::storage::StorageError;

#[derive(Clone, Debug)]
enum Rule {
    /// Each repository matching the glob has its own limit.
    Each { glob: String, limit: u64 },
    /// Every repository under the namespace shares one limit.
    Namespace { namespace: String, limit: u64 },
}

#[derive(Default)]
pub struct Quotas {
    rules: Vec<Rule>,
    usage: Mutex<HashMap<String, u64>>,
}

/// The tightest quota that applies to a repository.
#[derive(Debug)]
pub(crate) struct Remaining {
    /// "repository team/app" or "namespace team".
    pub(crate) scope: String,
    pub(crate) limit: u64,
    pub(crate) remaining: u64,
}

impl Quotas {
    pub fn new(config: &[QuotaConfig]) -> Quotas {
        let rules = config
            .iter()
            .filter_map(|q| match (&q.repositories, &q.namespace) {
                (Some(glob), _) => Some(Rule::Each {
                    glob: glob.clone(),
                    limit: q.limit.0,
                }),
                (None, Some(ns)) => Some(Rule::Namespace {
                    namespace: ns.trim_end_matches('/').to_string(),
                    limit: q.limit.0,
                }),
                (None, None) => None,
            })
            .collect();
        Quotas {
            rules,
            usage: Mutex::new(HashMap::new()),
        }
    }

    fn cached(&self, name: &str) -> Option<u64> {
        self.usage
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .copied()
    }

    /// Adds bytes to a repository's cached usage (when it is cached).
    pub(crate) fn charge(&self, name: &str, bytes: u64) {
        if self.rules.is_empty() {
            return;
        }
        if let Some(u) = self
            .usage
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_mut(name)
        {
            *u += bytes;
        }
    }

    /// Drops a repository's cached usage (after something was removed from it).
    pub(crate) fn forget(&self, name: &str) {
        self.usage
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(name);
    }

    /// Drops every cached usage (after a collection).
    pub(crate) fn forget_all(&self) {
        self.usage.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    /// The tightest applicable quota and what is left of it; `None` without a quota.
    pub(crate) async fn remaining(
        &self,
        registry: &Registry,
        name: &str,
    ) -> Result<Option<Remaining>, StorageError> {
        let mut best: Option<Remaining> = None;
        for rule in &self.rules {
            let (scope, limit, used) = match rule {
                Rule::Each { glob, limit } if glob_matches(glob, name) => (
                    format!("repository {name}"),
                    *limit,
                    self.usage_of(registry, name).await?,
                ),
                Rule::Namespace { namespace, limit }
                    if name == namespace || name.starts_with(&format!("{namespace}/")) =>
                {
                    let mut used = 0;
                    for repo in registry.repositories_under(namespace).await? {
                        used += self.usage_of(registry, &repo).await?;
                    }
                    // the repository may not exist yet
                    if !registry.repository_exists(name).await? {
                        used += self.usage_of(registry, name).await?;
                    }
                    (format!("namespace {namespace}"), *limit, used)
                }
                _ => continue,
            };
            let remaining = limit.saturating_sub(used);
            if best.as_ref().is_none_or(|b| remaining < b.remaining) {
                best = Some(Remaining {
                    scope,
                    limit,
                    remaining,
                });
            }
        }
        Ok(best)
    }

    async fn usage_of(&self, registry: &Registry, name: &str) -> Result<u64, StorageError> {
        if let Some(u) = self.cached(name) {
            return Ok(u);
        }
        let u = repository_usage(registry, name).await?;
        self.usage
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name.to_string(), u);
        Ok(u)
    }
}

/// The bytes a repository links, read from the storage.
pub(crate) async fn repository_usage(registry: &Registry, name: &str) -> Result<u64, StorageError> {
    let s = &registry.storage;
    let mut total = 0;
    for prefix in [layout::blob_links(name), layout::manifest_links(name)] {
        for hex in s.list(&prefix).await?.objects {
            let Ok(d) = strata_oci::Digest::from_sha256_hex(&hex) else {
                continue;
            };
            if let Some(m) = s.head(&layout::blob(&d)).await? {
                total += m.size;
            }
        }
    }
    Ok(total)
}
