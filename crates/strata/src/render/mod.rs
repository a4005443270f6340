//! How results look: Docker's tables, sizes, durations and `--format` templates.

pub(crate) mod human;
pub(crate) mod table;
pub(crate) mod template;

use std::io::Write;

/// Writes to standard output; a closed pipe (`strata images | head -1`) ends the process
/// quietly, as it does for Docker.
pub(crate) fn out(text: &str) {
    let mut stdout = std::io::stdout().lock();
    if stdout
        .write_all(text.as_bytes())
        .and_then(|_| stdout.flush())
        .is_err()
    {
        std::process::exit(0);
    }
}

/// JSON as Docker's CLI prints it: 4-space indent, Go's escaping of `<`, `>` and `&`.
pub(crate) fn pretty_json<T: serde::Serialize>(value: &T) -> String {
    strata_oci::to_indented_json(value)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .unwrap_or_else(|| String::from("null"))
}
