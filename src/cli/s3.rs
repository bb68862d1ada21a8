//! Profile → S3 backend (filled in with the S3 backend).

use anyhow::{bail, Result};

use crate::compat::profile::Profile;
use crate::storage::DynStorage;

/// Opens the S3 repository at `root` in the profile's bucket.
pub async fn open(_profile: &Profile, _root: &str) -> Result<DynStorage> {
    bail!("Location type s3Compliant is not supported by this build yet")
}
