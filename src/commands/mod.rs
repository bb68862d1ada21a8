//! The commands' data paths, independent of how arguments arrive: each takes an opened
//! [`crate::repo::Repository`] and plain options.

pub mod delete;
pub mod gc;
pub mod legacy;
pub mod list;
pub mod pull;
pub mod push;
pub mod repair;
pub mod select;
pub mod verify;

/// Push's and pull's byte budgets count semaphore permits in KiB (a permit count is a
/// u32), rounded up.
pub(crate) fn kib(bytes: u64) -> usize {
    bytes.div_ceil(1024) as usize
}
