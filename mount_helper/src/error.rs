//! The helper's one error type, which carries the exit status.

use std::fmt;

/// Exit status for an incorrect invocation (as mount(8)).
pub const EXIT_USAGE: i32 = 1;
/// Exit status for a mount or unmount that failed (as mount(8)).
pub const EXIT_FAILURE: i32 = 32;

#[derive(Debug)]
pub struct HelperError {
    pub code: i32,
    pub message: String,
}

impl HelperError {
    pub fn usage(message: impl Into<String>) -> HelperError {
        HelperError {
            code: EXIT_USAGE,
            message: message.into(),
        }
    }

    pub fn failed(message: impl Into<String>) -> HelperError {
        HelperError {
            code: EXIT_FAILURE,
            message: message.into(),
        }
    }
}

impl fmt::Display for HelperError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

pub type Result<T> = std::result::Result<T, HelperError>;
