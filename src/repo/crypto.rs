//! Client-side encryption of an encrypted repository (one concept: keys, sealing and their
//! tests; ~380 lines of code, the rest tests).
//!
//! An encrypted repository has a random 32-byte master key, stored in its config wrapped
//! (XChaCha20-Poly1305) under a key derived from the user's password with argon2id (the
//! parameters and salt are stored beside it). Everything else derives from the master key
//! with BLAKE3's key derivation:
//!
//! - chunk ids are keyed BLAKE3, so an id says nothing about content an attacker can guess;
//! - the FastCDC gear table is seeded, so chunk boundaries do not fingerprint known data;
//! - every pack blob, pack trailer, index segment, manifest and ref payload is sealed with
//!   XChaCha20-Poly1305 under a fresh random 192-bit nonce (no counter to keep, no nonce
//!   reuse across concurrent writers), with what it is (and for a blob, its id) as
//!   associated data, so a sealed object cannot be passed off as another;
//! - ref keys name paths by keyed hashes.
//!
//! A plain repository uses [`Keys::plain`]: the same calls, doing nothing.
//!
//! Sealed layout: `ciphertext | tag (16) | nonce (24)`, nonce last so sealing appends to
//! the buffer it was given instead of copying it.

use std::sync::Arc;

use argon2::{Algorithm, Argon2, Params, Version};
use chacha20poly1305::aead::AeadInPlace;
use chacha20poly1305::{KeyInit, Tag, XChaCha20Poly1305, XNonce};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::ids::Id;

/// Bytes a sealed object has beyond its plaintext.
pub const SEAL_OVERHEAD: usize = TAG_LEN + NONCE_LEN;
const TAG_LEN: usize = 16;
const NONCE_LEN: usize = 24;

/// The cipher name stored in the config.
pub const CIPHER: &str = "xchacha20-poly1305";
/// The key derivation function name stored in the config.
pub const KDF: &str = "argon2id";

/// What a sealed object is; bound into its authentication tag.
#[derive(Debug, Clone, Copy)]
pub enum Sealed<'a> {
    /// A chunk or chunk-list block, by id.
    Blob(&'a Id),
    /// The entries at the end of a pack.
    PackTrailer,
    /// An index segment.
    Index,
    /// A snapshot manifest.
    Manifest,
    /// A ref's payload (the snapshot's path).
    Ref,
}

impl Sealed<'_> {
    fn associated_data(&self) -> Vec<u8> {
        let (name, id) = match self {
            Sealed::Blob(id) => ("kando blob", Some(id)),
            Sealed::PackTrailer => ("kando pack trailer", None),
            Sealed::Index => ("kando index segment", None),
            Sealed::Manifest => ("kando manifest", None),
            Sealed::Ref => ("kando ref", None),
        };
        let mut ad = name.as_bytes().to_vec();
        if let Some(id) = id {
            ad.extend_from_slice(&id.0);
        }
        ad
    }
}

/// Why something could not be decrypted or a key not unwrapped.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// The object is shorter than a nonce and tag, or its tag does not verify.
    #[error(
        "it does not decrypt: it was damaged or tampered with, or belongs to another repository"
    )]
    Tampered,
    /// The password does not unwrap the master key.
    #[error("wrong password for this encrypted repository")]
    WrongPassword,
    /// The key slot in the config is malformed.
    #[error("the repository config is damaged: {0}")]
    BadKeySlot(String),
}

/// A password, wiped from memory when dropped.
#[derive(Clone)]
pub struct Password(Zeroizing<Vec<u8>>);

impl Password {
    /// Wraps password bytes (the caller checks they are not empty).
    pub fn new(bytes: Vec<u8>) -> Password {
        Password(Zeroizing::new(bytes))
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// argon2id cost parameters, stored so they can be raised for new repositories without
/// breaking old ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct KdfParams {
    /// Memory in KiB.
    pub m_cost_kib: u32,
    /// Passes over the memory.
    pub t_cost: u32,
    /// Lanes.
    pub p_cost: u32,
}

impl Default for KdfParams {
    /// 32 MiB, 3 passes: above OWASP's argon2id minimum (19 MiB, 2 passes), about 0.1 s
    /// here, and freed before a push's pipeline starts, so it does not raise peak memory.
    fn default() -> Self {
        KdfParams {
            m_cost_kib: 32 * 1024,
            t_cost: 3,
            p_cost: 1,
        }
    }
}

/// The master key, wrapped by the password, as stored in the config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeySlot {
    /// Always [`KDF`].
    pub kdf: String,
    /// Its cost.
    pub params: KdfParams,
    /// Random salt, hex.
    pub salt: String,
    /// Always [`CIPHER`].
    pub cipher: String,
    /// The sealed master key, hex.
    pub wrapped_key: String,
}

const MAX_KDF_MEMORY_KIB: u32 = 4 * 1024 * 1024;

/// Bytes of a key slot's salt.
const SALT_LEN: usize = 16;
/// Bytes of a master key.
const MASTER_KEY_LEN: usize = 32;

fn kdf_params(params: KdfParams) -> Result<Params, CryptoError> {
    // A config is not trusted to make us allocate without bound.
    if params.m_cost_kib > MAX_KDF_MEMORY_KIB || params.t_cost > 100 || params.p_cost > 64 {
        return Err(CryptoError::BadKeySlot(format!(
            "key derivation cost {params:?} is beyond what kando accepts"
        )));
    }
    Params::new(params.m_cost_kib, params.t_cost, params.p_cost, Some(32)).map_err(|e| {
        CryptoError::BadKeySlot(format!("key derivation cost {params:?} is invalid: {e}"))
    })
}

fn derive_wrapping_key(
    password: &Password,
    salt: &[u8],
    params: KdfParams,
) -> Result<Zeroizing<[u8; 32]>, CryptoError> {
    let p = kdf_params(params)?;
    let mut out = Zeroizing::new([0u8; 32]);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, p)
        .hash_password_into(&password.0, salt, out.as_mut())
        .map_err(|e| CryptoError::BadKeySlot(e.to_string()))?;
    Ok(out)
}

/// Associated data of the wrapped master key: binds it to the repository id.
fn key_slot_ad(repo_id: &str) -> Vec<u8> {
    format!("kando master key {repo_id}").into_bytes()
}

impl KeySlot {
    /// Makes a new random master key for repository `repo_id` and wraps it with `password`.
    pub fn create(
        password: &Password,
        repo_id: &str,
        params: KdfParams,
    ) -> Result<(KeySlot, Keys), CryptoError> {
        let master = Zeroizing::new(rand::random::<[u8; 32]>());
        let salt: [u8; SALT_LEN] = rand::random();
        let kek = derive_wrapping_key(password, &salt, params)?;
        let wrapped = seal_with(
            &XChaCha20Poly1305::new(kek.as_ref().into()),
            &key_slot_ad(repo_id),
            master.to_vec(),
        );
        let slot = KeySlot {
            kdf: KDF.to_string(),
            params,
            salt: hex::encode(salt),
            cipher: CIPHER.to_string(),
            wrapped_key: hex::encode(wrapped),
        };
        Ok((slot, Keys::from_master(&master)))
    }

    /// Checks the slot's structure without a password: known algorithms, an acceptable
    /// cost, a salt and a wrapped key of the lengths kando writes. What this cannot catch (a
    /// changed byte inside a well-formed wrapped key) looks like a wrong password, because
    /// the authenticated encryption cannot tell the two apart.
    pub fn check(&self) -> Result<(), CryptoError> {
        self.decode().map(|_| ())
    }

    /// The salt and the wrapped key, checked (see [`KeySlot::check`]).
    fn decode(&self) -> Result<(Vec<u8>, Vec<u8>), CryptoError> {
        if self.kdf != KDF || self.cipher != CIPHER {
            return Err(CryptoError::BadKeySlot(format!(
                "unsupported key derivation {:?} or cipher {:?}",
                self.kdf, self.cipher
            )));
        }
        kdf_params(self.params)?;
        let field = |name: &str, text: &str, len: usize| {
            let bytes = hex::decode(text).map_err(|e| {
                CryptoError::BadKeySlot(format!("the key slot's {name} is not valid hex: {e}"))
            })?;
            if bytes.len() != len {
                return Err(CryptoError::BadKeySlot(format!(
                    "the key slot's {name} is {} bytes long, not {len}",
                    bytes.len()
                )));
            }
            Ok(bytes)
        };
        Ok((
            field("salt", &self.salt, SALT_LEN)?,
            field(
                "wrapped key",
                &self.wrapped_key,
                MASTER_KEY_LEN + SEAL_OVERHEAD,
            )?,
        ))
    }

    /// Unwraps the master key of repository `repo_id` with `password`.
    pub fn unlock(&self, password: &Password, repo_id: &str) -> Result<Keys, CryptoError> {
        let (salt, wrapped) = self.decode()?;
        let kek = derive_wrapping_key(password, &salt, self.params)?;
        let master = open_with(
            &XChaCha20Poly1305::new(kek.as_ref().into()),
            &key_slot_ad(repo_id),
            &wrapped,
        )
        .map_err(|_| CryptoError::WrongPassword)?;
        let master: Zeroizing<[u8; MASTER_KEY_LEN]> = Zeroizing::new(
            master
                .as_slice()
                .try_into()
                .map_err(|_| CryptoError::BadKeySlot("master key has the wrong length".into()))?,
        );
        Ok(Keys::from_master(&master))
    }
}

/// The keys derived from a master key.
struct SealKeys {
    chunk_id: Zeroizing<[u8; 32]>,
    ref_name: Zeroizing<[u8; 32]>,
    chunker_seed: u64,
    cipher: XChaCha20Poly1305,
}

/// What every layer needs to read and write a repository: plain, or the derived keys of an
/// encrypted one. Cheap to clone.
#[derive(Clone, Default)]
pub struct Keys(Option<Arc<SealKeys>>);

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.is_encrypted() {
            "Keys(encrypted)"
        } else {
            "Keys(plain)"
        })
    }
}

impl Keys {
    /// A plain repository's: unkeyed ids, nothing sealed.
    pub fn plain() -> Keys {
        Keys(None)
    }

    fn from_master(master: &[u8; 32]) -> Keys {
        let derive = |context: &str| Zeroizing::new(blake3::derive_key(context, master));
        let seed = derive("kando 2026-11-25 chunker seed");
        let cipher_key = derive("kando 2026-11-25 seal key");
        Keys(Some(Arc::new(SealKeys {
            chunk_id: derive("kando 2026-11-25 chunk id key"),
            ref_name: derive("kando 2026-11-25 ref name key"),
            chunker_seed: u64::from_le_bytes(seed[..8].try_into().unwrap()),
            cipher: XChaCha20Poly1305::new(cipher_key.as_ref().into()),
        })))
    }

    /// True for an encrypted repository.
    pub fn is_encrypted(&self) -> bool {
        self.0.is_some()
    }

    /// The id of a chunk (or chunk-list block) with these bytes.
    pub fn chunk_id(&self, data: &[u8]) -> Id {
        match &self.0 {
            None => Id::of(data),
            Some(k) => Id(*blake3::keyed_hash(&k.chunk_id, data).as_bytes()),
        }
    }

    /// FastCDC's gear seed: 0 (the crate's table) for plain repositories.
    pub fn chunker_seed(&self) -> u64 {
        self.0.as_ref().map_or(0, |k| k.chunker_seed)
    }

    /// A keyed hash naming `text` in object keys (ref paths); `None` when plain.
    pub fn name_tag(&self, text: &str) -> Option<[u8; 32]> {
        self.0
            .as_ref()
            .map(|k| *blake3::keyed_hash(&k.ref_name, text.as_bytes()).as_bytes())
    }

    /// Seals `plaintext` as `what`; plain repositories get it back unchanged.
    pub fn seal(&self, what: Sealed<'_>, plaintext: Vec<u8>) -> Vec<u8> {
        match &self.0 {
            None => plaintext,
            Some(k) => seal_with(&k.cipher, &what.associated_data(), plaintext),
        }
    }

    /// Opens an object sealed as `what`. Plain repositories get the bytes back unchanged.
    pub fn open(&self, what: Sealed<'_>, stored: &[u8]) -> Result<Vec<u8>, CryptoError> {
        match &self.0 {
            None => Ok(stored.to_vec()),
            Some(k) => open_with(&k.cipher, &what.associated_data(), stored),
        }
    }
}

fn seal_with(cipher: &XChaCha20Poly1305, ad: &[u8], mut buf: Vec<u8>) -> Vec<u8> {
    let nonce: [u8; NONCE_LEN] = rand::random();
    let tag = cipher
        .encrypt_in_place_detached(XNonce::from_slice(&nonce), ad, &mut buf)
        .expect("XChaCha20-Poly1305 seals any length kando produces");
    buf.reserve_exact(SEAL_OVERHEAD);
    buf.extend_from_slice(&tag);
    buf.extend_from_slice(&nonce);
    buf
}

fn open_with(cipher: &XChaCha20Poly1305, ad: &[u8], stored: &[u8]) -> Result<Vec<u8>, CryptoError> {
    if stored.len() < SEAL_OVERHEAD {
        return Err(CryptoError::Tampered);
    }
    let (body, rest) = stored.split_at(stored.len() - SEAL_OVERHEAD);
    let (tag, nonce) = rest.split_at(TAG_LEN);
    let mut buf = body.to_vec();
    cipher
        .decrypt_in_place_detached(
            XNonce::from_slice(nonce),
            ad,
            &mut buf,
            Tag::from_slice(tag),
        )
        .map_err(|_| CryptoError::Tampered)?;
    Ok(buf)
}

/// A KDF cost that keeps unit tests fast (never used outside tests).
#[cfg(test)]
pub(crate) fn test_kdf() -> KdfParams {
    KdfParams {
        m_cost_kib: 64,
        t_cost: 1,
        p_cost: 1,
    }
}

/// The keys of a fresh encrypted repository, for unit tests.
#[cfg(test)]
pub(crate) fn test_keys() -> Keys {
    KeySlot::create(&Password::new(b"pw".to_vec()), "r", test_kdf())
        .unwrap()
        .1
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cheap() -> KdfParams {
        test_kdf()
    }

    #[test]
    fn wrong_password_and_moved_slot_fail() {
        let pw = Password::new(b"correct horse".to_vec());
        let (slot, keys) = KeySlot::create(&pw, "repo-a", cheap()).unwrap();
        let again = slot.unlock(&pw, "repo-a").unwrap();
        assert_eq!(keys.chunk_id(b"x"), again.chunk_id(b"x"));
        assert!(matches!(
            slot.unlock(&Password::new(b"wrong".to_vec()), "repo-a"),
            Err(CryptoError::WrongPassword)
        ));
        assert!(slot.unlock(&pw, "repo-b").is_err());
        let greedy = KeySlot {
            params: KdfParams {
                m_cost_kib: u32::MAX,
                ..cheap()
            },
            ..slot
        };
        assert!(matches!(
            greedy.unlock(&pw, "repo-a"),
            Err(CryptoError::BadKeySlot(_))
        ));
    }

    #[test]
    fn damaged_slots_are_not_wrong_passwords() {
        let pw = Password::new(b"pw".to_vec());
        let (slot, _) = KeySlot::create(&pw, "r", cheap()).unwrap();
        slot.check().unwrap();
        let damaged = [
            KeySlot {
                salt: slot.salt[..16].to_string(),
                ..slot.clone()
            },
            KeySlot {
                salt: format!("{}zz", &slot.salt[2..]),
                ..slot.clone()
            },
            KeySlot {
                wrapped_key: slot.wrapped_key[..slot.wrapped_key.len() - 2].to_string(),
                ..slot.clone()
            },
            KeySlot {
                wrapped_key: format!("{}0", slot.wrapped_key),
                ..slot.clone()
            },
        ];
        for d in damaged {
            assert!(
                matches!(d.check(), Err(CryptoError::BadKeySlot(_))),
                "{d:?}"
            );
            assert!(
                matches!(d.unlock(&pw, "r"), Err(CryptoError::BadKeySlot(_))),
                "{d:?}"
            );
        }
        // A changed byte inside a well-formed wrapped key: indistinguishable from a wrong
        // password.
        let mut flipped = slot.wrapped_key.clone().into_bytes();
        flipped[0] = if flipped[0] == b'0' { b'1' } else { b'0' };
        let flipped = KeySlot {
            wrapped_key: String::from_utf8(flipped).unwrap(),
            ..slot
        };
        flipped.check().unwrap();
        assert!(matches!(
            flipped.unlock(&pw, "r"),
            Err(CryptoError::WrongPassword)
        ));
    }

    #[test]
    fn ids_depend_on_the_key_and_plain_ids_are_plain_blake3() {
        let pw = Password::new(b"p".to_vec());
        let (_, a) = KeySlot::create(&pw, "r", cheap()).unwrap();
        let (_, b) = KeySlot::create(&pw, "r", cheap()).unwrap();
        assert_ne!(a.chunk_id(b"same"), b.chunk_id(b"same"));
        assert_ne!(a.chunk_id(b"same"), Id::of(b"same"));
        assert_eq!(Keys::plain().chunk_id(b"same"), Id::of(b"same"));
        assert_ne!(a.chunker_seed(), 0);
        assert_eq!(Keys::plain().chunker_seed(), 0);
    }

    proptest! {
        #[test]
        fn seal_roundtrips_and_any_flip_fails(data in proptest::collection::vec(any::<u8>(), 0..3000), flip in any::<prop::sample::Index>()) {
            let (_, keys) = KeySlot::create(&Password::new(b"p".to_vec()), "r", cheap()).unwrap();
            let id = Id::of(b"blob");
            let sealed = keys.seal(Sealed::Blob(&id), data.clone());
            prop_assert_eq!(sealed.len(), data.len() + SEAL_OVERHEAD);
            prop_assert_eq!(keys.open(Sealed::Blob(&id), &sealed).unwrap(), data.clone());
            // Another purpose or another blob's id does not open it.
            prop_assert!(keys.open(Sealed::Index, &sealed).is_err());
            prop_assert!(keys.open(Sealed::Blob(&Id::of(b"other")), &sealed).is_err());
            let mut bad = sealed.clone();
            let i = flip.index(bad.len());
            bad[i] ^= 0x01;
            prop_assert!(keys.open(Sealed::Blob(&id), &bad).is_err());
            prop_assert!(keys.open(Sealed::Blob(&id), &sealed[..sealed.len() - 1]).is_err());
        }
    }

    #[test]
    fn nonces_are_fresh() {
        let (_, keys) = KeySlot::create(&Password::new(b"p".to_vec()), "r", cheap()).unwrap();
        let a = keys.seal(Sealed::Manifest, b"same".to_vec());
        let b = keys.seal(Sealed::Manifest, b"same".to_vec());
        assert_ne!(a, b);
    }
}

#[cfg(test)]
mod speed {
    use super::*;

    /// Throughput of the pieces encryption adds; `cargo test --lib crypto_speed -- --ignored
    /// --nocapture` (dependencies are optimised in the dev profile too).
    #[test]
    #[ignore]
    fn crypto_speed() {
        let data = vec![7u8; 64 << 20];
        let slot_params = KdfParams::default();
        let t = std::time::Instant::now();
        let (_, keys) = KeySlot::create(&Password::new(b"pw".to_vec()), "r", slot_params).unwrap();
        eprintln!("argon2id {slot_params:?}: {:?}", t.elapsed());
        let id = Id::of(b"x");
        let mut copy = data.clone();
        copy.reserve(SEAL_OVERHEAD);
        let t = std::time::Instant::now();
        let sealed = keys.seal(Sealed::Blob(&id), copy);
        let s = t.elapsed();
        let t = std::time::Instant::now();
        keys.open(Sealed::Blob(&id), &sealed).unwrap();
        let o = t.elapsed();
        let t = std::time::Instant::now();
        let _ = keys.chunk_id(&data);
        let k = t.elapsed();
        let t = std::time::Instant::now();
        let _ = Id::of(&data);
        let p = t.elapsed();
        let mbs = |d: std::time::Duration| 64.0 * 1.048576 / d.as_secs_f64();
        eprintln!(
            "seal {:.0} MB/s, open {:.0} MB/s, keyed BLAKE3 {:.0} MB/s, BLAKE3 {:.0} MB/s",
            mbs(s),
            mbs(o),
            mbs(k),
            mbs(p)
        );
    }
}
