//! Delete, garbage collection and concurrency scenarios (issue 4), for any [`Backend`].

use std::collections::HashMap;
use std::io::Write;
use std::process::Stdio;
use std::sync::Mutex;

use crate::common::*;
use crate::common::{pull_id, push_id as push};

/// Five streams pushed and deleted: gc leaves the config and nothing else.
pub fn delete_all_leaves_only_config(b: &dyn Backend) {
    let p = b.profile();
    for i in 0..5u64 {
        push(
            &p,
            &format!("five/{i}"),
            &mixed_data(100 + i, 3 << 20, 1 << 20),
        );
    }
    assert!(repo_objects(b).iter().any(|k| k.starts_with("packs/")));
    let out = kando(&delete_args(&p, "five"), b"");
    ok(&out);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("garbage collection"),
        "gc ran"
    );
    assert_eq!(
        repo_objects(b),
        vec!["config".to_string()],
        "on {}",
        b.name()
    );
}

/// A and B share half their chunks; deleting A keeps B intact and frees A's unique data.
pub fn delete_shared_keeps_the_other(b: &dyn Backend) {
    let p = b.profile();
    let shared = random_bytes(1, 12 << 20);
    let a: Vec<u8> = [shared.clone(), random_bytes(2, 12 << 20)].concat();
    let bb: Vec<u8> = [shared, random_bytes(3, 12 << 20)].concat();
    push(&p, "share/a", &a);
    let b_id = push(&p, "share/b", &bb);
    let with_both = b.stored_bytes();
    ok(&kando(&delete_args(&p, "share/a"), b""));
    let after = b.stored_bytes();
    let out = pull_id(&p, &b_id);
    ok(&out);
    assert!(out.stdout == bb, "B intact on {}", b.name());
    // A's unique 12 MiB (random, stored raw) is gone; B's 24 MiB stays.
    assert!(
        after < with_both - (11 << 20) && after > 24 << 20,
        "stored {with_both} → {after} on {}",
        b.name()
    );
}

/// Pushes (overlapping content) and deletes racing in loops; afterwards every surviving
/// snapshot restores byte for byte, and gc with nothing running leaves a consistent repo.
pub fn race_push_delete(b: &dyn Backend, rounds_per_worker: usize) {
    let p = b.profile();
    let base = random_bytes(77, 6 << 20);
    // id → expected BLAKE3 of the content.
    let expected: Mutex<HashMap<String, blake3::Hash>> = Mutex::new(HashMap::new());
    std::thread::scope(|s| {
        for w in 0..3u64 {
            let (p, base, expected) = (&p, &base, &expected);
            s.spawn(move || {
                for r in 0..rounds_per_worker as u64 {
                    // Overlapping content: a shared base, a changed slice, a unique tail.
                    let mut data = base.clone();
                    let at = ((w * 31 + r * 7) % 5) as usize * (1 << 20);
                    data[at..at + 4096].copy_from_slice(&random_bytes(w * 1000 + r, 4096));
                    data.extend(random_bytes(5000 + w * 1000 + r, 300_000));
                    let id = push(p, &format!("race/w{w}/r{r}"), &data);
                    expected.lock().unwrap().insert(id, blake3::hash(&data));
                    if r % 2 == 1 {
                        // Delete this worker's previous round while the others push.
                        let previous = format!("race/w{w}/r{}", r - 1);
                        let out = kando(&delete_args(p, &previous), b"");
                        ok(&out);
                    }
                }
            });
        }
    });
    ok(&kando(&gc_args(&p, &[]), b""));
    let list = kando(&["repo", "list", "--profile", &p, "--path", "race"], b"");
    ok(&list);
    let expected = expected.into_inner().unwrap();
    let survivors: Vec<String> = String::from_utf8_lossy(&list.stdout)
        .lines()
        .map(|l| l.split_whitespace().next().unwrap().to_string())
        .collect();
    assert_eq!(
        survivors.len(),
        3 * rounds_per_worker.div_ceil(2),
        "survivors on {}",
        b.name()
    );
    for id in survivors {
        let out = pull_id(&p, &id);
        ok(&out);
        assert_eq!(
            blake3::hash(&out.stdout),
            expected[&id],
            "snapshot {id} on {}",
            b.name()
        );
    }
}

/// kill -9 of a push at many points: never a visible partial snapshot, and gc then
/// removes every orphan.
pub fn killed_pushes_leave_nothing(b: &dyn Backend, trials: u64) {
    let p = b.profile();
    let data = mixed_data(9, 24 << 20, 2 << 20);
    for t in 0..trials {
        let path = format!("killed/{t}");
        let mut child = kando_command()
            .args(push_args(&p, &path))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        // Kill at a pseudo-random point of the input; every 4th trial after the whole
        // input was sent, racing the commit.
        let cut = if t % 4 == 3 {
            data.len()
        } else {
            ((t * 7919 + 13) % 97) as usize * data.len() / 97
        };
        let _ = stdin.write_all(&data[..cut]);
        if cut == data.len() {
            drop(stdin);
        }
        child.kill().unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(!out.status.success() || cut == data.len());
        let list = kando(&["repo", "list", "--profile", &p, "--path", &path], b"");
        if list.status.success() && !list.stdout.is_empty() {
            // Only a push that completed may be visible, and then it is whole.
            let id = String::from_utf8_lossy(&list.stdout)
                .split_whitespace()
                .next()
                .unwrap()
                .to_string();
            let pulled = pull_id(&p, &id);
            ok(&pulled);
            assert!(
                pulled.stdout == data,
                "a visible snapshot of trial {t} is partial"
            );
        }
    }
    // Delete everything that committed; gc, told that no session is live (the killed
    // pushes' sessions cannot be told from paused ones but by time), must then leave only
    // the config.
    ok(&kando(&delete_args(&p, "killed"), b""));
    ok(&kando(&gc_args(&p, &["--lock-stale-after", "0"]), b""));
    assert_eq!(
        repo_objects(b),
        vec!["config".to_string()],
        "orphans left on {}",
        b.name()
    );
}

/// Pushes racing to create the repository agree on one config.
pub fn racing_init_agrees(b: &dyn Backend) {
    let p = b.profile();
    let ids: Vec<(String, Vec<u8>)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4u64)
            .map(|i| {
                let p = &p;
                s.spawn(move || {
                    let data = mixed_data(40 + i, 1 << 20, 200_000);
                    (push(p, &format!("init/{i}"), &data), data)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(repo_objects(b).iter().filter(|k| *k == "config").count(), 1);
    for (id, data) in ids {
        let out = pull_id(&p, &id);
        ok(&out);
        assert!(out.stdout == data);
    }
}

/// A push holding the repository defers reclaiming; delete still succeeds at once.
pub fn delete_defers_while_in_use(b: &dyn Backend) {
    let p = b.profile();
    push(&p, "defer/a", &random_bytes(5, 2 << 20));
    // A push that waits on its stdin holds a session.
    let mut child = spawn_kando(&push_args(&p, "defer/b"));
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(&random_bytes(6, 3 << 20)).unwrap();
    // Its session exists once it has read input (announced before reading).
    let out = kando(&delete_args(&p, "defer/a"), b"");
    ok(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("deferred"), "{stderr}");
    drop(stdin);
    ok(&child.wait_with_output().unwrap());
    let out = kando(&gc_args(&p, &[]), b"");
    ok(&out);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("1 pack(s) deleted")
            || String::from_utf8_lossy(&out.stderr).contains("rewritten"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// On a store whose conditional writes can both succeed (a server that ignores
/// `If-None-Match`), gc refuses before deleting anything: delete still removes the snapshot
/// and says space was not reclaimed, `repo gc` fails with exit 69, and every other snapshot
/// restores.
pub fn gc_refused_without_exclusive_create(b: &dyn Backend) {
    let p = b.profile();
    let shared = random_bytes(7, 4 << 20);
    let a: Vec<u8> = [shared.clone(), random_bytes(8, 2 << 20)].concat();
    let kept: Vec<u8> = [shared, random_bytes(9, 2 << 20)].concat();
    push(&p, "noexcl/a", &a);
    let kept_id = push(&p, "noexcl/kept", &kept);
    let before = repo_objects(b);

    let out = kando(&delete_args(&p, "noexcl/a"), b"");
    ok(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("reclaiming space failed and was skipped")
            && stderr.contains("conditional writes"),
        "{stderr}"
    );
    let after_delete = repo_objects(b);
    let removed: Vec<&String> = before
        .iter()
        .filter(|k| !after_delete.contains(k))
        .collect();
    assert!(
        removed.iter().any(|k| k.starts_with("refs/")),
        "{removed:?}"
    );
    assert!(
        removed
            .iter()
            .all(|k| k.starts_with("refs/") || k.starts_with("snapshots/")),
        "delete removed data: {removed:?}"
    );

    let line = fails_69(&kando(&gc_args(&p, &["--gc-grace", "0"]), b""));
    assert!(line.contains("conditional writes"), "{line}");
    assert_eq!(repo_objects(b), after_delete, "gc changed the repository");
    assert!(!after_delete.iter().any(|k| k.starts_with("probes/")));
    let out = pull_id(&p, &kept_id);
    ok(&out);
    same_bytes(&out.stdout, &kept, "the other snapshot");
}
