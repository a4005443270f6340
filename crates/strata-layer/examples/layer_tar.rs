//! Manual checks against other tools:
//! `layer_tar write <dir> [--overlay-upper] [--clamp <secs>] > layer.tar`
//! `layer_tar apply <root> [--overlay-markers] < layer.tar` (any compression)

use std::io::{self, Write};
use std::path::Path;
use std::process::ExitCode;

use strata_layer::{
    apply_layer, decompress, write_layer, ApplyOptions, ChangeSource, DigestReader, WhiteoutMode,
    WriteOptions,
};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |f: &str| args.iter().any(|a| a == f);
    let result = match (args.first().map(String::as_str), args.get(1)) {
        (Some("write"), Some(dir)) => {
            let clamp = args
                .iter()
                .position(|a| a == "--clamp")
                .and_then(|i| args.get(i + 1))
                .and_then(|v| v.parse().ok());
            let opts = WriteOptions {
                source: if flag("--overlay-upper") {
                    ChangeSource::OverlayUpper
                } else {
                    ChangeSource::PlainTree
                },
                mtime_clamp: clamp,
            };
            write_layer(Path::new(dir), io::stdout().lock(), &opts)
                .map(|s| format!("{} entries", s.entries))
        }
        (Some("apply"), Some(root)) => {
            let opts = ApplyOptions {
                whiteouts: if flag("--overlay-markers") {
                    WhiteoutMode::OverlayMarkers
                } else {
                    WhiteoutMode::Remove
                },
                preserve_owners: true,
            };
            decompress(io::stdin().lock()).and_then(|(c, r)| {
                let mut r = DigestReader::new(r);
                let stats = apply_layer(&mut r, Path::new(root), &opts)?;
                Ok(format!(
                    "{c:?}: {} entries, {} bytes, diff_id {}",
                    stats.entries,
                    stats.bytes,
                    r.digest()
                ))
            })
        }
        _ => {
            let _ = writeln!(io::stderr(), "usage: layer_tar write <dir> | apply <root>");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(summary) => {
            let _ = writeln!(io::stderr(), "{summary}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            let mut msg = format!("error: {e}");
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                msg.push_str(&format!(": {s}"));
                source = s.source();
            }
            let _ = writeln!(io::stderr(), "{msg}");
            ExitCode::FAILURE
        }
    }
}
