//! [`OptimizeReport`](super::OptimizeReport): what `optimize_dataframe_with` did to each column,
//! how to read it, and how to undo it.

use std::fmt::{self, Write as _};
use std::time::Duration;

use polars::prelude::*;
use serde::Serialize;

use super::memory::{column_memory_usage, dictionary_bytes};
use super::options::FloatPolicy;
use crate::error::{Error, Result};

/// What happened to one column.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Outcome {
    /// Integers moved to the smallest type that holds every value.
    IntegerNarrowed,
    /// `f64` stored as `f32` under `rule`; `max_abs_error` is the largest
    /// change a plain cast back to `f64` shows (0 under
    /// [`FloatPolicy::BitExact`], where the cast gives every value back).
    FloatNarrowed {
        /// The rule that allowed it.
        rule: FloatPolicy,
        /// The largest `|f64::from(f32) - f64|` over the column.
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
            Outcome::FloatNarrowed {
                rule: FloatPolicy::ShortestDecimal,
                max_abs_error,
            } => write!(
                f,
                "f32, same decimal digits; a plain cast back is off by up to {max_abs_error:.3e} (restore() is exact)"
            ),
            Outcome::FloatNarrowed { .. } => f.write_str("f32, lossless (bit-exact)"),
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

/// One column of an [`OptimizeReport`](super::OptimizeReport).
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
    pub(super) original: DataType,
}

impl ColumnReport {
    /// The report of `before` becoming `after` with this outcome.
    pub(super) fn new(
        before: &Column,
        after: &Column,
        bytes_before: usize,
        outcome: Outcome,
    ) -> Self {
        ColumnReport {
            name: before.name().to_string(),
            dtype_before: type_name(before.dtype()),
            dtype_after: type_name(after.dtype()),
            bytes_before,
            bytes_after: column_memory_usage(after),
            dictionary_bytes: dictionary_bytes(after.dtype()),
            outcome,
            original: before.dtype().clone(),
        }
    }

    /// `bytes_before - bytes_after` (0 if it grew, which the rules avoid).
    pub fn bytes_saved(&self) -> usize {
        self.bytes_before.saturating_sub(self.bytes_after)
    }
}

/// What [`optimize_dataframe_with`](super::optimize_dataframe_with) did: bytes before and after, and per
/// column the old type, the new type and the bytes saved. `Display` prints
/// it as a table.
#[derive(Debug, Clone, Serialize)]
pub struct OptimizeReport {
    /// The frame's rows.
    pub rows: usize,
    /// The frame's bytes before, dictionaries included ([`memory_usage`](super::memory_usage)).
    pub bytes_before: usize,
    /// The frame's bytes after, dictionaries included.
    pub bytes_after: usize,
    /// The time the optimization took.
    pub elapsed: Duration,
    /// Every column, in the frame's order.
    pub columns: Vec<ColumnReport>,
}

impl OptimizeReport {
    /// The optimized frame of these columns and the report of them, whose
    /// optimization started at `start`.
    pub(super) fn assemble(
        rows: usize,
        results: Vec<(Column, ColumnReport)>,
        start: std::time::Instant,
    ) -> Result<(DataFrame, Self)> {
        let (columns, reports): (Vec<Column>, Vec<ColumnReport>) = results.into_iter().unzip();
        let out =
            DataFrame::new(rows, columns).map_err(Error::polars("rebuilding the DataFrame"))?;
        let report = OptimizeReport {
            rows,
            bytes_before: reports.iter().map(|c| c.bytes_before).sum(),
            bytes_after: reports.iter().map(|c| c.bytes_after).sum(),
            elapsed: start.elapsed(),
            columns: reports,
        };
        Ok((out, report))
    }

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
    /// came from under [`FloatPolicy::BitExact`](super::FloatPolicy::BitExact)
    /// and [`FloatPolicy::ShortestDecimal`](super::FloatPolicy::ShortestDecimal)
    /// (under [`FloatPolicy::Tolerance`](super::FloatPolicy::Tolerance) the
    /// values are the `f32`s widened).
    /// Columns the report does not know are left as they are.
    ///
    /// ```
    /// use flowyml::dataframe::{optimize_dataframe_with, FloatPolicy, OptimizeOptions};
    /// use polars::prelude::*;
    ///
    /// let df = df!("t" => [39.02, 26.06, -0.1, f64::NAN], "n" => [1i64, 2, 3, 4])?;
    /// let digits = OptimizeOptions::default().with_floats(FloatPolicy::ShortestDecimal);
    /// let (small, report) = optimize_dataframe_with(&df, &digits)?;
    /// assert_eq!(small.column("t")?.dtype(), &DataType::Float32);
    /// let cast = small.column("t")?.cast(&DataType::Float64)?;
    /// assert_eq!(cast.f64()?.get(0), Some(39.02000045776367)); // a plain cast
    /// let back = report.restore(&small)?;
    /// assert_eq!(back.column("t")?.f64()?.get(0), Some(39.02));
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
                            rule: FloatPolicy::ShortestDecimal,
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

/// A dtype as reports name it: an `Enum` with its code width and size.
pub(super) fn type_name(dtype: &DataType) -> String {
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
