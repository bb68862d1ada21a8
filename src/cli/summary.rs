//! The lines kando prints for people: sizes, the version line, command summaries.

use crate::commands::gc::GcReport;
use crate::commands::pull::PullOutcome;
use crate::commands::push::PushOutcome;

/// Bytes in binary units for humans.
pub(super) fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.2} {}", UNITS[unit])
    }
}

/// `kando version {"version": …, "gitCommit": …, "buildDate": …}`, upstream's shape.
pub(super) fn version_line() -> String {
    format!(
        "kando version {{\"version\": \"{}\", \"gitCommit\": \"{}\", \"buildDate\": \"{}\"}}",
        env!("CARGO_PKG_VERSION"),
        option_env!("KANDO_GIT_COMMIT").unwrap_or("unknown"),
        option_env!("KANDO_BUILD_DATE").unwrap_or("unknown"),
    )
}

fn rate(bytes: u64, secs: f64) -> String {
    human_bytes((bytes as f64 / secs.max(1e-9)) as u64)
}

/// After a push.
pub(super) fn push_line(o: &PushOutcome) -> String {
    let secs = o.duration.as_secs_f64();
    let dedup = if o.chunks == 0 {
        100.0
    } else {
        100.0 * (o.chunks - o.new_chunks) as f64 / o.chunks as f64
    };
    // What recompression did comes first, on its own line.
    let recompressed = match o.recompress.as_ref().and_then(|r| r.line()) {
        Some(line) => format!("kando: {line}\n"),
        None => String::new(),
    };
    format!(
        "{recompressed}kando: pushed {} in {:.1} s ({}/s), stored {} new, {dedup:.1}% of chunks deduplicated, snapshot {}",
        human_bytes(o.logical_size),
        secs,
        rate(o.logical_size, secs),
        human_bytes(o.physical_size),
        o.id
    )
}

/// After a pull.
pub(super) fn pull_line(o: &PullOutcome, id: &str) -> String {
    let secs = o.duration.as_secs_f64();
    format!(
        "kando: pulled {} in {:.1} s ({}/s), verified, snapshot {id}",
        human_bytes(o.bytes),
        secs,
        rate(o.bytes, secs)
    )
}

/// After garbage collection.
pub(super) fn gc_line(r: &GcReport) -> String {
    let mut line = format!(
        "kando: garbage collection: {} live snapshot(s), {} pack(s) deleted, {} rewritten, {} freed, {} index segment(s) merged",
        r.snapshots,
        r.packs_deleted,
        r.packs_rewritten,
        human_bytes(r.bytes_freed),
        r.segments_merged
    );
    if let Some((n, why)) = &r.waiting {
        line.push_str(&format!(
            "; reclaiming {n} more pack(s) deferred: {why} (a later delete or `kando repo gc` finishes it)"
        ));
    }
    line
}
