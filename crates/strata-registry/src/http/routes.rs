//! URL paths to routes. Repository names hold slashes, so a route is found from the end of
//! the path (`…/manifests/<ref>`, `…/blobs/uploads/<id>`), as Distribution's patterns do.

/// A request's route, before authorization.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Route {
    /// `/v2/`
    Base,
    /// `/v2/_catalog`
    Catalog,
    /// `/v2/<name>/tags/list`
    Tags {
        name: String,
    },
    /// `/v2/<name>/manifests/<reference>`
    Manifest {
        name: String,
        reference: String,
    },
    /// `/v2/<name>/blobs/<digest>`
    Blob {
        name: String,
        digest: String,
    },
    /// `/v2/<name>/blobs/uploads/`
    UploadStart {
        name: String,
    },
    /// `/v2/<name>/blobs/uploads/<id>`
    Upload {
        name: String,
        id: String,
    },
    /// `/v2/<name>/referrers/<digest>`
    Referrers {
        name: String,
        digest: String,
    },
    /// `/v2/<name>/` (DELETE removes the repository)
    Repository {
        name: String,
    },
    /// `/token`
    Token,
    /// `/healthz`
    Health,
    /// `/metrics`
    Metrics,
    NotFound,
}

impl Route {
    pub(crate) fn parse(path: &str) -> Route {
        match path {
            "/v2" | "/v2/" => return Route::Base,
            "/v2/_catalog" => return Route::Catalog,
            "/token" => return Route::Token,
            "/healthz" => return Route::Health,
            "/metrics" => return Route::Metrics,
            _ => {}
        }
        let Some(rest) = path.strip_prefix("/v2/") else {
            return Route::NotFound;
        };
        let last_segment = |s: &str| !s.is_empty() && !s.contains('/');
        if let Some(name) = rest.strip_suffix("/tags/list") {
            return Route::Tags { name: name.into() };
        }
        if let Some(name) = rest
            .strip_suffix("/blobs/uploads/")
            .or_else(|| rest.strip_suffix("/blobs/uploads"))
        {
            return Route::UploadStart { name: name.into() };
        }
        if let Some((name, id)) = rest.rsplit_once("/blobs/uploads/") {
            if last_segment(id) {
                return Route::Upload {
                    name: name.into(),
                    id: id.into(),
                };
            }
        }
        for (marker, kind) in [("/manifests/", 0), ("/blobs/", 1), ("/referrers/", 2)] {
            if let Some((name, last)) = rest.rsplit_once(marker) {
                if last_segment(last) {
                    let (name, last) = (name.to_string(), last.to_string());
                    return match kind {
                        0 => Route::Manifest {
                            name,
                            reference: last,
                        },
                        1 => Route::Blob { name, digest: last },
                        _ => Route::Referrers { name, digest: last },
                    };
                }
            }
        }
        if let Some(name) = rest.strip_suffix('/') {
            if !name.is_empty() {
                return Route::Repository { name: name.into() };
            }
        }
        Route::NotFound
    }

    /// The repository a route is about.
    pub(crate) fn repository(&self) -> Option<&str> {
        match self {
            Route::Tags { name }
            | Route::Manifest { name, .. }
            | Route::Blob { name, .. }
            | Route::UploadStart { name }
            | Route::Upload { name, .. }
            | Route::Referrers { name, .. }
            | Route::Repository { name } => Some(name),
            _ => None,
        }
    }

    /// A short label for metrics and logs.
    pub(crate) fn label(&self) -> &'static str {
        match self {
            Route::Base => "base",
            Route::Catalog => "catalog",
            Route::Tags { .. } => "tags",
            Route::Manifest { .. } => "manifest",
            Route::Blob { .. } => "blob",
            Route::UploadStart { .. } | Route::Upload { .. } => "upload",
            Route::Referrers { .. } => "referrers",
            Route::Repository { .. } => "repository",
            Route::Token => "token",
            Route::Health => "healthz",
            Route::Metrics => "metrics",
            Route::NotFound => "unknown",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Route::*;
    use super::*;

    #[test]
    fn routes_are_found_from_the_end() {
        let s = |x: &str| x.to_string();
        assert_eq!(Route::parse("/v2/"), Base);
        assert_eq!(Route::parse("/v2/_catalog"), Catalog);
        assert_eq!(Route::parse("/v2/a/b/tags/list"), Tags { name: s("a/b") });
        assert_eq!(
            Route::parse("/v2/a/manifests/b/manifests/latest"),
            Manifest {
                name: s("a/manifests/b"),
                reference: s("latest")
            }
        );
        assert_eq!(
            Route::parse("/v2/a/blobs/sha256:00"),
            Blob {
                name: s("a"),
                digest: s("sha256:00")
            }
        );
        assert_eq!(
            Route::parse("/v2/x/y/blobs/uploads/"),
            UploadStart { name: s("x/y") }
        );
        assert_eq!(
            Route::parse("/v2/x/blobs/uploads"),
            UploadStart { name: s("x") }
        );
        assert_eq!(
            Route::parse("/v2/x/blobs/uploads/123-abc"),
            Upload {
                name: s("x"),
                id: s("123-abc")
            }
        );
        assert_eq!(
            Route::parse("/v2/x/referrers/sha256:00"),
            Referrers {
                name: s("x"),
                digest: s("sha256:00")
            }
        );
        assert_eq!(Route::parse("/v2/x/y/"), Repository { name: s("x/y") });
        assert_eq!(
            Route::parse("/v2/x/manifests/"),
            Repository {
                name: s("x/manifests")
            }
        );
        assert_eq!(Route::parse("/v2/x"), NotFound);
        assert_eq!(Route::parse("/v1/x"), NotFound);
        assert_eq!(Route::parse("/token"), Token);
    }
}
