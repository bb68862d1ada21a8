//! `repo verify`: proves snapshots restore. Structure always (every referenced blob is
//! indexed, every indexed pack exists and is large enough, manifests and index segments
//! match their names); with data reading, every chunk of the selected snapshots is
//! fetched, decoded and hash-checked, and each stream's length and hash compared, with the
//! pull pipeline's bounded memory.

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;

use anyhow::Result;
use tokio::runtime::Handle;

use super::pull::{pull, PullOptions};
use crate::repo::chunklist::ChunkListReader;
use crate::repo::ids::Id;
use crate::repo::index::Index;
use crate::repo::pack::FOOTER_LEN;
use crate::repo::refs::SnapshotRef;
use crate::repo::{pack_key, Repository};

/// What verify found.
#[derive(Debug, Default)]
pub struct VerifyReport {
    /// Snapshots checked.
    pub snapshots: usize,
    /// Chunks referenced (with repeats).
    pub chunks: u64,
    /// Bytes read back and verified.
    pub bytes_verified: u64,
    /// Each problem, naming the object.
    pub problems: Vec<String>,
}

/// A snapshot deleted while it was being checked is not damaged: drop what was found
/// about it since `before`.
fn forget_if_deleted(
    rt: &Handle,
    repo: &Repository,
    r: &SnapshotRef,
    report: &mut VerifyReport,
    before: usize,
) -> Result<()> {
    if report.problems.len() > before && rt.block_on(repo.storage().head(&r.key))?.is_none() {
        report.problems.truncate(before);
        report.snapshots -= 1;
    }
    Ok(())
}

/// Verifies the snapshots in `refs`; reads their data when `read_data`.
pub fn verify(
    rt: &Handle,
    repo: &Repository,
    refs: &[SnapshotRef],
    read_data: bool,
) -> Result<VerifyReport> {
    let mut report = VerifyReport::default();
    let index = match rt.block_on(repo.load_read_index()) {
        Ok(i) => i,
        Err(e) => {
            report.problems.push(format!("{e:#}"));
            Index::default()
        }
    };
    let packs: HashMap<Id, u64> = rt
        .block_on(repo.storage().list("packs/"))?
        .into_iter()
        .filter_map(|m| Some((Id::from_hex(m.key.rsplit('/').next()?)?, m.size)))
        .collect();
    for r in refs {
        report.snapshots += 1;
        let before = report.problems.len();
        let manifest = match rt.block_on(repo.read_manifest_unchecked(&r.id)) {
            Ok(Some(m)) => m,
            Ok(None) => {
                report
                    .problems
                    .push(format!("snapshot {}: its manifest is missing", r.id));
                forget_if_deleted(rt, repo, r, &mut report, before)?;
                continue;
            }
            Err(e) => {
                report.problems.push(format!("snapshot {}: {e:#}", r.id));
                continue;
            }
        };
        let fetch = |id: &Id| rt.block_on(repo.read_blob(&index, id));
        // Chunks, and a recompressed snapshot's recipe blocks.
        for tree in manifest.trees() {
            match ChunkListReader::new(tree, fetch) {
                Err(e) => report.problems.push(format!("snapshot {}: {e:#}", r.id)),
                Ok(reader) => {
                    for chunk in reader {
                        let id = match chunk {
                            Ok(id) => id,
                            Err(e) => {
                                report
                                    .problems
                                    .push(format!("snapshot {}: chunk list: {e:#}", r.id));
                                break;
                            }
                        };
                        report.chunks += 1;
                        let Some(loc) = index.get(&id) else {
                            report.problems.push(format!(
                                "snapshot {}: chunk {id} is in no index segment",
                                r.id
                            ));
                            continue;
                        };
                        let end = loc.entry.offset as u64
                            + loc.entry.stored_len as u64
                            + FOOTER_LEN as u64;
                        match packs.get(&loc.pack) {
                            None => report.problems.push(format!(
                                "snapshot {}: chunk {id}: pack {} is missing",
                                r.id,
                                pack_key(&loc.pack)
                            )),
                            Some(&size) if size < end => report.problems.push(format!(
                                "snapshot {}: pack {} is {size} bytes, too short for chunk {id}",
                                r.id,
                                pack_key(&loc.pack)
                            )),
                            Some(_) => {}
                        }
                    }
                }
            }
        }
        if read_data && report.problems.len() == before {
            let written = AtomicU64::new(0);
            match pull(
                rt,
                repo,
                &r.id,
                &manifest,
                &mut std::io::sink(),
                &PullOptions::default(),
                &written,
            ) {
                Ok(o) => report.bytes_verified += o.bytes,
                Err(e) => report.problems.push(format!("{e:#}")),
            }
        }
        forget_if_deleted(rt, repo, r, &mut report, before)?;
    }
    // Problems repeat per chunk of a missing pack: report each once.
    let mut seen = std::collections::HashSet::new();
    report.problems.retain(|p| seen.insert(p.clone()));
    Ok(report)
}
