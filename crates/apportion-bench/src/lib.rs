//! The engines behind `apportion bench`: what each benchmark runs and measures, apart from
//! the command line that starts it and the JSON line that prints its result.
//!
//! They live in a crate of their own so that the `apportion` command holds only commands
//! and presentation (issue 14), and so that the benchmarks can be run and tested as a
//! library: each engine takes its options as a plain struct and returns its figures as
//! data (serde-serializable lines), and the caller decides where they go.
//!
//! - [`solver`]: the solver alone on synthetic clusters and the changes a running service
//!   sees (`apportion bench solver`);
//! - [`soak`]: the solver on many small random instances, every solve checked exactly
//!   (`apportion bench plan-soak`);
//! - [`converge`]: the whole runtime end to end, members settling, refilling after a loss
//!   and staying quiet, against the store's own write speed (`apportion bench converge`).
//!
//! With the `clap` feature, the solver's instance and scenario names can be parsed from a
//! command line; nothing else here knows about one.

#![warn(missing_docs)]

pub mod converge;
mod procfs;
pub mod soak;
pub mod solver;
