//! How many bytes a frame really holds.

use polars::prelude::*;

/// The bytes `df` holds, counted more honestly than polars'
/// `estimated_size`, which leaves out two things: the dictionaries of `Enum`
/// and `Categorical` columns (counted here as polars 0.55 allocates them:
/// the categories, the hash table over them with its earlier generations,
/// and about 1 KB of fixed structure each) and the 16-byte view that every
/// string (and binary) value has besides its text.
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

/// The heap polars 0.55 holds for a dictionary whose categories have these
/// byte lengths, in order: its structure as polars allocates it, checked
/// against a counting allocator (`tests/alloc/dataframe_memory.rs`) to the
/// byte for short strings.
///
/// - a fixed 1,032 bytes (the frozen categories, their mapping and arrays);
/// - per category, its 16-byte view and the mapping's entry: a 24-byte
///   header and a copy of the text;
/// - the mapping's hash table, which starts at 32 slots, doubles past 3/4
///   full and keeps every earlier generation (9 bytes a slot and 32 of
///   header each), and the list of those generations;
/// - the id-to-string vector, in buckets of 32, 64, 128, ... entries of
///   32 bytes, each allocated when the one before is 7/8 full;
/// - text longer than 12 bytes (not inline in its view) in blocks of
///   8 KiB, doubling up to 16 MiB, with 48 bytes per block and 24 per slot
///   of the block list.
pub(super) fn dictionary_model(lengths: impl IntoIterator<Item = usize>) -> usize {
    const FIXED: usize = 1032;
    let mut bytes = FIXED;
    let mut n = 0usize;
    let (mut block_len, mut block_used, mut blocks, mut next_block) =
        (0usize, 0usize, 0usize, 8192usize);
    for len in lengths {
        n += 1;
        bytes += 16 + 24 + len;
        if len > 12 {
            if block_used + len > block_len {
                block_len = next_block.max(len);
                next_block = (next_block * 2).min(16 << 20);
                block_used = 0;
                blocks += 1;
                bytes += block_len + 48;
            }
            block_used += len;
        }
    }
    if blocks > 0 {
        bytes += 24 * blocks.next_power_of_two().max(4);
    }
    if n == 0 {
        return bytes;
    }
    // Hash table generations: 32 slots, doubled while more than 3/4 full.
    let (mut slots, mut generations) = (32usize, 1usize);
    bytes += 32 + 9 * slots;
    while n > slots * 3 / 4 {
        slots *= 2;
        generations += 1;
        bytes += 32 + 9 * slots;
    }
    bytes += 8 * generations.next_power_of_two().max(4);
    // Id-to-string buckets.
    let (mut bucket, mut capacity) = (32usize, 0usize);
    loop {
        bytes += 32 * bucket;
        capacity += bucket;
        if n <= capacity - bucket / 8 {
            break;
        }
        bucket *= 2;
    }
    bytes
}

pub(super) fn dictionary_bytes(dtype: &DataType) -> usize {
    match dtype {
        DataType::Enum(fcats, _) => {
            dictionary_model(fcats.categories().values_iter().map(str::len))
        }
        DataType::Categorical(_, mapping) => {
            // A global mapping has no categories array of its own: its text
            // lives in the mapping's entries only.
            let n = mapping.num_cats_upper_bound();
            let lengths: Vec<usize> = (0..n)
                .filter_map(|i| mapping.cat_to_str(i as CatSize))
                .map(str::len)
                .collect();
            let views_and_blocks = dictionary_model(lengths.iter().map(|_| 0)) - 16 * n;
            views_and_blocks + lengths.iter().sum::<usize>()
        }
        _ => 0,
    }
}
