//! Where an encrypted repository's password comes from: `KANDO_PASSWORD` or the file named
//! by `--password-file` (a mounted Kubernetes secret). Never a command-line value, never the
//! profile: both end up in process listings and Kanister logs.

use std::io::Read;
use std::path::Path;

use anyhow::{bail, Context, Result};

use crate::repo::crypto::Password;
use crate::repo::KeyError;

/// Environment variable holding the password itself.
pub const PASSWORD_ENV: &str = "KANDO_PASSWORD";
/// Longest password file read (a secret, not data).
const MAX_PASSWORD_FILE: u64 = 64 * 1024;

/// The password the user gave, if any. Empty passwords are refused: an empty secret is
/// a mistake, and treating it as "no password" would silently make a plain repository.
pub fn read(file: Option<&Path>) -> Result<Option<Password>> {
    let env = std::env::var_os(PASSWORD_ENV);
    match (env, file) {
        (Some(_), Some(_)) => {
            bail!("both {PASSWORD_ENV} and --password-file are set; give the password one way")
        }
        (Some(v), None) => {
            let bytes = v.into_encoded_bytes();
            if bytes.is_empty() {
                bail!("{PASSWORD_ENV} is set but empty; unset it for a plain repository");
            }
            Ok(Some(Password::new(bytes)))
        }
        (None, Some(path)) => {
            // Read at most one byte past the limit, whatever the file is: metadata says
            // nothing about /dev/zero, a FIFO or a device, which would be read until memory
            // runs out.
            let file = std::fs::File::open(path)
                .with_context(|| format!("cannot read --password-file {}", path.display()))?;
            // Room for all of it up front: no reallocation leaves copies of the secret behind.
            let mut bytes = Vec::with_capacity(MAX_PASSWORD_FILE as usize + 1);
            file.take(MAX_PASSWORD_FILE + 1)
                .read_to_end(&mut bytes)
                .with_context(|| format!("cannot read --password-file {}", path.display()))?;
            if bytes.len() as u64 > MAX_PASSWORD_FILE {
                bail!(
                    "--password-file {} is longer than {} KiB; a password file holds just the password",
                    path.display(),
                    MAX_PASSWORD_FILE / 1024
                );
            }
            // `echo pw > file` and most secret tooling add one newline; it is not part of it.
            if bytes.ends_with(b"\n") {
                bytes.pop();
                if bytes.ends_with(b"\r") {
                    bytes.pop();
                }
            }
            if bytes.is_empty() {
                bail!("--password-file {} is empty", path.display());
            }
            Ok(Some(Password::new(bytes)))
        }
        (None, None) => Ok(None),
    }
}

/// Adds what to do to a repository's key error.
pub fn explain(e: anyhow::Error) -> anyhow::Error {
    let hint = match e.downcast_ref::<KeyError>() {
        Some(KeyError::Missing(_)) => {
            format!("give its password in {PASSWORD_ENV} or in a file named by --password-file (or KANDO_PASSWORD_FILE)")
        }
        Some(KeyError::Unexpected(_)) => format!(
            "unset {PASSWORD_ENV} and --password-file to use it, or give another --repo-dir to start an encrypted repository"
        ),
        Some(KeyError::Wrong(_)) => {
            "check the secret behind KANDO_PASSWORD or --password-file; nothing was read or written"
                .to_string()
        }
        None => return e,
    };
    anyhow::anyhow!("{e}; {hint}")
}
