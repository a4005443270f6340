//! A command's failure as a person reads it: one line, `error: ` first, an optional hint,
//! and the exit status (1 like Docker's CLI unless a command says otherwise).

use std::fmt::Display;

use strata_exit::{ErrorChain, ExitStatus};

pub(crate) struct Failure {
    pub(crate) message: String,
    /// Lines printed verbatim under the error (a Dockerfile excerpt with a caret).
    pub(crate) detail: Option<String>,
    pub(crate) hint: Option<String>,
    pub(crate) status: ExitStatus,
}

impl Failure {
    pub(crate) fn new(message: impl Display) -> Failure {
        Failure {
            message: message.to_string(),
            detail: None,
            hint: None,
            status: ExitStatus::Failure,
        }
    }

    pub(crate) fn with_detail(mut self, detail: impl Display) -> Failure {
        self.detail = Some(detail.to_string());
        self
    }

    pub(crate) fn with_status(mut self, status: ExitStatus) -> Failure {
        self.status = status;
        self
    }

    pub(crate) fn with_hint(mut self, hint: impl Display) -> Failure {
        self.hint = Some(hint.to_string());
        self
    }

    #[allow(clippy::print_stderr)]
    pub(crate) fn print(&self) {
        eprintln!("error: {}", one_line(&self.message));
        if let Some(detail) = &self.detail {
            eprintln!("{}", detail.trim_end());
        }
        if let Some(hint) = &self.hint {
            eprintln!("hint: {hint}");
        }
    }
}

/// `f` reported as strata's own failure (125): it happened before a container's command
/// could run, so its status must not be mistaken for the command's.
pub(crate) fn strata_failed(f: Failure) -> Failure {
    f.with_status(ExitStatus::StrataFailed)
}

/// Keeps an error on one line whatever a library or a file put in it: control characters
/// are escaped and an overlong message is cut.
fn one_line(message: &str) -> String {
    const MAX: usize = 600;
    let mut out = String::with_capacity(message.len().min(MAX));
    for c in message.chars() {
        if out.len() >= MAX {
            out.push('…');
            break;
        }
        match c {
            '\n' => out.push_str("\\n"),
            c if c.is_control() => out.extend(c.escape_default()),
            c => out.push(c),
        }
    }
    out
}

/// Adds what the command was doing to a library error.
pub(crate) trait Context<T> {
    fn context(self, what: impl Display) -> Result<T, Failure>;
}

impl<T, E: std::error::Error + 'static> Context<T> for Result<T, E> {
    fn context(self, what: impl Display) -> Result<T, Failure> {
        self.map_err(|e| Failure::new(format!("{what}: {}", ErrorChain(&e))))
    }
}

macro_rules! failure_from {
    ($($t:ty),*) => {$(
        impl From<$t> for Failure {
            fn from(e: $t) -> Failure {
                Failure::new(ErrorChain(&e))
            }
        }
    )*};
}

failure_from!(
    strata_build::BuildError,
    strata_image::ImageError,
    strata_store::StoreError,
    strata_oci::ReferenceError,
    strata_container::ContainerError,
    strata_runtime::RuntimeError,
    strata_distribution::DistributionError,
    strata_oci::Error
);

failure_from!(std::io::Error);

#[cfg(test)]
mod tests {
    #[test]
    fn messages_stay_on_one_line() {
        assert_eq!(super::one_line("bad\nfield\u{7}"), "bad\\nfield\\u{7}");
        assert!(super::one_line(&"x".repeat(5000)).chars().count() <= 601);
    }
}
