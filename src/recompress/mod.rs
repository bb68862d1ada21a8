//! Transparent recompression: a gzip or zlib input is stored as its plaintext (which
//! deduplicates) plus a small recipe that recreates the exact compressed bytes.
//!
//! - `framing`: gzip and zlib headers; `inflate`: a deflate decoder that keeps block
//!   headers and tokens; `huffman`, `tokens`, `bits`: deflate's codes and bit order.
//! - `zlib_model`: predicts the tokens zlib and GNU gzip choose, `go_model` those of
//!   Go's compress/flate (mongodump `--gzip`); `recipe`: a piece's blocks and the
//!   model's corrections, proven at push by re-encoding them (`block_writer`).
//! - `split`: push's pipeline from input to the data and recipe streams; `container`:
//!   their format and pull's [`Rebuilder`].
//!
//! Whatever cannot be recreated exactly is stored as it came, so every input round-trips;
//! pull checks the whole stream's hash as for any snapshot.

mod bits;
mod block_writer;
mod container;
mod framing;
mod go_model;
mod huffman;
mod inflate;
mod recipe;
mod split;
mod tokens;
mod zlib_model;

pub use container::{Rebuilder, RecipeBlocks};
pub use framing::{detect, Format};
pub use split::{spawn, ContainerReader, Report, Stopped};

#[cfg(test)]
mod tests;
