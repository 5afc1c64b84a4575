//! The one error type of the admin commands.
//!
//! Every failure ends the command with one line on stderr and a non-zero exit. Mistakes on
//! the command line (a bad id, URL or number) are caught by the argument parser and exit
//! with 2; a [`CliError`] is a command that was well formed but could not be carried out
//! (etcd unreachable, the item does not exist...) and exits with 1, so a script can tell
//! the two apart.

use std::fmt;

use apportion_store::StoreError;

/// Why an admin command could not be carried out, as the line to show.
#[derive(Debug)]
pub struct CliError(String);

impl CliError {
    /// The process exit code of a command that failed this way.
    pub const EXIT_CODE: i32 = 1;

    /// An error with this message.
    pub fn failed(message: impl fmt::Display) -> Self {
        CliError(message.to_string())
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<StoreError> for CliError {
    /// A store call that fails after the connection was made.
    fn from(e: StoreError) -> Self {
        CliError(format!("etcd request failed: {e}"))
    }
}

impl From<std::io::Error> for CliError {
    /// Writing the output failed (a closed pipe, a full disk).
    fn from(e: std::io::Error) -> Self {
        CliError(format!("cannot write the output: {e}"))
    }
}

/// The result type of the admin commands.
pub type Result<T, E = CliError> = std::result::Result<T, E>;
