//! Errors as the distribution spec puts them on the wire: a code, an HTTP status and the
//! `{"errors":[{"code","message","detail"}]}` body.

use serde_json::Value;

use crate::storage::StorageError;

/// The error codes of the OCI distribution spec (and Docker's `TOOMANYREQUESTS`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorCode {
    BlobUnknown,
    BlobUploadInvalid,
    BlobUploadUnknown,
    DigestInvalid,
    ManifestBlobUnknown,
    ManifestInvalid,
    ManifestUnknown,
    NameInvalid,
    NameUnknown,
    SizeInvalid,
    Unauthorized,
    Denied,
    Unsupported,
    TooManyRequests,
    /// Not a spec code: the server failed (storage error); the message stays generic.
    Unknown,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BlobUnknown => "BLOB_UNKNOWN",
            ErrorCode::BlobUploadInvalid => "BLOB_UPLOAD_INVALID",
            ErrorCode::BlobUploadUnknown => "BLOB_UPLOAD_UNKNOWN",
            ErrorCode::DigestInvalid => "DIGEST_INVALID",
            ErrorCode::ManifestBlobUnknown => "MANIFEST_BLOB_UNKNOWN",
            ErrorCode::ManifestInvalid => "MANIFEST_INVALID",
            ErrorCode::ManifestUnknown => "MANIFEST_UNKNOWN",
            ErrorCode::NameInvalid => "NAME_INVALID",
            ErrorCode::NameUnknown => "NAME_UNKNOWN",
            ErrorCode::SizeInvalid => "SIZE_INVALID",
            ErrorCode::Unauthorized => "UNAUTHORIZED",
            ErrorCode::Denied => "DENIED",
            ErrorCode::Unsupported => "UNSUPPORTED",
            ErrorCode::TooManyRequests => "TOOMANYREQUESTS",
            ErrorCode::Unknown => "UNKNOWN",
        }
    }

    /// The status Distribution answers each code with.
    pub fn status(self) -> u16 {
        match self {
            ErrorCode::BlobUnknown
            | ErrorCode::BlobUploadUnknown
            | ErrorCode::ManifestUnknown
            | ErrorCode::NameUnknown => 404,
            ErrorCode::BlobUploadInvalid
            | ErrorCode::DigestInvalid
            | ErrorCode::ManifestBlobUnknown
            | ErrorCode::ManifestInvalid
            | ErrorCode::NameInvalid
            | ErrorCode::SizeInvalid => 400,
            ErrorCode::Unauthorized => 401,
            ErrorCode::Denied => 403,
            ErrorCode::Unsupported => 405,
            ErrorCode::TooManyRequests => 429,
            ErrorCode::Unknown => 500,
        }
    }
}

/// One error response.
#[derive(Debug)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    pub detail: Option<Value>,
    /// Overrides the code's status (416 for an out-of-order chunk, 413 for a body too large).
    pub status: Option<u16>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            message: message.into(),
            detail: None,
            status: None,
        }
    }

    pub fn with_detail(mut self, detail: Value) -> ApiError {
        self.detail = Some(detail);
        self
    }

    pub fn with_status(mut self, status: u16) -> ApiError {
        self.status = Some(status);
        self
    }

    pub fn status(&self) -> u16 {
        self.status.unwrap_or(self.code.status())
    }

    pub fn body(&self) -> Vec<u8> {
        let mut e = serde_json::Map::new();
        e.insert("code".into(), self.code.as_str().into());
        e.insert("message".into(), self.message.clone().into());
        if let Some(d) = &self.detail {
            e.insert("detail".into(), d.clone());
        }
        serde_json::to_vec(&serde_json::json!({ "errors": [Value::Object(e)] })).unwrap_or_default()
    }

    pub(crate) fn blob_unknown(digest: &impl std::fmt::Display) -> ApiError {
        ApiError::new(ErrorCode::BlobUnknown, "blob unknown to registry")
            .with_detail(serde_json::json!({ "digest": digest.to_string() }))
    }

    pub(crate) fn manifest_unknown(reference: &str) -> ApiError {
        ApiError::new(ErrorCode::ManifestUnknown, "manifest unknown")
            .with_detail(serde_json::json!({ "reference": reference }))
    }

    pub(crate) fn name_unknown(name: &str) -> ApiError {
        ApiError::new(
            ErrorCode::NameUnknown,
            "repository name not known to registry",
        )
        .with_detail(serde_json::json!({ "name": name }))
    }

    pub(crate) fn upload_unknown() -> ApiError {
        ApiError::new(
            ErrorCode::BlobUploadUnknown,
            "blob upload unknown to registry",
        )
    }

    pub(crate) fn digest_invalid(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::DigestInvalid, message)
    }

    pub(crate) fn manifest_invalid(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::ManifestInvalid, message)
    }
}

impl From<StorageError> for ApiError {
    fn from(e: StorageError) -> ApiError {
        match e {
            StorageError::Body(err) => ApiError::new(
                ErrorCode::BlobUploadInvalid,
                format!("reading the request body: {err}"),
            ),
            StorageError::IngestLost { .. } => ApiError::new(
                ErrorCode::BlobUploadInvalid,
                "the upload lost data in a server crash: start it again",
            ),
            StorageError::IngestTooLarge { limit, .. } => ApiError::new(
                ErrorCode::SizeInvalid,
                format!("body exceeds {limit} bytes"),
            )
            .with_status(413),
            other => {
                // The cause goes to the log (see http.rs), not to the client.
                tracing::error!(error = %other, "storage failure");
                ApiError::new(ErrorCode::Unknown, "internal storage error")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_has_the_spec_shape() {
        let e = ApiError::blob_unknown(&"sha256:00");
        let v: Value = serde_json::from_slice(&e.body()).unwrap();
        assert_eq!(v["errors"][0]["code"], "BLOB_UNKNOWN");
        assert_eq!(v["errors"][0]["detail"]["digest"], "sha256:00");
        assert_eq!(e.status(), 404);
        assert_eq!(
            ApiError::new(ErrorCode::BlobUploadInvalid, "x")
                .with_status(416)
                .status(),
            416
        );
    }
}
