//! Fault injection: kando against real S3 servers (s3s-fs, moto) through
//! `scripts/s3/faultproxy.py`, which answers 500/503, resets connections, truncates
//! bodies and stalls responses at chosen rates.
//!
//! Every push, pull and delete under faults must either succeed with a byte-exact result
//! or fail cleanly (exit 69, one `Error:` line, no panic), within a bounded time. Whatever
//! happens, a fault-free look at the repository (the profile pointed straight at the
//! server) never shows a partial snapshot: a snapshot that is listed pulls byte-exact,
//! and `repo verify --read-data` passes. Each case also checks that the proxy really
//! injected the faults it was asked for. See docs/FAULTS.md.

pub mod common;
#[path = "common/faults.rs"]
pub mod faults;
#[path = "common/s3.rs"]
pub mod s3;
#[path = "common/s3_backend.rs"]
pub mod s3_backend;

use std::collections::BTreeMap;
use std::process::Output;
use std::time::Duration;

use common::{fails_69, mixed_data, same_bytes, snapshot_of, Backend};
use faults::{kando_env, FaultProxy};
use s3::{start_selected, S3Server};
use s3_backend::S3Backend;

/// Longest any one kando run may take, faults and retries included; longer is a hang.
const LIMIT: Duration = Duration::from_secs(150);

/// kando's per-attempt S3 timeout for the stall cases (the proxy stalls for 30 s).
const SHORT_TIMEOUT: &str = "2";

/// Fault modes the proxy counts.
const MODES: [&str; 5] = ["500", "503", "reset", "truncate", "stall"];

/// One repository in a fresh bucket, reached directly and through a fault proxy, with a
/// tally of what each operation did.
struct Run<'a> {
    label: String,
    backend: S3Backend<'a>,
    proxy: FaultProxy,
    /// Extra environment for the runs through the proxy.
    env: Vec<(&'static str, &'static str)>,
    /// op → [succeeded, failed cleanly].
    tally: BTreeMap<&'static str, [u64; 2]>,
    /// op → faults injected while it ran.
    faults_in: BTreeMap<&'static str, u64>,
    /// Packs the deletes' garbage collections said they deleted.
    packs_deleted: u64,
}

impl<'a> Run<'a> {
    fn new(
        server: &'a S3Server,
        label: &str,
        flags: &[&str],
        env: &[(&'static str, &'static str)],
    ) -> Self {
        let backend = S3Backend::new(server, false);
        let proxy = FaultProxy::start(&server.endpoint, flags)
            .unwrap_or_else(|e| panic!("starting the fault proxy: {e:#}"));
        Run {
            label: format!("{label} on {}", server.kind),
            backend,
            proxy,
            env: env.to_vec(),
            tally: BTreeMap::new(),
            faults_in: BTreeMap::new(),
            packs_deleted: 0,
        }
    }

    fn direct(&self) -> String {
        self.backend.profile()
    }

    fn faulty(&self) -> String {
        self.proxy.profile_for(&self.backend.profile())
    }

    /// Faults of every kind injected so far (fail-after answers included).
    fn injected(&self) -> u64 {
        let s = self.proxy.stats();
        MODES
            .iter()
            .map(|m| s["faults"][m].as_u64().unwrap_or(0))
            .sum::<u64>()
            + s["fail_after_503"].as_u64().unwrap_or(0)
    }

    /// kando through the proxy; records the outcome under `op`. Returns the output when it
    /// succeeded, `None` when it failed cleanly; panics on any other ending.
    fn through_proxy(&mut self, op: &'static str, args: &[&str], stdin: &[u8]) -> Option<Output> {
        let before = self.injected();
        let out = kando_env(args, stdin, &self.env, LIMIT);
        let during = self.injected() - before;
        *self.faults_in.entry(op).or_default() += during;
        let t = self.tally.entry(op).or_default();
        if out.status.success() {
            t[0] += 1;
            Some(out)
        } else {
            t[1] += 1;
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                out.status.code() == Some(69),
                "{}: {op} did not fail cleanly ({:?}); stderr: {stderr}\nproxy log:\n{}",
                self.label,
                out.status,
                self.proxy.log_tail(30)
            );
            fails_69(&out);
            None
        }
    }

    /// kando straight to the server, with no faults: must succeed.
    #[track_caller]
    fn direct_ok(&self, args: &[&str]) -> Output {
        let out = kando_env(args, b"", &[], LIMIT);
        assert!(
            out.status.success(),
            "{}: fault-free kando {args:?} failed: {}",
            self.label,
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// Snapshot ids listed at exactly `path`, seen without faults.
    fn listed(&self, path: &str) -> Vec<String> {
        let out = self.direct_ok(&["repo", "list", "--profile", &self.direct(), "--path", path]);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                (f.len() >= 3 && f[2] == path).then(|| f[0].to_string())
            })
            .collect()
    }

    /// Pulls `id` without faults and compares it with `want`.
    #[track_caller]
    fn pull_direct_exact(&self, id: &str, want: &[u8], what: &str) {
        let out = self.direct_ok(&common::pull_snapshot_args(&self.direct(), id));
        same_bytes(&out.stdout, want, &format!("{}: {what}", self.label));
    }

    /// Every snapshot visible at `path` pulls byte-exact: nothing partial is ever visible.
    #[track_caller]
    fn visible_are_whole(&self, path: &str, want: &[u8], after: &str) -> Vec<String> {
        let ids = self.listed(path);
        for id in &ids {
            self.pull_direct_exact(id, want, &format!("snapshot {id} visible after {after}"));
        }
        ids
    }

    /// Pushes `data` to `path` through the proxy. Returns the snapshot that is now visible
    /// at `path` (the pushed one on success; after a failure, one that a commit got through
    /// before the failure, if any).
    fn push(&mut self, path: &str, data: &[u8]) -> Option<String> {
        let profile = self.faulty();
        match self.through_proxy("push", &common::push_args(&profile, path), data) {
            Some(out) => {
                let id = snapshot_of(&out, "kandoOutput")["id"]
                    .as_str()
                    .unwrap()
                    .to_string();
                assert!(
                    self.listed(path).contains(&id),
                    "{}: pushed snapshot {id} is not listed",
                    self.label
                );
                self.pull_direct_exact(&id, data, &format!("snapshot {id} pushed to {path}"));
                Some(id)
            }
            None => self
                .visible_are_whole(path, data, &format!("a failed push to {path}"))
                .pop(),
        }
    }

    /// Pulls through the proxy: success must be byte-exact.
    fn pull(&mut self, path: &str, id: Option<&str>, want: &[u8]) {
        let profile = self.faulty();
        let args = match id {
            Some(id) => common::pull_with(&profile, path, &["--kopia-snapshot", id]),
            None => common::pull_args(&profile, path),
        };
        if let Some(out) = self.through_proxy("pull", &args, b"") {
            let what = format!("{}: pull of {path} exited 0", self.label);
            same_bytes(&out.stdout, want, &what);
        }
    }

    /// Deletes everything at `path` through the proxy: success leaves nothing visible,
    /// failure leaves only whole snapshots.
    fn delete(&mut self, path: &str, data: &[u8]) {
        let profile = self.faulty();
        match self.through_proxy("delete", &common::delete_args(&profile, path), b"") {
            Some(out) => {
                self.packs_deleted += packs_deleted(&out);
                let left = self.listed(path);
                assert!(
                    left.is_empty(),
                    "{}: delete of {path} succeeded but {left:?} are still listed",
                    self.label
                );
            }
            None => {
                self.visible_are_whole(path, data, &format!("a failed delete of {path}"));
            }
        }
    }

    /// The whole repository checks out without faults.
    #[track_caller]
    fn verify_all(&self) {
        self.direct_ok(&["repo", "verify", "--profile", &self.direct(), "--read-data"]);
    }

    fn report(&self) {
        let stats = self.proxy.stats();
        let mut line = format!(
            "FAULTS {}: gc deleted {} pack(s);",
            self.label, self.packs_deleted
        );
        for (op, [ok, failed]) in &self.tally {
            line += &format!(
                " {op} {ok} ok / {failed} failed cleanly ({} faults);",
                self.faults_in.get(op).copied().unwrap_or(0)
            );
        }
        line += &format!(
            " proxy: {} requests, faults {}",
            stats["requests"], stats["faults"]
        );
        eprintln!("{line}");
    }
}

/// Pushes, pulls and deletes through the proxy in rounds (at least `rounds.0`, more
/// until every mode in `modes` was injected, at most `rounds.1`), checking every outcome;
/// then checks the whole repository without faults. Each round pushes `a` (6 MiB shared
/// with a fault-free snapshot, then `own_mib` MiB of its own) and a small `b`.
fn scenario(
    server: &S3Server,
    label: &str,
    flags: &[&str],
    env: &[(&'static str, &'static str)],
    modes: &[&str],
    rounds: (u64, u64),
    own_mib: usize,
) {
    let mut run = Run::new(server, label, flags, env);

    // A snapshot pushed without faults, sharing data with what is pushed under faults: no
    // failed push, pull, delete or garbage collection under faults may damage it.
    let keep = mixed_data(1000, 10 << 20, 1 << 20);
    let direct = run.direct();
    let out = kando_env(&common::push_args(&direct, "keep"), &keep, &[], LIMIT);
    common::ok(&out);
    let keep_id = snapshot_of(&out, "kandoOutput")["id"]
        .as_str()
        .unwrap()
        .to_string();

    let mut round = 0u64;
    loop {
        let mut a = keep[..6 << 20].to_vec();
        a.extend(mixed_data(2000 + round, own_mib << 20, 1 << 20));
        let b = mixed_data(3000 + round, 5 << 20, 256 << 10);
        let pa = format!("f/{round}/a");
        let pb = format!("f/{round}/b");

        let ida = run.push(&pa, &a);
        let idb = run.push(&pb, &b);
        if let Some(id) = &ida {
            run.pull(&pa, Some(id), &a);
        }
        if idb.is_some() {
            run.pull(&pb, None, &b);
        }
        run.delete(&pa, &a);

        round += 1;
        let all_injected = modes.iter().all(|m| run.proxy.faults(m) > 0);
        if (round >= rounds.0 && all_injected) || round >= rounds.1 {
            break;
        }
    }

    for m in modes {
        assert!(
            run.proxy.faults(m) > 0,
            "{}: the proxy injected no {m} fault: {}",
            run.label,
            run.proxy.stats()
        );
    }
    if env.contains(&("KANDO_GC_GRACE", "0")) {
        assert!(
            run.packs_deleted > 0,
            "{}: no delete's gc deleted a pack under faults",
            run.label
        );
    }
    run.pull_direct_exact(&keep_id, &keep, "the fault-free snapshot");
    run.verify_all();
    run.report();
}

/// "N pack(s) deleted" from a delete's garbage-collection line; 0 when gc did not run.
fn packs_deleted(out: &Output) -> u64 {
    let stderr = String::from_utf8_lossy(&out.stderr);
    stderr
        .split(", ")
        .find_map(|part| part.strip_suffix(" pack(s) deleted"))
        .and_then(|n| n.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0)
}

/// One fault scenario: which server, what the proxy injects, what must be seen.
struct Case {
    server: &'static str,
    label: &'static str,
    flags: &'static [&'static str],
    env: &'static [(&'static str, &'static str)],
    modes: &'static [&'static str],
    rounds: (u64, u64),
    own_mib: usize,
}

fn run_case(c: &Case) {
    let Some(server) = start_selected(c.server) else {
        return;
    };
    scenario(
        &server, c.label, c.flags, c.env, c.modes, c.rounds, c.own_mib,
    );
}

/// One test per case, so each runs (and fails) on its own.
macro_rules! fault_cases {
    ($($(#[doc = $doc:expr])* $name:ident: $case:expr;)*) => {
        $(
            $(#[doc = $doc])*
            #[test]
            fn $name() {
                run_case(&$case);
            }
        )*
    };
}

const TIMEOUT_ENV: &[(&str, &str)] = &[("KANDO_S3_REQUEST_TIMEOUT", SHORT_TIMEOUT)];

fault_cases! {
    /// 500 InternalError and 503 SlowDown at 5 % each, on every request.
    errors_500_503_on_s3s_fs: Case {
        server: "s3s-fs",
        label: "500/503 at 10%",
        flags: &["--seed", "11", "--rate", "500=0.05", "--rate", "503=0.05"],
        env: &[],
        modes: &["500", "503"],
        rounds: (2, 4),
        own_mib: 18,
    };
    /// Connection resets at 5 %: before the server saw the request, or after it did the
    /// work and part of the answer was sent.
    connection_resets_on_s3s_fs: Case {
        server: "s3s-fs",
        label: "reset at 5%",
        flags: &["--seed", "12", "--rate", "reset=0.05"],
        env: &[],
        modes: &["reset"],
        rounds: (2, 4),
        own_mib: 18,
    };
    /// GET bodies (objects and listings) cut short at 10 %, with the real Content-Length.
    truncated_bodies_on_s3s_fs: Case {
        server: "s3s-fs",
        label: "truncated GET bodies at 10%",
        flags: &["--seed", "13", "--rate", "truncate=0.1@GET,LIST"],
        env: &[],
        modes: &["truncate"],
        rounds: (2, 4),
        own_mib: 18,
    };
    /// Responses held for 30 s at 5 %, with kando's per-attempt timeout at 2 s.
    stalls_on_s3s_fs: Case {
        server: "s3s-fs",
        label: "stall 30 s at 5% (timeout 2 s)",
        flags: &["--seed", "14", "--rate", "stall=0.05", "--stall-seconds", "30"],
        env: TIMEOUT_ENV,
        modes: &["stall"],
        rounds: (2, 4),
        own_mib: 18,
    };
    /// Every mode at once on moto (another HTTP stack: werkzeug).
    mixed_faults_on_moto: Case {
        server: "moto",
        label: "mixed",
        flags: &[
            "--seed", "15", "--rate", "500=0.03", "--rate", "503=0.03", "--rate",
            "reset=0.03", "--rate", "truncate=0.06@GET,LIST", "--rate", "stall=0.02",
            "--stall-seconds", "30",
        ],
        env: TIMEOUT_ENV,
        modes: &["500", "503", "reset", "truncate"],
        rounds: (2, 4),
        own_mib: 12,
    };
    /// 500/503 and resets on Ceph RGW: s3s-fs ignores If-None-Match, so gc refuses to run
    /// there and the s3s-fs cases' deletes reclaim nothing; here each delete's gc runs
    /// under faults too.
    errors_and_resets_on_rgw: Case {
        server: "rgw",
        label: "500/503/reset at 12% (gc deletes: grace 0)",
        flags: &[
            "--seed", "17", "--rate", "500=0.04", "--rate", "503=0.04", "--rate", "reset=0.04",
        ],
        env: &[("KANDO_GC_GRACE", "0")],
        modes: &["500", "503", "reset"],
        rounds: (2, 4),
        own_mib: 18,
    };
    /// Half of all requests answered 500 or 503, and 5 % reset: kando's five attempts are
    /// often not enough, so operations fail at random points. They must fail cleanly and
    /// leave only whole snapshots.
    heavy_errors_on_s3s_fs: Case {
        server: "s3s-fs",
        label: "500/503 at 50% + reset at 5%",
        flags: &[
            "--seed", "16", "--rate", "500=0.25", "--rate", "503=0.25", "--rate", "reset=0.05",
        ],
        env: &[],
        modes: &["500", "503"],
        rounds: (1, 1),
        own_mib: 6,
    };
}

/// Requests a clean push (or pull) makes in a fresh repository, counted through a
/// fault-free proxy. This also checks that SigV4 signatures made for the proxy's address
/// pass the server's check (s3s-fs verifies them).
fn clean_count(run: &mut Run, args: &[&str], stdin: &[u8]) -> (u64, Output) {
    let out = run
        .through_proxy("count", args, stdin)
        .unwrap_or_else(|| panic!("{}: fault-free run through the proxy failed", run.label));
    let stats = run.proxy.stats();
    assert_eq!(run.injected(), 0, "{stats}");
    (stats["requests"].as_u64().unwrap(), out)
}

/// `--fail-after N`: every request after the N-th gets 503. A push cut off before its ref
/// is written fails with exit 69 and leaves no snapshot; one cut off only at the lock
/// release has committed. A pull into a file that is cut off leaves no file.
#[test]
fn fail_after_on_s3s_fs() {
    let Some(server) = start_selected("s3s-fs") else {
        return;
    };
    let data = mixed_data(4000, 20 << 20, 1 << 20);

    // How many requests a push makes into a fresh repository.
    let mut counting = Run::new(&server, "count push", &[], &[]);
    let profile = counting.faulty();
    let args = common::push_args(&profile, "p");
    let (total, out) = clean_count(&mut counting, &args, &data);
    let id = snapshot_of(&out, "kandoOutput")["id"]
        .as_str()
        .unwrap()
        .to_string();
    counting.pull_direct_exact(&id, &data, "push through a fault-free proxy");
    eprintln!("a push into a fresh repository makes {total} requests");
    assert!(total >= 10, "{total}");

    // Requests: connect 2, config 4, lock 2, index list 1, packs, index, manifest, ref,
    // lock release. Cut in the middle (packs) and just before the ref.
    for n in [total / 2, total - 2] {
        let flags = ["--fail-after".to_string(), n.to_string()];
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        let mut run = Run::new(&server, &format!("fail after {n} of {total}"), &flags, &[]);
        let profile = run.faulty();
        let args = common::push_args(&profile, "p");
        assert!(
            run.through_proxy("push", &args, &data).is_none(),
            "{}: the push succeeded",
            run.label
        );
        assert!(run.proxy.stats()["fail_after_503"].as_u64().unwrap() > 0);
        let left = run.listed("p");
        assert!(left.is_empty(), "{}: snapshots {left:?} listed", run.label);
        run.verify_all();
        run.report();
    }

    // Only the lock release fails: the snapshot is committed; the push may report
    // success or a clean failure, and what is listed is whole.
    let mut run = Run::new(
        &server,
        &format!("fail after {} of {total}", total - 1),
        &["--fail-after", &(total - 1).to_string()],
        &[],
    );
    run.push("p", &data);
    assert!(run.proxy.stats()["fail_after_503"].as_u64().unwrap() > 0);
    run.verify_all();
    run.report();

    // A pull into a file, cut off before its last read: exit 69 and no file, not even a
    // temporary one.
    let mut run = Run::new(&server, "pull to a file", &[], &[]);
    let direct = run.direct();
    common::ok(&kando_env(
        &common::push_args(&direct, "p"),
        &data,
        &[],
        LIMIT,
    ));
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("restored");
    let target_s = target.to_str().unwrap().to_string();
    let profile = run.faulty();
    let args = common::pull_to_args(&profile, "p", &target_s);
    let (pull_total, _) = clean_count(&mut run, &args, b"");
    same_bytes(
        &std::fs::read(&target).unwrap(),
        &data,
        "clean pull to a file",
    );
    std::fs::remove_file(&target).unwrap();

    // The same repository through a second proxy that fails every request after the
    // next-to-last one of a clean pull (the last one releases the lock).
    let n = (pull_total - 2).to_string();
    let proxy = FaultProxy::start(&server.endpoint, &["--fail-after", &n]).unwrap();
    let profile = proxy.profile_for(&direct);
    let out = kando_env(
        &common::pull_to_args(&profile, "p", &target_s),
        b"",
        &[],
        LIMIT,
    );
    fails_69(&out);
    assert!(proxy.stats()["fail_after_503"].as_u64().unwrap() > 0);
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(left.is_empty(), "a failed pull left {left:?}");
}

/// A delete whose garbage collection fails after it wrote a rewritten pack but before the
/// merged index (every index upload fails) must leave a repository that the next gc
/// cleans up without losing live data.
///
/// Known bug (found with this proxy): the failed gc leaves the rewritten pack behind,
/// unindexed. The next gc lists it as garbage ("never indexed"), rewrites the same live
/// blobs into a pack with the same content, hence the same name, indexes it, and then
/// deletes it with the other doomed packs: the surviving snapshot loses its data.
#[test]
fn gc_after_a_failed_gc_keeps_live_data_on_moto() {
    // moto, not s3s-fs: s3s-fs ignores If-None-Match, and gc refuses to run there.
    let Some(server) = start_selected("moto") else {
        return;
    };
    let mut run = Run::new(
        &server,
        "gc cut off before its merged index",
        &["--fail-match", "^PUT [^ ]*/kando-repo/index/"],
        &[],
    );
    let direct = run.direct();
    // `x` has packs of its own; `keep`, pushed after it, reuses 3 MiB of x's first pack,
    // so deleting x leaves that pack mostly dead: gc rewrites it.
    let x = common::random_bytes(5000, 18 << 20);
    let mut keep = x[..3 << 20].to_vec();
    keep.extend(common::random_bytes(5001, 7 << 20));
    for (path, data) in [("x", &x), ("keep", &keep)] {
        let out = kando_env(&common::push_args(&direct, path), data, &[], LIMIT);
        common::ok(&out);
    }
    let keep_id = run.listed("keep").pop().expect("keep is listed");

    // The delete itself commits (the ref goes first); its gc fails at the index upload.
    run.delete("x", &x);
    assert!(
        run.proxy.stats()["fail_match_503"].as_u64().unwrap() > 0,
        "no index upload was refused: {}",
        run.proxy.stats()
    );
    run.pull_direct_exact(&keep_id, &keep, "keep after the failed gc");
    run.verify_all();

    // A fault-free gc afterwards must not lose keep's data.
    run.direct_ok(&common::gc_args(&direct, &[]));
    run.pull_direct_exact(&keep_id, &keep, "keep after the next gc");
    run.verify_all();
    run.report();
}
