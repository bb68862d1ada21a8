//! Command-line arguments, shaped like upstream kando's (cobra) so every blueprint's command
//! line parses unchanged: flags before or after positionals, `--flag=v`, `--flag v`, `-s v`.

use std::path::PathBuf;

use clap::builder::RangedU64ValueParser;
use clap::{Args, Parser, Subcommand};

/// Longest lock wait or staleness accepted, in seconds: a year.
const MAX_LOCK_SECS: u64 = 365 * 24 * 3600;

/// `--progress-interval`: finite seconds from 0.05 to a day (NaN, infinities and negative
/// values would panic when turned into a duration).
fn progress_interval(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number of seconds"))?;
    if v.is_finite() && (0.05..=86_400.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("{s} is not between 0.05 and 86400 seconds"))
    }
}

/// `--from-command`: a command, not an empty string (which would push nothing and commit
/// an empty snapshot).
fn non_blank_command(s: &str) -> Result<String, String> {
    if s.trim().is_empty() {
        Err(
            "the command is empty; give the command that writes the dump to standard output"
                .to_string(),
        )
    } else {
        Ok(s.to_string())
    }
}

/// `-v`: the levels upstream's logrus accepts (any case); anything else is an error there.
fn log_level(s: &str) -> Result<String, String> {
    const LEVELS: [&str; 8] = [
        "panic", "fatal", "error", "warn", "warning", "info", "debug", "trace",
    ];
    let lower = s.to_ascii_lowercase();
    if LEVELS.contains(&lower.as_str()) {
        Ok(lower)
    } else {
        Err(format!(
            "not a valid log level: {s:?} (one of {})",
            LEVELS.join(", ")
        ))
    }
}

/// kando: move database dumps to and from object storage, deduplicated and verified.
#[derive(Debug, Parser)]
#[command(name = "kando", disable_version_flag = true, about, long_about = None)]
pub struct Cli {
    /// Log level: panic, fatal, error, warn (warning), info, debug or trace.
    #[arg(short = 'v', long = "verbosity", global = true, default_value = "warn", value_parser = log_level)]
    pub verbosity: String,

    /// No progress lines or bar (errors and the final summary still go to stderr).
    #[arg(short = 'q', long = "quiet", global = true)]
    pub quiet: bool,

    /// Seconds between progress lines when stderr is not a terminal.
    #[arg(
        long = "progress-interval",
        global = true,
        default_value_t = 10.0,
        env = "KANDO_PROGRESS_INTERVAL",
        value_parser = progress_interval
    )]
    pub progress_interval: f64,

    /// Print version information as JSON.
    #[arg(long = "version")]
    pub version: bool,

    /// The command.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Push, pull and delete data at a profile's location.
    Location {
        /// Location flags, accepted before or after the subcommand (cobra's persistent
        /// flags: `kando location -p P -s X push -`).
        #[command(flatten)]
        location: LocationArgs,
        /// The location command (none: print help).
        #[command(subcommand)]
        command: Option<LocationCommand>,
    },
    /// Print a Kanister output artifact: `###Phase-output###: {"key":…,"value":…}`.
    Output {
        /// Artifact key: letters, digits and '_'.
        key: String,
        /// Artifact value.
        value: String,
    },
    /// Inspect and maintain the repository (ours, not upstream's).
    Repo {
        /// The repo command.
        #[command(subcommand)]
        command: RepoCommand,
    },
}

/// `kando location …`.
#[derive(Debug, Subcommand)]
pub enum LocationCommand {
    /// Store a stream (`-`) or a file as a new snapshot.
    Push {
        /// `-` for standard input, else a file path. Not with --from-command.
        #[arg(
            required_unless_present = "from_command",
            conflicts_with = "from_command"
        )]
        source: Option<String>,
        /// Run this command with `sh -c`, push its standard output, and commit the snapshot
        /// only if it exits 0 (a failed dump is never recorded as a backup).
        #[arg(long = "from-command", value_parser = non_blank_command)]
        from_command: Option<String>,
        /// Output artifact key for the snapshot JSON.
        #[arg(short = 'o', long = "output-name", default_value = "kandoOutput")]
        output_name: String,
        /// Push tuning.
        #[command(flatten)]
        tuning: PushTuning,
    },
    /// Restore a snapshot to standard output (`-`) or a file.
    Pull {
        /// `-` for standard output, else a file path.
        target: String,
        /// The snapshot: the JSON push emitted, or its id. Default: newest at --path.
        #[arg(short = 'k', long = "kopia-snapshot")]
        kopia_snapshot: Option<String>,
        /// Ranged reads (of up to 4 MiB) in flight, 1 to 256 (default: 12 from S3, where latency
        /// dominates; 6 from a local directory). Pull holds at most 4 MiB of read and
        /// decoded data per read.
        #[arg(long, value_parser = RangedU64ValueParser::<usize>::new().range(1..=256))]
        reads: Option<usize>,
    },
    /// Delete a snapshot (--kopia-snapshot) or every snapshot at --path and below it.
    Delete {
        /// Ignored, as upstream ignores them.
        #[arg(hide = true)]
        extra: Vec<String>,
        /// The snapshot: the JSON push emitted, or its id.
        #[arg(short = 'k', long = "kopia-snapshot")]
        kopia_snapshot: Option<String>,
    },
}

/// `kando repo …`.
#[derive(Debug, Subcommand)]
pub enum RepoCommand {
    /// Check that snapshots restore: structure always; every chunk's data with --read-data
    /// or when one snapshot is named.
    Verify {
        /// Common location flags (--path selects the snapshots at and below it).
        #[command(flatten)]
        location: LocationArgs,
        /// Verify only this snapshot (the JSON push emitted, or its id).
        #[arg(short = 'k', long = "kopia-snapshot")]
        kopia_snapshot: Option<String>,
        /// Download and check every chunk of every selected snapshot.
        #[arg(long = "read-data")]
        read_data: bool,
    },
    /// Reclaim the space of deleted snapshots (condemned data is deleted after --gc-grace).
    Gc {
        /// Common location flags.
        #[command(flatten)]
        location: LocationArgs,
        /// Rewrite a pack when more than this percentage of it is dead.
        #[arg(long = "repack-dead-pct", default_value_t = 25, value_parser = clap::value_parser!(u8).range(0..=100))]
        repack_dead_pct: u8,
    },
    /// Rebuild the index from the packs themselves (each carries its own list of blobs),
    /// drop entries of packs that are gone, and report snapshots that can no longer be
    /// restored.
    Repair {
        /// Common location flags.
        #[command(flatten)]
        location: LocationArgs,
    },
    /// Create a repository, encrypted when a password is given (KANDO_PASSWORD or
    /// --password-file). A first push creates one too; this makes the choice explicit.
    Init {
        /// Common location flags.
        #[command(flatten)]
        location: LocationArgs,
    },
    /// One line per snapshot: id, time, path, logical and stored size. With --legacy:
    /// the plain objects outside the repository (written by upstream kando), key and size.
    List {
        /// Common location flags.
        #[command(flatten)]
        location: LocationArgs,
        /// List plain objects (upstream kando's format) instead of snapshots.
        #[arg(long)]
        legacy: bool,
    },
    /// Store the plain object upstream kando wrote at --path as a snapshot (deduplicated
    /// from then on); the object itself stays unless --remove-plain.
    Import {
        /// Common location flags.
        #[command(flatten)]
        location: LocationArgs,
        /// Remove the plain object once the snapshot is committed and verified.
        #[arg(long = "remove-plain")]
        remove_plain: bool,
    },
}

/// Flags shared by every command that touches a location.
#[derive(Debug, Args)]
pub struct LocationArgs {
    /// The Kanister profile, as JSON (`{{ toJson .Profile }}`).
    #[arg(short = 'p', long = "profile", default_value = "", global = true)]
    pub profile: String,
    /// Path of the data inside the location.
    #[arg(short = 's', long = "path", default_value = "", global = true)]
    pub path: String,
    /// Name of the repository directory under the location's prefix.
    #[arg(
        global = true,
        long = "repo-dir",
        default_value = "kando-repo",
        env = "KANDO_REPO_DIR"
    )]
    pub repo_dir: String,
    /// Seconds after which a push that stopped refreshing its session no longer holds
    /// back garbage collection (0: none does). Decides only when space is reclaimed:
    /// a push that comes back later is checked at commit, never trusted.
    #[arg(
        global = true,
        long = "lock-stale-after",
        default_value_t = crate::repo::session::DEFAULT_STALE_AFTER.as_secs(),
        env = "KANDO_LOCK_STALE_AFTER",
        value_parser = clap::value_parser!(u64).range(0..=MAX_LOCK_SECS)
    )]
    pub lock_stale_after: u64,
    /// Seconds between condemning unused data and deleting it (default one hour: a pull
    /// that began before the delete can still finish reading).
    #[arg(
        global = true,
        long = "gc-grace",
        default_value_t = crate::commands::gc::DEFAULT_GRACE.as_secs(),
        env = "KANDO_GC_GRACE",
        value_parser = clap::value_parser!(u64).range(0..=MAX_LOCK_SECS)
    )]
    pub gc_grace: u64,
    /// Accepted for compatibility with earlier versions of ours: nothing waits on a lock
    /// any more (garbage collection defers to running pushes instead).
    #[arg(
        global = true,
        long = "lock-wait",
        default_value_t = 600,
        env = "KANDO_LOCK_WAIT",
        value_parser = clap::value_parser!(u64).range(0..=MAX_LOCK_SECS)
    )]
    pub lock_wait: u64,
    /// File holding the password of an encrypted repository (e.g. a mounted Kubernetes
    /// secret; one trailing newline is ignored). Or set KANDO_PASSWORD. A repository first
    /// created with a password is encrypted, and always needs it.
    #[arg(global = true, long = "password-file", env = "KANDO_PASSWORD_FILE")]
    pub password_file: Option<PathBuf>,
    /// S3 server-side encryption of every object written: `AES256` (SSE-S3) or `aws:kms`
    /// (SSE-KMS). S3 locations only.
    #[arg(global = true, long = "sse", env = "KANDO_SSE", value_parser = ["AES256", "aws:kms"])]
    pub sse: Option<String>,
    /// KMS key id or ARN for SSE-KMS (implies `--sse aws:kms`; default: the bucket's key).
    #[arg(global = true, long = "sse-kms-key-id", env = "KANDO_SSE_KMS_KEY_ID")]
    pub sse_kms_key_id: Option<String>,
}

/// zstd level of chunk data unless --compression-level says otherwise.
const DEFAULT_ZSTD_LEVEL: i32 = 3;

impl PushTuning {
    /// The defaults, for pushes that take no tuning flags (`repo import`).
    pub fn measured_defaults() -> Self {
        PushTuning {
            jobs: None,
            uploads: None,
            pack_size_mib: crate::repo::DEFAULT_PACK_SIZE >> 20,
            compression_level: DEFAULT_ZSTD_LEVEL,
            no_gzip_dedup: false,
            gzip_dedup: true,
        }
    }
}

/// Push pipeline tuning; defaults are measured (BENCHMARKS.md).
#[derive(Debug, Args)]
pub struct PushTuning {
    /// Threads hashing and compressing, 1 to 256 (default: one per core).
    #[arg(long, value_parser = RangedU64ValueParser::<usize>::new().range(1..=256))]
    pub jobs: Option<usize>,
    /// Packs uploaded at once, 1 to 64 (default: 4 to S3, 1 to a local directory, where
    /// more only raises peak memory).
    #[arg(long, value_parser = RangedU64ValueParser::<usize>::new().range(1..=64))]
    pub uploads: Option<usize>,
    /// Pack size in MiB, 1 to 512.
    #[arg(
        long = "pack-size-mib",
        default_value_t = crate::repo::DEFAULT_PACK_SIZE >> 20,
        value_parser = RangedU64ValueParser::<usize>::new().range(1..=512)
    )]
    pub pack_size_mib: usize,
    /// zstd compression level (1-19).
    #[arg(long = "compression-level", default_value_t = DEFAULT_ZSTD_LEVEL, value_parser = clap::value_parser!(i32).range(1..=19))]
    pub compression_level: i32,
    /// Store a gzip or zlib input as it came. By default it is stored as its plaintext
    /// plus what recreates the exact compressed bytes, so it deduplicates.
    #[arg(long = "no-gzip-dedup")]
    pub no_gzip_dedup: bool,
    /// KANDO_GZIP_DEDUP=0 does what --no-gzip-dedup does.
    #[arg(long = "gzip-dedup", hide = true, env = "KANDO_GZIP_DEDUP", default_value = "true",
          value_parser = clap::builder::BoolishValueParser::new(), action = clap::ArgAction::Set)]
    pub gzip_dedup: bool,
}

/// A `source`/`target` argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// Standard input or output.
    Std,
    /// A file.
    File(PathBuf),
}

impl Endpoint {
    /// `-` is the standard stream, anything else a path.
    pub fn parse(s: &str) -> Endpoint {
        if s == "-" {
            Endpoint::Std
        } else {
            Endpoint::File(PathBuf::from(s))
        }
    }
}
