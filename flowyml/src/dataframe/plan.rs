//! [`OptimizePlan`]: one set of optimized types for every chunk of a table.
//!
//! # Design notes
//! - Optimizing chunks one at a time gives each chunk the types its own
//!   values need: integer widths and `Enum` categories differ from chunk to
//!   chunk and the frames cannot be stacked. A plan decides once, from
//!   statistics merged over every chunk it has seen (minimum and maximum,
//!   whether every float fits, the distinct strings), with the same rules
//!   as [`optimize_dataframe_with`](super::optimize_dataframe_with), and
//!   then casts each chunk to those types. Every `Enum` is built once, so
//!   every chunk shares its categories and `vstack` accepts them.
//! - A chunk the plan has not seen may hold a value its types cannot: that
//!   is an error naming the column, the row and the value, never a wrap or
//!   a null.
//! - The distinct strings of a column are kept until the plan is built; a
//!   column with more than [`MAX_PLAN_CATEGORIES`] of them stays text, so a
//!   column of unique ids does not hold the whole column in memory.

use polars::prelude::*;

use super::memory::{column_memory_usage, dictionary_model};
use super::optimize::{
    byte_width, cast_in_range, enum_bytes, enum_column, enum_dtype, first_float_misfit,
    float_check, integer_range, smallest_integer,
};
use super::options::{FloatPolicy, OptimizeOptions};
use super::report::{ColumnReport, OptimizeReport, Outcome};
use crate::error::{Error, Result};

/// More distinct strings than this in one column keep it text in a plan.
pub const MAX_PLAN_CATEGORIES: usize = 1 << 20;

/// The types every chunk of a table is optimized to, decided once from the
/// chunks (or a sample) it was built from, so that optimized chunks share
/// one schema and stack.
///
/// ```
/// use flowyml::dataframe::{OptimizeOptions, OptimizePlan};
/// use polars::prelude::*;
///
/// let first = df!("id" => [0i64, 199], "carrier" => ["AA", "UA"])?;
/// let second = df!("id" => [1000i64, 1199], "carrier" => ["AA", "DL"])?;
/// let plan = OptimizePlan::from_chunks([Ok(first.clone()), Ok(second.clone())], &OptimizeOptions::default())?;
/// let mut stacked = plan.apply(&first)?;
/// stacked.vstack_mut(&plan.apply(&second)?)?; // one schema
/// assert_eq!(stacked.column("id")?.dtype(), &DataType::UInt16); // holds 1199
/// assert_eq!(stacked.schema().as_ref(), plan.schema());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct OptimizePlan {
    columns: Vec<PlannedColumn>,
    schema: Schema,
    rule: FloatPolicy,
    rows: usize,
}

#[derive(Debug, Clone)]
struct PlannedColumn {
    name: PlSmallStr,
    original: DataType,
    target: DataType,
    outcome: Outcome,
    /// A category's position among the sorted categories, for `Enum` targets.
    codes: Option<Arc<PlHashMap<String, u32>>>,
}

/// Builds an [`OptimizePlan`] from chunks given one at a time
/// ([`OptimizePlan::from_chunks`] takes an iterator).
#[derive(Debug, Clone)]
pub struct PlanBuilder {
    options: OptimizeOptions,
    columns: Vec<(PlSmallStr, DataType, Stats)>,
    rows: usize,
    chunks: usize,
}

#[derive(Debug, Clone)]
enum Stats {
    /// Minimum and maximum so far; `None` while every value was null.
    Integer(Option<(i128, i128)>),
    /// The largest plain-cast error so far, or `None` once a value misfit.
    Float(Option<f64>),
    /// Distinct values so far (`None` past [`MAX_PLAN_CATEGORIES`]),
    /// whether a null was seen, and the column's bytes.
    Text {
        distinct: Option<PlHashSet<String>>,
        nulls: bool,
        bytes: usize,
    },
    /// Left as it is, and why.
    Kept(Outcome),
}

impl PlanBuilder {
    /// A builder that decides under `options`.
    ///
    /// # Errors
    /// As [`optimize_dataframe_with`](super::optimize_dataframe_with) for bad options.
    pub fn new(options: &OptimizeOptions) -> Result<Self> {
        options.validate()?;
        Ok(PlanBuilder {
            options: options.clone(),
            columns: Vec::new(),
            rows: 0,
            chunks: 0,
        })
    }

    /// Merges the statistics of `chunk` into the plan.
    ///
    /// # Errors
    /// [`Error::DataFrame`] naming the column if `chunk`'s columns or types
    /// differ from the first chunk's; [`Error::Polars`] naming the column if
    /// polars fails on it.
    pub fn observe(&mut self, chunk: &DataFrame) -> Result<()> {
        if self.chunks == 0 {
            self.columns = chunk
                .columns()
                .iter()
                .map(|c| (c.name().clone(), c.dtype().clone(), self.initial(c.dtype())))
                .collect();
        }
        check_columns(
            chunk,
            self.columns.iter().map(|(n, d, _)| (n, d)),
            self.chunks,
        )?;
        let options = &self.options;
        for ((_, _, stats), column) in self.columns.iter_mut().zip(chunk.columns()) {
            observe_column(stats, column, options).map_err(Error::polars(format!(
                "planning column `{}`",
                column.name()
            )))?;
        }
        self.rows += chunk.height();
        self.chunks += 1;
        Ok(())
    }

    fn initial(&self, dtype: &DataType) -> Stats {
        let options = &self.options;
        if dtype.is_integer() && !matches!(dtype, DataType::Int128 | DataType::UInt128) {
            if options.integers {
                Stats::Integer(None)
            } else {
                Stats::Kept(Outcome::KeptDisabled)
            }
        } else if dtype == &DataType::Float64 {
            if options.floats == FloatPolicy::Never {
                Stats::Kept(Outcome::KeptDisabled)
            } else {
                Stats::Float(Some(0.0))
            }
        } else if dtype == &DataType::String {
            if options.category_threshold > 0.0 {
                Stats::Text {
                    distinct: Some(PlHashSet::default()),
                    nulls: false,
                    bytes: 0,
                }
            } else {
                Stats::Kept(Outcome::KeptDisabled)
            }
        } else {
            Stats::Kept(Outcome::KeptType)
        }
    }

    /// The plan: each column's type decided from everything observed.
    ///
    /// # Errors
    /// [`Error::Polars`] if polars refuses a column's categories.
    pub fn finish(self) -> Result<OptimizePlan> {
        let rows = self.rows;
        let threshold = self.options.category_threshold;
        let columns = self
            .columns
            .into_iter()
            .map(|(name, original, stats)| {
                let decide = || -> PolarsResult<PlannedColumn> {
                    let keep = |outcome| (original.clone(), outcome, None);
                    let (target, outcome, codes) = match stats {
                        _ if rows == 0 => keep(Outcome::KeptEmpty),
                        Stats::Kept(outcome) => keep(outcome),
                        Stats::Integer(range) => {
                            let (min, max) = range.unwrap_or((0, 0));
                            let target = smallest_integer(min, max);
                            if byte_width(&target) >= byte_width(&original) {
                                keep(Outcome::KeptSmallest)
                            } else {
                                (target, Outcome::IntegerNarrowed, None)
                            }
                        }
                        Stats::Float(None) => keep(Outcome::KeptPrecision),
                        Stats::Float(Some(max_abs_error)) => (
                            DataType::Float32,
                            Outcome::FloatNarrowed {
                                rule: self.options.floats,
                                max_abs_error,
                            },
                            None,
                        ),
                        Stats::Text { distinct: None, .. } => keep(Outcome::KeptDistinct),
                        Stats::Text {
                            distinct: Some(distinct),
                            nulls,
                            bytes,
                        } => {
                            if distinct.len() as f64 / rows as f64 >= threshold {
                                keep(Outcome::KeptDistinct)
                            } else if enum_bytes(
                                rows,
                                distinct.len(),
                                dictionary_model(distinct.iter().map(String::len)),
                                nulls,
                            ) >= bytes
                            {
                                keep(Outcome::KeptLarger)
                            } else {
                                let mut sorted: Vec<String> = distinct.into_iter().collect();
                                sorted.sort_unstable();
                                let dtype = enum_dtype(sorted.iter().map(String::as_str))?;
                                let codes = sorted
                                    .into_iter()
                                    .enumerate()
                                    .map(|(i, s)| (s, i as u32))
                                    .collect::<PlHashMap<_, _>>();
                                let categories = codes.len();
                                (
                                    dtype,
                                    Outcome::Categorized { categories },
                                    Some(Arc::new(codes)),
                                )
                            }
                        }
                    };
                    Ok(PlannedColumn {
                        name: name.clone(),
                        original: original.clone(),
                        target,
                        outcome,
                        codes,
                    })
                };
                decide().map_err(Error::polars(format!("planning column `{name}`")))
            })
            .collect::<Result<Vec<_>>>()?;
        let schema = columns
            .iter()
            .map(|c| Field::new(c.name.clone(), c.target.clone()))
            .collect();
        Ok(OptimizePlan {
            columns,
            schema,
            rule: self.options.floats,
            rows,
        })
    }
}

fn observe_column(
    stats: &mut Stats,
    column: &Column,
    options: &OptimizeOptions,
) -> PolarsResult<()> {
    let series = column.as_materialized_series();
    match stats {
        Stats::Kept(_) => {}
        Stats::Integer(range) => {
            if let Some(Some((min, max))) = integer_range(series)? {
                *range = Some(range.map_or((min, max), |(a, b)| (a.min(min), b.max(max))));
            }
        }
        Stats::Float(max_error) => {
            if let Some(so_far) = *max_error {
                *max_error = float_check(series, options.floats)?.map(|e| e.max(so_far));
            }
        }
        Stats::Text {
            distinct,
            nulls,
            bytes,
        } => {
            *bytes += column_memory_usage(column);
            *nulls |= series.null_count() > 0;
            if let Some(set) = distinct {
                for value in series.str()?.iter().flatten() {
                    if !set.contains(value) {
                        set.insert(value.to_owned());
                    }
                }
                if set.len() > MAX_PLAN_CATEGORIES {
                    *distinct = None;
                }
            }
        }
    }
    Ok(())
}

/// An error unless `chunk` has these columns, in this order, of these types.
fn check_columns<'a>(
    chunk: &DataFrame,
    expected: impl ExactSizeIterator<Item = (&'a PlSmallStr, &'a DataType)>,
    seen: usize,
) -> Result<()> {
    let mismatch = |column: &str, message: String| Error::DataFrame {
        column: Some(column.to_owned()),
        message,
    };
    let expected: Vec<_> = expected.collect();
    for (column, (name, dtype)) in chunk.columns().iter().zip(&expected) {
        if column.name() != *name {
            return Err(mismatch(
                column.name(),
                format!(
                    "the frame has column `{}` where the plan has `{name}`",
                    column.name()
                ),
            ));
        }
        if column.dtype() != *dtype {
            return Err(mismatch(
                name,
                format!(
                    "{} here but {dtype} in the {} planned before",
                    column.dtype(),
                    if seen == 0 { "frame" } else { "chunks" }
                ),
            ));
        }
    }
    if chunk.width() != expected.len() {
        let names: Vec<&str> = expected.iter().map(|(n, _)| n.as_str()).collect();
        let odd = chunk
            .columns()
            .get(expected.len())
            .map(|c| c.name().to_string())
            .or_else(|| names.get(chunk.width()).map(|n| (*n).to_owned()))
            .unwrap_or_default();
        return Err(mismatch(
            &odd,
            format!(
                "the frame has {} columns where the plan has {} ({}); `{odd}` is the first that differs",
                chunk.width(),
                expected.len(),
                names.join(", ")
            ),
        ));
    }
    Ok(())
}

impl OptimizePlan {
    /// The plan for chunks like `df`, decided from `df` alone: the whole
    /// table, or a sample of it (a chunk with a value outside the sample's
    /// range is then an error from [`apply`](Self::apply)).
    ///
    /// # Errors
    /// As [`PlanBuilder::observe`].
    pub fn from_frame(df: &DataFrame, options: &OptimizeOptions) -> Result<Self> {
        let mut builder = PlanBuilder::new(options)?;
        builder.observe(df)?;
        builder.finish()
    }

    /// The plan for every chunk of a table, decided from all of them: one
    /// pass over the chunks (a [`CsvChunks`](super::CsvChunks) reader, say),
    /// after which [`apply`](Self::apply) holds for each of them.
    ///
    /// # Errors
    /// The first chunk's error; as [`PlanBuilder::observe`].
    pub fn from_chunks(
        chunks: impl IntoIterator<Item = Result<DataFrame>>,
        options: &OptimizeOptions,
    ) -> Result<Self> {
        let mut builder = PlanBuilder::new(options)?;
        for chunk in chunks {
            builder.observe(&chunk?)?;
        }
        builder.finish()
    }

    /// The schema every applied frame has.
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// The rows the plan was decided from.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// `df` in the plan's types.
    ///
    /// # Errors
    /// As [`apply_with_report`](Self::apply_with_report).
    pub fn apply(&self, df: &DataFrame) -> Result<DataFrame> {
        self.apply_with_report(df).map(|(df, _)| df)
    }

    /// `df` in the plan's types, and the report of this frame (whose
    /// [`restore`](OptimizeReport::restore) gives back the original types,
    /// of this frame or of every applied frame stacked).
    ///
    /// # Errors
    /// [`Error::DataFrame`] naming the column (and the row and value) if
    /// `df` does not have the planned columns and types, or holds a value
    /// the planned type cannot: an integer outside the planned width, a
    /// float the float rule keeps out of `f32`, a string that is not a
    /// category. Build the plan from every chunk
    /// ([`from_chunks`](Self::from_chunks)) so that none does.
    pub fn apply_with_report(&self, df: &DataFrame) -> Result<(DataFrame, OptimizeReport)> {
        let start = std::time::Instant::now();
        check_columns(df, self.columns.iter().map(|c| (&c.name, &c.original)), 0)?;
        let results = self
            .columns
            .iter()
            .zip(df.columns())
            .map(|(planned, column)| {
                let new = self.apply_column(planned, column)?;
                let bytes_before = column_memory_usage(column);
                let report = ColumnReport::new(column, &new, bytes_before, planned.outcome);
                Ok((new, report))
            })
            .collect::<Result<Vec<_>>>()?;
        OptimizeReport::assemble(df.height(), results, start)
    }

    fn apply_column(&self, planned: &PlannedColumn, column: &Column) -> Result<Column> {
        if planned.target == planned.original {
            return Ok(column.clone());
        }
        let name = planned.name.as_str();
        let misfit = |row: usize, value: String, why: &str| Error::DataFrame {
            column: Some(name.to_owned()),
            message: format!(
                "row {row}: {value} {why} (the plan was decided from {} rows); \
                 build the plan from every chunk (OptimizePlan::from_chunks)",
                self.rows
            ),
        };
        let polars = |e| Error::polars(format!("applying the plan to column `{name}`"))(e);
        let series = column.as_materialized_series();
        let out = match &planned.target {
            DataType::Float32 => {
                if let Some((row, v)) = first_float_misfit(series, self.rule).map_err(polars)? {
                    return Err(misfit(
                        row,
                        format!("{v:?}"),
                        &format!("does not fit f32 under {:?}", self.rule),
                    ));
                }
                series.cast(&DataType::Float32).map_err(polars)?
            }
            DataType::Enum(..) => {
                // A target other than the original type is only ever
                // decided by `finish`, whose one Enum target (a categorized
                // text column) comes with its codes; a column already an
                // Enum is kept, and returned above.
                let codes = planned.codes.as_ref().expect("an Enum target has codes");
                let ca = series.str().map_err(polars)?.rechunk();
                let mut ids = Vec::with_capacity(ca.len());
                for (row, value) in ca.iter().enumerate() {
                    ids.push(match value {
                        None => 0,
                        Some(s) => *codes.get(s).ok_or_else(|| {
                            misfit(
                                row,
                                format!("`{s}`"),
                                "is not one of the planned categories",
                            )
                        })?,
                    });
                }
                enum_column(&ca, ids, &planned.target).map_err(polars)?
            }
            target => {
                if let Some(Some((min, max))) = integer_range(series).map_err(polars)? {
                    let (lo, hi) = integer_bounds(target);
                    if min < lo || max > hi {
                        let outside = series.iter().enumerate().find_map(|(row, v)| {
                            v.extract::<i128>()
                                .filter(|v| !(lo..=hi).contains(v))
                                .map(|v| (row, v))
                        });
                        let (row, value) = outside.unwrap_or((0, max));
                        return Err(misfit(
                            row,
                            value.to_string(),
                            &format!("does not fit {target}"),
                        ));
                    }
                }
                cast_in_range(series, target).map_err(polars)?
            }
        };
        Ok(Column::from(out))
    }
}

/// The smallest and largest value of an integer type the plan narrows to.
fn integer_bounds(dtype: &DataType) -> (i128, i128) {
    match dtype {
        DataType::UInt8 => (0, u8::MAX.into()),
        DataType::UInt16 => (0, u16::MAX.into()),
        DataType::UInt32 => (0, u32::MAX.into()),
        DataType::UInt64 => (0, u64::MAX.into()),
        DataType::Int8 => (i8::MIN.into(), i8::MAX.into()),
        DataType::Int16 => (i16::MIN.into(), i16::MAX.into()),
        DataType::Int32 => (i32::MIN.into(), i32::MAX.into()),
        _ => (i64::MIN.into(), i64::MAX.into()),
    }
}
