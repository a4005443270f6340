//! Errors of the registry client; each names the registry, URL, reference or file it is about.

use std::path::PathBuf;

use strata_oci::Digest;

/// One error code of a registry's error body (`{"errors":[{"code":…,"message":…}]}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryErrorBody {
    pub code: String,
    pub message: String,
}

impl std::fmt::Display for RegistryErrorBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let code = self.code.to_ascii_lowercase().replace('_', " ");
        if self.message.is_empty() || self.message.eq_ignore_ascii_case(&code) {
            write!(f, "{code}")
        } else {
            write!(f, "{code}: {}", self.message)
        }
    }
}

/// Everything that can go wrong talking to a registry or reading its settings.
#[derive(Debug, thiserror::Error)]
pub enum DistributionError {
    #[error("cannot reach {url}: {reason}")]
    Connect {
        url: String,
        reason: String,
        /// Worth another try (a refused or dropped connection, a timeout); not for a name
        /// that does not resolve or a certificate that does not verify.
        retry: bool,
    },
    #[error("{method} {url}: the registry answered {status}{}", detail_suffix(.detail))]
    Status {
        method: &'static str,
        url: String,
        status: u16,
        detail: Option<RegistryErrorBody>,
        /// What the registry asked for in `Retry-After`.
        retry_after: Option<std::time::Duration>,
    },
    #[error("{registry}: unauthorized: {message}")]
    Unauthorized { registry: String, message: String },
    #[error("{what} denied for {name}, repository does not exist or may require 'strata login {registry}': {message}")]
    Denied {
        what: &'static str,
        name: String,
        registry: String,
        message: String,
    },
    #[error("manifest for {reference} not found: manifest unknown")]
    ManifestUnknown { reference: String },
    #[error("repository {name} not found: name unknown")]
    NameUnknown { name: String },
    #[error("blob {digest} not found in {name}: blob unknown")]
    BlobUnknown { name: String, digest: Digest },
    #[error("{what} from {url} is larger than the {limit} bytes strata accepts")]
    TooLarge {
        what: &'static str,
        url: String,
        limit: u64,
    },
    #[error("{url}: redirect loop (more than {max} redirects)")]
    TooManyRedirects { url: String, max: u32 },
    #[error("invalid answer from {url}: {reason}")]
    Protocol { url: String, reason: String },
    #[error("{what} {reference}: content hashes to {actual}, not {expected}")]
    DigestMismatch {
        what: &'static str,
        reference: String,
        expected: Digest,
        actual: Digest,
    },
    #[error("reading {url}: {source}")]
    Read {
        url: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path:?}: {reason}")]
    Config { path: PathBuf, reason: String },
    #[error("{path:?}: {source}")]
    ConfigIo {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("credential helper docker-credential-{helper} {action} failed: {reason}")]
    CredentialHelper {
        helper: String,
        action: &'static str,
        reason: String,
    },
    #[error("invalid registry address {0:?}: expected a host name with an optional port")]
    InvalidRegistry(String),
}

fn detail_suffix(detail: &Option<RegistryErrorBody>) -> String {
    match detail {
        Some(d) => format!(": {d}"),
        None => String::new(),
    }
}

impl DistributionError {
    /// Worth trying again or falling back to the next endpoint: the network failed or the
    /// registry was busy or broken (429, 5xx); not an answer about the content.
    pub fn is_transient(&self) -> bool {
        match self {
            DistributionError::Connect { retry, .. } => *retry,
            DistributionError::Read { .. } => true,
            DistributionError::Status { status, .. } => *status == 429 || *status >= 500,
            _ => false,
        }
    }
}
