//! `strata registry serve` against the OCI distribution spec: every route, its headers and
//! error codes, pagination, chunked uploads, ranges, mounts, deletes and referrers.

#[path = "common/registry.rs"]
mod registry;

use registry::*;

#[test]
fn base_route_and_common_headers() {
    let s = Served::start("");
    let r = s.get("/v2/");
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), serde_json::json!({}));
    assert_eq!(
        r.header("docker-distribution-api-version"),
        Some("registry/2.0")
    );
    assert!(r.header("x-request-id").is_some());
    // a client's own request id is echoed
    let r = s.call("GET", "/v2/", &[("x-request-id", "abc-123")], b"");
    assert_eq!(r.header("x-request-id"), Some("abc-123"));
    assert_eq!(s.get("/v1/nothing").status, 404);
    assert_eq!(s.get("/healthz").status, 200);
    // unsupported method on a route
    let r = s.call("POST", "/v2/a/tags/list", &[], b"");
    assert_eq!(r.status, 405);
    assert_eq!(r.code(), "UNSUPPORTED");
}

#[test]
fn monolithic_blob_push_pull_and_verification() {
    let s = Served::start("");
    let data = b"some layer bytes".to_vec();
    let d = sha256(&data);
    let r = s.call(
        "POST",
        &format!("/v2/team/app/blobs/uploads/?digest={d}"),
        &[],
        &data,
    );
    assert_eq!(r.status, 201);
    assert_eq!(
        r.header("location"),
        Some(format!("/v2/team/app/blobs/{d}").as_str())
    );
    assert_eq!(r.header("docker-content-digest"), Some(d.as_str()));

    let h = s.call("HEAD", &format!("/v2/team/app/blobs/{d}"), &[], b"");
    assert_eq!(h.status, 200);
    assert_eq!(h.header("content-length"), Some("16"));
    assert_eq!(h.header("docker-content-digest"), Some(d.as_str()));
    let g = s.get(&format!("/v2/team/app/blobs/{d}"));
    assert_eq!(g.body, data);
    assert_eq!(g.header("content-type"), Some("application/octet-stream"));

    // blobs are scoped to the repositories that link them
    let other = s.get(&format!("/v2/other/blobs/{d}"));
    assert_eq!(other.status, 404);
    assert_eq!(other.code(), "BLOB_UNKNOWN");

    // a wrong digest is refused and nothing becomes visible under either digest
    let wrong = sha256(b"something else");
    let r = s.call(
        "POST",
        &format!("/v2/team/app/blobs/uploads/?digest={wrong}"),
        &[],
        b"not that",
    );
    assert_eq!(r.status, 400);
    assert_eq!(r.code(), "DIGEST_INVALID");
    assert_eq!(
        s.call("HEAD", &format!("/v2/team/app/blobs/{wrong}"), &[], b"")
            .status,
        404
    );
    assert_eq!(
        s.call(
            "HEAD",
            &format!("/v2/team/app/blobs/{}", sha256(b"not that")),
            &[],
            b""
        )
        .status,
        404
    );
    // malformed and unsupported digests
    let r = s.call(
        "POST",
        "/v2/team/app/blobs/uploads/?digest=sha256:xyz",
        &[],
        b"x",
    );
    assert_eq!(r.code(), "DIGEST_INVALID");
    assert_eq!(
        s.get("/v2/team/app/blobs/sha256:abc").code(),
        "DIGEST_INVALID"
    );
    assert_eq!(
        s.get(&format!("/v2/team/app/blobs/sha512:{}", "a".repeat(128)))
            .status,
        404
    );
    // the empty blob
    let e = s.push_blob("team/app", b"");
    assert_eq!(s.get(&format!("/v2/team/app/blobs/{e}")).body, b"");
    registry::assert_blobs_verify(&s.storage());
}

fn start_upload(s: &Served, repo: &str) -> String {
    let r = s.call("POST", &format!("/v2/{repo}/blobs/uploads/"), &[], b"");
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(r.header("range"), Some("0-0"));
    let loc = r.header("location").unwrap().to_string();
    assert!(loc.starts_with(&format!("/v2/{repo}/blobs/uploads/")));
    assert_eq!(r.header("docker-upload-uuid"), loc.rsplit('/').next());
    loc
}

#[test]
fn chunked_upload_with_content_range_and_status() {
    let s = Served::start("");
    let data: Vec<u8> = (0..30u8).collect();
    let d = sha256(&data);
    let loc = start_upload(&s, "chunky");

    let r = s.call(
        "PATCH",
        &loc,
        &[
            ("content-range", "0-9"),
            ("content-type", "application/octet-stream"),
        ],
        &data[..10],
    );
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(r.header("range"), Some("0-9"));
    let st = s.get(&loc);
    assert_eq!(st.status, 204);
    assert_eq!(st.header("range"), Some("0-9"));
    assert_eq!(st.header("location"), Some(loc.as_str()));

    // out of order: 416, nothing changes
    let r = s.call("PATCH", &loc, &[("content-range", "5-14")], &data[5..15]);
    assert_eq!(r.status, 416);
    assert_eq!(r.code(), "BLOB_UPLOAD_INVALID");
    // a range that lies about the body length: 416, nothing changes
    let r = s.call("PATCH", &loc, &[("content-range", "10-29")], &data[10..15]);
    assert_eq!(r.status, 416);
    assert_eq!(s.get(&loc).header("range"), Some("0-9"));

    // a streamed chunk without Content-Range appends
    let r = s.call("PATCH", &loc, &[], &data[10..20]);
    assert_eq!(r.status, 202);
    assert_eq!(r.header("range"), Some("0-19"));

    // the last chunk comes with the PUT
    let r = s.call(
        "PUT",
        &format!("{loc}?digest={d}"),
        &[("content-range", "20-29")],
        &data[20..],
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.header("docker-content-digest"), Some(d.as_str()));
    assert_eq!(s.get(&format!("/v2/chunky/blobs/{d}")).body, data);
    // the session is gone
    let r = s.get(&loc);
    assert_eq!(r.status, 404);
    assert_eq!(r.code(), "BLOB_UPLOAD_UNKNOWN");

    // PUT without a digest, or with the wrong one
    let loc = start_upload(&s, "chunky");
    s.call("PATCH", &loc, &[], b"abc");
    let r = s.call("PUT", &loc, &[], b"");
    assert_eq!(r.code(), "DIGEST_INVALID");
    let r = s.call("PUT", &format!("{loc}?digest={}", sha256(b"abd")), &[], b"");
    assert_eq!(r.status, 400);
    assert_eq!(r.code(), "DIGEST_INVALID");
}

#[test]
fn upload_sessions_are_private_to_their_repository_and_cancellable() {
    let s = Served::start("");
    let loc = start_upload(&s, "one");
    let id = loc.rsplit('/').next().unwrap();
    let r = s.get(&format!("/v2/two/blobs/uploads/{id}"));
    assert_eq!(r.code(), "BLOB_UPLOAD_UNKNOWN");
    let r = s.call("PATCH", &format!("/v2/two/blobs/uploads/{id}"), &[], b"x");
    assert_eq!(r.code(), "BLOB_UPLOAD_UNKNOWN");
    assert_eq!(s.get("/v2/one/blobs/uploads/../../etc").status, 404);
    let r = s.call("DELETE", &loc, &[], b"");
    assert_eq!(r.status, 204);
    assert_eq!(s.get(&loc).code(), "BLOB_UPLOAD_UNKNOWN");
    assert_eq!(
        s.call("DELETE", &loc, &[], b"").code(),
        "BLOB_UPLOAD_UNKNOWN"
    );
}

#[test]
fn range_requests_on_blobs() {
    let s = Served::start("");
    let data: Vec<u8> = (0..100u8).collect();
    let d = s.push_blob("r", &data);
    let path = format!("/v2/r/blobs/{d}");
    let r = s.call("GET", &path, &[("range", "bytes=10-19")], b"");
    assert_eq!(r.status, 206);
    assert_eq!(r.body, &data[10..20]);
    assert_eq!(r.header("content-range"), Some("bytes 10-19/100"));
    let r = s.call("GET", &path, &[("range", "bytes=-5")], b"");
    assert_eq!(r.body, &data[95..]);
    let r = s.call("GET", &path, &[("range", "bytes=90-")], b"");
    assert_eq!(r.body, &data[90..]);
    let r = s.call("GET", &path, &[("range", "bytes=100-")], b"");
    assert_eq!(r.status, 416);
    assert_eq!(r.header("content-range"), Some("bytes */100"));
    assert_eq!(
        s.call("HEAD", &path, &[], b"").header("accept-ranges"),
        Some("bytes")
    );
}

#[test]
fn cross_repository_mount() {
    let s = Served::start("");
    let d = s.push_blob("src/repo", b"shared layer");
    let r = s.call(
        "POST",
        &format!("/v2/dst/repo/blobs/uploads/?mount={d}&from=src/repo"),
        &[],
        b"",
    );
    assert_eq!(r.status, 201);
    assert_eq!(r.header("docker-content-digest"), Some(d.as_str()));
    assert_eq!(
        s.get(&format!("/v2/dst/repo/blobs/{d}")).body,
        b"shared layer"
    );
    // a blob the source does not have: an upload session instead
    let missing = sha256(b"nope");
    let r = s.call(
        "POST",
        &format!("/v2/dst/repo/blobs/uploads/?mount={missing}&from=src/repo"),
        &[],
        b"",
    );
    assert_eq!(r.status, 202);
    assert!(r.header("location").unwrap().contains("/blobs/uploads/"));
}

#[test]
fn manifests_are_validated_and_served_byte_exact() {
    let s = Served::start("");
    let (m, d) = s.push_image("img", "v1", b"layer one");
    for reference in ["v1", d.as_str()] {
        let r = s.get(&format!("/v2/img/manifests/{reference}"));
        assert_eq!(r.status, 200);
        assert_eq!(r.body, m, "served byte-exact");
        assert_eq!(r.header("content-type"), Some(OCI_MANIFEST));
        assert_eq!(r.header("docker-content-digest"), Some(d.as_str()));
        let h = s.call("HEAD", &format!("/v2/img/manifests/{reference}"), &[], b"");
        assert_eq!(h.status, 200);
        assert_eq!(
            h.header("content-length"),
            Some(m.len().to_string().as_str())
        );
    }
    // the same bytes with other whitespace are another manifest, kept as sent
    let pretty =
        serde_json::to_vec_pretty(&serde_json::from_slice::<serde_json::Value>(&m).unwrap())
            .unwrap();
    let r = s.put_manifest("img", "pretty", OCI_MANIFEST, &pretty);
    assert_eq!(r.status, 201);
    assert_eq!(s.get("/v2/img/manifests/pretty").body, pretty);

    // unknown manifests
    let r = s.get("/v2/img/manifests/nope");
    assert_eq!(r.status, 404);
    assert_eq!(r.code(), "MANIFEST_UNKNOWN");
    assert_eq!(
        s.get(&format!("/v2/img/manifests/{}", sha256(b"x"))).code(),
        "MANIFEST_UNKNOWN"
    );

    // a manifest naming blobs the repository does not have
    let c = s.push_blob("img", b"{}");
    let missing = sha256(b"missing layer");
    let bad = oci_manifest(&c, 2, &[(&missing, 13)]);
    let r = s.put_manifest("img", "bad", OCI_MANIFEST, bad.as_bytes());
    assert_eq!(r.status, 400);
    assert_eq!(r.code(), "MANIFEST_BLOB_UNKNOWN");
    assert_eq!(s.get("/v2/img/manifests/bad").status, 404);
    // ... or in another repository only
    let elsewhere = s.push_blob("elsewhere", b"private layer");
    let bad = oci_manifest(&c, 2, &[(&elsewhere, 13)]);
    assert_eq!(
        s.put_manifest("img", "bad", OCI_MANIFEST, bad.as_bytes())
            .code(),
        "MANIFEST_BLOB_UNKNOWN"
    );
    // a size that lies
    let l = s.push_blob("img", b"12345");
    let bad = oci_manifest(&c, 2, &[(&l, 6)]);
    assert_eq!(
        s.put_manifest("img", "bad", OCI_MANIFEST, bad.as_bytes())
            .code(),
        "MANIFEST_INVALID"
    );
    // schema 1, garbage, a digest that does not match, a media type that contradicts
    let schema1 = br#"{"schemaVersion":1,"name":"img","tag":"x","fsLayers":[]}"#;
    let r = s.put_manifest(
        "img",
        "old",
        "application/vnd.docker.distribution.manifest.v1+prettyjws",
        schema1,
    );
    assert_eq!(r.code(), "MANIFEST_INVALID");
    assert!(r.text().contains("schema 1"));
    assert_eq!(
        s.put_manifest("img", "junk", OCI_MANIFEST, b"not json")
            .code(),
        "MANIFEST_INVALID"
    );
    let good = oci_manifest(&c, 2, &[(&l, 5)]);
    let r = s.put_manifest("img", &sha256(b"other"), OCI_MANIFEST, good.as_bytes());
    assert_eq!(r.code(), "DIGEST_INVALID");
    assert_eq!(
        s.put_manifest("img", "x", OCI_INDEX, good.as_bytes())
            .code(),
        "MANIFEST_INVALID"
    );
    assert_eq!(
        s.put_manifest("img", "-bad-tag", OCI_MANIFEST, good.as_bytes())
            .status,
        400
    );
    // by digest, untagged
    let gd = sha256(good.as_bytes());
    let r = s.put_manifest("img", &gd, OCI_MANIFEST, good.as_bytes());
    assert_eq!(r.status, 201);
    assert_eq!(
        r.header("location"),
        Some(format!("/v2/img/manifests/{gd}").as_str())
    );
    // pushed by digest with `?tag=` parameters: every tag names it
    let r = s.put_manifest(
        "img",
        &format!("{gd}?tag=t1&tag=t2"),
        OCI_MANIFEST,
        good.as_bytes(),
    );
    assert_eq!(r.status, 201);
    let tags: Vec<&str> = r
        .headers
        .get_all("oci-tag")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    assert_eq!(tags, ["t1", "t2"]);
    assert_eq!(s.get("/v2/img/manifests/t2").body, good.as_bytes());
    assert_eq!(
        s.put_manifest(
            "img",
            &format!("{gd}?tag=-bad"),
            OCI_MANIFEST,
            good.as_bytes()
        )
        .code(),
        "MANIFEST_INVALID"
    );
    // too big
    let huge = vec![b' '; 5 << 20];
    let r = s.put_manifest("img", "huge", OCI_MANIFEST, &huge);
    assert_eq!(r.status, 413);
}

#[test]
fn docker_schema2_and_manifest_lists() {
    let s = Served::start("");
    let config = br#"{"architecture":"arm64","os":"linux"}"#;
    let c = s.push_blob("multi", config);
    let l = s.push_blob("multi", b"gzip bytes");
    let m = format!(
        r#"{{
   "schemaVersion": 2,
   "mediaType": "{DOCKER_MANIFEST}",
   "config": {{"mediaType": "application/vnd.docker.container.image.v1+json", "size": {}, "digest": "{c}"}},
   "layers": [{{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": 10, "digest": "{l}"}}]
}}"#,
        config.len()
    );
    let md = sha256(m.as_bytes());
    assert_eq!(
        s.put_manifest("multi", &md, DOCKER_MANIFEST, m.as_bytes())
            .status,
        201
    );
    let list = format!(
        r#"{{"schemaVersion":2,"mediaType":"{DOCKER_LIST}","manifests":[{{"mediaType":"{DOCKER_MANIFEST}","size":{},"digest":"{md}","platform":{{"architecture":"arm64","os":"linux"}}}}]}}"#,
        m.len()
    );
    let r = s.put_manifest("multi", "latest", DOCKER_LIST, list.as_bytes());
    assert_eq!(r.status, 201, "{}", r.text());
    let g = s.get("/v2/multi/manifests/latest");
    assert_eq!(g.header("content-type"), Some(DOCKER_LIST));
    assert_eq!(g.body, list.as_bytes());
    assert_eq!(
        s.get(&format!("/v2/multi/manifests/{md}"))
            .header("content-type"),
        Some(DOCKER_MANIFEST)
    );
    // an index whose child manifest is not in the repository
    let orphan = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{{"mediaType":"{OCI_MANIFEST}","size":5,"digest":"{}"}}]}}"#,
        sha256(b"nothing")
    );
    assert_eq!(
        s.put_manifest("multi", "orphan", OCI_INDEX, orphan.as_bytes())
            .code(),
        "MANIFEST_BLOB_UNKNOWN"
    );
    // without mediaType in the body, the Content-Type decides
    let bare = format!(
        r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"{DOCKER_MANIFEST}","size":{},"digest":"{md}"}}]}}"#,
        m.len()
    );
    assert_eq!(
        s.put_manifest("multi", "bare", OCI_INDEX, bare.as_bytes())
            .status,
        201
    );
    assert_eq!(
        s.get("/v2/multi/manifests/bare").header("content-type"),
        Some(OCI_INDEX)
    );
}

#[test]
fn tags_and_catalog_paginate_with_link_headers() {
    let s = Served::start("");
    for t in ["b", "a", "d", "c", "e"] {
        s.push_image("pag", t, b"l");
    }
    let r = s.get("/v2/pag/tags/list");
    assert_eq!(
        r.json()["tags"],
        serde_json::json!(["a", "b", "c", "d", "e"])
    );
    assert_eq!(r.json()["name"], "pag");
    assert!(r.header("link").is_none());
    let r = s.get("/v2/pag/tags/list?n=2");
    assert_eq!(r.json()["tags"], serde_json::json!(["a", "b"]));
    assert_eq!(
        r.header("link"),
        Some("</v2/pag/tags/list?n=2&last=b>; rel=\"next\"")
    );
    let r = s.get("/v2/pag/tags/list?n=2&last=b");
    assert_eq!(r.json()["tags"], serde_json::json!(["c", "d"]));
    let r = s.get("/v2/pag/tags/list?n=2&last=d");
    assert_eq!(r.json()["tags"], serde_json::json!(["e"]));
    assert!(r.header("link").is_none());
    let r = s.get("/v2/pag/tags/list?last=c");
    assert_eq!(r.json()["tags"], serde_json::json!(["d", "e"]));
    let r = s.get("/v2/pag/tags/list?n=0");
    assert_eq!(r.json()["tags"], serde_json::json!([]));
    let r = s.get("/v2/nothing/here/tags/list");
    assert_eq!(r.status, 404);
    assert_eq!(r.code(), "NAME_UNKNOWN");
    assert_eq!(s.get("/v2/pag/tags/list?n=x").status, 400);

    for repo in ["z", "a/b", "a", "a-c", "m/n/o"] {
        s.push_blob(repo, b"x");
    }
    let r = s.get("/v2/_catalog");
    assert_eq!(
        r.json()["repositories"],
        serde_json::json!(["a", "a-c", "a/b", "m/n/o", "pag", "z"])
    );
    let r = s.get("/v2/_catalog?n=2");
    assert_eq!(r.json()["repositories"], serde_json::json!(["a", "a-c"]));
    assert_eq!(
        r.header("link"),
        Some("</v2/_catalog?n=2&last=a-c>; rel=\"next\"")
    );
    let r = s.get("/v2/_catalog?n=3&last=a-c");
    assert_eq!(
        r.json()["repositories"],
        serde_json::json!(["a/b", "m/n/o", "pag"])
    );
}

#[test]
fn deletes_of_tags_manifests_blobs_and_repositories() {
    let s = Served::start("");
    let (_, d) = s.push_image("del/app", "v1", b"layer");
    let r = s.put_manifest(
        "del/app",
        "v2",
        OCI_MANIFEST,
        &s.get("/v2/del/app/manifests/v1").body,
    );
    assert_eq!(r.status, 201);
    s.push_image("del/app/nested", "keep", b"nested layer");

    // a tag: only the tag goes
    assert_eq!(
        s.call("DELETE", "/v2/del/app/manifests/v2", &[], b"")
            .status,
        202
    );
    assert_eq!(s.get("/v2/del/app/manifests/v2").status, 404);
    assert_eq!(s.get(&format!("/v2/del/app/manifests/{d}")).status, 200);
    assert_eq!(
        s.call("DELETE", "/v2/del/app/manifests/v2", &[], b"")
            .code(),
        "MANIFEST_UNKNOWN"
    );
    // by digest: the manifest and every tag naming it
    assert_eq!(
        s.call("DELETE", &format!("/v2/del/app/manifests/{d}"), &[], b"")
            .status,
        202
    );
    assert_eq!(s.get("/v2/del/app/manifests/v1").status, 404);
    assert_eq!(s.get(&format!("/v2/del/app/manifests/{d}")).status, 404);
    assert_eq!(
        s.get("/v2/del/app/tags/list").json()["tags"],
        serde_json::json!([])
    );
    // a blob: unlinked from the repository
    let b = s.push_blob("del/app", b"blob to delete");
    assert_eq!(
        s.call("DELETE", &format!("/v2/del/app/blobs/{b}"), &[], b"")
            .status,
        202
    );
    assert_eq!(
        s.call("HEAD", &format!("/v2/del/app/blobs/{b}"), &[], b"")
            .status,
        404
    );
    assert_eq!(
        s.call("DELETE", &format!("/v2/del/app/blobs/{b}"), &[], b"")
            .code(),
        "BLOB_UNKNOWN"
    );
    // a whole repository, not the one nested under it
    assert_eq!(s.call("DELETE", "/v2/del/app/", &[], b"").status, 202);
    assert_eq!(s.get("/v2/del/app/tags/list").code(), "NAME_UNKNOWN");
    assert_eq!(s.get("/v2/del/app/nested/manifests/keep").status, 200);
    assert_eq!(
        s.get("/v2/_catalog").json()["repositories"],
        serde_json::json!(["del/app/nested"])
    );
    assert_eq!(
        s.call("DELETE", "/v2/del/app/", &[], b"").code(),
        "NAME_UNKNOWN"
    );
}

#[test]
fn referrers_with_artifact_type_filtering() {
    let s = Served::start("");
    let (subject, sd) = s.push_image("ref", "v1", b"image layer");
    let empty = s.push_blob("ref", b"{}");
    let artifact = |kind: &str, payload: &[u8]| {
        let l = s.push_blob("ref", payload);
        format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","artifactType":"{kind}","config":{{"mediaType":"application/vnd.oci.empty.v1+json","digest":"{empty}","size":2}},"layers":[{{"mediaType":"application/octet-stream","digest":"{l}","size":{}}}],"subject":{{"mediaType":"{OCI_MANIFEST}","digest":"{sd}","size":{}}},"annotations":{{"org.example":"yes"}}}}"#,
            payload.len(),
            subject.len()
        )
    };
    let sig = artifact("application/vnd.example.signature", b"sig");
    let sbom = artifact("application/vnd.example.sbom", b"sbom");
    for a in [&sig, &sbom] {
        let d = sha256(a.as_bytes());
        let r = s.put_manifest("ref", &d, OCI_MANIFEST, a.as_bytes());
        assert_eq!(r.status, 201, "{}", r.text());
        assert_eq!(r.header("oci-subject"), Some(sd.as_str()));
    }
    let r = s.get(&format!("/v2/ref/referrers/{sd}"));
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some(OCI_INDEX));
    let idx = r.json();
    assert_eq!(idx["schemaVersion"], 2);
    let list = idx["manifests"].as_array().unwrap();
    assert_eq!(list.len(), 2);
    for entry in list {
        assert_eq!(entry["mediaType"], OCI_MANIFEST);
        assert_eq!(entry["annotations"]["org.example"], "yes");
    }
    let r = s.get(&format!(
        "/v2/ref/referrers/{sd}?artifactType=application/vnd.example.sbom"
    ));
    assert_eq!(r.header("oci-filters-applied"), Some("artifactType"));
    let list = r.json()["manifests"].as_array().unwrap().clone();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["digest"], sha256(sbom.as_bytes()));
    assert_eq!(list[0]["artifactType"], "application/vnd.example.sbom");
    // a subject nobody refers to, or that does not exist: an empty index
    let r = s.get(&format!("/v2/ref/referrers/{}", sha256(b"none")));
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["manifests"], serde_json::json!([]));
    // deleting a referrer removes it from the list
    let sig_d = sha256(sig.as_bytes());
    s.call("DELETE", &format!("/v2/ref/manifests/{sig_d}"), &[], b"");
    let r = s.get(&format!("/v2/ref/referrers/{sd}"));
    assert_eq!(r.json()["manifests"].as_array().unwrap().len(), 1);
}

#[test]
fn invalid_repository_names_are_refused() {
    let s = Served::start("");
    for path in [
        "/v2/UPPER/tags/list",
        "/v2/a..b/tags/list",
        "/v2/a/_manifests/tags/list",
    ] {
        let r = s.get(path);
        assert_eq!(r.status, 400, "{path}");
        assert_eq!(r.code(), "NAME_INVALID");
    }
}

#[test]
fn concurrent_pushes_of_the_same_blob_and_tag_are_idempotent() {
    let s = Served::start("");
    let data = vec![7u8; 300_000];
    let d = sha256(&data);
    std::thread::scope(|scope| {
        for _ in 0..6 {
            scope.spawn(|| {
                let loc = start_upload(&s, "conc");
                let r = s.call("PATCH", &loc, &[], &data);
                assert_eq!(r.status, 202);
                let r = s.call("PUT", &format!("{loc}?digest={d}"), &[], b"");
                assert_eq!(r.status, 201, "{}", r.text());
            });
        }
    });
    assert_eq!(s.get(&format!("/v2/conc/blobs/{d}")).body, data);
    let images: Vec<(Vec<u8>, String)> = (0..4)
        .map(|i| s.push_image("conc", &format!("seed{i}"), format!("l{i}").as_bytes()))
        .collect();
    std::thread::scope(|scope| {
        for (m, _) in &images {
            scope.spawn(|| {
                for _ in 0..5 {
                    assert_eq!(s.put_manifest("conc", "race", OCI_MANIFEST, m).status, 201);
                }
            });
        }
    });
    let won = s.get("/v2/conc/manifests/race");
    assert_eq!(won.status, 200);
    assert!(images.iter().any(|(m, _)| *m == won.body));
    registry::assert_blobs_verify(&s.storage());
}

#[test]
fn a_big_blob_streams_without_being_held_in_memory() {
    let s = Served::start("");
    let size = 160usize << 20;
    let mut data = vec![0u8; size];
    for (i, chunk) in data.chunks_mut(4096).enumerate() {
        chunk.fill((i % 251) as u8);
    }
    let d = s.push_blob("big", &data);
    let r = s.get(&format!("/v2/big/blobs/{d}"));
    assert_eq!(r.body.len(), size);
    assert!(r.body == data);
    let status = std::fs::read_to_string(format!("/proc/{}/status", s.pid())).unwrap();
    let hwm_kib: u64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert!(
        hwm_kib < 64 * 1024,
        "the server's peak memory was {hwm_kib} KiB for a {size}-byte blob"
    );
}

#[test]
fn health_and_metrics() {
    let s = Served::start("");
    s.push_image("met", "v1", b"x");
    s.get("/v2/met/manifests/v1");
    let h = s.get("/healthz");
    assert_eq!(h.json()["status"], "ok");
    let m = s.get("/metrics");
    assert_eq!(m.status, 200);
    let text = m.text();
    assert!(text.contains(
        "strata_registry_http_requests_total{route=\"manifest\",method=\"GET\",status=\"200\"} 1"
    ), "{text}");
    assert!(text.contains("strata_registry_upload_sessions_completed_total 2"));
    assert!(text.contains("strata_registry_bytes_received_total"));
    assert!(text.contains("strata_registry_gc_runs_total 0"));
    // access log lines carry the request id, route and status as JSON
    // The access line is written after the response is sent: wait for it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let line = loop {
        let found = s
            .log()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|v| v["path"] == "/v2/met/manifests/v1" && v["method"] == "GET");
        match found {
            Some(line) => break line,
            None if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(50))
            }
            None => panic!(
                "no access log line for GET /v2/met/manifests/v1:\n{}",
                s.log()
            ),
        }
    };
    assert_eq!(line["status"], 200);
    assert!(line["request_id"].as_str().is_some());
}

#[test]
fn quotas_refuse_with_denied() {
    let s = Served::start(
        "[[quota]]\nrepositories = \"limited/*\"\nlimit = 1000\n[[quota]]\nnamespace = \"team\"\nlimit = 1500\n",
    );
    s.push_blob("limited/a", &[1u8; 600]);
    let r = s.call(
        "POST",
        &format!(
            "/v2/limited/a/blobs/uploads/?digest={}",
            sha256(&[2u8; 600])
        ),
        &[],
        &[2u8; 600],
    );
    assert_eq!(r.status, 403);
    assert_eq!(r.code(), "DENIED");
    assert!(r.text().contains("quota"), "{}", r.text());
    // the same blob again costs nothing; another repository has its own quota
    s.push_blob("limited/a", &[1u8; 600]);
    s.push_blob("limited/b", &[2u8; 600]);
    // a chunked upload is cut off as soon as it passes the quota
    let loc = start_upload(&s, "limited/b");
    let r = s.call("PATCH", &loc, &[], &[3u8; 900]);
    assert_eq!(r.code(), "DENIED");
    // a namespace shares one quota
    s.push_blob("team/x", &[4u8; 1000]);
    let r = s.call(
        "POST",
        &format!("/v2/team/y/blobs/uploads/?digest={}", sha256(&[5u8; 1000])),
        &[],
        &[5u8; 1000],
    );
    assert_eq!(r.code(), "DENIED");
    assert!(r.text().contains("namespace team"), "{}", r.text());
    // unquoted repositories are free
    s.push_blob("free", &[6u8; 5000]);
    assert!(s
        .get("/metrics")
        .text()
        .contains("strata_registry_quota_denied_total 3"));
}

#[test]
fn rate_limit_answers_too_many_requests() {
    let s = Served::start("[limits]\nrequests_per_second = 1\nburst = 3\n");
    let statuses: Vec<u16> = (0..6).map(|_| s.get("/v2/").status).collect();
    assert_eq!(&statuses[..3], &[200, 200, 200]);
    let r = s.get("/v2/");
    assert_eq!(r.status, 429);
    assert_eq!(r.code(), "TOOMANYREQUESTS");
    assert_eq!(r.header("retry-after"), Some("1"));
}
