//! The seam between "I need image X" and where images come from: the builder (FROM,
//! `COPY --from`, `RUN --mount from=`) and container creation are handed an
//! [`ImageSource`] and never look images up themselves. [`LocalImages`] only resolves what
//! the store has; [`RegistryImages`] pulls per policy (`--pull=missing|always|never`).

use strata_distribution::RegistryClient;
use strata_oci::{Platform, Reference};
use strata_store::Store;

use crate::progress::{TransferEvent, TransferReporter};
use crate::pull::{pull_image, PullOptions};
use crate::resolve::{resolve_by_id, resolve_image, ResolvedImage};
use crate::ImageError;

/// Where named images come from.
pub trait ImageSource: Sync {
    /// The image `name` (a reference, an image ID or ID prefix) stands for.
    fn image(&self, store: &Store, name: &str) -> Result<ResolvedImage, ImageError>;
}

/// Only what the store has (`--pull=never`, and every test without a registry).
#[derive(Debug, Default, Clone, Copy)]
pub struct LocalImages;

impl ImageSource for LocalImages {
    fn image(&self, store: &Store, name: &str) -> Result<ResolvedImage, ImageError> {
        resolve_image(store, name)
    }
}

/// When to ask the registry, as `docker run --pull` / `docker build --pull` take it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PullPolicy {
    /// Pull only images the store does not have (Docker's default).
    #[default]
    Missing,
    /// Check the registry every time and pull what changed.
    Always,
    /// Never pull: a missing image is an error.
    Never,
}

impl std::str::FromStr for PullPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "missing" => Ok(PullPolicy::Missing),
            "always" => Ok(PullPolicy::Always),
            "never" => Ok(PullPolicy::Never),
            other => Err(format!(
                "invalid pull policy {other:?}: expected missing, always or never"
            )),
        }
    }
}

/// The store, and the registries behind it.
pub struct RegistryImages<'a> {
    pub client: &'a RegistryClient,
    pub policy: PullPolicy,
    /// `--platform` to pull; the host's when None.
    pub platform: Option<Platform>,
    pub reporter: &'a dyn TransferReporter,
}

impl ImageSource for RegistryImages<'_> {
    fn image(&self, store: &Store, name: &str) -> Result<ResolvedImage, ImageError> {
        // Image IDs and ID prefixes name local images only, whatever the policy.
        let reference = match Reference::parse(name) {
            Ok(r) if !name.starts_with("sha256:") => r,
            _ => return resolve_image(store, name),
        };
        match self.policy {
            PullPolicy::Always => {}
            PullPolicy::Never => return resolve_image(store, name),
            PullPolicy::Missing => match resolve_image(store, name) {
                Ok(found) => return Ok(found),
                Err(ImageError::NotFound(_)) => {
                    self.reporter.event(TransferEvent::NotFoundLocally {
                        reference: &reference,
                    });
                }
                Err(e) => return Err(e),
            },
        }
        let opts = PullOptions {
            platform: self.platform.clone(),
        };
        let pulled = pull_image(store, self.client, &reference, &opts, self.reporter)?;
        let mut found = resolve_by_id(store, &pulled.id)?;
        found.reference = Some(reference);
        Ok(found)
    }
}
