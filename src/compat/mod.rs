//! Compatibility with upstream kando: the Profile JSON, the `###Phase-output###` line, and
//! the `--kopia-snapshot` argument. Everything Kanister-specific lives here.

pub mod output;
pub mod profile;
pub mod snapshot_arg;
