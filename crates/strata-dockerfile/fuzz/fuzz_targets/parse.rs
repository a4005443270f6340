//! Fuzz target: the parser must never panic, whatever the bytes, and what it accepts must dump,
//! type-check and group into stages without panicking either.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(source) = std::str::from_utf8(data) else {
        return;
    };
    match strata_dockerfile::parse(source) {
        Ok(df) => {
            let _ = strata_dockerfile::to_json(&df);
            let _ = df.stages();
            for inst in &df.instructions {
                let _ = inst.typed();
            }
        }
        Err(e) => {
            let _ = e.render(source, "Dockerfile");
        }
    }
    if let Ok(df) = strata_dockerfile::parse_syntax(source) {
        let _ = strata_dockerfile::to_json(&df);
        let _ = df.stages();
    }
});
