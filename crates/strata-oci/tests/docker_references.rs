//! Differential test: every reference in the fixture was given to Docker 20.10's
//! `docker tag busybox:local <input>`; strata must accept and refuse the same ones and
//! print the same familiar form, except where strata follows the current
//! distribution/reference on purpose (listed below).

use strata_oci::Reference;

const CASES: &str = include_str!("fixtures/docker-20.10-tag-references.tsv");

/// Why strata's answer differs from Docker 20.10's for an input.
fn known_difference(input: &str) -> Option<&'static str> {
    let first = input.split('/').next().unwrap_or_default();
    if input.contains('/') && first.to_ascii_lowercase() != first {
        // distribution/reference ≥ 0.5 (Docker ≥ 24) treats an upper-case first component as
        // a registry host; Docker 20.10 said "repository name must be lowercase".
        return Some("upper-case registry host");
    }
    if input.contains('/') && !first.contains(['.', ':']) && first != "localhost" {
        return None;
    }
    if first.contains('_') {
        // Docker accepts `x_y.com/a` as a registry-less path; strata refuses the host.
        return Some("underscore in registry host");
    }
    None
}

#[test]
fn strata_agrees_with_docker_20_10_on_every_fixture_reference() {
    let mut wrong = Vec::new();
    let mut checked = 0;
    for line in CASES.lines().filter(|l| !l.starts_with('#')) {
        let mut cols = line.splitn(3, '\t');
        let (verdict, input, detail) = (
            cols.next().unwrap_or_default(),
            cols.next().unwrap_or_default(),
            cols.next().unwrap_or_default(),
        );
        if known_difference(input).is_some() {
            continue;
        }
        checked += 1;
        // `docker tag` also refuses digests and a `sha256` name; that is `check_taggable`.
        let ours = Reference::parse(input).and_then(|r| r.check_taggable().map(|()| r));
        match (verdict, ours) {
            ("OK", Ok(r)) if r.familiar() == detail => {}
            ("ERR", Err(_)) => {}
            (v, got) => wrong.push(format!("{input:?}: docker {v} {detail:?}, strata {got:?}")),
        }
    }
    assert!(checked > 180, "only {checked} cases checked");
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
