//! Media types of image documents and layers (OCI and Docker schema 2), and what they imply.

/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index (multi-platform list).
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// OCI image config.
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// OCI empty descriptor (`{}`), used as the config of artifacts.
pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
pub const OCI_LAYER_TAR_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_LAYER_TAR_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
/// Non-distributable ("foreign") OCI layers: registries may refuse them; pull from `urls`.
pub const OCI_LAYER_NONDISTRIBUTABLE_TAR: &str =
    "application/vnd.oci.image.layer.nondistributable.v1.tar";
pub const OCI_LAYER_NONDISTRIBUTABLE_TAR_GZIP: &str =
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
pub const OCI_LAYER_NONDISTRIBUTABLE_TAR_ZSTD: &str =
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd";

/// Docker image manifest, schema 2.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list (multi-platform), schema 2.
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker schema 1 manifests: obsolete, recognised only to refuse them clearly.
pub const DOCKER_MANIFEST_V1: &str = "application/vnd.docker.distribution.manifest.v1+json";
pub const DOCKER_MANIFEST_V1_SIGNED: &str =
    "application/vnd.docker.distribution.manifest.v1+prettyjws";
/// Docker image config.
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
/// Docker's (only official) layer type: a gzip-compressed tar.
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
/// Uncompressed and zstd Docker layers, as containerd and BuildKit write them.
pub const DOCKER_LAYER_TAR: &str = "application/vnd.docker.image.rootfs.diff.tar";
pub const DOCKER_LAYER_ZSTD: &str = "application/vnd.docker.image.rootfs.diff.tar.zstd";
/// Docker foreign layers (Windows base layers), fetched from `urls`.
pub const DOCKER_FOREIGN_LAYER_GZIP: &str =
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
pub const DOCKER_FOREIGN_LAYER_TAR: &str = "application/vnd.docker.image.rootfs.foreign.diff.tar";

/// How a layer blob is compressed, as its media type says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LayerCompression {
    None,
    Gzip,
    Zstd,
}

/// An image manifest (OCI or Docker schema 2), not an index.
pub fn is_manifest(media_type: &str) -> bool {
    matches!(media_type, OCI_MANIFEST | DOCKER_MANIFEST)
}

/// A multi-platform index (OCI index or Docker manifest list).
pub fn is_index(media_type: &str) -> bool {
    matches!(media_type, OCI_INDEX | DOCKER_MANIFEST_LIST)
}

/// A Docker schema 1 manifest, which strata does not support.
pub fn is_schema1(media_type: &str) -> bool {
    matches!(media_type, DOCKER_MANIFEST_V1 | DOCKER_MANIFEST_V1_SIGNED)
}

/// An image config blob.
pub fn is_config(media_type: &str) -> bool {
    matches!(media_type, OCI_CONFIG | DOCKER_CONFIG)
}

/// A filesystem layer of any known kind (including foreign/non-distributable ones).
pub fn is_layer(media_type: &str) -> bool {
    layer_compression(media_type).is_some()
}

/// A layer registries need not store, fetched from the descriptor's `urls` instead.
pub fn is_foreign_layer(media_type: &str) -> bool {
    matches!(
        media_type,
        OCI_LAYER_NONDISTRIBUTABLE_TAR
            | OCI_LAYER_NONDISTRIBUTABLE_TAR_GZIP
            | OCI_LAYER_NONDISTRIBUTABLE_TAR_ZSTD
            | DOCKER_FOREIGN_LAYER_GZIP
            | DOCKER_FOREIGN_LAYER_TAR
    )
}

/// The compression a layer media type declares; `None` when it is not a layer type.
pub fn layer_compression(media_type: &str) -> Option<LayerCompression> {
    match media_type {
        OCI_LAYER_TAR
        | OCI_LAYER_NONDISTRIBUTABLE_TAR
        | DOCKER_LAYER_TAR
        | DOCKER_FOREIGN_LAYER_TAR => Some(LayerCompression::None),
        OCI_LAYER_TAR_GZIP
        | OCI_LAYER_NONDISTRIBUTABLE_TAR_GZIP
        | DOCKER_LAYER_GZIP
        | DOCKER_FOREIGN_LAYER_GZIP => Some(LayerCompression::Gzip),
        OCI_LAYER_TAR_ZSTD | OCI_LAYER_NONDISTRIBUTABLE_TAR_ZSTD | DOCKER_LAYER_ZSTD => {
            Some(LayerCompression::Zstd)
        }
        _ => None,
    }
}

/// The OCI layer media type for a compression, as strata writes new layers.
pub fn oci_layer(compression: LayerCompression) -> &'static str {
    match compression {
        LayerCompression::None => OCI_LAYER_TAR,
        LayerCompression::Gzip => OCI_LAYER_TAR_GZIP,
        LayerCompression::Zstd => OCI_LAYER_TAR_ZSTD,
    }
}

/// The Docker schema 2 layer media type for a compression (what `docker push` of a
/// Docker-manifest image uses).
pub fn docker_layer(compression: LayerCompression) -> &'static str {
    match compression {
        LayerCompression::None => DOCKER_LAYER_TAR,
        LayerCompression::Gzip => DOCKER_LAYER_GZIP,
        LayerCompression::Zstd => DOCKER_LAYER_ZSTD,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification_table() {
        // (media type, manifest, index, config, layer compression)
        let cases: &[(&str, bool, bool, bool, Option<LayerCompression>)] = &[
            (OCI_MANIFEST, true, false, false, None),
            (DOCKER_MANIFEST, true, false, false, None),
            (OCI_INDEX, false, true, false, None),
            (DOCKER_MANIFEST_LIST, false, true, false, None),
            (OCI_CONFIG, false, false, true, None),
            (DOCKER_CONFIG, false, false, true, None),
            (
                OCI_LAYER_TAR,
                false,
                false,
                false,
                Some(LayerCompression::None),
            ),
            (
                OCI_LAYER_TAR_GZIP,
                false,
                false,
                false,
                Some(LayerCompression::Gzip),
            ),
            (
                OCI_LAYER_TAR_ZSTD,
                false,
                false,
                false,
                Some(LayerCompression::Zstd),
            ),
            (
                DOCKER_LAYER_GZIP,
                false,
                false,
                false,
                Some(LayerCompression::Gzip),
            ),
            (
                DOCKER_LAYER_TAR,
                false,
                false,
                false,
                Some(LayerCompression::None),
            ),
            (
                DOCKER_FOREIGN_LAYER_GZIP,
                false,
                false,
                false,
                Some(LayerCompression::Gzip),
            ),
            (
                OCI_LAYER_NONDISTRIBUTABLE_TAR_ZSTD,
                false,
                false,
                false,
                Some(LayerCompression::Zstd),
            ),
            (DOCKER_MANIFEST_V1_SIGNED, false, false, false, None),
            ("application/json", false, false, false, None),
        ];
        for &(mt, manifest, index, config, compression) in cases {
            assert_eq!(is_manifest(mt), manifest, "{mt}");
            assert_eq!(is_index(mt), index, "{mt}");
            assert_eq!(is_config(mt), config, "{mt}");
            assert_eq!(layer_compression(mt), compression, "{mt}");
            assert_eq!(is_layer(mt), compression.is_some(), "{mt}");
        }
        assert!(is_foreign_layer(DOCKER_FOREIGN_LAYER_GZIP));
        assert!(!is_foreign_layer(DOCKER_LAYER_GZIP));
        assert!(is_schema1(DOCKER_MANIFEST_V1));
    }

    #[test]
    fn writing_types_round_trip_through_compression() {
        for c in [
            LayerCompression::None,
            LayerCompression::Gzip,
            LayerCompression::Zstd,
        ] {
            assert_eq!(layer_compression(oci_layer(c)), Some(c));
            assert_eq!(layer_compression(docker_layer(c)), Some(c));
        }
    }
}
