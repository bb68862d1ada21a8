//! Round trips through the push pipeline and the rebuilder, in memory.

use std::io::{Read, Write};
use std::process::{Command, Stdio};

use super::*;

/// A recipe sink collecting into shared memory.
#[derive(Clone, Default)]
struct Shared(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Pushes `input` through the pipeline; returns the data stream, the recipe stream and
/// the report.
fn contain(input: &[u8]) -> ((Vec<u8>, Vec<u8>), Report) {
    contain_from(input, input)
}

/// [`contain`], reading `input` through `source` (the same bytes, read another way).
fn contain_from(input: &[u8], source: impl Read + Send) -> ((Vec<u8>, Vec<u8>), Report) {
    let format = detect(input).expect("a gzip or zlib input");
    let recipes = Shared::default();
    std::thread::scope(|s| {
        let (mut reader, parser) = spawn(s, source, format, 2, Box::new(recipes.clone()));
        let report = reader.report();
        let mut data = Vec::new();
        reader.read_to_end(&mut data).unwrap();
        let (len, hash) = parser.join().unwrap().unwrap();
        assert_eq!(len, input.len() as u64);
        assert_eq!(hash, blake3::hash(input));
        let r = report.lock().unwrap().clone();
        let recipes = recipes.0.lock().unwrap().clone();
        ((data, recipes), r)
    })
}

fn restore((data, recipes): &(Vec<u8>, Vec<u8>)) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    let blocks: Vec<std::io::Result<Vec<u8>>> =
        recipes.chunks(7_001).map(|c| Ok(c.to_vec())).collect();
    let mut r = Rebuilder::new(&mut out, Box::new(blocks.into_iter()), 2);
    for piece in data.chunks(100_003) {
        r.write_all(piece)?;
    }
    r.finish()?;
    Ok(out)
}

/// Hands out at most 1000 bytes per read, as a slow pipe does.
struct Trickle<'a>(&'a [u8]);

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(1000).min(self.0.len());
        buf[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        Ok(n)
    }
}

/// What push stores does not depend on how the pipe's reads fell: input stored as it came
/// once moved into the recipe stream whenever a read was short (≤ 4 KiB), so the same
/// bytes pushed twice deduplicated nothing (a zlib look-alike under load, in the suite).
#[test]
fn stored_streams_do_not_depend_on_read_sizes() {
    let body = text(31, 1 << 20);
    let gz = run("gzip", &["-6", "-n"], &body);
    let mut damaged = gz.clone();
    damaged[gz.len() / 2] ^= 0x55;
    let cases = [
        (
            "zlib look-alike",
            [b"x^2 + y^2 = r^2\n".as_slice(), &body].concat(),
        ),
        ("gzip then trailing data", [gz.as_slice(), &body].concat()),
        ("damaged gzip", damaged),
    ];
    for (what, input) in cases {
        let whole = contain(&input);
        let trickled = contain_from(&input, Trickle(&input));
        assert!(
            whole.0 == trickled.0,
            "{what}: streams differ by read sizes"
        );
        assert!(
            restore(&trickled.0).unwrap() == input,
            "{what}: no round trip"
        );
    }
}

/// Asserts an exact round trip; returns the share stored as plaintext.
fn roundtrip(input: &[u8]) -> Report {
    let (container, report) = contain(input);
    // A clean stream's data is its plaintext alone: it chunks like a plain push.
    if report.fallback.is_none() && report.members == 1 {
        assert!(
            gunzip_like(input, &container.0),
            "data stream is not the plaintext"
        );
    }
    let out = restore(&container).unwrap();
    assert!(
        out == input,
        "round trip differs ({} vs {} bytes); {:?}",
        out.len(),
        input.len(),
        report
    );
    report
}

/// Whether `plain` is what `input` decompresses to (python's zlib, any wrapper); true
/// when python cannot decompress it (a damaged trailer) either.
fn gunzip_like(input: &[u8], plain: &[u8]) -> bool {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(input).unwrap();
    let out = Command::new("python3")
        .args(["-c", "import sys,zlib; d=zlib.decompressobj(47); sys.stdout.buffer.write(d.decompress(open(sys.argv[1],'rb').read()))"])
        .arg(file.path())
        .output()
        .unwrap();
    !out.status.success() || out.stdout == plain
}

fn run(cmd: &str, args: &[&str], input: &[u8]) -> Vec<u8> {
    let mut child = Command::new(cmd)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let data = input.to_vec();
    let feeder = std::thread::spawn(move || stdin.write_all(&data));
    let out = child.wait_with_output().unwrap();
    feeder.join().unwrap().unwrap();
    assert!(out.status.success());
    out.stdout
}

fn text(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 100);
    let words = [
        "alpha",
        "beta",
        "gamma",
        "delta",
        "COPY",
        "public",
        "\t",
        "\n",
        "2026-11-30",
        "NULL",
    ];
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(words[(x % 10) as usize].as_bytes());
        out.extend_from_slice(format!("{}", x % 100_000).as_bytes());
        out.push(b' ');
    }
    out.truncate(len);
    out
}

#[test]
fn gnu_gzip_levels_round_trip_as_plaintext() {
    let plain = text(7, 3 << 20);
    for level in ["-1", "-2", "-3", "-4", "-5", "-6", "-7", "-8", "-9"] {
        let gz = run("gzip", &["-c", "-n", level], &plain);
        let r = roundtrip(&gz);
        assert!(
            r.fallback.is_none() && r.recompressed + 40 > gz.len() as u64,
            "gzip {level}: {r:?}"
        );
    }
}

#[test]
fn zlib_levels_round_trip_as_plaintext() {
    let plain = text(9, 2 << 20);
    for level in 1..=9 {
        let z = run(
            "python3",
            &["-c", &format!("import sys,zlib; sys.stdout.buffer.write(zlib.compress(sys.stdin.buffer.read(), {level}))")],
            &plain,
        );
        let r = roundtrip(&z);
        assert!(
            r.fallback.is_none() && r.recompressed + 10 > z.len() as u64,
            "zlib {level}: {r:?}"
        );
    }
}

#[test]
fn damaged_and_odd_streams_still_round_trip() {
    let plain = text(3, 1 << 20);
    let gz = run("gzip", &["-c", "-6"], &plain);
    // Truncated.
    roundtrip(&gz[..gz.len() / 2]);
    // Corrupted in the middle.
    let mut bad = gz.clone();
    for b in &mut bad[gz.len() / 2..gz.len() / 2 + 16] {
        *b ^= 0x5a;
    }
    roundtrip(&bad);
    // Magic then garbage.
    let mut fake = vec![0x1f, 0x8b, 0x08, 0, 0, 0, 0, 0, 0, 3];
    fake.extend_from_slice(&text(1, 5000));
    roundtrip(&fake);
    // Concatenated members and trailing bytes.
    let mut two = gz.clone();
    two.extend_from_slice(&run("gzip", &["-c", "-9"], &plain[..1000]));
    two.extend_from_slice(b"trailing");
    let r = roundtrip(&two);
    assert_eq!(r.members, 2);
    // Empty input gzipped.
    roundtrip(&run("gzip", &["-c"], b""));
}

#[test]
#[ignore = "needs KANDO_GZ_FILE"]
fn file_from_env() {
    let path = std::env::var("KANDO_GZ_FILE").unwrap();
    let input = std::fs::read(path).unwrap();
    let t = std::time::Instant::now();
    let (container, report) = contain(&input);
    eprintln!(
        "contain: {:?} {:?} data {} bytes, recipes {} bytes",
        t.elapsed(),
        report,
        container.0.len(),
        container.1.len()
    );
    let t = std::time::Instant::now();
    let out = restore(&container).unwrap();
    eprintln!("restore: {:?}", t.elapsed());
    assert!(out == input);
}

#[test]
fn go_compress_gzip_round_trips_as_plaintext() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/gzip/");
    for name in ["go-day1.gz", "go-day2.gz", "go-mongo-archive.gz"] {
        let gz = std::fs::read(format!("{dir}{name}")).unwrap();
        let r = roundtrip(&gz);
        eprintln!("{name}: {r:?}");
        assert!(
            r.fallback.is_none() && r.recompressed + 40 > gz.len() as u64,
            "{name}: {r:?}"
        );
    }
}

mod hostile {
    use super::*;
    use crate::recompress::recipe::{rebuild, Recipe};
    use proptest::prelude::*;

    fn small_container() -> ((Vec<u8>, Vec<u8>), Vec<u8>) {
        // A header and trailer (held in the recipe stream) and pieces.
        let plain = text(11, 200_000);
        let gz = run("gzip", &["-c", "-n", "-6"], &plain);
        (contain(&gz).0, gz)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn garbage_recipes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300), plain in proptest::collection::vec(any::<u8>(), 0..2000)) {
            if let Ok(r) = Recipe::decode(&bytes, &plain) {
                let _ = rebuild(&r, &plain, 0);
            }
        }

        #[test]
        fn damaged_streams_never_panic(at in any::<prop::sample::Index>(), xor in 1u8..=255, which in 0..2usize) {
            let ((mut data, mut recipes), _) = small_container();
            let target = if which == 0 { &mut data } else { &mut recipes };
            let i = at.index(target.len());
            target[i] ^= xor;
            // A changed byte may still rebuild (to other bytes, or even the same ones: a
            // match's bytes are not in its code); pull's chunk ids and its data, recipe
            // and output hashes catch that. Anything else is an error, never a panic.
            let _ = restore(&(data, recipes));
        }
    }
}
