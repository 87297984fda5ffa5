//! The rules of [`optimize_dataframe`].
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

use std::fmt::Write as _;
use std::time::Instant;

use polars::prelude::*;
use rayon::prelude::*;

use super::memory::{column_memory_usage, dictionary_model};
use super::options::{FloatPolicy, OptimizeOptions};
use super::report::{ColumnReport, OptimizeReport, Outcome};
use crate::error::{Error, Result};

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
///   every value; under the default [`FloatPolicy::BitExact`] that is where
///   a plain cast back gives every value bit for bit, NaN payloads included.
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
    OptimizeReport::assemble(df.height(), results, start)
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
    let report = ColumnReport::new(column, &new, bytes_before, outcome);
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

/// The minimum and maximum of an integer column (`Some(None)` when every
/// value is null), or `None` for a type the rules leave alone.
pub(super) fn integer_range(series: &Series) -> PolarsResult<Option<Option<(i128, i128)>>> {
    Ok(Some(match series.dtype() {
        DataType::Int8 => range(series.i8()?),
        DataType::Int16 => range(series.i16()?),
        DataType::Int32 => range(series.i32()?),
        DataType::Int64 => range(series.i64()?),
        DataType::UInt8 => range(series.u8()?),
        DataType::UInt16 => range(series.u16()?),
        DataType::UInt32 => range(series.u32()?),
        DataType::UInt64 => range(series.u64()?),
        // Wider integers (i128) are rare enough to leave alone.
        _ => return Ok(None),
    }))
}

fn narrow_integers(series: &Series) -> PolarsResult<Decision> {
    let Some(range) = integer_range(series)? else {
        return Ok((None, Outcome::KeptType));
    };
    // An all-null column holds no value, so the smallest type holds them all.
    let (min, max) = range.unwrap_or((0, 0));
    let target = smallest_integer(min, max);
    if byte_width(&target) >= byte_width(series.dtype()) {
        return Ok((None, Outcome::KeptSmallest));
    }
    Ok((
        Some(cast_in_range(series, &target)?),
        Outcome::IntegerNarrowed,
    ))
}

/// `series` cast to the integer type `target`, which holds every value.
pub(super) fn cast_in_range(series: &Series, target: &DataType) -> PolarsResult<Series> {
    // Every value is within the target's range, so wrapping never happens
    // and the unchecked cast is exact.
    series.cast_with_options(
        target,
        polars::chunked_array::cast::CastOptions::Overflowing,
    )
}

/// The smallest integer type holding `min..=max`, unsigned when `min >= 0`.
pub(super) fn smallest_integer(min: i128, max: i128) -> DataType {
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

pub(super) fn byte_width(dtype: &DataType) -> usize {
    match dtype {
        DataType::Int8 | DataType::UInt8 => 1,
        DataType::Int16 | DataType::UInt16 => 2,
        DataType::Int32 | DataType::UInt32 | DataType::Float32 => 4,
        _ => 8,
    }
}

/// Whether `v` may be stored as `f32` under `rule`, and if so how far a
/// plain cast back moves it (0 under [`FloatPolicy::BitExact`]).
fn float_fits(v: f64, rule: FloatPolicy, checker: &mut DecimalChecker) -> Option<f64> {
    let f = v as f32;
    let back = f64::from(f);
    // Same bits back: NaN payloads and the sign of zero survive.
    let exact = back.to_bits() == v.to_bits();
    if v.is_nan() {
        // A NaN's payload is data to whoever put it there; only the lossy
        // rule may trade it for any NaN.
        return (exact || matches!(rule, FloatPolicy::Tolerance(_))).then_some(0.0);
    }
    if v.is_infinite() {
        return Some(0.0);
    }
    if !f.is_finite() {
        return None;
    }
    let error = (back - v).abs();
    match rule {
        FloatPolicy::Never => None,
        FloatPolicy::BitExact => exact.then_some(0.0),
        FloatPolicy::ShortestDecimal => checker.keeps_decimal(v, f).then_some(error),
        FloatPolicy::Tolerance(atol) => (error <= atol).then_some(error),
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

/// The largest change a plain cast back makes over the non-null values of
/// `series` (`f64`), or `None` if a value may not be stored as `f32` under
/// `rule`.
pub(super) fn float_check(series: &Series, rule: FloatPolicy) -> PolarsResult<Option<f64>> {
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
            return Ok(None);
        }
    }
    Ok(max_error)
}

/// The first row of `series` (`f64`) whose value `rule` keeps out of `f32`,
/// with that value.
pub(super) fn first_float_misfit(
    series: &Series,
    rule: FloatPolicy,
) -> PolarsResult<Option<(usize, f64)>> {
    let mut checker = DecimalChecker::new();
    Ok(series.f64()?.iter().enumerate().find_map(|(row, v)| {
        v.filter(|&v| float_fits(v, rule, &mut checker).is_none())
            .map(|v| (row, v))
    }))
}

fn narrow_floats(series: &Series, rule: FloatPolicy) -> PolarsResult<Decision> {
    let Some(max_abs_error) = float_check(series, rule)? else {
        return Ok((None, Outcome::KeptPrecision));
    };
    let narrowed = series.cast(&DataType::Float32)?;
    Ok((
        Some(narrowed),
        Outcome::FloatNarrowed {
            rule,
            max_abs_error,
        },
    ))
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
    // More categories than u32 codes hold is an error, not a wrap.
    CategoricalPhysical::smallest_physical(sorted.len())?;
    let dictionary = dictionary_model(sorted.iter().map(|(s, _)| s.len()));
    if enum_bytes(rows, sorted.len(), dictionary, validity.is_some()) >= bytes_before {
        return Ok((None, Outcome::KeptLarger));
    }

    let mut renumber = vec![0u32; sorted.len()];
    for (rank, (_, first_seen)) in sorted.iter().enumerate() {
        renumber[*first_seen as usize] = rank as u32;
    }
    let dtype = enum_dtype(sorted.iter().map(|(s, _)| *s))?;
    for code in &mut codes {
        *code = renumber.get(*code as usize).copied().unwrap_or(0);
    }
    let out = enum_column(&ca, codes, &dtype)?;
    Ok((
        Some(out),
        Outcome::Categorized {
            categories: sorted.len(),
        },
    ))
}

/// What an `Enum` of `categories` categories (whose dictionary holds
/// `dictionary` bytes) over `rows` rows would hold: the figure a string
/// column is weighed against.
pub(super) fn enum_bytes(rows: usize, categories: usize, dictionary: usize, nulls: bool) -> usize {
    let width = match CategoricalPhysical::smallest_physical(categories) {
        Ok(CategoricalPhysical::U8) => 1,
        Ok(CategoricalPhysical::U16) => 2,
        _ => 4,
    };
    rows * width + rows.div_ceil(8) * usize::from(nulls) + dictionary
}

/// The `Enum` type of these categories, in this order (sorted, by the rules).
pub(super) fn enum_dtype<'a>(
    categories: impl IntoIterator<Item = &'a str>,
) -> PolarsResult<DataType> {
    Ok(DataType::from_frozen_categories(FrozenCategories::new(
        categories,
    )?))
}

/// The `Enum` column of `dtype` whose rows are these codes (positions in its
/// categories), named and null as `strings` (one chunk) is.
pub(super) fn enum_column(
    strings: &StringChunked,
    codes: Vec<u32>,
    dtype: &DataType,
) -> PolarsResult<Series> {
    let name = strings.name().clone();
    let validity = strings.chunks().first().and_then(|c| c.validity().cloned());
    let DataType::Enum(fcats, _) = dtype else {
        polars_bail!(ComputeError: "`{name}`: {dtype} is not an Enum type");
    };
    Ok(match fcats.physical() {
        CategoricalPhysical::U8 => {
            let ids = codes.iter().map(|&c| c as u8).collect();
            let phys = UInt8Chunked::from_vec_validity(name, ids, validity);
            Categorical8Chunked::from_cats_and_dtype(phys, dtype.clone()).into_series()
        }
        CategoricalPhysical::U16 => {
            let ids = codes.iter().map(|&c| c as u16).collect();
            let phys = UInt16Chunked::from_vec_validity(name, ids, validity);
            Categorical16Chunked::from_cats_and_dtype(phys, dtype.clone()).into_series()
        }
        CategoricalPhysical::U32 => {
            let phys = UInt32Chunked::from_vec_validity(name, codes, validity);
            Categorical32Chunked::from_cats_and_dtype(phys, dtype.clone()).into_series()
        }
    })
}
