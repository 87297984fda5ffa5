//! Emits one `#[doc = include_str!(..)]` module per chapter of the book, so
//! every Rust block of every chapter is a doctest; a new chapter cannot go
//! untested.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn chapters(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.expect("a readable directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            chapters(&path, out);
        } else if path.extension().is_some_and(|e| e == "md") {
            out.push(path);
        }
    }
}

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let src = manifest
        .join("../book/src")
        .canonicalize()
        .expect("book/src exists");
    println!("cargo:rerun-if-changed={}", src.display());
    // The README's example is tested with the chapters.
    let mut files = vec![
        manifest
            .join("../README.md")
            .canonicalize()
            .expect("README.md exists"),
    ];
    chapters(&src, &mut files);
    let mut code = String::new();
    for (i, path) in files.iter().enumerate() {
        println!("cargo:rerun-if-changed={}", path.display());
        let name = path
            .strip_prefix(&src)
            .unwrap_or(path)
            .display()
            .to_string();
        writeln!(
            code,
            "#[doc = include_str!({path:?})]\n#[doc = \"\"]\n#[doc = \"(chapter `{name}`)\"]\npub mod chapter_{i} {{}}",
            path = path.display().to_string(),
        )
        .expect("writing to a String");
    }
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("set by cargo")).join("chapters.rs");
    std::fs::write(&out, code).expect("writing chapters.rs");
}
