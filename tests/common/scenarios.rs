//! The core scenarios, each a function of a [`Backend`], so one suite runs against the
//! local directory and against every S3 server.

use std::io::{Read, Write};
use std::process::{Output, Stdio};

use crate::common::*;

/// Chunker sizes of a new repository (ChunkerParams::default).
pub const MIN: usize = 128 * 1024;
/// Average chunk size.
pub const AVG: usize = 512 * 1024;
/// Largest chunk.
pub const MAX: usize = 2 * 1024 * 1024;

/// Byte-exact round trips through stdin/stdout for sizes at and around the chunker's
/// bounds, and through files.
pub fn roundtrip_sizes(b: &dyn Backend) {
    let profile = b.profile();
    let sizes = [
        0,
        1,
        2,
        4095,
        MIN - 1,
        MIN,
        MIN + 1,
        AVG - 1,
        AVG,
        AVG + 1,
        MAX - 1,
        MAX,
        MAX + 1,
        3 * MAX + 17,
    ];
    for (i, &len) in sizes.iter().enumerate() {
        let data = mixed_data(i as u64, len, 300_000);
        let path = format!("sizes/{len}");
        let out = kando(&push_args(&profile, &path), &data);
        ok(&out);
        let snap = snapshot_of(&out, "kandoOutput");
        assert_eq!(snap["logicalSize"], len as u64, "{}", b.name());
        let id = snap["id"].as_str().unwrap().to_string();
        // By path (newest) and by snapshot id.
        for extra in [vec![], vec!["--kopia-snapshot", id.as_str()]] {
            let mut args = pull_args(&profile, &path);
            args.extend(extra.iter());
            let out = kando(&args, b"");
            ok(&out);
            assert!(
                out.stdout == data,
                "size {len} did not round-trip on {}",
                b.name()
            );
        }
    }

    // File to file.
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("backup.gz");
    let data = mixed_data(99, 3 * MAX + 5, 500_000);
    std::fs::write(&src, &data).unwrap();
    let src_s = src.to_str().unwrap();
    // The source positional before the flags, as real blueprints write it.
    ok(&kando(
        &[
            "location",
            "push",
            src_s,
            "--profile",
            &profile,
            "--path",
            "files/backup.gz",
        ],
        b"",
    ));
    let dst = dir.path().join("restored.gz");
    // A stale longer file must be replaced, not overwritten in place (upstream's bug).
    std::fs::write(&dst, vec![b'x'; data.len() + 1000]).unwrap();
    let dst_s = dst.to_str().unwrap();
    ok(&kando(
        &[
            "location",
            "pull",
            dst_s,
            "--profile",
            &profile,
            "--path",
            "files/backup.gz",
        ],
        b"",
    ));
    assert!(
        std::fs::read(&dst).unwrap() == data,
        "file round trip on {}",
        b.name()
    );
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().contains("kando-"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

/// A large stream of mixed text and random data round-trips byte for byte, streamed from
/// a file on stdin and hashed on the way out.
pub fn roundtrip_large(b: &dyn Backend, len: usize) {
    let profile = b.profile();
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("big");
    let mut f = std::fs::File::create(&src).unwrap();
    let mut h = blake3::Hasher::new();
    let block = 8 << 20;
    let mut written = 0;
    let mut i = 0u64;
    while written < len {
        let n = block.min(len - written);
        let part = if i % 3 == 2 {
            random_bytes(i, n)
        } else {
            dump_text(i, n)
        };
        h.update(&part);
        f.write_all(&part).unwrap();
        written += n;
        i += 1;
    }
    drop(f);
    let want = h.finalize();
    let out = bash(
        r#"kando location push --profile "$P" --path big/stream - < "$SRC""#,
        &[("P", &profile), ("SRC", src.to_str().unwrap())],
    );
    ok(&out);
    assert_eq!(snapshot_of(&out, "kandoOutput")["logicalSize"], len as u64);
    let (out, n, got) = pull_digest(&pull_args(&profile, "big/stream"));
    ok(&out);
    assert_eq!(n, len as u64);
    assert_eq!(got, want, "large stream differs on {}", b.name());
}

/// The smallest pipelines: one worker, one upload, 1 MiB packs (smaller than the largest
/// chunks), one or two reads in flight. Byte budgets are then smaller than one chunk or
/// one read (a 4 MiB read of incompressible data needs 8 MiB: stored + decoded), which
/// must still pass one at a time, byte-exact.
pub fn smallest_pipelines(b: &dyn Backend) {
    let profile = b.profile();
    let small_packs = mixed_data(41, 24 << 20, 3 << 20);
    let mut push = push_args(&profile, "tight/small-packs");
    push.splice(
        2..2,
        ["--jobs", "1", "--uploads", "1", "--pack-size-mib", "1"],
    );
    ok(&kando(&push, &small_packs));
    // Other data in default 8 MiB packs, so that reads span 4 MiB.
    let big_reads = random_bytes(42, 24 << 20);
    ok(&kando(&push_args(&profile, "tight/big-reads"), &big_reads));
    for (path, data) in [
        ("tight/small-packs", &small_packs),
        ("tight/big-reads", &big_reads),
    ] {
        for reads in ["1", "2"] {
            let mut pull = pull_args(&profile, path);
            pull.splice(2..2, ["--reads", reads]);
            let out = kando(&pull, b"");
            ok(&out);
            assert!(
                out.stdout == *data,
                "{path} with --reads {reads} restored different bytes on {}",
                b.name()
            );
        }
    }
}

/// Same 100 MB twice: < 1 % growth. A copy with 1 % changed in a few places: < 10 %.
pub fn dedup(b: &dyn Backend) {
    let profile = b.profile();
    let len = 100 << 20;
    let data = mixed_data(7, len, 4 << 20);
    let first = kando(&push_args(&profile, "dedup/a"), &data);
    ok(&first);
    let after_first = b.stored_bytes();
    let again = kando(&push_args(&profile, "dedup/a"), &data);
    ok(&again);
    let growth = b.stored_bytes() - after_first;
    let reported = snapshot_of(&again, "kandoOutput")["physicalSize"]
        .as_u64()
        .unwrap();
    assert!(
        growth * 100 < after_first,
        "same data again grew the repository by {growth} of {after_first} bytes on {}",
        b.name()
    );
    assert!(reported * 100 < after_first, "physicalSize {reported}");

    // 1 % changed: four edits of 256 KiB each spread through the stream.
    let mut edited = data.clone();
    for k in 0..4 {
        let at = (k * 2 + 1) * len / 9;
        for (j, byte) in random_bytes(1000 + k as u64, 256 << 10).iter().enumerate() {
            edited[at + j] = *byte;
        }
    }
    let before = b.stored_bytes();
    let third = kando(&push_args(&profile, "dedup/b"), &edited);
    ok(&third);
    let growth = b.stored_bytes() - before;
    assert!(
        growth * 10 < after_first,
        "1 % edit grew the repository by {growth} of {after_first} bytes on {}",
        b.name()
    );
    eprintln!(
        "{}: first push stored {after_first} B, identical again +{} B, 1% edited +{growth} B ({:.2} %)",
        b.name(),
        reported,
        growth as f64 * 100.0 / after_first as f64
    );
    // Both still restore.
    let out = kando(&pull_args(&profile, "dedup/b"), b"");
    ok(&out);
    assert!(out.stdout == edited);
}

/// Every command shape of KANDO-COMPAT.md's blueprint section, run by bash with errexit
/// and pipefail, in both the path style and the snapshot-JSON style.
pub fn blueprint_shapes(b: &dyn Backend) {
    let profile = b.profile();
    let work = tempfile::tempdir().unwrap();
    let w = work.path().to_str().unwrap().to_string();
    std::fs::write(work.path().join("dump"), dump_text(5, 3 << 20)).unwrap();
    let env = |extra: &[(&'static str, String)]| -> Vec<(String, String)> {
        let mut v = vec![
            ("P".to_string(), profile.clone()),
            ("W".to_string(), w.clone()),
        ];
        v.extend(extra.iter().map(|(k, s)| (k.to_string(), s.clone())));
        v
    };
    let run = |script: &str, extra: &[(&'static str, String)]| {
        let e = env(extra);
        let refs: Vec<(&str, &str)> = e.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        bash(script, &refs)
    };

    // MongoDB, object-store style: the path is the identity.
    let mongo_path =
        "/mongodb-replicaset-backups/my-sts/2026-11-25T10:00:00Z/rs_backup.gz".to_string();
    ok(&run(
        r#"cat "$W/dump" | gzip -c | kando location push --profile "$P" --path "$LOC" -"#,
        &[("LOC", mongo_path.clone())],
    ));
    ok(&run(
        r#"kando location pull --profile "$P" --path "$LOC" - | gunzip -c | cmp - "$W/dump""#,
        &[("LOC", mongo_path.clone())],
    ));
    ok(&run(
        r#"kando location delete --profile "$P" --path "$s3_path""#,
        &[("s3_path", mongo_path.clone())],
    ));
    let gone = run(
        r#"kando location pull --profile "$P" --path "$LOC" - > /dev/null"#,
        &[("LOC", mongo_path)],
    );
    assert_eq!(gone.status.code(), Some(69), "pull after delete must fail");

    // MongoDB, snapshot style: same --path every time, the snapshot JSON is the identity.
    let push = run(
        r#"cat "$W/dump" | kando location push --profile "$P" --path rs_backup.gz --output-name kopiaOutput -"#,
        &[],
    );
    ok(&push);
    let outputs = phase_outputs(&push.stdout);
    let snap = outputs
        .get("kopiaOutput")
        .expect("kopiaOutput artifact")
        .clone();
    let second = run(
        r#"cat "$W/dump" "$W/dump" | kando location push --profile "$P" --path rs_backup.gz --output-name kopiaOutput -"#,
        &[],
    );
    ok(&second);
    // The first snapshot, by its JSON, not the newest at the path.
    ok(&run(
        r#"kando location pull --profile "$P" --path rs_backup.gz --kopia-snapshot "$snap" - | cmp - "$W/dump""#,
        &[("snap", snap.clone())],
    ));
    ok(&run(
        r#"kando location delete --profile "$P" --path rs_backup.gz --kopia-snapshot "$snap""#,
        &[("snap", snap.clone())],
    ));
    let gone = run(
        r#"kando location pull --profile "$P" --path rs_backup.gz --kopia-snapshot "$snap" - > /dev/null"#,
        &[("snap", snap)],
    );
    assert_eq!(gone.status.code(), Some(69));
    // The other snapshot at the same path survived.
    ok(&run(
        r#"kando location pull --profile "$P" --path rs_backup.gz - | cmp - <(cat "$W/dump" "$W/dump")"#,
        &[],
    ));

    // PostgreSQL / MySQL: gzip'ed dump, the location as an output artifact.
    let out = run(
        r#"LOC=pg/backups/$(date +%s)/dump.sql.gz
           cat "$W/dump" | gzip -c | kando location push --profile "$P" --path "$LOC" -
           kando output backupLocation "$LOC""#,
        &[],
    );
    ok(&out);
    let loc = phase_outputs(&out.stdout)["backupLocation"].clone();
    ok(&run(
        r#"kando location pull --profile "$P" --path "$LOC" - | gunzip -c -f | cmp - "$W/dump""#,
        &[("LOC", loc.clone())],
    ));
    ok(&run(
        r#"kando location delete --profile "$P" --path "$LOC""#,
        &[("LOC", loc)],
    ));

    // Files and tar streams; flags after the positional, --flag=value form.
    ok(&run(
        r#"cp "$W/dump" "$W/backup.gz"
           kando location push --profile "$P" "$W/backup.gz" --path files/backup.gz
           kando location pull --profile="$P" --path=files/backup.gz "$W/back.gz"
           cmp "$W/back.gz" "$W/dump""#,
        &[],
    ));
    let tar = run(
        r#"mkdir -p "$W/data/x" && cp "$W/dump" "$W/data/x/db" && echo hi > "$W/data/x/small"
           tar zcf - -C "$W/data" x | kando location push --profile "$P" --path "$p" --output-name kopiaOutput -"#,
        &[("p", "tars/data.tgz".to_string())],
    );
    ok(&tar);
    let snap = phase_outputs(&tar.stdout)["kopiaOutput"].clone();
    ok(&run(
        r#"mkdir -p "$W/data/restored"
           kando location pull --profile "$P" --path "$p" --kopia-snapshot "$snap" - | tar zxf - -C "$W/data/restored"
           cmp "$W/data/restored/x/db" "$W/dump" && cmp "$W/data/restored/x/small" <(echo hi)
           kando location delete --profile "$P" --path "$p" --kopia-snapshot "$snap""#,
        &[("p", "tars/data.tgz".to_string()), ("snap", snap)],
    ));
}

/// Deleting a path removes it and everything below it, by whole components only.
pub fn delete_by_path_components(b: &dyn Backend) {
    let profile = b.profile();
    for p in ["a/b", "a/b/c", "a/bc", "a"] {
        ok(&kando(&push_args(&profile, p), p.as_bytes()));
    }
    ok(&kando(&delete_args(&profile, "a/b"), b""));
    let list = kando(&["repo", "list", "--profile", &profile], b"");
    ok(&list);
    let listed = String::from_utf8_lossy(&list.stdout);
    let paths: Vec<&str> = listed
        .lines()
        .map(|l| l.split_whitespace().nth(2).unwrap())
        .collect();
    assert_eq!(paths.len(), 2, "{listed}");
    assert!(paths.contains(&"a/bc") && paths.contains(&"a"), "{listed}");
    // A path with no snapshots deletes nothing and succeeds (retire actions rerun).
    ok(&kando(&delete_args(&profile, "nothing/here"), b""));
}

/// Failed commands write nothing to the location.
pub fn bad_input_writes_nothing(b: &dyn Backend) {
    let profile = b.profile();
    // Give the location a repository first, so "nothing written" is checked against one.
    push_id(&profile, "seed", b"seed");
    let before = b.object_keys();
    let unknown = "0123456789abcdef0123456789abcdef";
    for (args, stdin) in [
        (pull_snapshot_args(&profile, unknown), ""),
        (pull_args(&profile, "never/pushed"), ""),
        (delete_snapshot_args(&profile, unknown), ""),
        (
            push_with(&profile, "x", &["--output-name", "bad-key"]),
            "data",
        ),
        (push_args(&profile, "../escape"), "data"),
        (
            vec![
                "location",
                "push",
                "--profile",
                &profile,
                "--path",
                "x",
                "/no/such/file",
            ],
            "",
        ),
    ] {
        let out = kando(&args, stdin.as_bytes());
        fails_69(&out);
    }
    assert_eq!(
        b.object_keys(),
        before,
        "a failed command wrote to {}",
        b.name()
    );
}

/// Streams `kando location pull … -` and returns (bytes, BLAKE3) of its stdout, without
/// holding the whole stream in memory.
pub fn pull_digest(args: &[&str]) -> (Output, u64, blake3::Hash) {
    let mut child = kando_command()
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut h = blake3::Hasher::new();
    let mut n = 0u64;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let k = stdout.read(&mut buf).unwrap();
        if k == 0 {
            break;
        }
        h.update(&buf[..k]);
        n += k as u64;
    }
    let out = child.wait_with_output().unwrap();
    (out, n, h.finalize())
}
