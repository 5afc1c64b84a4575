//! `apportion member`.

use std::process::ExitCode;

/// The command line of `apportion member`.
#[derive(clap::Args, Debug)]
pub struct MemberArgs {}

/// Runs a member.
pub async fn run(_args: MemberArgs) -> ExitCode {
    ExitCode::SUCCESS
}
