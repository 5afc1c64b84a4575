//! The one error type of the admin commands.
//!
//! Every failure ends the command with one line on stderr and a non-zero exit. Mistakes on
//! the command line (a bad id, URL or number) are caught by the argument parser and, like
//! a bad input file of the offline commands, exit with 2; a command that was well formed
//! but could not be carried out (etcd unreachable, the item does not exist...) exits with
//! 1, so a script can tell the two apart.

use std::fmt;

use apportion_store::StoreError;

/// Why an admin command stopped early.
#[derive(Debug)]
pub enum CliError {
    /// It could not be carried out; the message is the line to show. Exit code 1.
    Failed(String),
    /// The offline commands (`plan`, `bench`) refused their input or could not solve it;
    /// the message is the line to show. Exit code 2, as those commands have always used.
    Input(String),
    /// Whoever reads the output stopped reading (`apportion status --json | head`). Not a
    /// failure: the command ends quietly, as other Unix tools do.
    OutputClosed,
}

impl CliError {
    /// The process exit code of a command that stopped this way.
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Failed(_) => 1,
            CliError::Input(_) => 2,
            CliError::OutputClosed => 0,
        }
    }

    /// A failure with this message.
    pub fn failed(message: impl fmt::Display) -> Self {
        CliError::Failed(message.to_string())
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Failed(message) | CliError::Input(message) => f.write_str(message),
            CliError::OutputClosed => f.write_str("the output was closed"),
        }
    }
}

impl From<StoreError> for CliError {
    /// A store call that fails after the connection was made.
    fn from(e: StoreError) -> Self {
        CliError::Failed(format!("etcd request failed: {e}"))
    }
}

impl From<apportion::Error> for CliError {
    /// Reading the cluster through the runtime's view failed: the store's failures read as
    /// any other store call's do.
    fn from(e: apportion::Error) -> Self {
        match e {
            apportion::Error::Store(e) => e.into(),
            e => CliError::failed(e),
        }
    }
}

impl From<apportion::admin::AdminError> for CliError {
    /// An edit was refused: the library's message names the key and what is wrong; the
    /// store's failures read as any other store call's do.
    fn from(e: apportion::admin::AdminError) -> Self {
        match e {
            apportion::admin::AdminError::Store(e) => e.into(),
            e => CliError::failed(e),
        }
    }
}

impl From<std::io::Error> for CliError {
    /// Writing the output failed: the reader went away, or a real failure (a full disk).
    fn from(e: std::io::Error) -> Self {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            CliError::OutputClosed
        } else {
            CliError::Failed(format!("cannot write the output: {e}"))
        }
    }
}

/// The result type of the admin commands.
pub type Result<T, E = CliError> = std::result::Result<T, E>;
