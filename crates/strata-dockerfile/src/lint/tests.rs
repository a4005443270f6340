//! Every rule with Dockerfiles that hit it and ones that must not.

use super::*;
use crate::parse_syntax as parse;

// Lint takes what `parse_syntax` accepts: `parse` would already reject some of these (a port
// above 65535), and lint must still say something useful about them.

/// Lines where `rule` fires.
fn hits(rule: &str, src: &str) -> Vec<usize> {
    let df = parse(src).unwrap_or_else(|e| panic!("{src:?}: {e}"));
    lint(&df, &LintOptions::default())
        .into_iter()
        .filter(|f| f.rule == rule)
        .map(|f| f.line)
        .collect()
}

#[test]
fn rules_hit_and_miss() {
    // (rule, Dockerfile, lines it must report)
    let cases: &[(&str, &str, &[usize])] = &[
        // SL001 maintainer-deprecated
        ("SL001", "FROM a:1\nMAINTAINER me <me@x>\n", &[2]),
        (
            "SL001",
            "FROM a:1\nLABEL org.opencontainers.image.authors=me\n",
            &[],
        ),
        // SL002 user-root
        ("SL002", "FROM a:1\nUSER app\nUSER root\n", &[3]),
        ("SL002", "FROM a:1\nUSER 0:0\n", &[2]),
        ("SL002", "FROM a:1\nUSER root\nUSER app\n", &[]),
        ("SL002", "FROM a:1 AS b\nUSER root\nFROM b\nRUN x\n", &[2]),
        (
            "SL002",
            "FROM a:1 AS b\nUSER root\nFROM c:1\nUSER app\n",
            &[],
        ),
        // SL003 user-missing
        ("SL003", "FROM a:1\nRUN x\n", &[1]),
        ("SL003", "FROM a:1 AS b\nUSER app\nFROM b\n", &[]),
        ("SL003", "FROM a:1\nUSER app\n", &[]),
        // SL004 apt-update-alone
        (
            "SL004",
            "FROM a:1\nRUN apt-get update\nRUN apt-get install -y x\n",
            &[2],
        ),
        (
            "SL004",
            "FROM a:1\nRUN apt-get update && apt-get install -y --no-install-recommends x\n",
            &[],
        ),
        ("SL004", "FROM a:1\nRUN apt update; apt install -y x\n", &[]),
        ("SL004", "FROM a:1\nRUN echo apt-get update\n", &[]),
        // SL005 apt-install-recommends
        (
            "SL005",
            "FROM a:1\nRUN apt-get update && apt-get install -y curl\n",
            &[2],
        ),
        (
            "SL005",
            "FROM a:1\nRUN apt-get install -y --no-install-recommends curl\n",
            &[],
        ),
        (
            "SL005",
            "FROM a:1\nRUN apt-get -o APT::Install-Recommends=false install -y curl\n",
            &[],
        ),
        // SL006 apt-install-no-yes
        (
            "SL006",
            "FROM a:1\nRUN apt-get install --no-install-recommends curl\n",
            &[2],
        ),
        (
            "SL006",
            "FROM a:1\nRUN apt-get -qy install --no-install-recommends curl\n",
            &[],
        ),
        (
            "SL006",
            "FROM a:1\nRUN apt-get install --assume-yes --no-install-recommends curl\n",
            &[],
        ),
        // SL007 apt-upgrade
        (
            "SL007",
            "FROM a:1\nRUN apt-get update && apt-get -y upgrade\n",
            &[2],
        ),
        (
            "SL007",
            "FROM a:1\nRUN sudo apt-get dist-upgrade -y\n",
            &[2],
        ),
        ("SL007", "FROM a:1\nRUN pip install --upgrade pip\n", &[]),
        // SL008 add-instead-of-copy
        ("SL008", "FROM a:1\nADD src/ /app/\n", &[2]),
        ("SL008", "FROM a:1\nADD [\"a b\", \"/x/\"]\n", &[2]),
        ("SL008", "FROM a:1\nADD rootfs.tar.gz /\n", &[]),
        ("SL008", "FROM a:1\nADD https://example.com/x /x\n", &[]),
        ("SL008", "FROM a:1\nADD git@github.com:a/b.git /src\n", &[]),
        ("SL008", "FROM a:1\nADD --checksum=sha256:0000 x /x\n", &[]),
        ("SL008", "FROM a:1\nCOPY src/ /app/\n", &[]),
        // SL009 copy-all-before-install
        (
            "SL009",
            "FROM node:20\nWORKDIR /app\nCOPY . .\nRUN npm ci\n",
            &[3],
        ),
        (
            "SL009",
            "FROM python:3\nCOPY ./ /app\nRUN pip install -r /app/requirements.txt\n",
            &[2],
        ),
        (
            "SL009",
            "FROM golang:1\nCOPY . /src\nRUN cd /src && go mod download\n",
            &[2],
        ),
        (
            "SL009",
            "FROM node:20\nCOPY package.json .\nRUN npm ci\nCOPY . .\nRUN npm run build\n",
            &[],
        ),
        (
            "SL009",
            "FROM a:1 AS b\nFROM c:1\nCOPY --from=b . /x\nRUN npm ci\n",
            &[],
        ),
        // SL010 multiple-cmd
        ("SL010", "FROM a:1\nCMD [\"a\"]\nCMD [\"b\"]\n", &[2]),
        (
            "SL010",
            "FROM a:1\nENTRYPOINT [\"a\"]\nCMD [\"x\"]\nENTRYPOINT [\"b\"]\n",
            &[2],
        ),
        (
            "SL010",
            "FROM a:1 AS x\nCMD [\"a\"]\nFROM a:1\nCMD [\"b\"]\n",
            &[],
        ),
        // SL011 shell-form-cmd
        ("SL011", "FROM a:1\nCMD node server.js\n", &[2]),
        ("SL011", "FROM a:1\nENTRYPOINT exec nginx\n", &[2]),
        ("SL011", "FROM a:1\nCMD [\"node\", \"server.js\"]\n", &[]),
        // SL012 cd-in-run
        ("SL012", "FROM a:1\nRUN cd /src && make\n", &[2]),
        (
            "SL012",
            "FROM a:1\nWORKDIR /src\nRUN make && echo cd\n",
            &[],
        ),
        // SL013 base-image-unpinned
        ("SL013", "FROM ubuntu\n", &[1]),
        ("SL013", "FROM ubuntu:latest AS b\n", &[1]),
        ("SL013", "FROM registry:5000/team/app\n", &[1]),
        ("SL013", "ARG V=latest\nFROM ubuntu:$V\n", &[2]),
        ("SL013", "ARG V=22.04\nFROM ubuntu:$V\n", &[]),
        ("SL013", "ARG V\nFROM ubuntu:$V\n", &[]),
        ("SL013", "FROM registry:5000/team/app:1.0\n", &[]),
        (
            "SL013",
            "FROM ubuntu@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n",
            &[],
        ),
        ("SL013", "FROM scratch\n", &[]),
        ("SL013", "FROM ubuntu:22.04 AS build\nFROM build\n", &[]),
        // SL014 invalid-expose
        ("SL014", "FROM a:1\nEXPOSE 80 70000\n", &[2]),
        ("SL014", "FROM a:1\nEXPOSE 80/http\n", &[2]),
        ("SL014", "FROM a:1\nEXPOSE 9000-8000\n", &[2]),
        (
            "SL014",
            "FROM a:1\nEXPOSE 80 443/tcp 53/UDP 7000-7010/sctp $PORT\n",
            &[],
        ),
        // SL015 consecutive-run
        ("SL015", "FROM a:1\nRUN a\nRUN b\nRUN c\n", &[3, 4]),
        ("SL015", "FROM a:1\nRUN a\nENV X=1\nRUN b\n", &[]),
        (
            "SL015",
            "FROM a:1\nRUN a\nRUN --mount=type=cache,target=/c b\n",
            &[],
        ),
        // SL016 relative-workdir
        ("SL016", "FROM a:1\nWORKDIR app\n", &[2]),
        ("SL016", "FROM a:1\nWORKDIR /srv\nWORKDIR app\n", &[]),
        (
            "SL016",
            "FROM a:1 AS b\nWORKDIR /srv\nFROM b\nWORKDIR app\n",
            &[],
        ),
        ("SL016", "FROM a:1\nWORKDIR $HOME/app\n", &[]),
    ];
    for (rule, src, want) in cases {
        assert_eq!(hits(rule, src), *want, "{rule} on {src:?}");
    }
}

#[test]
fn ignore_by_id_or_name() {
    let df = parse("FROM ubuntu\nMAINTAINER me\nCMD x\n").unwrap();
    let all: Vec<&str> = lint(&df, &LintOptions::default())
        .iter()
        .map(|f| f.rule)
        .collect();
    assert_eq!(all, ["SL003", "SL013", "SL001", "SL011"]);
    let opts = LintOptions {
        ignore: vec!["sl013".to_string(), "Maintainer-Deprecated".to_string()],
    };
    let rest: Vec<&str> = lint(&df, &opts).iter().map(|f| f.rule).collect();
    assert_eq!(rest, ["SL003", "SL011"]);
}

#[test]
fn findings_carry_position_and_severity() {
    let df = parse("FROM a:1\n  EXPOSE 99999\nUSER app\n").unwrap();
    let f = lint(&df, &LintOptions::default());
    assert_eq!(f.len(), 1);
    assert_eq!(
        (f[0].line, f[0].col, f[0].severity),
        (2, 3, Severity::Error)
    );
    assert_eq!(f[0].name, "invalid-expose");
    assert!(f[0].message.contains("99999"), "{}", f[0].message);
}

#[test]
fn severity_orders_and_parses() {
    assert!(
        Severity::Error > Severity::Warning
            && Severity::Warning > Severity::Info
            && Severity::Info > Severity::Style
    );
    for s in [
        Severity::Error,
        Severity::Warning,
        Severity::Info,
        Severity::Style,
    ] {
        assert_eq!(s.to_string().parse::<Severity>(), Ok(s));
    }
    assert_eq!("WARNING".parse::<Severity>(), Ok(Severity::Warning));
    assert!("fatal".parse::<Severity>().is_err());
    assert_eq!(serde_json::to_string(&Severity::Info).unwrap(), "\"info\"");
}

#[test]
fn rule_table_is_consistent() {
    for (n, rule) in RULES.iter().enumerate() {
        assert_eq!(rule.id, format!("SL{:03}", n + 1));
        assert!(
            rule.name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c == '-'),
            "{}",
            rule.name
        );
    }
}
