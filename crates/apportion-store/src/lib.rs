//! The coordination store.
