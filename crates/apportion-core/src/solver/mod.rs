//! The solver: turns members, items and current assignments into a desired assignment.
