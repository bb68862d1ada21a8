//! The commands' data paths, independent of how arguments arrive: each takes an opened
//! [`crate::repo::Repository`] and plain options.

pub mod delete;
pub mod gc;
pub mod list;
pub mod pull;
pub mod push;
pub mod verify;
