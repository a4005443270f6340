//! `--explain-cache`: the inputs of each step's cache key, recorded per step position (context,
//! Dockerfile, stage, step index), and why a step missed compared with the last build recorded
//! at that position. Pure apart from the JSON encoding; the builder stores the records.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};
use strata_oci::{Digest, Sha256Hasher};

/// Context files recorded per step at most; past it only their aggregate digest is kept.
pub(crate) const MAX_FILES: usize = 2000;
/// Files named per kind of change in a reason.
const SHOWN_FILES: usize = 10;

/// What one step's key was made of, as recorded for the next build to compare with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StepRecord {
    pub(crate) key: String,
    /// The key below this step (the stage's base key for the first step).
    pub(crate) parent: String,
    /// What the stage starts from, as a person reads it (`busybox:local sha256:…`).
    pub(crate) base: String,
    /// The instruction as written, and as expanded (what the key covers).
    pub(crate) text: String,
    pub(crate) expanded: String,
    /// Build args the step sees; values of secret-looking names are kept as a digest.
    pub(crate) build_args: Vec<(String, String)>,
    pub(crate) env: Vec<(String, String)>,
    /// Digest of the content the step reads (selected files, a `--from` source).
    pub(crate) content: Option<String>,
    /// The selected context files with their digests (None: not a context COPY, or too many).
    pub(crate) files: Option<Vec<(String, String)>>,
    /// A `COPY --from` source as a person reads it (`stage 0 (…)`, `alpine sha256:…`).
    #[serde(default)]
    pub(crate) source: Option<String>,
}

/// Why a step missed the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MissReason {
    /// Nothing was recorded for this step position.
    NoEarlierBuild,
    /// `--no-cache` was given.
    NoCache,
    InstructionChanged {
        old: String,
        new: String,
    },
    /// A build arg the step sees changed (`None`: unset). Secret values are never shown.
    BuildArgChanged {
        name: String,
        old: Option<String>,
        new: Option<String>,
        secret: bool,
    },
    EnvChanged {
        name: String,
        old: Option<String>,
        new: Option<String>,
    },
    /// The stage's base image (or base stage) is a different one.
    BaseChanged {
        old: String,
        new: String,
    },
    /// Context files the step selects, by how they changed (each list sorted).
    FilesChanged {
        added: Vec<String>,
        removed: Vec<String>,
        changed: Vec<String>,
    },
    /// The content the step reads changed and no file list was recorded (more context
    /// files than are recorded).
    SourceChanged,
    /// The `COPY --from` stage or image is a different one.
    FromSourceChanged {
        old: String,
        new: String,
    },
    /// The step below missed, so this one cannot hit (a cascade).
    ParentMissed,
    /// `SOURCE_DATE_EPOCH` or the platform changed (they are part of every key).
    BuildSettingsChanged,
    /// The inputs are the same but the earlier result is gone from the store (pruned).
    ResultGone,
    /// The key changed through an input not recorded here.
    Unexplained,
}

impl fmt::Display for MissReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let opt = |v: &Option<String>| match v {
            Some(v) => format!("{v:?}"),
            None => "(unset)".to_string(),
        };
        match self {
            MissReason::NoEarlierBuild => write!(f, "no earlier build of this step"),
            MissReason::NoCache => write!(f, "--no-cache"),
            MissReason::InstructionChanged { old, new } => {
                write!(f, "instruction changed: {old:?} -> {new:?}")
            }
            MissReason::BuildArgChanged {
                name, secret: true, ..
            } => write!(f, "build arg {name} changed (secret: values not shown)"),
            MissReason::BuildArgChanged { name, old, new, .. } => {
                write!(f, "build arg {name} changed: {} -> {}", opt(old), opt(new))
            }
            MissReason::EnvChanged { name, old, new } => {
                write!(f, "env {name} changed: {} -> {}", opt(old), opt(new))
            }
            MissReason::BaseChanged { old, new } => write!(f, "base changed: {old} -> {new}"),
            MissReason::FilesChanged {
                added,
                removed,
                changed,
            } => {
                let mut parts = Vec::new();
                for (what, list) in [("added", added), ("removed", removed), ("changed", changed)] {
                    if list.is_empty() {
                        continue;
                    }
                    let mut names = list
                        .iter()
                        .take(SHOWN_FILES)
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ");
                    if list.len() > SHOWN_FILES {
                        names.push_str(&format!(" (+{} more)", list.len() - SHOWN_FILES));
                    }
                    parts.push(format!("{what} {names}"));
                }
                write!(f, "context files changed: {}", parts.join("; "))
            }
            MissReason::SourceChanged => write!(f, "the files it reads changed"),
            MissReason::FromSourceChanged { old, new } => {
                write!(f, "--from source changed: {old} -> {new}")
            }
            MissReason::ParentMissed => write!(f, "parent step missed"),
            MissReason::BuildSettingsChanged => {
                write!(f, "SOURCE_DATE_EPOCH or the platform changed")
            }
            MissReason::ResultGone => write!(
                f,
                "same inputs, but the earlier result is no longer in the store (pruned)"
            ),
            MissReason::Unexplained => write!(f, "an input that is not recorded changed"),
        }
    }
}

/// The position of a step: which earlier build of "the same step" it is compared with.
pub(crate) fn position(context: &Path, dockerfile: &Path, stage: usize, step: usize) -> String {
    let mut h = Sha256Hasher::new();
    for part in [
        context.to_string_lossy().as_bytes(),
        dockerfile.to_string_lossy().as_bytes(),
        &(stage as u64).to_le_bytes(),
        &(step as u64).to_le_bytes(),
    ] {
        h.update(&(part.len() as u64).to_le_bytes());
        h.update(part);
    }
    h.finish().to_string()
}

/// Build args as recorded: a secret-looking name keeps only a digest of its value.
pub(crate) fn recorded_args(args: &[(String, String)]) -> Vec<(String, String)> {
    args.iter()
        .map(|(k, v)| {
            if is_secret(k) {
                (k.clone(), Digest::sha256_of(v.as_bytes()).to_string())
            } else {
                (k.clone(), v.clone())
            }
        })
        .collect()
}

/// Names whose values must never be shown (Docker's `SecretsUsedInArgOrEnv` words).
fn is_secret(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    [
        "SECRET",
        "PASSWORD",
        "PASSWD",
        "TOKEN",
        "CREDENTIAL",
        "API_KEY",
        "APIKEY",
        "PRIVATE",
        "AUTH",
    ]
    .iter()
    .any(|w| upper.contains(w))
}

/// Why `new` (step `step` of its stage) missed, compared with `old`, the record at its
/// position from an earlier build.
pub(crate) fn explain(old: Option<&StepRecord>, new: &StepRecord, step: usize) -> Vec<MissReason> {
    let Some(old) = old else {
        return vec![MissReason::NoEarlierBuild];
    };
    if old.key == new.key {
        return vec![MissReason::ResultGone];
    }
    let mut out = Vec::new();
    if old.base != new.base {
        out.push(MissReason::BaseChanged {
            old: old.base.clone(),
            new: new.base.clone(),
        });
    }
    if old.expanded != new.expanded {
        let (o, n) = if old.text == new.text {
            (old.expanded.clone(), new.expanded.clone())
        } else {
            (old.text.clone(), new.text.clone())
        };
        out.push(MissReason::InstructionChanged { old: o, new: n });
    }
    for (name, o, n) in changed_pairs(&old.build_args, &new.build_args) {
        let secret = is_secret(&name);
        out.push(MissReason::BuildArgChanged {
            old: o.filter(|_| !secret),
            new: n.filter(|_| !secret),
            name,
            secret,
        });
    }
    // An ARG is in the env of the steps after it: say it once, as the build arg.
    let arg_names: Vec<String> = changed_pairs(&old.build_args, &new.build_args)
        .into_iter()
        .map(|c| c.0)
        .collect();
    for (name, o, n) in changed_pairs(&old.env, &new.env) {
        if arg_names.contains(&name) {
            continue;
        }
        out.push(MissReason::EnvChanged {
            name,
            old: o,
            new: n,
        });
    }
    if old.content != new.content {
        out.push(match (&old.files, &new.files, &old.source, &new.source) {
            (Some(o), Some(n), _, _) => files_changed(o, n),
            (_, _, Some(o), Some(n)) if o != n => MissReason::FromSourceChanged {
                old: o.clone(),
                new: n.clone(),
            },
            _ => MissReason::SourceChanged,
        });
    }
    if old.parent != new.parent && old.base == new.base {
        out.push(if step == 0 {
            MissReason::BuildSettingsChanged
        } else {
            MissReason::ParentMissed
        });
    }
    if out.is_empty() {
        out.push(MissReason::Unexplained);
    }
    out
}

/// Names whose values differ between two lists of pairs: (name, old, new).
fn changed_pairs(
    old: &[(String, String)],
    new: &[(String, String)],
) -> Vec<(String, Option<String>, Option<String>)> {
    let o: BTreeMap<&String, &String> = old.iter().map(|(k, v)| (k, v)).collect();
    let n: BTreeMap<&String, &String> = new.iter().map(|(k, v)| (k, v)).collect();
    let mut names: Vec<&String> = o.keys().chain(n.keys()).copied().collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .filter(|k| o.get(k) != n.get(k))
        .map(|k| {
            (
                k.clone(),
                o.get(k).map(|v| v.to_string()),
                n.get(k).map(|v| v.to_string()),
            )
        })
        .collect()
}

fn files_changed(old: &[(String, String)], new: &[(String, String)]) -> MissReason {
    let o: BTreeMap<&String, &String> = old.iter().map(|(k, v)| (k, v)).collect();
    let n: BTreeMap<&String, &String> = new.iter().map(|(k, v)| (k, v)).collect();
    let added = n
        .keys()
        .filter(|k| !o.contains_key(*k))
        .map(|k| k.to_string());
    let removed = o
        .keys()
        .filter(|k| !n.contains_key(*k))
        .map(|k| k.to_string());
    let mut changed: Vec<String> = n
        .iter()
        .filter(|(k, v)| o.get(*k).is_some_and(|ov| ov != *v))
        .map(|(k, _)| k.to_string())
        .collect();
    let (added, removed): (Vec<String>, Vec<String>) = (added.collect(), removed.collect());
    // A directory whose entries changed changes too (its mtime): name it only when nothing
    // else explains the miss.
    if !added.is_empty() || !removed.is_empty() || changed.iter().any(|p| !p.ends_with('/')) {
        changed.retain(|p| !p.ends_with('/'));
    }
    let reason = MissReason::FilesChanged {
        added,
        removed,
        changed,
    };
    match &reason {
        // Same files, same digests: what changed is not in the list (e.g. the selection order).
        MissReason::FilesChanged {
            added,
            removed,
            changed,
        } if added.is_empty() && removed.is_empty() && changed.is_empty() => {
            MissReason::SourceChanged
        }
        _ => reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> StepRecord {
        StepRecord {
            key: "k1".into(),
            parent: "p1".into(),
            base: "busybox sha256:1".into(),
            text: "COPY . /app".into(),
            expanded: "COPY . /app".into(),
            build_args: vec![("V".into(), "1".into())],
            env: vec![],
            content: Some("c1".into()),
            files: Some(vec![("a".into(), "1".into()), ("b".into(), "2".into())]),
            source: None,
        }
    }

    #[test]
    fn each_difference_gives_its_reason() {
        let old = record();
        let cases: Vec<(StepRecord, usize, Vec<MissReason>)> = vec![
            (
                StepRecord {
                    key: "k1".into(),
                    ..record()
                },
                1,
                vec![MissReason::ResultGone],
            ),
            (
                StepRecord {
                    key: "k2".into(),
                    text: "COPY . /b".into(),
                    expanded: "COPY . /b".into(),
                    ..record()
                },
                1,
                vec![MissReason::InstructionChanged {
                    old: "COPY . /app".into(),
                    new: "COPY . /b".into(),
                }],
            ),
            (
                StepRecord {
                    key: "k2".into(),
                    build_args: vec![("V".into(), "2".into())],
                    ..record()
                },
                1,
                vec![MissReason::BuildArgChanged {
                    name: "V".into(),
                    old: Some("1".into()),
                    new: Some("2".into()),
                    secret: false,
                }],
            ),
            (
                StepRecord {
                    key: "k2".into(),
                    content: Some("c2".into()),
                    files: Some(vec![("b".into(), "3".into()), ("c".into(), "4".into())]),
                    ..record()
                },
                1,
                vec![MissReason::FilesChanged {
                    added: vec!["c".into()],
                    removed: vec!["a".into()],
                    changed: vec!["b".into()],
                }],
            ),
            (
                StepRecord {
                    key: "k2".into(),
                    parent: "p2".into(),
                    ..record()
                },
                3,
                vec![MissReason::ParentMissed],
            ),
            (
                StepRecord {
                    key: "k2".into(),
                    parent: "p2".into(),
                    ..record()
                },
                0,
                vec![MissReason::BuildSettingsChanged],
            ),
            (
                StepRecord {
                    key: "k2".into(),
                    parent: "p2".into(),
                    base: "busybox sha256:2".into(),
                    ..record()
                },
                0,
                vec![MissReason::BaseChanged {
                    old: "busybox sha256:1".into(),
                    new: "busybox sha256:2".into(),
                }],
            ),
        ];
        let from = |src: &str, content: &str| StepRecord {
            key: format!("k-{content}"),
            files: None,
            content: Some(content.into()),
            source: Some(src.into()),
            ..record()
        };
        assert_eq!(
            explain(
                Some(&from("stage 0 (a)", "a")),
                &from("stage 0 (b)", "b"),
                1
            ),
            vec![MissReason::FromSourceChanged {
                old: "stage 0 (a)".into(),
                new: "stage 0 (b)".into()
            }]
        );
        for (i, (new, step, want)) in cases.into_iter().enumerate() {
            assert_eq!(explain(Some(&old), &new, step), want, "case {i}");
        }
        assert_eq!(explain(None, &old, 0), vec![MissReason::NoEarlierBuild]);
    }

    #[test]
    fn secrets_are_recorded_as_digests_and_never_shown() {
        let args = vec![("GITHUB_TOKEN".to_string(), "hunter2".to_string())];
        let rec = recorded_args(&args);
        assert!(!rec[0].1.contains("hunter2"));
        let old = StepRecord {
            build_args: rec,
            ..record()
        };
        let new = StepRecord {
            key: "k2".into(),
            build_args: recorded_args(&[("GITHUB_TOKEN".into(), "other".into())]),
            ..record()
        };
        let reasons = explain(Some(&old), &new, 1);
        let text = reasons[0].to_string();
        assert_eq!(
            text,
            "build arg GITHUB_TOKEN changed (secret: values not shown)"
        );
    }

    #[test]
    fn long_file_lists_are_cut_in_the_message() {
        let reason = MissReason::FilesChanged {
            added: (0..15).map(|i| format!("f{i:02}")).collect(),
            removed: vec![],
            changed: vec!["x".into()],
        };
        let text = reason.to_string();
        assert!(text.contains("f09 (+5 more); changed x"), "{text}");
        assert!(!text.contains("f10"));
    }
}
