//! The `kando` binary: everything lives in the library; this only picks the allocator and
//! sets the exit status.

/// jemalloc, on every target. musl's own malloc (the static release binary's libc) maps and
/// unmaps every chunk-sized buffer: 160–190 k page faults per 658 MB dump, pushes 35–45 %
/// slower and pulls 50 % slower than the same code on glibc. jemalloc reuses freed buffers
/// instead, so the static binary runs as fast as the glibc build, and both use the same
/// allocator that the benchmarks measure (BENCHMARKS.md, "Allocator").
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's built-in options (`malloc_conf`; tikv-jemalloc-sys prefixes its symbols).
/// - `narenas:1`: one arena, because chunks are allocated on one thread and freed on
///   another; per-thread arenas each kept their own free memory (pull: 100 MB peak, not 46).
/// - `dirty_decay_ms:1000`, `muzzy_decay_ms:0`: freed pages go back to the kernel about a
///   second after their last use, so resident memory stays at the working set however
///   long the stream runs (jemalloc's 10 s default let an 8 GiB pull grow 15 % over a
///   1 GiB one), while buffers reused within the second are never faulted in twice.
#[export_name = "_rjem_malloc_conf"]
static JEMALLOC_CONF: &[u8; 47] = b"narenas:1,dirty_decay_ms:1000,muzzy_decay_ms:0\0";

/// Runs before the Rust runtime starts, which replaces a closed stdout with /dev/null:
/// kando must know it was closed (`>&-`) to refuse `pull -` and push instead of writing
/// into nothing (`cli::record_inherited_stdio`). glibc and musl both run `.init_array`.
#[cfg(target_os = "linux")]
#[used]
#[link_section = ".init_array"]
static RECORD_INHERITED_STDIO: extern "C" fn(
    libc::c_int,
    *const *const libc::c_char,
    *const *const libc::c_char,
) = {
    extern "C" fn record(
        _argc: libc::c_int,
        _argv: *const *const libc::c_char,
        _envp: *const *const libc::c_char,
    ) {
        kando::cli::record_inherited_stdio();
    }
    record
};

fn main() {
    std::process::exit(kando::cli::main());
}
