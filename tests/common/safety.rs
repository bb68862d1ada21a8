//! gc safety under pauses, kills, PID namespaces and races (issue 13), for any [`Backend`].
//! Every scenario ends the same way: each snapshot whose push exited 0 and that was not
//! deleted restores byte for byte, and a final gc and `verify --read-data` pass.

use std::collections::HashMap;
use std::io::Write;
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

/// Sends `sig` to process `pid`.
pub fn signal(pid: u32, sig: i32) {
    // SAFETY: kill only sends a signal.
    unsafe {
        libc::kill(pid as i32, sig);
    }
}

/// Waits (bounded) until `pid` is stopped; panics if it exits or never stops.
pub fn wait_stopped(child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("process ended ({status}) before reaching its stop point");
        }
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", child.id())).unwrap();
        let state = stat[stat.rfind(')').unwrap() + 2..].chars().next().unwrap();
        if state == 'T' || state == 't' {
            return;
        }
        assert!(Instant::now() < deadline, "process never stopped");
        std::thread::yield_now();
    }
}

/// A push is either refused cleanly (exit 69, one `Error:` line, nothing at its path) or
/// its snapshot restores exactly. Returns the id when it committed.
pub fn push_outcome(p: &str, path: &str, out: &Output, data: &[u8]) -> Option<String> {
    if out.status.success() {
        let id = snapshot_of(out, "kandoOutput")["id"]
            .as_str()
            .unwrap()
            .to_string();
        let pulled = pull_id(p, &id);
        ok(&pulled);
        assert!(
            pulled.stdout == data,
            "snapshot {id} at {path} restores wrong bytes"
        );
        Some(id)
    } else {
        let line = fails_69(out);
        assert!(line.contains("nothing was committed"), "{line}");
        let list = kando(&["repo", "list", "--profile", p, "--path", path], b"");
        ok(&list);
        assert!(list.stdout.is_empty(), "a refused push left a snapshot");
        None
    }
}

/// Final gc (no session counts as live) and a full read of every snapshot.
pub fn final_gc_and_verify(p: &str) {
    ok(&kando(&gc_args(p, &["--lock-stale-after", "0"]), b""));
    ok(&kando(
        &["repo", "verify", "--profile", p, "--read-data"],
        b"",
    ));
}

fn spawn_push(p: &str, path: &str) -> Child {
    spawn_kando(&push_args(p, path))
}

/// Loss scenario 2: a push frozen (SIGSTOP) past the stale time while gc deletes what it
/// deduplicated against; on SIGCONT it must not commit over deleted data.
pub fn paused_push_is_fenced(b: &dyn Backend) {
    let p = b.profile();
    let data = mixed_data(11, 12 << 20, 1 << 20);
    push_id(&p, "fence/a", &data);
    let mut child = spawn_push(&p, "fence/b");
    let mut stdin = child.stdin.take().unwrap();
    let cut = data.len() - (1 << 20);
    stdin.write_all(&data[..cut]).unwrap();
    signal(child.id(), libc::SIGSTOP);
    wait_stopped(&mut child);
    // Stale at once: gc waits for no session, deletes what A alone used (B has not
    // committed), B's dedup targets included.
    let mut delete = delete_args(&p, "fence/a");
    delete.extend(["--lock-stale-after", "0"]);
    let del = kando(&delete, b"");
    ok(&del);
    signal(child.id(), libc::SIGCONT);
    stdin.write_all(&data[cut..]).unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    let committed = push_outcome(&p, "fence/b", &out, &data);
    eprintln!("paused push on {}: committed = {committed:?}", b.name());
    final_gc_and_verify(&p);
}

/// Loss scenario 1: a push in another PID namespace (same host name, a pid this /proc
/// does not have) is still running when another process deletes and collects.
pub fn push_in_another_pid_namespace(b: &dyn Backend) {
    let probe = std::process::Command::new("unshare")
        .args(["--pid", "--fork", "--mount-proc", "true"])
        .output()
        .expect("unshare (util-linux) is installed");
    assert!(
        probe.status.success(),
        "unshare --pid needs root: {}",
        String::from_utf8_lossy(&probe.stderr)
    );
    let p = b.profile();
    let data = mixed_data(12, 12 << 20, 1 << 20);
    push_id(&p, "ns/a", &data);
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("in");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let mut args = vec!["--pid", "--fork", "--mount-proc"];
    let bin = kando_bin();
    args.push(bin.to_str().unwrap());
    let mut push = push_args(&p, "ns/b");
    push.pop(); // "-"
    push.push(fifo.to_str().unwrap());
    args.extend(push);
    let mut cmd = kando_command();
    let mut unshare = std::process::Command::new("unshare");
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => unshare.env(k, v),
            None => unshare.env_remove(k),
        };
    }
    let _ = &mut cmd;
    let child = unshare
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut writer = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
    let half = data.len() / 2;
    writer.write_all(&data[..half]).unwrap();
    let del = kando(&delete_args(&p, "ns/a"), b"");
    ok(&del);
    let stderr = String::from_utf8_lossy(&del.stderr);
    assert!(stderr.contains("deferred"), "{stderr}");
    writer.write_all(&data[half..]).unwrap();
    drop(writer);
    let out = child.wait_with_output().unwrap();
    ok(&out);
    let id = push_outcome(&p, "ns/b", &out, &data).expect("committed");
    ok(&kando(&gc_args(&p, &[]), b""));
    let pulled = pull_id(&p, &id);
    ok(&pulled);
    assert!(pulled.stdout == data);
    final_gc_and_verify(&p);
}

/// Loss scenario 3: gc frozen at `point` (after deciding, before acting) while a push of
/// the same data commits; gc resumes and must not delete what the push uses.
pub fn paused_gc_spares_a_later_push(b: &dyn Backend, point: &str) {
    let p = b.profile();
    let data = mixed_data(13, 12 << 20, 1 << 20);
    push_id(&p, "pgc/a", &data);
    let mut gc = kando_command()
        .env("KANDO_TEST_STOP_AT", point)
        .args(delete_args(&p, "pgc/a"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_stopped(&mut gc);
    let id = push_id(&p, "pgc/b", &data);
    signal(gc.id(), libc::SIGCONT);
    ok(&gc.wait_with_output().unwrap());
    let pulled = pull_id(&p, &id);
    ok(&pulled);
    assert!(
        pulled.stdout == data,
        "frozen gc at {point} broke a later push"
    );
    let list = kando(&["repo", "list", "--profile", &p], b"");
    ok(&list);
    final_gc_and_verify(&p);
    let pulled = pull_id(&p, &id);
    ok(&pulled);
    assert!(pulled.stdout == data);
}

/// Deleting everything, then gc runs spanning the grace period: only the config (and the
/// journal's last record) remain.
pub fn grace_then_reclaim(b: &dyn Backend) {
    let p = b.profile();
    for i in 0..3u64 {
        push_id(
            &p,
            &format!("grace/{i}"),
            &mixed_data(20 + i, 3 << 20, 1 << 20),
        );
    }
    let del = kando_command()
        .env("KANDO_GC_GRACE", "3600")
        .args(delete_args(&p, "grace"))
        .output()
        .unwrap();
    ok(&del);
    let stderr = String::from_utf8_lossy(&del.stderr);
    assert!(stderr.contains("grace period"), "{stderr}");
    assert!(repo_objects(b).iter().any(|k| k.starts_with("packs/")));
    ok(&kando(&gc_args(&p, &["--gc-grace", "0"]), b""));
    assert_eq!(
        repo_objects(b),
        vec!["config".to_string()],
        "on {}",
        b.name()
    );
    // What is left is the config and a few small journal records: a few KB, not data.
    assert!(
        b.stored_bytes() < 16 * 1024,
        "{} bytes left",
        b.stored_bytes()
    );
}

/// Pushes, deletes, gc and pulls at once, with random SIGSTOP/SIGCONT and SIGKILL, for
/// `rounds` rounds (KANDO_CHAOS_ROUNDS overrides). After every round each snapshot that
/// committed and was not deleted restores byte for byte.
/// `gzip -1 -n` of `data`.
fn gzip_fast(data: &[u8]) -> Vec<u8> {
    let mut child = std::process::Command::new("gzip")
        .args(["-1", "-n", "-c"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("gzip runs");
    let mut stdin = child.stdin.take().unwrap();
    let feed = data.to_vec();
    let feeder = std::thread::spawn(move || stdin.write_all(&feed));
    let out = child.wait_with_output().unwrap();
    feeder.join().unwrap().unwrap();
    assert!(out.status.success());
    out.stdout
}

pub fn chaos(b: &dyn Backend, rounds: usize) {
    let rounds = std::env::var("KANDO_CHAOS_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(rounds);
    let p = b.profile();
    let base = mixed_data(30, 6 << 20, 1 << 20);
    // The repository exists before the first round's gc runs.
    ok(&kando(&["repo", "init", "--profile", &p], b""));
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move |n: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % n.max(1)
    };
    // path → (id, content) of committed, not deleted snapshots.
    let mut alive: HashMap<String, (String, Vec<u8>)> = HashMap::new();
    let mut pushes = 0u64;
    for round in 0..rounds {
        let mut children: Vec<(String, Child, Option<Vec<u8>>)> = Vec::new();
        let mut feeders = Vec::new();
        for _ in 0..2 {
            pushes += 1;
            let path = format!("chaos/{pushes}");
            let mut data = base.clone();
            let at = (next(5) as usize) << 20;
            data[at..at + 4096].copy_from_slice(&random_bytes(pushes, 4096));
            data.extend(random_bytes(1000 + pushes, 200_000));
            // Every third push is gzip'ed: a recompressed snapshot (manifest version 2,
            // recipe blocks in a second chunk list) sharing chunks with plain ones.
            if pushes.is_multiple_of(3) {
                data = gzip_fast(&data);
            }
            let mut child = spawn_push(&p, &path);
            let mut stdin = child.stdin.take().unwrap();
            let feed = data.clone();
            feeders.push(std::thread::spawn(move || {
                let _ = stdin.write_all(&feed);
            }));
            children.push((path, child, Some(data)));
        }
        let stale = if next(2) == 0 { "0" } else { "300" };
        if let Some(victim) = alive
            .keys()
            .nth(next(alive.len() as u64 + 1) as usize)
            .cloned()
        {
            let child = kando_command()
                .args(delete_args(&p, &victim))
                .args(["--lock-stale-after", stale])
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            children.push((format!("delete {victim}"), child, None));
        }
        let child = kando_command()
            .args(gc_args(&p, &["--lock-stale-after", stale]))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        children.push(("gc".into(), child, None));
        if let Some((_, (id, _))) = alive.iter().nth(next(alive.len() as u64 + 1) as usize) {
            let child = kando_command()
                .args(pull_snapshot_args(&p, id))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            children.push(("pull".into(), child, None));
        }
        // Random interference: stop one, kill one (each maybe), at a random moment.
        let stopped = next(2) == 0;
        let stop_at = next(children.len() as u64) as usize;
        let kill_at = next(children.len() as u64 * 2) as usize;
        std::thread::sleep(Duration::from_millis(next(300)));
        if stopped {
            signal(children[stop_at].1.id(), libc::SIGSTOP);
        }
        if kill_at < children.len() && kill_at != stop_at {
            signal(children[kill_at].1.id(), libc::SIGKILL);
        }
        // Let the others finish while one is frozen, then thaw it.
        let mut outputs: Vec<Option<Output>> = Vec::new();
        let mut frozen = None;
        let mut meta = Vec::new();
        for (i, (what, child, data)) in children.into_iter().enumerate() {
            meta.push((what, data));
            if stopped && i == stop_at {
                frozen = Some(child);
                outputs.push(None);
            } else {
                outputs.push(Some(child.wait_with_output().unwrap()));
            }
        }
        if let Some(child) = frozen {
            signal(child.id(), libc::SIGCONT);
            outputs[stop_at] = Some(child.wait_with_output().unwrap());
        }
        for f in feeders {
            f.join().unwrap();
        }
        for (i, ((what, data), out)) in meta.into_iter().zip(outputs).enumerate() {
            let out = out.unwrap();
            let killed = i == kill_at;
            if let Some(data) = data {
                // A push: refused cleanly, killed, or whole.
                if out.status.success() {
                    let id = push_outcome(&p, &what, &out, &data).unwrap();
                    alive.insert(what, (id, data));
                } else if !killed {
                    push_outcome(&p, &what, &out, &data);
                }
            } else if let Some(victim) = what.strip_prefix("delete ") {
                if out.status.success() || killed {
                    // A killed delete may have removed the snapshot or not: stop tracking.
                    alive.remove(victim);
                } else {
                    panic!("delete failed: {}", String::from_utf8_lossy(&out.stderr));
                }
            } else if what == "gc" && !killed && !out.status.success() {
                let e = String::from_utf8_lossy(&out.stderr);
                assert!(e.contains("changed too often"), "gc failed: {e}");
            }
        }
        for (path, (id, data)) in &alive {
            let pulled = pull_id(&p, id);
            ok(&pulled);
            assert!(
                pulled.stdout == *data,
                "round {round}: {path} ({id}) restores wrong bytes on {}",
                b.name()
            );
        }
    }
    final_gc_and_verify(&p);
    for (path, (id, data)) in &alive {
        let pulled = pull_id(&p, id);
        ok(&pulled);
        assert!(pulled.stdout == *data, "after final gc: {path} ({id})");
    }
}

/// Pull, verify and list through `read_only` (a profile that can only read the same
/// repository `p` names) succeed; a push through it fails, proving it is read-only.
pub fn reads_need_no_writes(p: &str, read_only: &dyn Fn(&[&str]) -> Output) {
    let data = mixed_data(40, 5 << 20, 1 << 20);
    let id = push_id(p, "ro/a", &data);
    let out = read_only(&["location", "pull", "--path", "ro/a", "-"]);
    ok(&out);
    assert!(out.stdout == data, "read-only pull restored wrong bytes");
    let out = read_only(&["location", "pull", "--kopia-snapshot", &id, "-"]);
    ok(&out);
    assert!(out.stdout == data);
    ok(&read_only(&["repo", "verify", "--read-data"]));
    let list = read_only(&["repo", "list"]);
    ok(&list);
    assert!(String::from_utf8_lossy(&list.stdout).contains(&id));
    fails_69(&read_only(&[
        "location",
        "push",
        "--path",
        "ro/b",
        "--from-command",
        "echo x",
    ]));
}

/// A lost pack: repair reports the snapshot that used it; the next push of the same data
/// stores it anew (never deduplicating against the lost pack) and so heals the old one.
pub fn lost_pack_heals(b: &dyn Backend, lose: &dyn Fn()) {
    let p = b.profile();
    let data = mixed_data(41, 6 << 20, 1 << 20);
    let old = push_id(&p, "heal/a", &data);
    lose();
    let out = kando(&["repo", "repair", "--profile", &p], b"");
    ok(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "snapshot {old} at \"heal/a\" can no longer be restored"
        )),
        "{stderr}"
    );
    fails_69(&pull_id(&p, &old));
    let new = push_id(&p, "heal/b", &data);
    for id in [&new, &old] {
        let pulled = pull_id(&p, id);
        ok(&pulled);
        assert!(pulled.stdout == data, "snapshot {id} after the lost pack");
    }
    final_gc_and_verify(&p);
}

/// Deletes while `repo list`, `verify` and gc run: listing never reports damage.
pub fn delete_races_list(b: &dyn Backend, rounds: usize) {
    let p = b.profile();
    for i in 0..rounds {
        push_id(
            &p,
            &format!("dl/{i}"),
            &random_bytes(50 + i as u64, 100_000),
        );
    }
    std::thread::scope(|s| {
        let p = &p;
        s.spawn(move || {
            for i in 0..rounds {
                ok(&kando(&delete_args(p, &format!("dl/{i}")), b""));
            }
        });
        for _ in 0..rounds {
            ok(&kando(&["repo", "list", "--profile", p], b""));
            ok(&kando(&["repo", "verify", "--profile", p], b""));
        }
    });
}
