//! The `kando` binary: everything lives in the library; this only tunes the allocator and
//! sets the exit status.

fn main() {
    tune_allocator();
    std::process::exit(kando::cli::main());
}

/// glibc raises its mmap threshold after each large free, so multi-MiB pack and read
/// buffers end up in per-thread heaps that are never returned: pull's peak RSS grew from
/// 104 MB to 130 MB between a 1 GiB and an 8 GiB stream. A fixed 1 MiB threshold keeps
/// pack- and read-sized buffers in mmap (RSS follows what is live) and average chunks in
/// two heaps that keep 16 MiB for reuse instead of re-faulting it (the 256 KiB threshold
/// tried first spent 0.6 s of a 0.9 s push in page faults). Measured in BENCHMARKS.md;
/// mimalloc was worse (346–435 MB).
fn tune_allocator() {
    // KANDO_MALLOC_DEFAULTS=1 leaves glibc alone (to compare settings via GLIBC_TUNABLES).
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("KANDO_MALLOC_DEFAULTS").is_none() {
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 1024 * 1024);
            // Keep freed chunk-sized memory for reuse instead of returning and re-faulting it.
            libc::mallopt(libc::M_TRIM_THRESHOLD, 16 * 1024 * 1024);
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
    }
}
