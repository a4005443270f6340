//! Times parse, lint and ARG/ENV resolution of a generated 5,000-line Dockerfile (best of N runs).
//! Run: `cargo bench -p strata-dockerfile --bench parse_lint`.
#![allow(clippy::print_stdout)] // a bench reports on stdout

use std::hint::black_box;
use std::time::{Duration, Instant};

use strata_dockerfile::{lint, parse, resolve, LintOptions, ResolveOptions};

const LINES: usize = 5_000;
const RUNS: usize = 10;

/// A Dockerfile of about `lines` lines: global ARGs, then stages mixing every common
/// instruction, continuation lines, heredocs and variables.
fn generate(lines: usize) -> String {
    let mut out =
        String::from("# syntax=docker/dockerfile:1\nARG BASE=debian:12\nARG VERSION=1.0\n");
    let mut stage = 0;
    while out.lines().count() < lines {
        let from = if stage == 0 {
            "${BASE}".to_string()
        } else {
            format!("s{}", stage - 1)
        };
        out.push_str(&format!(
            "FROM {from} AS s{stage}\n\
             ARG VERSION\n\
             ENV APP_HOME=/srv/app{stage} PATH=/srv/bin:$PATH\n\
             LABEL org.opencontainers.image.version=\"$VERSION\" stage=\"{stage}\"\n\
             WORKDIR $APP_HOME\n\
             RUN apt-get update \\\n    && apt-get install -y --no-install-recommends \\\n       curl ca-certificates \\\n    && rm -rf /var/lib/apt/lists/*\n\
             COPY --chown=1000:1000 package.json ${{APP_HOME}}/\n\
             RUN npm ci --omit=dev && echo \"built $VERSION\" > /build-info\n\
             COPY <<EOF /etc/app{stage}.conf\nname=s{stage}\nhome=$APP_HOME\nEOF\n\
             EXPOSE 80{stage_mod}/tcp 443\n\
             USER 1000:1000\n\
             HEALTHCHECK --interval=30s CMD curl -f http://localhost/ || exit 1\n\
             CMD [\"node\", \"server.js\"]\n",
            stage_mod = stage % 10,
        ));
        stage += 1;
    }
    out
}

fn best_of<T>(runs: usize, mut f: impl FnMut() -> T) -> Duration {
    (0..runs)
        .map(|_| {
            let start = Instant::now();
            black_box(f());
            start.elapsed()
        })
        .min()
        .unwrap_or_default()
}

fn main() {
    let source = generate(LINES);
    let df = parse(&source).expect("the generated Dockerfile parses");
    let opts = ResolveOptions::default();
    let parse_t = best_of(RUNS, || parse(black_box(&source)));
    let lint_t = best_of(RUNS, || lint(black_box(&df), &LintOptions::default()));
    let both_t = best_of(RUNS, || {
        let df = parse(black_box(&source)).expect("parses");
        lint(&df, &LintOptions::default())
    });
    let resolve_t = best_of(RUNS, || resolve(black_box(&df), &opts));
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "{} lines, {} instructions, best of {RUNS}: parse {:.2} ms, lint {:.2} ms, parse+lint {:.2} ms, resolve {:.2} ms",
        source.lines().count(),
        df.instructions.len(),
        ms(parse_t),
        ms(lint_t),
        ms(both_t),
        ms(resolve_t),
    );
}
