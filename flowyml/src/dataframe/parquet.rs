//! Parquet files (feature `parquet`): the format most tables arrive in.
//!
//! # Design notes
//! - Behind its own feature: polars' Parquet support brings five
//!   compression codecs (two of them C libraries) that every build of the
//!   `dataframe` feature would otherwise compile.
//! - Written with zstd, polars' default: smaller than the IPC artifacts and
//!   still fast to read. `Enum` columns keep their categories, as polars
//!   stores the frame's own schema in the file.

use std::fs::File;
use std::path::Path;

use polars::prelude::*;

use crate::error::{Error, Result};

/// The Parquet file at `path`, every column and row group.
///
/// ```
/// use flowyml::dataframe::{optimize_dataframe, read_parquet, write_parquet};
/// use polars::prelude::*;
///
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("flights.parquet");
/// let small = optimize_dataframe(&df!("carrier" => ["UA", "AA", "UA", "UA"], "delay" => [Some(-3i64), None, Some(12), Some(0)])?)?;
/// write_parquet(&small, &path)?;
/// let back = read_parquet(&path)?;
/// assert_eq!(back.schema(), small.schema());
/// assert!(back.equals_missing(&small));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// [`Error::Io`] if the file cannot be opened; [`Error::Polars`] naming the
/// file if it is not Parquet or polars cannot read a column of it.
pub fn read_parquet(path: impl AsRef<Path>) -> Result<DataFrame> {
    let path = path.as_ref();
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    ParquetReader::new(file)
        .finish()
        .map_err(Error::polars(format!(
            "reading Parquet file {}",
            path.display()
        )))
}

/// Writes `df` to `path` as Parquet (zstd), replacing any file there, and
/// returns the file's size in bytes.
///
/// # Errors
/// [`Error::Io`] if the file cannot be created; [`Error::Polars`] naming the
/// file if polars cannot write a column (an `Object` column).
pub fn write_parquet(df: &DataFrame, path: impl AsRef<Path>) -> Result<u64> {
    let path = path.as_ref();
    let file = File::create(path).map_err(|e| Error::io(path, e))?;
    // The writer rechunks in place; the clone shares every buffer.
    ParquetWriter::new(file)
        .finish(&mut df.clone())
        .map_err(Error::polars(format!(
            "writing Parquet file {}",
            path.display()
        )))
}
