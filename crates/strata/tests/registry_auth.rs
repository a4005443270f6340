//! Authentication and authorization: anonymous / reader / writer / deleter × every route,
//! with htpasswd Basic auth and with the Bearer token flow; token scopes are honoured and a
//! refusal never tells whether a private repository exists.

#[path = "common/registry.rs"]
mod registry;

use registry::*;

const USERS: [&str; 4] = ["reader", "writer", "deleter", "admin"];

fn htpasswd(dir: &std::path::Path) -> std::path::PathBuf {
    let file = dir.join("htpasswd");
    for user in USERS {
        add_user(&file, user);
    }
    file
}

fn config(mode: &str, htpasswd: &std::path::Path) -> String {
    format!(
        r#"
[auth]
mode = "{mode}"
htpasswd = "{}"
[[auth.access]]
repositories = ["app", "app/**"]
users = ["reader"]
actions = ["pull"]
[[auth.access]]
repositories = ["app", "app/**"]
users = ["writer"]
actions = ["pull", "push"]
[[auth.access]]
repositories = ["app", "app/**"]
users = ["deleter"]
actions = ["pull", "push", "delete"]
[[auth.access]]
repositories = ["public"]
anonymous = true
actions = ["pull"]
[[auth.access]]
repositories = ["**"]
users = ["admin"]
actions = ["pull", "push", "delete"]
"#,
        htpasswd.display()
    )
}

fn basic(user: &str) -> String {
    use base64_like::encode;
    format!("Basic {}", encode(format!("{user}:{user}-pw").as_bytes()))
}

/// A tiny base64 encoder (the tests have no base64 dependency).
mod base64_like {
    pub(crate) fn encode(data: &[u8]) -> String {
        const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::new();
        for c in data.chunks(3) {
            let b = [c[0], *c.get(1).unwrap_or(&0), *c.get(2).unwrap_or(&0)];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for i in 0..4 {
                if i <= c.len() {
                    out.push(T[(n >> (18 - 6 * i)) as usize & 63] as char);
                } else {
                    out.push('=');
                }
            }
        }
        out
    }
}

/// Pushes as admin (Basic is accepted in both modes).
fn seed(s: &Served, admin: &str) -> (String, String, String) {
    let h = [("authorization", admin)];
    let put_blob = |repo: &str, data: &[u8]| {
        let d = sha256(data);
        let r = s.call(
            "POST",
            &format!("/v2/{repo}/blobs/uploads/?digest={d}"),
            &h,
            data,
        );
        assert_eq!(r.status, 201, "{}", r.text());
        d
    };
    let mut manifest = String::new();
    for repo in ["app", "public", "secret"] {
        let c = put_blob(repo, b"{}");
        let l = put_blob(repo, format!("layer of {repo}").as_bytes());
        manifest = oci_manifest(&c, 2, &[(&l, format!("layer of {repo}").len())]);
        let r = s.call(
            "PUT",
            &format!("/v2/{repo}/manifests/v1"),
            &[("authorization", admin), ("content-type", OCI_MANIFEST)],
            manifest.as_bytes(),
        );
        assert_eq!(r.status, 201, "{}", r.text());
    }
    let layer = sha256(b"layer of app");
    (sha256(manifest.as_bytes()), layer, manifest)
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Need {
    Login,
    Pull,
    Push,
    Delete,
}

/// A route, what it needs, and a request for it: (need, method, path, body, content type).
type RouteCase = (Need, &'static str, String, Vec<u8>, Option<&'static str>);

/// Every route.
fn routes(layer: &str, upload: &str, manifest: &str) -> Vec<RouteCase> {
    vec![
        (Need::Login, "GET", "/v2/".into(), vec![], None),
        (Need::Pull, "GET", "/v2/app/tags/list".into(), vec![], None),
        (
            Need::Pull,
            "GET",
            "/v2/app/manifests/v1".into(),
            vec![],
            None,
        ),
        (
            Need::Pull,
            "HEAD",
            "/v2/app/manifests/v1".into(),
            vec![],
            None,
        ),
        (
            Need::Pull,
            "GET",
            format!("/v2/app/blobs/{layer}"),
            vec![],
            None,
        ),
        (
            Need::Pull,
            "HEAD",
            format!("/v2/app/blobs/{layer}"),
            vec![],
            None,
        ),
        (
            Need::Pull,
            "GET",
            format!("/v2/app/referrers/{layer}"),
            vec![],
            None,
        ),
        (
            Need::Push,
            "POST",
            "/v2/app/blobs/uploads/".into(),
            vec![],
            None,
        ),
        (Need::Push, "GET", upload.into(), vec![], None),
        (Need::Push, "PATCH", upload.into(), b"abc".to_vec(), None),
        (
            Need::Push,
            "PUT",
            "/v2/app/manifests/v2".into(),
            manifest.as_bytes().to_vec(),
            Some(OCI_MANIFEST),
        ),
        (
            Need::Delete,
            "DELETE",
            "/v2/app/manifests/v2".into(),
            vec![],
            None,
        ),
        (
            Need::Delete,
            "DELETE",
            format!("/v2/app/blobs/{}", sha256(b"x")),
            vec![],
            None,
        ),
        (
            Need::Delete,
            "DELETE",
            "/v2/app/nested/".into(),
            vec![],
            None,
        ),
    ]
}

fn allowed(user: Option<&str>, need: Need) -> bool {
    match (user, need) {
        (None, _) => false,
        (Some(_), Need::Login | Need::Pull) => true,
        (Some(u), Need::Push) => u == "writer" || u == "deleter",
        (Some(u), Need::Delete) => u == "deleter",
    }
}

fn start_upload(s: &Served, admin: &str) -> String {
    let r = s.call(
        "POST",
        "/v2/app/blobs/uploads/",
        &[("authorization", admin)],
        b"",
    );
    assert_eq!(r.status, 202);
    r.header("location").unwrap().to_string()
}

#[test]
fn basic_auth_matrix() {
    let dir = tempfile::tempdir().unwrap();
    let file = htpasswd(dir.path());
    let s = Served::start(&config("basic", &file));
    let admin = basic("admin");
    let (_, layer, manifest) = seed(&s, &admin);
    let upload = start_upload(&s, &admin);
    for user in [None, Some("reader"), Some("writer"), Some("deleter")] {
        let auth = user.map(basic);
        for (need, method, path, body, ct) in routes(&layer, &upload, &manifest) {
            let mut h: Vec<(&str, &str)> = Vec::new();
            if let Some(a) = &auth {
                h.push(("authorization", a));
            }
            if let Some(ct) = ct {
                h.push(("content-type", ct));
            }
            let r = s.call(method, &path, &h, &body);
            let denied = r.status == 401 || r.status == 403;
            assert_eq!(
                !denied,
                allowed(user, need),
                "{user:?} {method} {path}: {} {}",
                r.status,
                r.text()
            );
            if denied {
                match user {
                    None => {
                        assert_eq!(r.status, 401);
                        assert_eq!(
                            r.header("www-authenticate"),
                            Some("Basic realm=\"strata registry\"")
                        );
                        if method != "HEAD" {
                            assert_eq!(r.code(), "UNAUTHORIZED");
                        }
                    }
                    Some(_) => {
                        assert_eq!(r.status, 403);
                        if method != "HEAD" {
                            assert_eq!(r.code(), "DENIED");
                        }
                    }
                }
            }
        }
    }
    // wrong password, malformed header
    let r = s.call("GET", "/v2/", &[("authorization", &basic("nobody"))], b"");
    assert_eq!(r.status, 401);
    let r = s.call(
        "GET",
        "/v2/app/tags/list",
        &[("authorization", "Basic %%%")],
        b"",
    );
    assert_eq!(r.status, 401);
    // anonymous pull where the rules allow it, and nothing more
    assert_eq!(s.get("/v2/public/manifests/v1").status, 200);
    assert_eq!(
        s.call("POST", "/v2/public/blobs/uploads/", &[], b"").status,
        401
    );
    // the catalog shows what the client may pull
    let r = s.call(
        "GET",
        "/v2/_catalog",
        &[("authorization", &basic("reader"))],
        b"",
    );
    assert_eq!(
        r.json()["repositories"],
        serde_json::json!(["app", "public"])
    );
    let r = s.call("GET", "/v2/_catalog", &[("authorization", &admin)], b"");
    assert_eq!(
        r.json()["repositories"],
        serde_json::json!(["app", "public", "secret"])
    );
    assert_eq!(s.get("/v2/_catalog").status, 401);
    // mounting from a repository the client cannot pull falls back to an upload
    let secret_layer = sha256(b"layer of secret");
    let r = s.call(
        "POST",
        &format!("/v2/app/blobs/uploads/?mount={secret_layer}&from=secret"),
        &[("authorization", &basic("writer"))],
        b"",
    );
    assert_eq!(r.status, 202);
    assert_eq!(
        s.call(
            "HEAD",
            &format!("/v2/app/blobs/{secret_layer}"),
            &[("authorization", &admin)],
            b""
        )
        .status,
        404
    );
}

#[test]
fn a_refusal_does_not_reveal_whether_a_repository_exists() {
    let dir = tempfile::tempdir().unwrap();
    let file = htpasswd(dir.path());
    for mode in ["basic", "token"] {
        let s = Served::start(&config(mode, &file));
        let admin = basic("admin");
        let (m, layer, _) = seed(&s, &admin);
        for user in [None, Some("reader")] {
            let auth = user.map(basic);
            let h: Vec<(&str, &str)> = auth.iter().map(|a| ("authorization", a.as_str())).collect();
            for (exists, missing) in [
                (
                    "/v2/secret/manifests/v1".to_string(),
                    "/v2/nosuch/manifests/v1".to_string(),
                ),
                (
                    format!("/v2/secret/manifests/{m}"),
                    format!("/v2/nosuch/manifests/{m}"),
                ),
                ("/v2/secret/tags/list".into(), "/v2/nosuch/tags/list".into()),
                (
                    format!("/v2/secret/blobs/{layer}"),
                    format!("/v2/nosuch/blobs/{layer}"),
                ),
            ] {
                let a = s.call("GET", &exists, &h, b"");
                let b = s.call("GET", &missing, &h, b"");
                assert!(
                    a.status == 401 || a.status == 403,
                    "{mode} {user:?} {exists}: {}",
                    a.status
                );
                assert_eq!(a.status, b.status, "{mode} {user:?} {exists}");
                assert_eq!(a.body, b.body, "{mode} {user:?} {exists}");
                assert_eq!(
                    a.header("www-authenticate")
                        .map(|v| v.replace("secret", "X")),
                    b.header("www-authenticate")
                        .map(|v| v.replace("nosuch", "X")),
                );
            }
        }
    }
}

fn token(s: &Served, user: Option<&str>, scopes: &[&str]) -> String {
    let mut q = String::from("/token?service=strata-registry");
    for sc in scopes {
        q.push_str("&scope=");
        q.push_str(&sc.replace(':', "%3A").replace('/', "%2F"));
    }
    let auth = user.map(basic);
    let h: Vec<(&str, &str)> = auth.iter().map(|a| ("authorization", a.as_str())).collect();
    let r = s.call("GET", &q, &h, b"");
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["token"], v["access_token"]);
    assert!(v["expires_in"].as_u64().unwrap() > 0);
    v["token"].as_str().unwrap().to_string()
}

#[test]
fn token_flow_matrix_and_scopes() {
    let dir = tempfile::tempdir().unwrap();
    let file = htpasswd(dir.path());
    let s = Served::start(&config("token", &file));
    let admin = basic("admin");
    let (_, layer, manifest) = seed(&s, &admin);
    let upload = start_upload(&s, &admin);

    // the challenge points at the built-in token service, with the scope the route needs
    let r = s.get("/v2/app/manifests/v1");
    assert_eq!(r.status, 401);
    let challenge = r.header("www-authenticate").unwrap().to_string();
    assert_eq!(
        challenge,
        format!(
            "Bearer realm=\"http://{}/token\",service=\"strata-registry\",scope=\"repository:app:pull\"",
            s.addr
        )
    );
    let r = s.get("/v2/");
    assert_eq!(
        r.header("www-authenticate").unwrap(),
        format!(
            "Bearer realm=\"http://{}/token\",service=\"strata-registry\"",
            s.addr
        )
    );

    for user in [None, Some("reader"), Some("writer"), Some("deleter")] {
        // each client asks for everything; the token carries what the rules allow
        let t = token(
            &s,
            user,
            &[
                "repository:app:pull,push,delete",
                "repository:app/nested:pull,push,delete",
            ],
        );
        let bearer = format!("Bearer {t}");
        for (need, method, path, body, ct) in routes(&layer, &upload, &manifest) {
            let mut h: Vec<(&str, &str)> = vec![("authorization", &bearer)];
            if let Some(ct) = ct {
                h.push(("content-type", ct));
            }
            let r = s.call(method, &path, &h, &body);
            let denied = r.status == 401 || r.status == 403;
            let expect = match need {
                // any valid token logs in, even an anonymous one
                Need::Login => true,
                n => allowed(user, n),
            };
            assert_eq!(
                !denied,
                expect,
                "{user:?} {method} {path}: {} {}",
                r.status,
                r.text()
            );
            if denied {
                assert_eq!(r.status, 401);
                assert!(
                    r.header("www-authenticate")
                        .unwrap()
                        .contains("error=\"insufficient_scope\""),
                    "{user:?} {method} {path}"
                );
            }
        }
    }
    // a token grants only the scopes asked for: the deleter's pull-only token cannot push
    let t = token(&s, Some("deleter"), &["repository:app:pull"]);
    let h = [("authorization", format!("Bearer {t}"))];
    let h: Vec<(&str, &str)> = h.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(s.call("GET", "/v2/app/manifests/v1", &h, b"").status, 200);
    assert_eq!(
        s.call("POST", "/v2/app/blobs/uploads/", &h, b"").status,
        401
    );
    // ... and only for the repositories named
    assert_eq!(
        s.call("GET", "/v2/public/manifests/v1", &h, b"").status,
        401
    );
    // anonymous tokens carry the anonymous rules
    let t = token(&s, None, &["repository:public:pull,push"]);
    let h = [("authorization", format!("Bearer {t}"))];
    let h: Vec<(&str, &str)> = h.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(
        s.call("GET", "/v2/public/manifests/v1", &h, b"").status,
        200
    );
    assert_eq!(
        s.call("POST", "/v2/public/blobs/uploads/", &h, b"").status,
        401
    );
    // a forged or tampered token is refused
    let mut bad = token(&s, Some("admin"), &["repository:secret:pull"]);
    bad.replace_range(bad.len() - 4.., "AAAA");
    let r = s.call(
        "GET",
        "/v2/secret/manifests/v1",
        &[("authorization", &format!("Bearer {bad}"))],
        b"",
    );
    assert_eq!(r.status, 401);
    // wrong credentials at the token service
    let r = s.call(
        "GET",
        "/token?service=strata-registry",
        &[("authorization", &basic("nobody"))],
        b"",
    );
    assert_eq!(r.status, 401);
    // OAuth2 password grant, as containerd uses
    let r = s.call(
        "POST",
        "/token",
        &[("content-type", "application/x-www-form-urlencoded")],
        b"grant_type=password&username=reader&password=reader-pw&service=strata-registry&scope=repository%3Aapp%3Apull",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let t = r.json()["access_token"].as_str().unwrap().to_string();
    let r = s.call(
        "GET",
        "/v2/app/manifests/v1",
        &[("authorization", &format!("Bearer {t}"))],
        b"",
    );
    assert_eq!(r.status, 200);
    let r = s.call(
        "POST",
        "/token",
        &[("content-type", "application/x-www-form-urlencoded")],
        b"grant_type=password&username=reader&password=wrong",
    );
    assert_eq!(r.status, 401);
    // catalog: needs the registry:catalog:* scope, then shows what the user may pull
    let t = token(&s, Some("reader"), &["registry:catalog:*"]);
    let r = s.call(
        "GET",
        "/v2/_catalog",
        &[("authorization", &format!("Bearer {t}"))],
        b"",
    );
    assert_eq!(
        r.json()["repositories"],
        serde_json::json!(["app", "public"])
    );
    let t = token(&s, Some("reader"), &["repository:app:pull"]);
    let r = s.call(
        "GET",
        "/v2/_catalog",
        &[("authorization", &format!("Bearer {t}"))],
        b"",
    );
    assert_eq!(r.status, 401);
    // the signing key was generated once, private to root
    use std::os::unix::fs::PermissionsExt;
    let key = s.storage().join("auth/token-key.pem");
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
}
