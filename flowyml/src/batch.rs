//! Batch processing: split any iterator into fixed-size batches.
//!
//! [`batch_iterator`] works on any `IntoIterator`, including generators of
//! unknown length. [`batch_slices`] splits a slice into sub-slices without
//! copying. [`Batches::progress`] draws an indicatif progress bar.

use indicatif::{ProgressBar, ProgressBarIter, ProgressStyle};

use crate::error::{Error, Result};

/// Batches of `batch_size` items from `iter`; the last batch may be short.
///
/// ```
/// use flowyml::batch_iterator;
///
/// // Any iterator, even one whose length is unknown.
/// let lines = "a b c d e".split(' ');
/// let batches: Vec<Vec<&str>> = batch_iterator(lines, 2)?.collect();
/// assert_eq!(batches, vec![vec!["a", "b"], vec!["c", "d"], vec!["e"]]);
///
/// assert!(batch_iterator(0..10, 0).is_err()); // an error, not an endless loop
/// # Ok::<(), flowyml::Error>(())
/// ```
///
/// # Errors
/// [`Error::ZeroBatchSize`] if `batch_size` is 0.
pub fn batch_iterator<I: IntoIterator>(iter: I, batch_size: usize) -> Result<Batches<I::IntoIter>> {
    if batch_size == 0 {
        return Err(Error::ZeroBatchSize);
    }
    Ok(Batches {
        iter: iter.into_iter(),
        batch_size,
    })
}

/// Sub-slices of `batch_size` items of `slice`, without copying.
///
/// ```
/// let data: Vec<u32> = (0..10).collect();
/// let sums: Vec<u32> = flowyml::batch::batch_slices(&data, 4)?.map(|b| b.iter().sum()).collect();
/// assert_eq!(sums, vec![6, 22, 17]);
/// # Ok::<(), flowyml::Error>(())
/// ```
///
/// # Errors
/// [`Error::ZeroBatchSize`] if `batch_size` is 0.
pub fn batch_slices<T>(slice: &[T], batch_size: usize) -> Result<std::slice::Chunks<'_, T>> {
    if batch_size == 0 {
        return Err(Error::ZeroBatchSize);
    }
    Ok(slice.chunks(batch_size))
}

/// The iterator returned by [`batch_iterator`].
#[derive(Debug, Clone)]
pub struct Batches<I> {
    iter: I,
    batch_size: usize,
}

impl<I: Iterator> Batches<I> {
    /// The number of items in each batch (the last may hold fewer).
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// These batches with a progress bar on stderr: counting batches out of
    /// the total where the length is known, a spinner otherwise.
    ///
    /// ```
    /// # use flowyml::batch_iterator;
    /// for batch in batch_iterator(0..10_000, 1_000)?.progress() {
    ///     assert_eq!(batch.len(), 1_000);
    /// }
    /// # Ok::<(), flowyml::Error>(())
    /// ```
    pub fn progress(self) -> ProgressBarIter<Self> {
        let bar = match self.size_hint() {
            (lower, Some(upper)) if lower == upper => ProgressBar::new(lower as u64),
            _ => ProgressBar::new_spinner(),
        };
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} batches",
            )
            .expect("the template is valid"),
        );
        bar.wrap_iter(self)
    }
}

impl<I: Iterator> Iterator for Batches<I> {
    type Item = Vec<I::Item>;

    fn next(&mut self) -> Option<Vec<I::Item>> {
        let mut batch = Vec::with_capacity(self.batch_size.min(self.iter.size_hint().0.max(1)));
        batch.extend(self.iter.by_ref().take(self.batch_size));
        (!batch.is_empty()).then_some(batch)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let (lower, upper) = self.iter.size_hint();
        (
            lower.div_ceil(self.batch_size),
            upper.map(|u| u.div_ceil(self.batch_size)),
        )
    }
}

impl<I: ExactSizeIterator> ExactSizeIterator for Batches<I> {}

impl<I: Iterator> std::iter::FusedIterator for Batches<I> where I: std::iter::FusedIterator {}
