//! The repository's `config` object: written once, read by every command. It fixes what
//! must never change for a repository's life (chunker parameters, hash, format version).

use serde::{Deserialize, Serialize};

use super::crypto::KeySlot;

/// Format version of a plain repository. Documented in the README.
pub const FORMAT_VERSION: u32 = 1;
/// Format version of an encrypted repository: a kando that predates encryption refuses it
/// ("upgrade kando") instead of misreading sealed objects as plain ones.
pub const ENCRYPTED_FORMAT_VERSION: u32 = 2;

/// FastCDC parameters. Changing them would defeat dedup against existing data, so they are
/// per repository, not per push.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkerParams {
    /// Smallest chunk, bytes.
    pub min: u32,
    /// Target average chunk, bytes.
    pub avg: u32,
    /// Largest chunk, bytes.
    pub max: u32,
}

impl Default for ChunkerParams {
    /// Chosen by measurement (BENCHMARKS.md): small enough that a 1 % edit of a dump costs
    /// ~5 % in new data, large enough that the index stays small.
    fn default() -> Self {
        ChunkerParams {
            min: 128 * 1024,
            avg: 512 * 1024,
            max: 2 * 1024 * 1024,
        }
    }
}

impl ChunkerParams {
    /// Checks the bounds the fastcdc crate requires.
    pub fn validate(&self) -> Result<(), String> {
        use fastcdc::v2020::{
            AVERAGE_MAX, AVERAGE_MIN, MAXIMUM_MAX, MAXIMUM_MIN, MINIMUM_MAX, MINIMUM_MIN,
        };
        let (min, avg, max) = (self.min as usize, self.avg as usize, self.max as usize);
        let ok = (MINIMUM_MIN..=MINIMUM_MAX).contains(&min)
            && (AVERAGE_MIN..=AVERAGE_MAX).contains(&avg)
            && (MAXIMUM_MIN..=MAXIMUM_MAX).contains(&max)
            && min < avg
            && avg < max
            && min % 2 == 0
            && avg % 2 == 0
            && max % 2 == 0;
        if ok {
            Ok(())
        } else {
            Err(format!(
                "invalid chunker sizes min={min} avg={avg} max={max}"
            ))
        }
    }
}

/// Contents of the `config` object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    /// Always "kando-repository": tells a stray object from a real config.
    pub format: String,
    /// [`FORMAT_VERSION`] of the writer that created the repository.
    pub version: u32,
    /// Random id of this repository.
    pub id: String,
    /// Content-defined chunking parameters.
    pub chunker: ChunkerParams,
    /// Chunk id hash ("blake3").
    pub hash: String,
    /// Blob compression ("zstd").
    pub compression: String,
    /// The wrapped master key of an encrypted repository; absent for a plain one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<KeySlot>,
}

impl Config {
    /// A new repository's config.
    pub fn new(chunker: ChunkerParams) -> Self {
        Config {
            format: "kando-repository".to_string(),
            version: FORMAT_VERSION,
            id: hex::encode(rand::random::<[u8; 16]>()),
            chunker,
            hash: "blake3".to_string(),
            compression: "zstd".to_string(),
            encryption: None,
        }
    }

    /// True when the repository is encrypted.
    pub fn is_encrypted(&self) -> bool {
        self.encryption.is_some()
    }

    /// Parses and checks a stored config.
    pub fn decode(bytes: &[u8]) -> Result<Config, String> {
        let c: Config = serde_json::from_slice(bytes)
            .map_err(|e| format!("the repository config is not valid: {e}"))?;
        if c.format != "kando-repository" {
            return Err("the config object is not a kando repository config".to_string());
        }
        match (c.version, &c.encryption) {
            (FORMAT_VERSION, None) | (ENCRYPTED_FORMAT_VERSION, Some(_)) => {}
            (FORMAT_VERSION | ENCRYPTED_FORMAT_VERSION, _) => {
                return Err(format!(
                    "the repository config is inconsistent: format version {} with{} a key",
                    c.version,
                    if c.encryption.is_some() { "" } else { "out" }
                ))
            }
            (v, _) => {
                return Err(format!(
                    "repository format version {v} is not supported by this kando (supports {FORMAT_VERSION} and {ENCRYPTED_FORMAT_VERSION}); upgrade kando"
                ))
            }
        }
        if c.hash != "blake3" || c.compression != "zstd" {
            return Err(format!(
                "unsupported repository hash {:?} or compression {:?}",
                c.hash, c.compression
            ));
        }
        c.chunker.validate()?;
        if let Some(slot) = &c.encryption {
            // Damage to the key slot is found here, with or without a password, and never
            // reported as a wrong password.
            slot.check().map_err(|e| e.to_string())?;
        }
        Ok(c)
    }

    /// Serialises the config.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).expect("configs always serialise")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #[test]
        fn garbage_never_panics(s in ".{0,300}") {
            let _ = Config::decode(s.as_bytes());
        }
    }

    #[test]
    fn roundtrip_and_rejections() {
        let c = Config::new(ChunkerParams::default());
        assert_eq!(Config::decode(&c.encode()).unwrap(), c);
        assert!(Config::decode(b"{}").is_err());
        let mut newer = c.clone();
        newer.version = 99;
        assert!(Config::decode(&newer.encode())
            .unwrap_err()
            .contains("upgrade"));
        assert!(ChunkerParams {
            min: 10,
            avg: 5,
            max: 1
        }
        .validate()
        .is_err());
        ChunkerParams::default().validate().unwrap();
    }

    #[test]
    fn encrypted_configs_must_say_so_consistently() {
        use crate::repo::crypto::{test_kdf, KeySlot, Password};
        let mut c = Config::new(ChunkerParams::default());
        let (slot, _) = KeySlot::create(&Password::new(b"pw".to_vec()), &c.id, test_kdf()).unwrap();
        c.encryption = Some(slot);
        // A key under the plain version: refused, never read as plain.
        assert!(Config::decode(&c.encode())
            .unwrap_err()
            .contains("inconsistent"));
        c.version = ENCRYPTED_FORMAT_VERSION;
        assert!(Config::decode(&c.encode()).unwrap().is_encrypted());
        // Version 2 with the key stripped: refused too.
        c.encryption = None;
        assert!(Config::decode(&c.encode())
            .unwrap_err()
            .contains("inconsistent"));
    }
}
