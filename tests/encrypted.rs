//! Encrypted repositories on the local-directory backend: the plain suites run unchanged
//! with a password, then what encryption itself must show (issue 7): no plaintext in any
//! object, keyed chunk ids, wrong/missing passwords and tampering refused with exit 69.

pub mod common;
#[path = "common/gc_scenarios.rs"]
pub mod gc_scenarios;
#[path = "common/scenarios.rs"]
pub mod scenarios;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;

use common::{delete_args, files_under, gc_args, pull_args, push_args, Backend, LocalBackend};
use gc_scenarios as gc;
use kando::repo::crypto::Password;
use kando::repo::ids::Id;
use kando::repo::Repository;
use kando::storage::local::LocalStorage;

const PASSWORD: &str = "correct horse battery staple";

/// A fresh location whose repository (created by the first push) is encrypted.
fn encrypted() -> LocalBackend {
    common::encrypt_every_run(PASSWORD);
    LocalBackend::new()
}

/// Runs kando with exactly this password environment (`None`: no password at all).
fn run_with(password: Option<&str>, args: &[&str], stdin: &[u8]) -> Output {
    let mut cmd = Command::new(common::kando_bin());
    cmd.env_remove("KANDO_PASSWORD")
        .env_remove("KANDO_PASSWORD_FILE")
        .args(args);
    if let Some(pw) = password {
        cmd.env("KANDO_PASSWORD", pw);
    }
    common::run_feeding(&mut cmd, stdin)
}

/// The repository directory of a [`LocalBackend`] (its profile has prefix team/pre).
fn repo_dir(b: &LocalBackend) -> PathBuf {
    b.dir().join("team/pre/kando-repo")
}

/// Every chunk and block id in the repository's index, read through the library.
fn chunk_ids(b: &LocalBackend, password: Option<&str>) -> HashSet<Id> {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let storage = Arc::new(LocalStorage::new(repo_dir(b)));
    let pw = password.map(|p| Password::new(p.as_bytes().to_vec()));
    let repo = rt.block_on(Repository::open(storage, pw.as_ref())).unwrap();
    let index = rt.block_on(repo.load_read_index()).unwrap();
    index.ids().copied().collect()
}

/// Asserts the suite really ran against an encrypted repository.
fn assert_encrypted(b: &LocalBackend) {
    let config = std::fs::read_to_string(repo_dir(b).join("config")).unwrap();
    assert!(config.contains("\"encryption\""), "{config}");
}

// ---- The plain suites, encrypted. ----

/// Runs a plain scenario on a fresh location and checks it really ran encrypted.
fn on_encrypted(scenario: impl FnOnce(&LocalBackend)) {
    let b = encrypted();
    scenario(&b);
    assert_encrypted(&b);
}

#[test]
fn roundtrip_sizes() {
    on_encrypted(|b| scenarios::roundtrip_sizes(b));
}

#[test]
fn roundtrip_100_mb_mixed() {
    on_encrypted(|b| scenarios::roundtrip_large(b, 100 << 20));
}

#[test]
fn dedup() {
    on_encrypted(|b| scenarios::dedup(b));
}

#[test]
fn blueprint_shapes() {
    on_encrypted(|b| scenarios::blueprint_shapes(b));
}

#[test]
fn delete_by_path_components() {
    on_encrypted(|b| scenarios::delete_by_path_components(b));
}

#[test]
fn bad_input_writes_nothing() {
    on_encrypted(|b| scenarios::bad_input_writes_nothing(b));
}

#[test]
fn gc_delete_all_leaves_only_config() {
    on_encrypted(|b| gc::delete_all_leaves_only_config(b));
}

#[test]
fn gc_delete_shared_keeps_the_other() {
    on_encrypted(|b| gc::delete_shared_keeps_the_other(b));
}

#[test]
fn gc_race_push_delete() {
    on_encrypted(|b| gc::race_push_delete(b, 12));
}

#[test]
fn gc_racing_init_agrees() {
    on_encrypted(|b| gc::racing_init_agrees(b));
}

// ---- What encryption must show. ----

const MARKER: &[u8] = b"KANDO-PLAINTEXT-MARKER-4c1d";

/// Dump-like text and incompressible blocks (stored raw), both full of the marker.
fn marked_data() -> Vec<u8> {
    let mut data = Vec::new();
    for i in 0..6u64 {
        let mut text = common::dump_text(i, 1 << 20);
        let mut random = common::random_bytes(i, 1 << 20);
        for at in (0..text.len() - MARKER.len()).step_by(4096) {
            text[at..at + MARKER.len()].copy_from_slice(MARKER);
            random[at..at + MARKER.len()].copy_from_slice(MARKER);
        }
        data.extend(text);
        data.extend(random);
    }
    data
}

/// Which of `needles` occur in any object (name or bytes) under `dir`.
fn leaked(dir: &Path, needles: &[&[u8]]) -> Vec<String> {
    let mut found = Vec::new();
    for f in files_under(dir) {
        let bytes = std::fs::read(&f).unwrap();
        let name = f.to_string_lossy().into_owned();
        for n in needles {
            if bytes.windows(n.len()).any(|w| w == *n)
                || name.as_bytes().windows(n.len()).any(|w| w == *n)
            {
                found.push(format!("{} in {name}", String::from_utf8_lossy(n)));
            }
        }
    }
    found
}

#[test]
fn no_plaintext_in_any_stored_object() {
    let data = marked_data();
    let stream_hash = blake3::hash(&data);
    let hash_hex = stream_hash.to_hex();
    let path = "customers-db/KANDO-PATH-MARKER";
    let needles: [&[u8]; 4] = [
        MARKER,
        b"KANDO-PATH-MARKER",
        b"customers-db",
        hash_hex.as_bytes(),
    ];
    let needles: Vec<&[u8]> = needles.to_vec();
    let raw_hash = *stream_hash.as_bytes();

    // The check can fail: a plain repository shows every needle.
    let plain = LocalBackend::new();
    common::ok(&run_with(None, &push_args(&plain.profile(), path), &data));
    let in_plain = leaked(plain.dir(), &needles);
    assert!(
        in_plain.len() >= 3,
        "the plain control should leak the marker, path and hash: {in_plain:?}"
    );

    let enc = LocalBackend::new();
    common::ok(&run_with(
        Some(PASSWORD),
        &push_args(&enc.profile(), path),
        &data,
    ));
    // A second, overlapping push and a delete exercise manifests, refs, gc-rewritten packs.
    common::ok(&run_with(
        Some(PASSWORD),
        &push_args(&enc.profile(), "customers-db/other"),
        &data[..data.len() / 2],
    ));
    let mut with_raw = needles.clone();
    with_raw.push(&raw_hash);
    assert_eq!(leaked(enc.dir(), &with_raw), Vec::<String>::new());
    let out = run_with(Some(PASSWORD), &pull_args(&enc.profile(), path), b"");
    common::ok(&out);
    assert!(out.stdout == data);
    // The config says what it is: encrypted, format 2, argon2id.
    let config = std::fs::read_to_string(repo_dir(&enc).join("config")).unwrap();
    let config: serde_json::Value = serde_json::from_str(&config).unwrap();
    assert_eq!(config["version"], 2);
    assert_eq!(config["encryption"]["kdf"], "argon2id");
    assert_eq!(config["encryption"]["cipher"], "xchacha20-poly1305");
}

#[test]
fn chunk_ids_differ_across_passwords_and_repositories() {
    let data = common::mixed_data(3, 6 << 20, 1 << 20);
    let (a, b, c, plain) = (
        LocalBackend::new(),
        LocalBackend::new(),
        LocalBackend::new(),
        LocalBackend::new(),
    );
    common::ok(&run_with(
        Some("password-one"),
        &push_args(&a.profile(), "x"),
        &data,
    ));
    common::ok(&run_with(
        Some("password-two"),
        &push_args(&b.profile(), "x"),
        &data,
    ));
    // Same password, another repository: its own random master key.
    common::ok(&run_with(
        Some("password-one"),
        &push_args(&c.profile(), "x"),
        &data,
    ));
    common::ok(&run_with(None, &push_args(&plain.profile(), "x"), &data));
    let ids_a = chunk_ids(&a, Some("password-one"));
    let ids_b = chunk_ids(&b, Some("password-two"));
    let ids_c = chunk_ids(&c, Some("password-one"));
    let ids_plain = chunk_ids(&plain, None);
    assert!(ids_a.len() >= 6, "{} chunks", ids_a.len());
    assert!(ids_a.is_disjoint(&ids_b), "same ids under two passwords");
    assert!(ids_a.is_disjoint(&ids_c), "same ids in two repositories");
    assert!(
        ids_a.is_disjoint(&ids_plain),
        "keyed ids equal plain BLAKE3"
    );
    // A plain repository's ids are the BLAKE3 of its chunks, which anyone holding the data
    // can compute; an encrypted repository's are none of them.
    let chunks: HashSet<Id> = fastcdc::v2020::FastCDC::with_level(
        &data,
        128 << 10,
        512 << 10,
        2 << 20,
        fastcdc::v2020::Normalization::Level1,
    )
    .map(|c| Id::of(&data[c.offset..c.offset + c.length]))
    .collect();
    assert!(chunks.is_subset(&ids_plain));
    assert!(chunks.is_disjoint(&ids_a) && chunks.is_disjoint(&ids_b));
}

#[test]
fn wrong_or_missing_password_writes_nothing_and_exits_69() {
    let b = LocalBackend::new();
    let p = b.profile();
    let data = common::dump_text(9, 3 << 20);
    common::ok(&run_with(Some(PASSWORD), &push_args(&p, "db"), &data));
    let before = b.object_keys();

    let missing = common::fails_69(&run_with(None, &pull_args(&p, "db"), b""));
    assert!(
        missing.contains("is encrypted") && missing.contains("KANDO_PASSWORD"),
        "{missing}"
    );
    let wrong_pull = run_with(Some("not it"), &pull_args(&p, "db"), b"");
    let line = common::fails_69(&wrong_pull);
    assert!(line.contains("wrong password"), "{line}");
    assert!(
        wrong_pull.stdout.is_empty(),
        "bytes on stdout with a wrong password"
    );
    for args in [
        push_args(&p, "db"),
        push_args(&p, "new/path"),
        delete_args(&p, "db"),
        gc_args(&p, &[]),
        vec!["repo", "verify", "--profile", &p],
        vec!["repo", "list", "--profile", &p],
    ] {
        for pw in [None, Some("not it")] {
            let out = run_with(pw, &args, &data);
            let line = common::fails_69(&out);
            assert!(
                line.contains("password") || line.contains("encrypted"),
                "{args:?}: {line}"
            );
            assert!(out.stdout.is_empty(), "{args:?} printed {:?}", out.stdout);
        }
    }
    assert_eq!(b.object_keys(), before, "a refused command wrote something");

    // A plain repository refuses a password rather than silently ignoring it.
    let plain = LocalBackend::new();
    common::ok(&run_with(
        None,
        &push_args(&plain.profile(), "db"),
        b"plain",
    ));
    let plain_before = plain.object_keys();
    let line = common::fails_69(&run_with(
        Some(PASSWORD),
        &push_args(&plain.profile(), "db"),
        b"more",
    ));
    assert!(line.contains("not encrypted"), "{line}");
    assert_eq!(plain.object_keys(), plain_before);

    // --password-file: a mounted secret with its trailing newline works; so does the
    // environment variable KANDO_PASSWORD_FILE; both ways at once, or empty, do not.
    let secrets = tempfile::tempdir().unwrap();
    let file = secrets.path().join("password");
    std::fs::write(&file, format!("{PASSWORD}\n")).unwrap();
    let file_s = file.to_str().unwrap();
    let mut args = pull_args(&p, "db");
    args.extend(["--password-file", file_s]);
    let out = run_with(None, &args, b"");
    common::ok(&out);
    assert!(out.stdout == data);
    let by_env = Command::new(common::kando_bin())
        .env_remove("KANDO_PASSWORD")
        .env("KANDO_PASSWORD_FILE", file_s)
        .args(pull_args(&p, "db"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    common::ok(&by_env);
    assert!(by_env.stdout == data);
    let line = common::fails_69(&run_with(Some(PASSWORD), &args, b""));
    assert!(line.contains("one way"), "{line}");
    std::fs::write(&file, "\n").unwrap();
    let line = common::fails_69(&run_with(None, &args, b""));
    assert!(line.contains("empty"), "{line}");
    let line = common::fails_69(&run_with(Some(""), &pull_args(&p, "db"), b""));
    assert!(line.contains("empty"), "{line}");
    // The password never shows in the clap-visible command line: there is no --password.
    let out = run_with(None, &["location", "pull", "--password", "x", "-"], b"");
    assert_eq!(out.status.code(), Some(69));
}

/// Copies the repository at `from` to a fresh location, for one tampering case.
fn copy_location(from: &LocalBackend) -> LocalBackend {
    let to = LocalBackend::new();
    let st = Command::new("cp")
        .arg("-a")
        .arg(from.dir().join("team"))
        .arg(to.dir())
        .status()
        .unwrap();
    assert!(st.success());
    to
}

fn flip_byte(path: &Path, at: usize) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[at] ^= 0x01;
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn tampered_ciphertext_is_refused_loudly() {
    let original = LocalBackend::new();
    let data = common::mixed_data(11, 12 << 20, 1 << 20);
    common::ok(&run_with(
        Some(PASSWORD),
        &push_args(&original.profile(), "db"),
        &data,
    ));
    let pull_of = |b: &LocalBackend| run_with(Some(PASSWORD), &pull_args(&b.profile(), "db"), b"");
    common::ok(&pull_of(&original));
    common::ok(&run_with(
        Some(PASSWORD),
        &[
            "repo",
            "verify",
            "--read-data",
            "--profile",
            &original.profile(),
        ],
        b"",
    ));
    let in_dir =
        |b: &LocalBackend, sub: &str| -> Vec<PathBuf> { files_under(&repo_dir(b).join(sub)) };

    // A pack blob: one flipped byte in the middle of the biggest pack's data.
    let t = copy_location(&original);
    let pack = in_dir(&t, "packs")
        .into_iter()
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap();
    flip_byte(&pack, std::fs::metadata(&pack).unwrap().len() as usize / 2);
    let out = pull_of(&t);
    let line = common::fails_69(&out);
    assert!(line.contains("does not decrypt"), "{line}");
    assert!(
        data.starts_with(&out.stdout) && out.stdout.len() < data.len(),
        "a tampered pull wrote bytes that are not the data's"
    );
    let line = common::fails_69(&run_with(
        Some(PASSWORD),
        &["repo", "verify", "--read-data", "--profile", &t.profile()],
        b"",
    ));
    assert!(line.contains("problem"), "{line}");

    // An index segment, forged: flipped and renamed to its new hash, so only the AEAD tag
    // can tell.
    let t = copy_location(&original);
    let seg = in_dir(&t, "index").remove(0);
    let mut bytes = std::fs::read(&seg).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::remove_file(&seg).unwrap();
    std::fs::write(
        seg.with_file_name(blake3::hash(&bytes).to_hex().as_str()),
        &bytes,
    )
    .unwrap();
    let out = pull_of(&t);
    let line = common::fails_69(&out);
    assert!(
        line.contains("index segment") && line.contains("does not decrypt"),
        "{line}"
    );
    assert!(out.stdout.is_empty());

    // The manifest and the ref body, flipped in place.
    for sub in ["snapshots", "refs"] {
        let t = copy_location(&original);
        let f = in_dir(&t, sub).remove(0);
        flip_byte(&f, 3);
        let out = pull_of(&t);
        let line = common::fails_69(&out);
        assert!(
            line.contains("corrupt") || line.contains("tampered"),
            "{sub}: {line}"
        );
        assert!(out.stdout.is_empty(), "{sub}");
    }

    // A plain-codec blob slipped into an encrypted repository is refused, not trusted:
    // take a plain repository's pack and index and put them in place of the encrypted ones.
    let plain = LocalBackend::new();
    common::ok(&run_with(
        None,
        &push_args(&plain.profile(), "db"),
        b"plain bytes",
    ));
    let t = copy_location(&original);
    for sub in ["index", "packs"] {
        let _ = std::fs::remove_dir_all(repo_dir(&t).join(sub));
        let st = Command::new("cp")
            .arg("-a")
            .arg(repo_dir(&plain).join(sub))
            .arg(repo_dir(&t))
            .status()
            .unwrap();
        assert!(st.success());
    }
    let out = pull_of(&t);
    common::fails_69(&out);
    assert!(out.stdout.is_empty());
}

#[test]
fn repo_init_chooses_once() {
    let b = LocalBackend::new();
    let p = b.profile();
    let out = run_with(Some(PASSWORD), &["repo", "init", "--profile", &p], b"");
    common::ok(&out);
    assert!(String::from_utf8_lossy(&out.stderr).contains("encrypted"));
    let line = common::fails_69(&run_with(
        Some(PASSWORD),
        &["repo", "init", "--profile", &p],
        b"",
    ));
    assert!(line.contains("already exists"), "{line}");
    let line = common::fails_69(&run_with(None, &push_args(&p, "x"), b"data"));
    assert!(line.contains("is encrypted"), "{line}");
    common::ok(&run_with(Some(PASSWORD), &push_args(&p, "x"), b"data"));

    let plain = LocalBackend::new();
    let out = run_with(None, &["repo", "init", "--profile", &plain.profile()], b"");
    common::ok(&out);
    assert!(String::from_utf8_lossy(&out.stderr).contains("plain"));
    let line = common::fails_69(&run_with(
        Some(PASSWORD),
        &push_args(&plain.profile(), "x"),
        b"data",
    ));
    assert!(line.contains("not encrypted"), "{line}");
}

/// Two first pushes on a store whose conditional writes can both succeed (s3s-fs) can each
/// write a config; the later one replaces the earlier. A push whose config was replaced
/// while it ran must not commit: its data is under keys the repository no longer has.
#[test]
fn a_push_whose_config_was_replaced_commits_nothing() {
    use std::io::Write;
    let b = encrypted();
    let p = b.profile();
    // The replacement: another repository's config, same password, other keys.
    let other = encrypted();
    common::ok(&common::kando(&push_args(&other.profile(), "x"), b"x"));
    let other_config = std::fs::read(repo_dir(&other).join("config")).unwrap();

    let mut child = common::spawn_kando(&push_args(&p, "replaced"));
    let mut stdin = child.stdin.take().unwrap();
    // 4 MiB through a 64 KiB pipe: the push has opened (created) the repository.
    let data = common::random_bytes(77, 4 << 20);
    stdin.write_all(&data).unwrap();
    std::fs::write(repo_dir(&b).join("config"), &other_config).unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    let line = common::fails_69(&out);
    assert!(
        line.contains("config") && line.contains("replaced"),
        "{line}"
    );
    assert!(line.contains("nothing was committed"), "{line}");
    let list = common::kando(&["repo", "list", "--profile", &p], b"");
    common::ok(&list);
    assert!(
        !String::from_utf8_lossy(&list.stdout).contains("replaced"),
        "a snapshot was listed"
    );
    // Pushing again works under the config that stayed.
    let id = common::push_id(&p, "replaced", &data);
    let out = common::pull_id(&p, &id);
    common::ok(&out);
    common::same_bytes(&out.stdout, &data, "the second push");
}
