//! Resolved location arguments: the profile, the normalised path, the runtime, the
//! repository (or the location itself, for plain objects), and the tuning defaults that
//! differ by backend.

use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use tokio::runtime::Runtime;

use super::args::{LocationArgs, PushTuning};
use super::open::{open_location, open_storage, server_side_encryption};
use super::password;
use crate::commands::gc::GcOptions;
use crate::commands::push::{self, PushOptions};
use crate::compat::profile::{LocationType, Profile};
use crate::repo::config::ChunkerParams;
use crate::repo::crypto::Password;
use crate::repo::refs::{check_path_fits, normalize_path};
use crate::repo::Repository;
use crate::storage::s3::ServerSideEncryption;
use crate::storage::DynStorage;

/// Parsed location flags.
pub(super) struct Target {
    pub rt: Runtime,
    pub profile: Profile,
    pub path: String,
    pub repo_dir: String,
    stale_after: Duration,
    grace: Duration,
    pub password: Option<Password>,
    sse: Option<ServerSideEncryption>,
}

impl Target {
    pub fn new(args: &LocationArgs) -> Result<Target> {
        let profile = Profile::parse(&args.profile)?;
        let path = normalize_path(&args.path).map_err(|e| anyhow!("--path: {e}"))?;
        let password = password::read(args.password_file.as_deref())?;
        let sse = server_side_encryption(args.sse.as_deref(), args.sse_kms_key_id.as_deref())?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .context("cannot start the async runtime")?;
        Ok(Target {
            password,
            sse,
            rt,
            profile,
            path,
            repo_dir: normalize_path(&args.repo_dir).map_err(|e| anyhow!("--repo-dir: {e}"))?,
            stale_after: Duration::from_secs(args.lock_stale_after),
            grace: Duration::from_secs(args.gc_grace),
        })
    }

    /// True for the local-directory backend (tuning defaults differ from S3's).
    pub fn is_local(&self) -> bool {
        self.profile.location.kind == LocationType::Local
    }

    pub fn gc_options(&self) -> GcOptions {
        GcOptions {
            stale_after: self.stale_after,
            grace: self.grace,
            ..GcOptions::default()
        }
    }

    /// Push's pipeline settings: the flags, else defaults measured per backend.
    pub fn push_options(&self, tuning: &PushTuning) -> PushOptions {
        PushOptions {
            jobs: tuning.jobs.unwrap_or_else(push::default_jobs),
            uploads: tuning
                .uploads
                .unwrap_or(if self.is_local() { 1 } else { 4 }),
            pack_size: tuning.pack_size_mib.clamp(1, 512) * 1024 * 1024,
            zstd_level: tuning.compression_level,
            stale_after: self.stale_after.max(Duration::from_secs(1)),
            gzip_dedup: tuning.gzip_dedup && !tuning.no_gzip_dedup,
            ..PushOptions::default()
        }
    }

    /// Pull's reads in flight: the flag, else 6 locally and 12 from object storage.
    pub fn pull_reads(&self, reads: Option<usize>) -> usize {
        reads.unwrap_or(if self.is_local() { 6 } else { 12 }).max(1)
    }

    /// The repository; created first when `create`.
    pub fn open(&self, create: bool) -> Result<Repository> {
        let password = self.password.as_ref();
        self.rt
            .block_on(async {
                let storage = open_storage(&self.profile, &self.repo_dir, self.sse.clone()).await?;
                if create {
                    Repository::open_or_create(storage, ChunkerParams::default(), password).await
                } else {
                    Repository::open(storage, password).await
                }
            })
            .map_err(password::explain)
    }

    /// Creates a repository (an existing one is an error).
    pub fn init(&self) -> Result<Repository> {
        self.rt
            .block_on(async {
                let storage = open_storage(&self.profile, &self.repo_dir, self.sse.clone()).await?;
                Repository::init(storage, ChunkerParams::default(), self.password.as_ref()).await
            })
            .map_err(password::explain)
    }

    /// The location itself (rooted at the profile's prefix), where upstream kando wrote
    /// its plain objects; the repository is the `repo_dir` inside it.
    pub async fn location(&self) -> Result<DynStorage> {
        open_location(&self.profile, self.sse.clone()).await
    }

    /// Fails before anything is read or written if a snapshot at the target's path could not
    /// be committed (its ref key would be too long for the backend).
    pub fn check_push_path(&self) -> Result<()> {
        let loc = &self.profile.location;
        let root_len = if self.is_local() {
            0
        } else {
            super::open::repository_root(&loc.prefix, &self.repo_dir)?.len() + 1
        };
        check_path_fits(&self.path, self.password.is_some(), root_len).map_err(|e| anyhow!(e))
    }
}
