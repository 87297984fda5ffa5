//! DataFrames on polars (feature `dataframe`): shrink a frame's memory
//! without losing a value, and process tables larger than memory in batches.
//!
//! | to | use |
//! | --- | --- |
//! | shrink a frame, losslessly, with a report of every column | [`optimize_dataframe`], [`optimize_dataframe_with`], [`OptimizeReport`] |
//! | measure a frame's memory, categorical dictionaries included | [`memory_usage`] |
//! | optimize a table chunk by chunk into one schema that stacks | [`OptimizePlan`], [`PlanBuilder`] |
//! | process a frame in batches | [`batches`]: zero-copy row slices |
//! | read a Parquet file, write one (feature `parquet`) | `read_parquet`, `write_parquet` |
//! | read a CSV larger than memory | [`read_csv_chunks`]: bounded memory, optional progress bar by bytes |
//!
//! # Design
//! - **Lossless by default.** Integers go to the smallest type that holds
//!   the column's actual minimum and maximum (unsigned when nothing is
//!   negative) and nulls stay nulls; floats become `f32` only where a plain
//!   cast back gives every value bit for bit (NaN payloads too), so any
//!   computation on the optimized frame sees the original values; strings
//!   become an `Enum` whose categories are sorted, so comparisons and sorts
//!   behave as they did on the strings. The lossy
//!   choices ([`FloatPolicy::Tolerance`]) are opt-in and the report records
//!   the largest error they introduced, and so does the opt-in
//!   [`FloatPolicy::ShortestDecimal`], which keeps every value's digits
//!   but not its value under a plain cast.
//! - **Honest memory.** polars' `estimated_size` leaves out the dictionary of
//!   a categorical column and the 16-byte view of every string;
//!   [`memory_usage`] and the report count both (a dictionary as its
//!   categories plus polars' hash table over them, measured per category).
//! - **No `lazy` feature.** Every rule is a pass over a column's buffers,
//!   and the columns are processed in parallel on rayon; polars' query
//!   engine would more than double the dependencies for nothing here.
//! - **Chunked reading without polars' batched reader** (gone from 0.55): a
//!   quote-aware splitter hands polars N records at a time with the schema
//!   inferred once, so every chunk has the same types and the memory held is
//!   one chunk's text and its frame.
//! - **Arrow IPC** ([`encode_ipc`], [`decode_ipc`]) is the artifact encoding:
//!   lossless, `Enum` columns included.
//!
//! ```
//! use flowyml::dataframe::{memory_usage, optimize_dataframe_with, OptimizeOptions};
//! use polars::prelude::*;
//!
//! let df = df!(
//!     "id" => (0..1000i64).collect::<Vec<_>>(),
//!     "city" => (0..1000).map(|i| ["Oslo", "Lima", "Pune"][i % 3]).collect::<Vec<_>>(),
//!     "temp" => (0..1000).map(|i| f64::from(i % 40) + 0.25).collect::<Vec<_>>(),
//! )?;
//! let (small, report) = optimize_dataframe_with(&df, &OptimizeOptions::default())?;
//! assert_eq!(small.column("id")?.dtype(), &DataType::UInt16);
//! assert_eq!(small.column("temp")?.dtype(), &DataType::Float32);
//! assert!(matches!(small.column("city")?.dtype(), DataType::Enum(..)));
//! assert_eq!(report.bytes_after, memory_usage(&small));
//! assert!(report.bytes_after * 3 < report.bytes_before); // the Enum's dictionary included
//! assert!(report.restore(&small)?.equals_missing(&df)); // nothing lost
//! println!("{report}");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod csv;
mod dates;
mod memory;
mod optimize;
mod options;
#[cfg(feature = "parquet")]
mod parquet;
mod plan;
mod report;

use std::io::Cursor;

use polars::prelude::*;

pub use csv::{
    CsvChunks, CsvOptions, ReadReport, read_csv, read_csv_chunks, read_csv_chunks_with,
    read_csv_report, read_csv_with,
};
pub use dates::{BadDates, DateColumnReport, ParseDates};
pub use memory::{column_memory_usage, memory_usage};
pub use optimize::{optimize_dataframe, optimize_dataframe_with};
pub use options::{FloatPolicy, OptimizeOptions};
#[cfg(feature = "parquet")]
pub use parquet::{read_parquet, write_parquet};
pub use plan::{MAX_PLAN_CATEGORIES, OptimizePlan, PlanBuilder};
/// The polars this module is built on, so that users name the same types.
pub use polars;
pub use report::{ColumnReport, OptimizeReport, Outcome};

use crate::error::{Error, Result};

/// The frame as Arrow IPC (file format, uncompressed): the encoding of a
/// DataFrame artifact. Every type round-trips through [`decode_ipc`],
/// `Enum` and `Categorical` columns with their categories.
///
/// ```
/// use flowyml::dataframe::{decode_ipc, encode_ipc, optimize_dataframe};
/// use polars::prelude::*;
///
/// let df = df!("carrier" => ["UA", "AA", "UA", "UA"], "delay" => [Some(-3i64), None, Some(12), Some(0)])?;
/// let small = optimize_dataframe(&df)?;
/// let back = decode_ipc(&encode_ipc(&small)?)?;
/// assert!(back.equals_missing(&small));
/// assert_eq!(back.schema(), small.schema()); // the Enum and the i8 survive
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// [`Error::Polars`] if polars cannot encode a column (an `Object` column).
pub fn encode_ipc(df: &DataFrame) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(df.estimated_size() + 1024);
    // The writer aligns chunks in place; the clone shares every buffer.
    IpcWriter::new(&mut out)
        .finish(&mut df.clone())
        .map_err(Error::polars("encoding a DataFrame as Arrow IPC"))?;
    Ok(out)
}

/// The frame that [`encode_ipc`] encoded.
///
/// # Errors
/// [`Error::Polars`] if `bytes` are not an Arrow IPC file.
pub fn decode_ipc(bytes: &[u8]) -> Result<DataFrame> {
    IpcReader::new(Cursor::new(bytes))
        .finish()
        .map_err(Error::polars("decoding an Arrow IPC DataFrame"))
}

/// Batches of `batch_rows` rows of `df`, the last one short: what
/// [`batch_iterator`](crate::batch_iterator) is for other data. Each batch is a zero-copy slice that
/// shares `df`'s buffers, so batching a frame allocates no column data.
///
/// ```
/// use flowyml::ParallelExecutor;
/// use flowyml::dataframe::batches;
/// use polars::prelude::*;
///
/// let df = df!("x" => (0..10_500i64).collect::<Vec<_>>())?;
/// let sizes: Vec<usize> = batches(&df, 1000)?.map(|b| b.height()).collect();
/// assert_eq!((sizes.len(), sizes[10]), (11, 500));
///
/// // Batches mapped in parallel.
/// let executor = ParallelExecutor::new(2)?;
/// let sums = executor.map(|b: DataFrame| b.column("x").unwrap().i64().unwrap().sum().unwrap(), batches(&df, 1000)?);
/// assert_eq!(sums.iter().sum::<i64>(), 10_500 * 10_499 / 2);
/// assert!(batches(&df, 0).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// [`Error::ZeroBatchSize`] if `batch_rows` is 0.
pub fn batches(df: &DataFrame, batch_rows: usize) -> Result<FrameBatches> {
    if batch_rows == 0 {
        return Err(Error::ZeroBatchSize);
    }
    Ok(FrameBatches {
        df: df.clone(),
        batch_rows,
        offset: 0,
    })
}

/// The iterator returned by [`batches`].
#[derive(Debug, Clone)]
pub struct FrameBatches {
    df: DataFrame,
    batch_rows: usize,
    offset: usize,
}

impl FrameBatches {
    /// The number of rows in each batch (the last may hold fewer).
    pub fn batch_rows(&self) -> usize {
        self.batch_rows
    }

    /// These batches with a progress bar on stderr, counting batches.
    ///
    /// ```
    /// # use polars::prelude::*;
    /// let df = df!("x" => vec![0u8; 10_000])?;
    /// for batch in flowyml::dataframe::batches(&df, 1000)?.progress() {
    ///     assert_eq!(batch.height(), 1000);
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn progress(self) -> indicatif::ProgressBarIter<Self> {
        let bar = indicatif::ProgressBar::new(self.len() as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} batches",
            )
            .expect("the template is valid"),
        );
        bar.wrap_iter(self)
    }
}

impl Iterator for FrameBatches {
    type Item = DataFrame;

    fn next(&mut self) -> Option<DataFrame> {
        let height = self.df.height();
        if self.offset >= height {
            return None;
        }
        let len = self.batch_rows.min(height - self.offset);
        // Frames taller than i64::MAX rows cannot exist, so the cast holds.
        let batch = self.df.slice(self.offset as i64, len);
        self.offset += len;
        Some(batch)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = (self.df.height() - self.offset).div_ceil(self.batch_rows);
        (n, Some(n))
    }
}

impl ExactSizeIterator for FrameBatches {}

impl std::iter::FusedIterator for FrameBatches {}

impl crate::artifact::ArtifactCodec for DataFrame {
    const EXTENSION: &'static str = "arrow";

    fn encode(&self) -> Result<Vec<u8>> {
        encode_ipc(self)
    }

    fn decode(bytes: &[u8]) -> Result<Self> {
        decode_ipc(bytes)
    }

    /// A frame on the command line is the path of a file to read: CSV
    /// (`.csv`), Arrow IPC (`.arrow`, `.ipc`, `.feather`) or, with the
    /// `parquet` feature, Parquet (`.parquet`).
    fn from_input(input: &serde_json::Value) -> Result<Self> {
        let Some(path) = input.as_str() else {
            return Err(Error::Usage(format!(
                "a DataFrame is given as the path of a CSV or Arrow IPC file, not `{input}`"
            )));
        };
        let extension = std::path::Path::new(path)
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match extension.as_deref() {
            Some("csv") => read_csv(path),
            Some("arrow" | "ipc" | "feather") => {
                let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
                decode_ipc(&bytes)
            }
            #[cfg(feature = "parquet")]
            Some("parquet") => read_parquet(path),
            _ => Err(Error::Usage(format!(
                "`{path}`: a DataFrame is read from a `.csv`, `.arrow`{} file",
                if cfg!(feature = "parquet") {
                    " or `.parquet`"
                } else {
                    " (or, built with the `parquet` feature, `.parquet`)"
                }
            ))),
        }
    }

    fn to_text(&self) -> Option<String> {
        let mut out = Vec::new();
        let mut frame = self.clone();
        CsvWriter::new(&mut out).finish(&mut frame).ok()?;
        String::from_utf8(out).ok()
    }
}

/// A pipeline step that optimizes the frame `input` into `output` with the
/// default (lossless) options; its record notes the report's totals and
/// every changed column. Frames are shared by `Arc`, never copied, and
/// cached as Arrow IPC by incremental runs.
///
/// ```
/// use flowyml::Pipeline;
/// use flowyml::dataframe::{optimize_step, polars::prelude::*};
///
/// let raw = df!("id" => (0..1000i64).collect::<Vec<_>>())?;
/// let mut pipeline = Pipeline::new("shrink");
/// pipeline.input_artifact("raw", raw).add_step(optimize_step("raw", "small"));
/// let result = pipeline.run()?;
/// assert_eq!(result.get::<DataFrame>("small")?.column("id")?.dtype(), &DataType::UInt16);
/// assert!(result.step("optimize_raw").expect("ran").notes[0].contains("bytes"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn optimize_step(input: &str, output: &str) -> crate::step::FnStep {
    crate::step::FnStep::builder(format!("optimize_{input}"))
        .version(concat!("optimize_dataframe ", env!("CARGO_PKG_VERSION")))
        .artifact_input::<DataFrame>(input.to_owned())
        .artifact_output::<DataFrame>(output.to_owned())
        .build(|ctx| {
            let frame = ctx.input::<DataFrame>(0)?;
            let (optimized, report) = optimize_dataframe_with(frame, &OptimizeOptions::default())?;
            ctx.note(format!(
                "optimized {} rows from {} to {} bytes ({:.1}% saved)",
                report.rows,
                report.bytes_before,
                report.bytes_after,
                100.0 * (1.0 - report.ratio())
            ));
            for column in report.columns.iter().filter(|c| c.outcome.is_changed()) {
                ctx.note(format!(
                    "{}: {} -> {}",
                    column.name, column.dtype_before, column.dtype_after
                ));
            }
            ctx.set_output(0, optimized);
            Ok(())
        })
}
