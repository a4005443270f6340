//! Where `strata build` reads its context from (a directory, or a tar on stdin) and where
//! `-o` writes its result (a docker or OCI archive, or the file tree).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use strata_image::{resolve_image, save_archive, ArchiveFormat, SaveItem};
use strata_layer::{apply_layer, decompress, is_tar_header, ApplyOptions, WhiteoutMode, TAR_BLOCK};
use strata_oci::Reference;
use strata_store::Store;

use crate::failure::{Context, Failure};

/// The context of a build and the Dockerfile's text.
pub(crate) struct BuildContext {
    pub(crate) dir: PathBuf,
    pub(crate) dockerfile: String,
    /// How errors name the Dockerfile (`-`, a path).
    pub(crate) dockerfile_name: String,
    /// The Dockerfile's path inside the context, if it is there.
    pub(crate) dockerfile_in_context: Option<PathBuf>,
    /// An extracted stdin context, removed when the build is done.
    _temp: Option<tempfile::TempDir>,
}

impl BuildContext {
    /// A context directory; the Dockerfile from `-f` (a path or `-`) or `DIR/Dockerfile`.
    pub(crate) fn dir(dir: &Path, file: Option<&Path>) -> Result<BuildContext, Failure> {
        let name = match file {
            Some(f) => f.to_string_lossy().into_owned(),
            None => dir.join("Dockerfile").to_string_lossy().into_owned(),
        };
        Ok(BuildContext {
            dir: dir.to_path_buf(),
            dockerfile: super::read_input(&name)?,
            dockerfile_in_context: file
                .filter(|f| f.as_os_str() != "-")
                .map(|f| f.strip_prefix(dir).unwrap_or(f).to_path_buf()),
            dockerfile_name: name,
            _temp: None,
        })
    }

    /// `strata build -`: stdin holds a tar archive of the context (plain, gzip or zstd),
    /// extracted safely into a temp dir, with the Dockerfile at `-f` inside it; or, as with
    /// Docker, a lone Dockerfile and no context files.
    pub(crate) fn stdin(file: Option<&Path>) -> Result<BuildContext, Failure> {
        if file.is_some_and(|f| f.as_os_str() == "-") {
            return Err(Failure::new(
                "cannot read both the build context and the Dockerfile from standard input",
            )
            .with_hint("put the Dockerfile in the context archive and name it with -f PATH"));
        }
        let temp = tempfile::tempdir().context("creating a directory for the build context")?;
        let stdin = std::io::stdin().lock();
        let (_, mut plain) =
            decompress(stdin).context("reading the build context from standard input")?;
        let mut head = vec![0u8; TAR_BLOCK];
        let filled = read_full(&mut plain, &mut head).context("reading standard input")?;
        head.truncate(filled);
        let dockerfile_rel = file.map_or_else(|| PathBuf::from("Dockerfile"), Path::to_path_buf);
        if filled == TAR_BLOCK && is_tar_header(&head) {
            let opts = ApplyOptions {
                whiteouts: WhiteoutMode::Remove,
                preserve_owners: false,
            };
            apply_layer(std::io::Cursor::new(head).chain(plain), temp.path(), &opts)
                .context("extracting the build context from standard input")?;
            let path = temp.path().join(&dockerfile_rel);
            // Read only a regular file of the archive, never through a link out of it.
            let inside = temp
                .path()
                .canonicalize()
                .ok()
                .zip(path.canonicalize().ok());
            if !inside.is_some_and(|(root, p)| p.starts_with(root)) {
                return Err(Failure::new(format!(
                    "-f {} does not name a file inside the context archive",
                    dockerfile_rel.display()
                ))
                .with_hint("name it with -f PATH, relative to the archive's root"));
            }
            let meta = std::fs::symlink_metadata(&path).map_err(|_| {
                Failure::new(format!(
                    "the context archive has no Dockerfile at {}",
                    dockerfile_rel.display()
                ))
                .with_hint("name it with -f PATH, relative to the archive's root")
            })?;
            if !meta.is_file() {
                return Err(Failure::new(format!(
                    "{} in the context archive is not a regular file",
                    dockerfile_rel.display()
                )));
            }
            let text = std::fs::read_to_string(&path).context(format!(
                "reading {} from the context archive",
                dockerfile_rel.display()
            ))?;
            return Ok(BuildContext {
                dir: temp.path().to_path_buf(),
                dockerfile: text,
                dockerfile_name: dockerfile_rel.to_string_lossy().into_owned(),
                dockerfile_in_context: Some(dockerfile_rel),
                _temp: Some(temp),
            });
        }
        let mut rest = Vec::new();
        plain
            .read_to_end(&mut rest)
            .context("reading standard input")?;
        head.extend_from_slice(&rest);
        let text = String::from_utf8(head).map_err(|_| {
            Failure::new("standard input is neither a tar archive nor a text Dockerfile")
        })?;
        Ok(BuildContext {
            dir: temp.path().to_path_buf(),
            dockerfile: text,
            dockerfile_name: "-".to_string(),
            dockerfile_in_context: None,
            _temp: Some(temp),
        })
    }
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// One `-o` destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Export {
    /// `type=docker|oci,dest=FILE`; `-` is standard output.
    Archive { format: ArchiveFormat, dest: String },
    /// `type=local,dest=DIR` (or `-o DIR`): the image's file tree.
    Local(PathBuf),
}

impl Export {
    /// Parses BuildKit's `-o` syntax: `type=T,dest=D`, or a bare path meaning `type=local`.
    pub(crate) fn parse(spec: &str) -> Result<Export, Failure> {
        if !spec.contains('=') {
            return Ok(Export::Local(PathBuf::from(spec)));
        }
        let (mut kind, mut dest) = (None, None);
        for part in spec.split(',') {
            match part.split_once('=') {
                Some(("type", v)) => kind = Some(v),
                Some(("dest", v)) => dest = Some(v),
                _ => {
                    return Err(
                        Failure::new(format!("unsupported -o option {part:?} in {spec:?}"))
                            .with_hint("use type=docker|oci|local,dest=PATH"),
                    )
                }
            }
        }
        let dest = dest.ok_or_else(|| {
            Failure::new(format!("-o {spec:?} has no dest"))
                .with_hint("add dest=FILE (or dest=- for standard output)")
        })?;
        match kind.unwrap_or("local") {
            "docker" => Ok(Export::Archive {
                format: ArchiveFormat::Docker,
                dest: dest.to_string(),
            }),
            "oci" => Ok(Export::Archive {
                format: ArchiveFormat::Oci,
                dest: dest.to_string(),
            }),
            "local" if dest != "-" => Ok(Export::Local(PathBuf::from(dest))),
            other => Err(
                Failure::new(format!("-o type={other} is not supported")).with_hint(
                    "supported: type=docker, type=oci (dest=FILE or -), type=local (dest=DIR)",
                ),
            ),
        }
    }

    pub(crate) fn to_stdout(&self) -> bool {
        matches!(self, Export::Archive { dest, .. } if dest == "-")
    }

    /// Writes the built image `id` (named `tags`, as in the store) to the destination.
    pub(crate) fn write(&self, store: &Store, id: &str, tags: &[String]) -> Result<(), Failure> {
        let image = resolve_image(store, id)?.record;
        match self {
            Export::Archive { format, dest } => {
                let tags = tags
                    .iter()
                    .map(|t| Reference::parse(t))
                    .collect::<Result<Vec<_>, _>>()?;
                let items = [SaveItem { image, tags }];
                let write = |w: &mut dyn Write| -> Result<(), Failure> {
                    save_archive(store, &items, *format, w)?;
                    Ok(())
                };
                if dest == "-" {
                    super::output_file::write_stdout(write)
                } else {
                    super::output_file::write_file(Path::new(dest), write)
                }
            }
            Export::Local(dir) => {
                std::fs::create_dir_all(dir).context(format!("creating {}", dir.display()))?;
                let opts = ApplyOptions {
                    whiteouts: WhiteoutMode::Remove,
                    preserve_owners: true,
                };
                for layer in &image.layers {
                    let blob = store.content().open(&layer.blob)?;
                    let (_, plain) = decompress(std::io::BufReader::new(blob))
                        .context(format!("reading layer {}", layer.blob))?;
                    apply_layer(plain, dir, &opts).context(format!(
                        "writing layer {} into {}",
                        layer.diff_id,
                        dir.display()
                    ))?;
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_specs() {
        let ok = [
            ("out", Export::Local("out".into())),
            ("type=local,dest=d", Export::Local("d".into())),
            (
                "type=docker,dest=-",
                Export::Archive {
                    format: ArchiveFormat::Docker,
                    dest: "-".into(),
                },
            ),
            (
                "dest=a.tar,type=oci",
                Export::Archive {
                    format: ArchiveFormat::Oci,
                    dest: "a.tar".into(),
                },
            ),
        ];
        for (spec, want) in ok {
            assert_eq!(Export::parse(spec).ok(), Some(want), "{spec}");
        }
        for bad in [
            "type=docker",
            "type=tar,dest=x",
            "type=local,dest=-",
            "type=oci,dest=x,compression=gzip",
        ] {
            assert!(Export::parse(bad).is_err(), "{bad}");
        }
    }
}
