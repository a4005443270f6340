//! What pulls and pushes report as they go. The binary renders it as Docker does (a line
//! per layer, bars on a terminal, plain lines otherwise); libraries never print.

use strata_oci::{Digest, Reference};

/// One step of a layer's transfer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LayerStatus {
    /// Pull: the blob is already in the store.
    AlreadyExists,
    /// Pull: queued (`Pulling fs layer`).
    Queued,
    /// Push: queued (`Preparing`).
    Preparing,
    /// Waiting for a free transfer slot.
    Waiting,
    /// Pull: continuing an interrupted download from this many bytes.
    Resuming { from: u64 },
    /// Pull: all bytes received, digest being checked.
    Verifying,
    /// Pull: the blob is stored and verified.
    Downloaded,
    /// Pull: unpacking into a snapshot.
    Extracting,
    /// Pull: the layer is ready.
    PullComplete,
    /// A transfer failed and is tried again.
    Retrying { attempt: u32, error: String },
    /// Push: the registry already has it.
    LayerAlreadyExists,
    /// Push: the registry mounted it from another repository.
    Mounted { from: String },
    /// Push: uploaded.
    Pushed,
}

/// An event of a pull or push.
#[derive(Debug, Clone, Copy)]
pub enum TransferEvent<'a> {
    /// An image to run or build from is not in the store and will be pulled
    /// (`Unable to find image 'busybox:latest' locally`).
    NotFoundLocally { reference: &'a Reference },
    /// A pull of `reference` starts (`latest: Pulling from library/busybox`).
    PullStarted { reference: &'a Reference },
    /// A push to `reference` starts (`The push refers to repository [...]`).
    PushStarted { reference: &'a Reference },
    /// A layer changed state. `id` is the layer's blob digest, or its diff_id before a
    /// push knows the compressed digest.
    Layer {
        id: &'a Digest,
        status: &'a LayerStatus,
    },
    /// Bytes of a layer transferred so far, of `total` when known.
    Progress {
        id: &'a Digest,
        done: u64,
        total: Option<u64>,
    },
    /// Bytes of a layer uploaded so far.
    Pushing {
        id: &'a Digest,
        done: u64,
        total: Option<u64>,
    },
    /// A pull ended: the manifest (or index) digest and whether anything new was stored.
    Pulled {
        reference: &'a Reference,
        digest: &'a Digest,
        fresh: bool,
    },
    /// A push ended: the manifest digest and size.
    Pushed {
        reference: &'a Reference,
        digest: &'a Digest,
        size: u64,
    },
}

/// Receives the events of transfers (possibly from several threads at once).
pub trait TransferReporter: Sync {
    fn event(&self, event: TransferEvent<'_>);
}

/// Reports nothing.
#[derive(Debug, Default)]
pub struct SilentTransfer;

impl TransferReporter for SilentTransfer {
    fn event(&self, _: TransferEvent<'_>) {}
}
