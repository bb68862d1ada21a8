//! Switching from upstream kando (issue 14): the plain objects it wrote at
//! `join(prefix, path)` restore, list, import and delete; for any [`Backend`] with a way to
//! write such objects as a plain client would.

use std::process::Output;

use crate::common::*;

/// How a test writes and sees objects at the location, as upstream kando (not kando's
/// repository) would: keys relative to the location's prefix.
pub struct PlainClient<'a> {
    /// Writes `data` at `key`.
    pub put: &'a dyn Fn(&str, &[u8]),
    /// Keys under the prefix.
    pub keys: &'a dyn Fn() -> Vec<String>,
}

fn pull_path(p: &str, path: &str) -> Output {
    kando(&pull_args(p, path), b"")
}

/// The MongoDB, PostgreSQL and MySQL blueprints' paths: pulled byte for byte, listed,
/// deleted by whole components (a string-prefix sibling survives), imported; the
/// repository and its snapshots untouched.
pub fn upstream_objects_restore_and_delete(b: &dyn Backend, plain: &PlainClient) {
    let p = b.profile();
    let ours = mixed_data(70, 3 << 20, 1 << 20);
    let our_id = push_id(&p, "ours/db", &ours);
    let mongo = "/mongodb-replicaset-backups/mongo-0/2026-11-30T01:00:00Z/rs_backup.gz";
    let mongo_key = mongo.trim_start_matches('/');
    let pg_dir = "postgres-backups/pg-0/2026-11-30T01:00:00Z";
    let pg = format!("{pg_dir}/backup.sql.gz");
    let sibling = "postgres-backups/pg-0/2026-11-30T01:00:00Zx/backup.sql.gz";
    let mysql = "mysql-backups/mysql-0/2026-11-30T01-00-00Z/dump.sql.gz";
    // Larger than one ranged read (4 MiB), and odd-sized.
    let objects: Vec<(&str, Vec<u8>)> = vec![
        (mongo_key, random_bytes(71, (9 << 20) + 17)),
        (&pg, random_bytes(72, 5 << 20)),
        (sibling, random_bytes(73, 1000)),
        (mysql, random_bytes(74, 0)),
    ];
    for (k, d) in &objects {
        (plain.put)(k, d);
    }
    for (path, data) in [
        (mongo, &objects[0].1),
        (&pg, &objects[1].1),
        (mysql, &objects[3].1),
    ] {
        let out = pull_path(&p, path);
        ok(&out);
        assert!(
            out.stdout == *data,
            "plain object at {path} restored wrong bytes"
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("plain object"), "{stderr}");
    }
    let listed = kando(&["repo", "list", "--legacy", "--profile", &p], b"");
    ok(&listed);
    let listed = String::from_utf8_lossy(&listed.stdout).into_owned();
    for (k, d) in &objects {
        assert!(listed.contains(&format!("{k}  {}", d.len())), "{listed}");
    }
    assert!(!listed.contains("kando-repo"), "{listed}");

    // Delete by the directory of the PostgreSQL dump: it goes, the sibling stays.
    let out = kando(&delete_args(&p, pg_dir), b"");
    ok(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("removed 1 plain object(s)"), "{stderr}");
    let keys = (plain.keys)();
    assert!(!keys.iter().any(|k| k == &pg), "{keys:?}");
    assert!(keys.iter().any(|k| k == sibling), "{keys:?}");
    fails_69(&pull_path(&p, &pg));
    // Delete by the full MongoDB path, as its blueprint does.
    ok(&kando(&delete_args(&p, mongo), b""));
    assert!(!(plain.keys)().iter().any(|k| k == mongo_key));

    // Import the MySQL one: a snapshot from then on, the plain object removed.
    let out = kando(
        &[
            "repo",
            "import",
            "--profile",
            &p,
            "--path",
            mysql,
            "--remove-plain",
        ],
        b"",
    );
    ok(&out);
    assert!(!(plain.keys)().iter().any(|k| k == mysql));
    let out = pull_path(&p, mysql);
    ok(&out);
    assert!(out.stdout.is_empty());
    assert!(!String::from_utf8_lossy(&out.stderr).contains("plain object"));

    // Ours is untouched, and wins over a plain object at the same path.
    (plain.put)("ours/db", b"upstream's bytes");
    let out = pull_path(&p, "ours/db");
    ok(&out);
    assert!(out.stdout == ours);
    let out = pull_id(&p, &our_id);
    ok(&out);
    assert!(out.stdout == ours);
    ok(&kando(
        &["repo", "verify", "--profile", &p, "--read-data"],
        b"",
    ));
}

/// CockroachDB's BACKUP writes many objects under `<prefix>/<path>/…`; its blueprint's
/// delete action runs `location delete --path <path>`.
pub fn cockroach_backup_is_deleted(b: &dyn Backend, plain: &PlainClient) {
    let p = b.profile();
    let dir = "cockroach/backups/2026-11-30-010000.00";
    let files = [
        "BACKUP_MANIFEST",
        "BACKUP-CHECKPOINT-123",
        "data/1.sst",
        "data/2.sst",
        "progress/BACKUP-CHECKPOINT-CHECKSUM",
    ];
    for (i, f) in files.iter().enumerate() {
        (plain.put)(&format!("{dir}/{f}"), &random_bytes(80 + i as u64, 2000));
    }
    let other = "cockroach/backups/2026-11-30-010000.001/BACKUP_MANIFEST";
    (plain.put)(other, b"another backup");
    let out = kando(&delete_args(&p, dir), b"");
    ok(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("removed 5 plain object(s)"), "{stderr}");
    let keys = (plain.keys)();
    assert!(
        !keys.iter().any(|k| k.starts_with(&format!("{dir}/"))),
        "{keys:?}"
    );
    assert!(keys.iter().any(|k| k == other), "{keys:?}");
}
