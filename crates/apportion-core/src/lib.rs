//! The pure core of apportion.
//!
//! Everything here is deterministic code without I/O, async or clocks, so that it can be
//! tested exhaustively and driven by a simulation: the key layout, the values, the `State`
//! the allocator reads, and the solver that turns a state into a desired assignment.

#![warn(missing_docs)]

pub mod away;
pub mod keys;
pub mod lease;
pub mod planner;
pub mod restrain;
pub mod settings;
pub mod solver;
pub mod state;
pub mod values;
