//! The commands' data paths, independent of how arguments arrive: each takes an opened
//! [`crate::repo::Repository`] and plain options.

pub mod delete;
pub mod gc;
pub mod list;
pub mod pull;
pub mod push;
pub mod verify;

/// Stream bytes between two calls of [`release_free_heap`] by push and pull.
pub(crate) const TRIM_EVERY: u64 = 512 << 20;

/// Hands the free pages inside glibc's heaps back to the kernel. Chunks are allocated at
/// their exact sizes (128 KiB–2 MiB) and freed out of order by other threads, so the heaps
/// fragment, and without this resident memory crept up with the stream's length (1 → 8 GiB
/// of new data: push +9–12 %, pull +15 %). Pages handed back are faulted in again when
/// reused: every 32 MiB cost pull 20–35 % of its speed, every 512 MiB costs nothing
/// measurable (BENCHMARKS.md, "Memory").
pub(crate) fn release_free_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases memory glibc already considers free.
    unsafe {
        libc::malloc_trim(0);
    }
}
