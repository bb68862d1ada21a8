//! kando: a deduplicating, streaming, verifying drop-in replacement for Kanister's kando.
//!
//! Layers, each depending only on the ones below it:
//! - [`cli`]: command-line parsing and the kando compatibility edge ([`compat`]);
//! - [`commands`]: push, pull, delete, list — the data paths;
//! - [`repo`]: the repository format (packs, index, manifests, refs);
//! - [`storage`]: backends (local directory, S3) behind one trait.

pub mod cli;
pub mod commands;
pub mod compat;
pub mod recompress;
pub mod repo;
pub mod storage;
