//! [`OptimizeOptions`](super::OptimizeOptions): what `optimize_dataframe_with` may change.

use serde::Serialize;

use crate::error::{Error, Result};

/// When a `Float64` column may become `Float32`.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FloatPolicy {
    /// Floats keep their type.
    Never,
    /// Only where every value survives a plain cast back bit for bit
    /// (`(v as f32 as f64).to_bits() == v.to_bits()`), NaN payloads and the
    /// sign of zero included: the default, because then the optimized
    /// column *is* the original one to every computation and every cast.
    /// Data computed in `f32` and widened qualifies; decimals such as `0.1`
    /// do not.
    #[default]
    BitExact,
    /// Only where every value's shortest decimal form survives: the `f32`,
    /// printed and read back as `f64`, is the original value (`39.02` stays
    /// `39.02`; `10.357019999999999` keeps the column in `f64`). The digits
    /// are kept, the values are not: a plain cast back gives
    /// `39.02000045776367`, and so does every computation on the `f32`s.
    /// Only [`OptimizeReport::restore`](super::OptimizeReport::restore) gives
    /// back the exact `f64` values, and the report gives the largest
    /// difference a plain cast shows.
    ShortestDecimal,
    /// Where every value moves by at most this absolute amount, like
    /// pandas' `downcast="float"` check. Lossy: the report gives the largest
    /// error per column.
    Tolerance(f64),
}

/// What [`optimize_dataframe_with`](super::optimize_dataframe_with) may change.
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
    /// When floats become `f32` (default [`FloatPolicy::BitExact`]).
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
            floats: FloatPolicy::BitExact,
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

    pub(super) fn validate(&self) -> Result<()> {
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
