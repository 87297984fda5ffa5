//! How many bytes a frame really holds.

use polars::prelude::*;

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
pub(super) const MAPPING_BYTES_PER_CATEGORY: usize = 120;

pub(super) fn dictionary_bytes(dtype: &DataType) -> usize {
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
