//! The book's chapters as doctests: `cargo test -p book-tests --doc` compiles
//! and runs every Rust block of `book/src`.
#![allow(missing_docs)]

#[cfg(doctest)]
include!(concat!(env!("OUT_DIR"), "/chapters.rs"));
