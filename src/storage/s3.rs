//! S3 backend (see issue 3).
