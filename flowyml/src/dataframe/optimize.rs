//! The rules of [`optimize_dataframe`] and the [`OptimizeReport`].
//!
//! # Design notes
//! - Each rule decides from the column's actual values, never from its type
//!   alone: integers from their minimum and maximum, floats from a check of
//!   every value, strings from their distinct count (with an early exit as
//!   soon as the threshold is crossed, so a column of unique ids costs one
//!   partial pass, not a full hash of the column).
//! - Strings are encoded here, not by polars' cast: the pass that counts the
//!   distinct values also records each row's code, so the column is hashed
//!   once. The codes are then renumbered to the sorted order of the
//!   categories.
//! - A rule only applies where it makes the column smaller, dictionary
//!   included: an `Enum` of long, mostly distinct strings can outweigh the
//!   strings themselves.

use std::fmt::{self, Write as _};
use std::time::{Duration, Instant};

use polars::prelude::*;
use rayon::prelude::*;
use serde::Serialize;

use crate::error::{Error, Result};

/// When a `Float64` column may become `Float32`.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FloatPolicy {
    /// Floats keep their type.
    Never,
    /// Only where every value converts exactly (`v as f32 as f64 == v`).
    /// Data computed in `f32` and widened qualifies; decimals such as `0.1`
    /// do not.
    BitExact,
    /// Only where every value's shortest decimal form survives: the `f32`,
    /// printed and read back as `f64`, is the original value (`39.02` stays
    /// `39.02`; `10.357019999999999` keeps the column in `f64`). Lossless
    /// for data read from text; [`OptimizeReport::restore`] gives back the
    /// exact `f64` values.
    #[default]
    Decimal,
    /// Where every value moves by at most this absolute amount, like
    /// pandas' `downcast="float"` check. Lossy: the report gives the largest
    /// error per column.
    Tolerance(f64),
}

/// What [`optimize_dataframe_with`] may change.
///
/// ```
/// use flowyml::dataframe::{FloatPolicy, OptimizeOptions};
///
/// let options = OptimizeOptions::default()
///     .with_floats(FloatPolicy::Tolerance(1e-6))
///     .with_category_threshold(0.1);
/// assert_eq!(options.category_threshold, 0.1);
/// assert!(options.integers);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct OptimizeOptions {
    /// Narrow integer columns (default `true`).
    pub integers: bool,
    /// When floats become `f32` (default [`FloatPolicy::Decimal`]).
    pub floats: FloatPolicy,
    /// A string column becomes an `Enum` when its distinct non-null values
    /// divided by its rows is below this (default 0.5, as pandas users
    /// commonly choose);
    /// 0 turns the rule off.
    pub category_threshold: f64,
}

impl Default for OptimizeOptions {
    fn default() -> Self {
        OptimizeOptions {
            integers: true,
            floats: FloatPolicy::Decimal,
            category_threshold: 0.5,
        }
    }
}

impl OptimizeOptions {
    /// Whether integer columns are narrowed.
    pub fn with_integers(mut self, integers: bool) -> Self {
        self.integers = integers;
        self
    }

    /// When floats become `f32`.
    pub fn with_floats(mut self, floats: FloatPolicy) -> Self {
        self.floats = floats;
        self
    }

    /// The distinct/rows ratio below which strings become an `Enum`, in `0..=1`.
    pub fn with_category_threshold(mut self, threshold: f64) -> Self {
        self.category_threshold = threshold;
        self
    }

    fn validate(&self) -> Result<()> {
        if !(0.0..=1.0).contains(&self.category_threshold) {
            return Err(Error::DataFrame {
                column: None,
                message: format!(
                    "category_threshold must be between 0 and 1, got {}",
                    self.category_threshold
                ),
            });
        }
        if let FloatPolicy::Tolerance(atol) = self.floats
            && !(atol.is_finite() && atol >= 0.0)
        {
            return Err(Error::DataFrame {
                column: None,
                message: format!("a float tolerance must be finite and at least 0, got {atol}"),
            });
        }
        Ok(())
    }
}

/// What happened to one column.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Outcome {
    /// Integers moved to the smallest type that holds every value.
    IntegerNarrowed,
    /// `f64` stored as `f32` under `rule`; `max_abs_error` is the largest
    /// change of a value (0 under the lossless rules).
    FloatNarrowed {
        /// The rule that allowed it.
        rule: FloatPolicy,
        /// The largest `|f32 - f64|` over the column.
        max_abs_error: f64,
    },
    /// Strings became an `Enum` of this many sorted categories.
    Categorized {
        /// The number of distinct values.
        categories: usize,
    },
    /// Kept: no smaller type holds every value.
    KeptSmallest,
    /// Kept: `f32` would change a value under the float rule.
    KeptPrecision,
    /// Kept: too many distinct strings for the threshold.
    KeptDistinct,
    /// Kept: the `Enum` and its dictionary would not be smaller.
    KeptLarger,
    /// Kept: a type the optimizer leaves alone (booleans, dates and times,
    /// nested, already categorical, `f32`).
    KeptType,
    /// Kept: the options turn this rule off.
    KeptDisabled,
    /// Kept: the frame has no rows to decide from.
    KeptEmpty,
    /// Kept: a constant column, which polars stores as one value.
    KeptConstant,
}

impl Outcome {
    /// Whether the column's type changed.
    pub fn is_changed(&self) -> bool {
        matches!(
            self,
            Outcome::IntegerNarrowed | Outcome::FloatNarrowed { .. } | Outcome::Categorized { .. }
        )
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::IntegerNarrowed => f.write_str("narrowed"),
            Outcome::FloatNarrowed {
                rule: FloatPolicy::Tolerance(_),
                max_abs_error,
            } => write!(f, "f32, lossy (max error {max_abs_error:.3e})"),
            Outcome::FloatNarrowed { .. } => f.write_str("f32, lossless"),
            Outcome::Categorized { categories } => write!(f, "{categories} categories"),
            Outcome::KeptSmallest => f.write_str("kept: smallest type"),
            Outcome::KeptPrecision => f.write_str("kept: f32 would change values"),
            Outcome::KeptDistinct => f.write_str("kept: too many distinct"),
            Outcome::KeptLarger => f.write_str("kept: enum not smaller"),
            Outcome::KeptType => f.write_str("kept: type left alone"),
            Outcome::KeptDisabled => f.write_str("kept: rule off"),
            Outcome::KeptEmpty => f.write_str("kept: no rows"),
            Outcome::KeptConstant => f.write_str("kept: constant"),
        }
    }
}

/// One column of an [`OptimizeReport`].
#[derive(Debug, Clone, Serialize)]
pub struct ColumnReport {
    /// The column's name.
    pub name: String,
    /// Its type before, as polars prints it (`enum[u8; 16]` for an `Enum`).
    pub dtype_before: String,
    /// Its type after.
    pub dtype_after: String,
    /// Its bytes before, dictionary included.
    pub bytes_before: usize,
    /// Its bytes after, dictionary included.
    pub bytes_after: usize,
    /// The part of `bytes_after` that is the dictionary of an `Enum` or
    /// `Categorical` column: the categories and polars' hash table over them.
    pub dictionary_bytes: usize,
    /// What happened and why.
    pub outcome: Outcome,
    #[serde(skip)]
    original: DataType,
}

impl ColumnReport {
    /// `bytes_before - bytes_after` (0 if it grew, which the rules avoid).
    pub fn bytes_saved(&self) -> usize {
        self.bytes_before.saturating_sub(self.bytes_after)
    }
}

/// What [`optimize_dataframe_with`] did: bytes before and after, and per
/// column the old type, the new type and the bytes saved. `Display` prints
/// it as a table.
#[derive(Debug, Clone, Serialize)]
pub struct OptimizeReport {
    /// The frame's rows.
    pub rows: usize,
    /// The frame's bytes before, dictionaries included ([`memory_usage`]).
    pub bytes_before: usize,
    /// The frame's bytes after, dictionaries included.
    pub bytes_after: usize,
    /// The time the optimization took.
    pub elapsed: Duration,
    /// Every column, in the frame's order.
    pub columns: Vec<ColumnReport>,
}

impl OptimizeReport {
    /// `bytes_before - bytes_after`.
    pub fn bytes_saved(&self) -> usize {
        self.bytes_before.saturating_sub(self.bytes_after)
    }

    /// `bytes_after / bytes_before` (1 for a frame of no bytes).
    pub fn ratio(&self) -> f64 {
        if self.bytes_before == 0 {
            1.0
        } else {
            self.bytes_after as f64 / self.bytes_before as f64
        }
    }

    /// The part of `bytes_after` that is dictionaries.
    pub fn dictionary_bytes(&self) -> usize {
        self.columns.iter().map(|c| c.dictionary_bytes).sum()
    }

    /// The report of the column `name`.
    pub fn column(&self, name: &str) -> Option<&ColumnReport> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// The optimized frame with its original types: integers widened,
    /// `Enum`s back to strings, and `f32`s back to the exact `f64`s they
    /// came from under the lossless float rules (under
    /// [`FloatPolicy::Tolerance`] the values are the `f32`s widened).
    /// Columns the report does not know are left as they are.
    ///
    /// ```
    /// use flowyml::dataframe::{optimize_dataframe_with, OptimizeOptions};
    /// use polars::prelude::*;
    ///
    /// let df = df!("t" => [39.02, 26.06, -0.1, f64::NAN], "n" => [1i64, 2, 3, 4])?;
    /// let (small, report) = optimize_dataframe_with(&df, &OptimizeOptions::default())?;
    /// assert_eq!(small.column("t")?.dtype(), &DataType::Float32);
    /// let back = report.restore(&small)?;
    /// assert_eq!(back.column("t")?.f64()?.get(0), Some(39.02)); // not 39.020000457763672
    /// assert!(back.equals_missing(&df));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Polars`] naming the column if a cast fails (a column whose
    /// values no longer fit the original type).
    pub fn restore(&self, df: &DataFrame) -> Result<DataFrame> {
        let columns = df
            .columns()
            .iter()
            .map(|column| {
                let Some(report) = self.column(column.name().as_str()) else {
                    return Ok(column.clone());
                };
                if column.dtype() == &report.original {
                    return Ok(column.clone());
                }
                let series = column.as_materialized_series();
                let restored = match (report.outcome, series.dtype()) {
                    (
                        Outcome::FloatNarrowed {
                            rule: FloatPolicy::Decimal,
                            ..
                        },
                        DataType::Float32,
                    ) => Ok(widen_decimal(series.f32().expect("checked f32"))),
                    _ => series.strict_cast(&report.original),
                };
                restored.map(Column::from).map_err(Error::polars(format!(
                    "restoring column `{}`",
                    column.name()
                )))
            })
            .collect::<Result<Vec<_>>>()?;
        DataFrame::new(df.height(), columns).map_err(Error::polars("restoring a DataFrame"))
    }
}

impl fmt::Display for OptimizeReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name_width = self
            .columns
            .iter()
            .map(|c| c.name.chars().count())
            .chain([6])
            .max()
            .unwrap_or(6);
        let type_width = self
            .columns
            .iter()
            .flat_map(|c| [c.dtype_before.len(), c.dtype_after.len()])
            .chain([6])
            .max()
            .unwrap_or(6);
        writeln!(
            f,
            "{:<name_width$}  {:<type_width$}  {:<type_width$}  {:>10}  {:>10}  {:>6}  outcome",
            "column", "type", "new type", "bytes", "new bytes", "saved"
        )?;
        for c in &self.columns {
            writeln!(
                f,
                "{:<name_width$}  {:<type_width$}  {:<type_width$}  {:>10}  {:>10}  {:>6}  {}",
                c.name,
                c.dtype_before,
                c.dtype_after,
                human_bytes(c.bytes_before),
                human_bytes(c.bytes_after),
                percent(c.bytes_before, c.bytes_after),
                c.outcome
            )?;
        }
        write!(
            f,
            "{:<width$}  {:>10}  {:>10}  {:>6}  {} rows in {:.1} ms",
            "total",
            human_bytes(self.bytes_before),
            human_bytes(self.bytes_after),
            percent(self.bytes_before, self.bytes_after),
            self.rows,
            self.elapsed.as_secs_f64() * 1e3,
            width = name_width + 2 * type_width + 4
        )
    }
}

fn human_bytes(bytes: usize) -> String {
    let b = bytes as f64;
    if b >= 1024.0 * 1024.0 {
        format!("{:.1} MiB", b / (1024.0 * 1024.0))
    } else if b >= 1024.0 {
        format!("{:.1} KiB", b / 1024.0)
    } else {
        format!("{bytes} B")
    }
}

fn percent(before: usize, after: usize) -> String {
    if before == 0 {
        "-".to_owned()
    } else {
        format!(
            "{:.0}%",
            100.0 * (before as f64 - after as f64) / before as f64
        )
    }
}

/// `df` with every column in its smallest lossless type, under the default
/// [`OptimizeOptions`]. See [`optimize_dataframe_with`] for the rules.
///
/// ```
/// use flowyml::dataframe::optimize_dataframe;
/// use polars::prelude::*;
///
/// let df = df!("year" => [2013i64, 2013, 2014], "delay" => [Some(-5i64), None, Some(300)])?;
/// let small = optimize_dataframe(&df)?;
/// assert_eq!(small.column("year")?.dtype(), &DataType::UInt16);
/// assert_eq!(small.column("delay")?.dtype(), &DataType::Int16);
/// assert_eq!(small.column("delay")?.null_count(), 1); // nulls stay nulls
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// [`Error::Polars`] naming the column if polars fails on it.
pub fn optimize_dataframe(df: &DataFrame) -> Result<DataFrame> {
    optimize_dataframe_with(df, &OptimizeOptions::default()).map(|(df, _)| df)
}

/// `df` with its columns in smaller types, and the report of what changed.
///
/// - Integers: the smallest type that holds the column's minimum and
///   maximum, unsigned when nothing is negative; nulls stay nulls. An
///   all-null column holds no value and gets `u8`.
/// - Floats (`f64`): `f32` when [`OptimizeOptions::floats`] allows it for
///   every value; NaN and ±infinity convert exactly.
/// - Strings: an `Enum` of the sorted distinct values, with `u8`, `u16` or
///   `u32` codes, when distinct non-null values / rows is below
///   [`OptimizeOptions::category_threshold`] (a column at exactly the
///   threshold stays) and the result, dictionary included, is smaller.
/// - Everything else, and every column of a frame with no rows, is left as
///   it is; the report says why.
///
/// ```
/// use flowyml::dataframe::{optimize_dataframe_with, FloatPolicy, OptimizeOptions, Outcome};
/// use polars::prelude::*;
///
/// let df = df!("x" => [0.1, 0.25, 1e-3])?;
/// let lossless = OptimizeOptions::default();
/// let (_, report) = optimize_dataframe_with(&df, &lossless.clone().with_floats(FloatPolicy::BitExact))?;
/// assert_eq!(report.columns[0].outcome, Outcome::KeptPrecision); // 0.1 is not an exact f32
/// let (_, report) = optimize_dataframe_with(&df, &lossless.with_floats(FloatPolicy::Tolerance(1e-6)))?;
/// let Outcome::FloatNarrowed { max_abs_error, .. } = report.columns[0].outcome else { panic!() };
/// assert!(max_abs_error > 0.0 && max_abs_error < 1e-8); // lossy, and said so
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// [`Error::DataFrame`] for a threshold outside `0..=1` or a tolerance that
/// is negative or not finite; [`Error::Polars`] naming the column if polars
/// fails on it.
pub fn optimize_dataframe_with(
    df: &DataFrame,
    options: &OptimizeOptions,
) -> Result<(DataFrame, OptimizeReport)> {
    options.validate()?;
    let start = Instant::now();
    let results = df
        .columns()
        .par_iter()
        .map(|column| optimize_column(column, options))
        .collect::<Result<Vec<_>>>()?;
    let (columns, reports): (Vec<Column>, Vec<ColumnReport>) = results.into_iter().unzip();
    let out =
        DataFrame::new(df.height(), columns).map_err(Error::polars("rebuilding the DataFrame"))?;
    let report = OptimizeReport {
        rows: df.height(),
        bytes_before: reports.iter().map(|c| c.bytes_before).sum(),
        bytes_after: reports.iter().map(|c| c.bytes_after).sum(),
        elapsed: start.elapsed(),
        columns: reports,
    };
    Ok((out, report))
}

/// The bytes `df` holds, counted more honestly than polars'
/// `estimated_size`, which leaves out two things: the dictionaries of `Enum`
/// and `Categorical` columns (counted here as their categories plus an
/// estimate of polars' hash table over them, measured at about 120 bytes
/// per category on polars 0.55) and the 16-byte view that every string
/// (and binary) value has besides its text.
///
/// ```
/// use flowyml::dataframe::{memory_usage, optimize_dataframe};
/// use polars::prelude::*;
///
/// let words: Vec<String> = (0..1000).map(|i| format!("a rather long category name {}", i % 100)).collect();
/// let df = df!("w" => words)?;
/// let small = optimize_dataframe(&df)?;
/// assert!(memory_usage(&small) > small.estimated_size()); // the dictionary counts
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn memory_usage(df: &DataFrame) -> usize {
    df.columns().iter().map(column_memory_usage).sum()
}

/// Views, the text in buffers and validity of a string or binary column.
/// A slice's buffers may hold text of rows outside it, so the text counted
/// is at most the slice's own.
macro_rules! view_bytes {
    ($ca:expr) => {
        $ca.downcast_iter()
            .zip($ca.chunks())
            .map(|(arr, chunk)| {
                let validity = if chunk.validity().is_some() {
                    chunk.len().div_ceil(8)
                } else {
                    0
                };
                chunk.len() * 16 + arr.total_buffer_len().min(arr.total_bytes_len()) + validity
            })
            .sum::<usize>()
    };
}

/// The bytes one column holds, dictionary included (see [`memory_usage`]).
/// A constant column, which polars stores as one value, counts that value.
pub fn column_memory_usage(column: &Column) -> usize {
    let series = match column.as_scalar_column() {
        // Materializing it would allocate the very rows it saves.
        Some(scalar) => &scalar.as_single_value_series(),
        None => column.as_materialized_series(),
    };
    let data = match series.dtype() {
        DataType::String => series.str().map_or(0, |ca| view_bytes!(ca)),
        DataType::Binary => series.binary().map_or(0, |ca| view_bytes!(ca)),
        _ => series.estimated_size(),
    };
    data + dictionary_bytes(column.dtype())
}

/// Bytes of polars' hash table per category besides the text, measured on
/// polars 0.55 with a counting allocator (131 to 141 bytes per category for
/// 4,000 to 100,000 categories, text included): each string is copied into
/// its own allocation, the table keeps spare slots, and an id-to-string
/// vector holds a slice and a hash per category.
const MAPPING_BYTES_PER_CATEGORY: usize = 120;

fn dictionary_bytes(dtype: &DataType) -> usize {
    match dtype {
        DataType::Enum(fcats, _) => {
            let cats = fcats.categories();
            // The categories array (views and buffers), then the mapping.
            cats.len() * 16
                + cats.total_buffer_len()
                + cats.total_bytes_len()
                + cats.len() * MAPPING_BYTES_PER_CATEGORY
        }
        DataType::Categorical(_, mapping) => {
            let n = mapping.num_cats_upper_bound();
            let strings: usize = (0..n)
                .filter_map(|i| mapping.cat_to_str(i as CatSize))
                .map(str::len)
                .sum();
            strings + n * MAPPING_BYTES_PER_CATEGORY
        }
        _ => 0,
    }
}

fn type_name(dtype: &DataType) -> String {
    match dtype {
        DataType::Enum(fcats, _) => {
            format!(
                "enum[{}; {}]",
                fcats.physical().as_str(),
                fcats.categories().len()
            )
        }
        other => other.to_string(),
    }
}

fn optimize_column(column: &Column, options: &OptimizeOptions) -> Result<(Column, ColumnReport)> {
    let bytes_before = column_memory_usage(column);
    let context = || format!("optimizing column `{}`", column.name());
    let (new, outcome) = if column.is_empty() {
        (None, Outcome::KeptEmpty)
    } else if column.as_scalar_column().is_some() {
        (None, Outcome::KeptConstant)
    } else {
        let series = column.as_materialized_series();
        let dtype = series.dtype();
        if dtype.is_integer() {
            if options.integers {
                narrow_integers(series).map_err(Error::polars(context()))?
            } else {
                (None, Outcome::KeptDisabled)
            }
        } else if dtype == &DataType::Float64 {
            match options.floats {
                FloatPolicy::Never => (None, Outcome::KeptDisabled),
                rule => narrow_floats(series, rule).map_err(Error::polars(context()))?,
            }
        } else if dtype == &DataType::String {
            if options.category_threshold > 0.0 {
                categorize(series, options.category_threshold, bytes_before)
                    .map_err(Error::polars(context()))?
            } else {
                (None, Outcome::KeptDisabled)
            }
        } else {
            (None, Outcome::KeptType)
        }
    };
    let new = new.map_or_else(|| column.clone(), Column::from);
    let report = ColumnReport {
        name: column.name().to_string(),
        dtype_before: type_name(column.dtype()),
        dtype_after: type_name(new.dtype()),
        bytes_before,
        bytes_after: column_memory_usage(&new),
        dictionary_bytes: dictionary_bytes(new.dtype()),
        outcome,
        original: column.dtype().clone(),
    };
    Ok((new, report))
}

type Decision = (Option<Series>, Outcome);

fn range<T>(ca: &ChunkedArray<T>) -> Option<(i128, i128)>
where
    T: PolarsNumericType,
    ChunkedArray<T>: ChunkAgg<T::Native>,
    T::Native: Into<i128>,
{
    Some((ca.min()?.into(), ca.max()?.into()))
}

fn narrow_integers(series: &Series) -> PolarsResult<Decision> {
    let range = match series.dtype() {
        DataType::Int8 => range(series.i8()?),
        DataType::Int16 => range(series.i16()?),
        DataType::Int32 => range(series.i32()?),
        DataType::Int64 => range(series.i64()?),
        DataType::UInt8 => range(series.u8()?),
        DataType::UInt16 => range(series.u16()?),
        DataType::UInt32 => range(series.u32()?),
        DataType::UInt64 => range(series.u64()?),
        // Wider integers (i128) are rare enough to leave alone.
        _ => return Ok((None, Outcome::KeptType)),
    };
    // An all-null column holds no value, so the smallest type holds them all.
    let (min, max) = range.unwrap_or((0, 0));
    let target = smallest_integer(min, max);
    if byte_width(&target) >= byte_width(series.dtype()) {
        return Ok((None, Outcome::KeptSmallest));
    }
    // Every value is within the target's range, so wrapping never happens
    // and the unchecked cast is exact.
    let narrowed = series.cast_with_options(
        &target,
        polars::chunked_array::cast::CastOptions::Overflowing,
    )?;
    Ok((Some(narrowed), Outcome::IntegerNarrowed))
}

fn smallest_integer(min: i128, max: i128) -> DataType {
    if min >= 0 {
        if max <= i128::from(u8::MAX) {
            DataType::UInt8
        } else if max <= i128::from(u16::MAX) {
            DataType::UInt16
        } else if max <= i128::from(u32::MAX) {
            DataType::UInt32
        } else {
            DataType::UInt64
        }
    } else if min >= i128::from(i8::MIN) && max <= i128::from(i8::MAX) {
        DataType::Int8
    } else if min >= i128::from(i16::MIN) && max <= i128::from(i16::MAX) {
        DataType::Int16
    } else if min >= i128::from(i32::MIN) && max <= i128::from(i32::MAX) {
        DataType::Int32
    } else {
        DataType::Int64
    }
}

fn byte_width(dtype: &DataType) -> usize {
    match dtype {
        DataType::Int8 | DataType::UInt8 => 1,
        DataType::Int16 | DataType::UInt16 => 2,
        DataType::Int32 | DataType::UInt32 | DataType::Float32 => 4,
        _ => 8,
    }
}

/// Whether `v` may be stored as `f32` under `rule`, and the error if so.
fn float_fits(v: f64, rule: FloatPolicy, checker: &mut DecimalChecker) -> Option<f64> {
    let f = v as f32;
    if !v.is_finite() {
        // NaN stays NaN and ±inf stays ±inf.
        return Some(0.0);
    }
    if !f.is_finite() {
        return None;
    }
    let back = f64::from(f);
    match rule {
        FloatPolicy::Never => None,
        FloatPolicy::BitExact => (back == v).then_some(0.0),
        FloatPolicy::Decimal => checker.keeps_decimal(v, f).then_some(0.0),
        FloatPolicy::Tolerance(atol) => {
            let error = (back - v).abs();
            (error <= atol).then_some(error)
        }
    }
}

/// The decimal check with a memo: printing a float is the costly part, and
/// columns read from text repeat their values.
struct DecimalChecker {
    text: String,
    /// Direct-mapped: (bits of the value, 1 + verdict); 0 marks an empty slot.
    memo: Vec<(u64, u8)>,
}

impl DecimalChecker {
    const SLOTS_LOG2: u32 = 12;

    fn new() -> Self {
        DecimalChecker {
            text: String::with_capacity(32),
            memo: vec![(0, 0); 1 << Self::SLOTS_LOG2],
        }
    }

    fn keeps_decimal(&mut self, v: f64, f: f32) -> bool {
        // Integers below 2^24 are exact in f32 and print as themselves.
        if v.fract() == 0.0 && v.abs() < 16_777_216.0 {
            return true;
        }
        let bits = v.to_bits();
        let slot = (bits.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - Self::SLOTS_LOG2)) as usize;
        let (seen, verdict) = self.memo[slot];
        if verdict != 0 && seen == bits {
            return verdict == 2;
        }
        // `{:e}` prints the shortest digits that read back as `f`.
        self.text.clear();
        write!(self.text, "{f:e}").expect("writing to a String");
        let keeps = self.text.parse::<f64>().is_ok_and(|d| d == v);
        self.memo[slot] = (bits, 1 + u8::from(keeps));
        keeps
    }
}

fn narrow_floats(series: &Series, rule: FloatPolicy) -> PolarsResult<Decision> {
    const BLOCK: usize = 1 << 16;
    let ca = series.f64()?;
    let mut max_error = Some(0.0f64);
    // The `dyn Array` side of each chunk gives its validity. Blocks of a
    // chunk are checked in parallel and the first misfit stops them all.
    for (arr, chunk) in ca.downcast_iter().zip(ca.chunks()) {
        let values: &[f64] = arr.values();
        let validity = chunk.validity();
        let chunk_error = values
            .par_chunks(BLOCK)
            .enumerate()
            .map(|(block, vs)| {
                let mut checker = DecimalChecker::new();
                let mut max = 0.0f64;
                for (j, &v) in vs.iter().enumerate() {
                    if validity.is_some_and(|bits| !bits.get_bit(block * BLOCK + j)) {
                        continue;
                    }
                    max = max.max(float_fits(v, rule, &mut checker)?);
                }
                Some(max)
            })
            .try_reduce(|| 0.0, |a, b| Some(a.max(b)));
        max_error = max_error.zip(chunk_error).map(|(a, b)| a.max(b));
        if max_error.is_none() {
            return Ok((None, Outcome::KeptPrecision));
        }
    }
    let narrowed = series.cast(&DataType::Float32)?;
    Ok((
        Some(narrowed),
        Outcome::FloatNarrowed {
            rule,
            max_abs_error: max_error.unwrap_or(0.0),
        },
    ))
}

/// `f32`s back to the `f64`s whose shortest decimal they print as.
fn widen_decimal(ca: &Float32Chunked) -> Series {
    let mut text = String::with_capacity(32);
    let widened: Float64Chunked = ca
        .iter()
        .map(|o| {
            o.map(|f| {
                if !f.is_finite() {
                    return f64::from(f);
                }
                text.clear();
                write!(text, "{f:e}").expect("writing to a String");
                text.parse().expect("Rust prints floats it can parse")
            })
        })
        .collect();
    widened.with_name(ca.name().clone()).into_series()
}

fn categorize(series: &Series, threshold: f64, bytes_before: usize) -> PolarsResult<Decision> {
    let ca = series.str()?.rechunk();
    let rows = ca.len();
    let arr = ca.downcast_as_array();
    let validity = ca.chunks()[0].validity().cloned();
    let too_many = |distinct: usize| distinct as f64 / rows as f64 >= threshold;

    // One pass: the distinct values in order of appearance and each row's
    // index into them (0 for nulls, which the validity masks).
    let mut seen: PlHashMap<&str, u32> = PlHashMap::default();
    let mut codes: Vec<u32> = Vec::with_capacity(rows);
    for value in arr.iter() {
        let code = match value {
            Some(s) => {
                let next = seen.len() as u32;
                let code = *seen.entry(s).or_insert(next);
                if code == next && too_many(seen.len()) {
                    return Ok((None, Outcome::KeptDistinct));
                }
                code
            }
            None => 0,
        };
        codes.push(code);
    }
    if too_many(seen.len()) {
        return Ok((None, Outcome::KeptDistinct));
    }

    let mut sorted: Vec<(&str, u32)> = seen.into_iter().collect();
    sorted.sort_unstable_by(|a, b| a.0.cmp(b.0));
    let physical = CategoricalPhysical::smallest_physical(sorted.len())?;
    let width = match physical {
        CategoricalPhysical::U8 => 1,
        CategoricalPhysical::U16 => 2,
        CategoricalPhysical::U32 => 4,
    };
    let strings: usize = sorted.iter().map(|(s, _)| s.len()).sum();
    let estimate = rows * width
        + rows.div_ceil(8) * usize::from(validity.is_some())
        + sorted.len() * (16 + MAPPING_BYTES_PER_CATEGORY)
        + 2 * strings;
    if estimate >= bytes_before {
        return Ok((None, Outcome::KeptLarger));
    }

    let mut renumber = vec![0u32; sorted.len()];
    for (rank, (_, first_seen)) in sorted.iter().enumerate() {
        renumber[*first_seen as usize] = rank as u32;
    }
    let fcats = FrozenCategories::new(sorted.iter().map(|(s, _)| *s))?;
    let dtype = DataType::from_frozen_categories(fcats);
    let name = ca.name().clone();
    let remap = |c: u32| renumber.get(c as usize).copied().unwrap_or(0);
    let out = match physical {
        CategoricalPhysical::U8 => {
            let ids = codes.iter().map(|&c| remap(c) as u8).collect();
            let phys = UInt8Chunked::from_vec_validity(name, ids, validity);
            Categorical8Chunked::from_cats_and_dtype(phys, dtype).into_series()
        }
        CategoricalPhysical::U16 => {
            let ids = codes.iter().map(|&c| remap(c) as u16).collect();
            let phys = UInt16Chunked::from_vec_validity(name, ids, validity);
            Categorical16Chunked::from_cats_and_dtype(phys, dtype).into_series()
        }
        CategoricalPhysical::U32 => {
            let ids = codes.iter().map(|&c| remap(c)).collect();
            let phys = UInt32Chunked::from_vec_validity(name, ids, validity);
            Categorical32Chunked::from_cats_and_dtype(phys, dtype).into_series()
        }
    };
    Ok((
        Some(out),
        Outcome::Categorized {
            categories: sorted.len(),
        },
    ))
}
