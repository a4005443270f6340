//! How a strata process ends when something failed: the one [`ExitStatus`] every process
//! (the CLI, a container's monitor, a RUN or exec helper) exits with, and the one
//! [`ErrorChain`] that puts an error and its causes on one line.
//!
//! Docker's CLI is the contract: 1 when a command failed, 125 when strata itself failed (bad
//! usage, a store or runtime error), 126 when a container's command cannot be executed, 127
//! when it does not exist, and otherwise the container's own status. Libraries say which of
//! these a failure is; only the binary turns it into the process's exit code and prints.
//! Depends on nothing, so every crate can use it.

use std::error::Error;
use std::fmt;

/// What a strata process exits with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// 0.
    Success,
    /// 1: the command did not do what was asked (Docker CLI's generic failure).
    Failure,
    /// 125: strata itself failed, or the command line was not valid.
    StrataFailed,
    /// 126: the container's command exists but cannot be executed.
    CannotInvoke,
    /// 127: the container's command was not found.
    CommandNotFound,
    /// A container's own exit status (128 + the signal number when it was killed).
    Container(i32),
}

impl ExitStatus {
    /// The status as the process exit code. A container status outside 0..=255 (which no
    /// process can exit with) is reported as strata's failure.
    pub fn code(self) -> u8 {
        match self {
            Self::Success => 0,
            Self::Failure => 1,
            Self::StrataFailed => 125,
            Self::CannotInvoke => 126,
            Self::CommandNotFound => 127,
            Self::Container(code) => u8::try_from(code).unwrap_or(125),
        }
    }

    /// The status of a failed container start as recorded (0 when nothing was recorded):
    /// Docker's 126/127 kept, anything else strata's failure.
    pub fn of_failed_start(code: i32) -> ExitStatus {
        match code {
            126 => Self::CannotInvoke,
            127 => Self::CommandNotFound,
            _ => Self::StrataFailed,
        }
    }
}

impl From<ExitStatus> for std::process::ExitCode {
    fn from(status: ExitStatus) -> Self {
        std::process::ExitCode::from(status.code())
    }
}

/// `error: cause: cause…` on one line. A cause whose text is already in the line is
/// skipped (libraries often repeat their source's message in their own).
pub struct ErrorChain<'a>(pub &'a dyn Error);

impl fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut text = self.0.to_string();
        let mut source = self.0.source();
        while let Some(cause) = source {
            let more = cause.to_string();
            if !text.contains(&more) {
                text.push_str(": ");
                text.push_str(&more);
            }
            source = cause.source();
        }
        f.write_str(&text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Layer(&'static str, Option<Box<Layer>>);

    impl fmt::Display for Layer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.0)
        }
    }

    impl Error for Layer {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            self.1.as_deref().map(|e| e as &(dyn Error + 'static))
        }
    }

    #[test]
    fn chain_joins_causes_and_skips_repeated_ones() {
        let inner = Layer("no such file", None);
        let middle = Layer("opening /x: no such file", Some(Box::new(inner)));
        let outer = Layer("loading image", Some(Box::new(middle)));
        assert_eq!(
            ErrorChain(&outer).to_string(),
            "loading image: opening /x: no such file"
        );
    }

    #[test]
    fn codes_follow_docker() {
        assert_eq!(ExitStatus::Success.code(), 0);
        assert_eq!(ExitStatus::Failure.code(), 1);
        assert_eq!(ExitStatus::StrataFailed.code(), 125);
        assert_eq!(ExitStatus::CannotInvoke.code(), 126);
        assert_eq!(ExitStatus::CommandNotFound.code(), 127);
        assert_eq!(ExitStatus::Container(137).code(), 137);
        assert_eq!(ExitStatus::Container(300).code(), 125);
        assert_eq!(ExitStatus::Container(-1).code(), 125);
        assert_eq!(
            ExitStatus::of_failed_start(127),
            ExitStatus::CommandNotFound
        );
        assert_eq!(ExitStatus::of_failed_start(0), ExitStatus::StrataFailed);
    }
}
