//! batch_iterator over sized and unsized iterators.

use flowyml::batch::batch_slices;
use flowyml::{Error, batch_iterator};

#[test]
fn batches_of_an_unsized_iterator() {
    // `successors` has no known length, like a Python generator.
    let numbers = std::iter::successors(Some(1u32), |n| (*n < 23).then_some(n + 1));
    let batches: Vec<Vec<u32>> = batch_iterator(numbers, 5).expect("size").collect();
    assert_eq!(batches.len(), 5);
    assert!(batches[..4].iter().all(|b| b.len() == 5));
    assert_eq!(batches[4], vec![21, 22, 23]);
    assert_eq!(batches.concat(), (1..=23).collect::<Vec<_>>());
}

#[test]
fn exact_sizes_are_known() {
    let batches = batch_iterator(0..10, 3).expect("size");
    assert_eq!(batches.len(), 4);
    assert_eq!(batch_iterator(0..0, 3).expect("size").count(), 0);
    assert_eq!(
        batch_iterator(0..9, 3).expect("size").last(),
        Some(vec![6, 7, 8])
    );
}

#[test]
fn zero_batch_size_is_an_error() {
    assert!(matches!(
        batch_iterator(0..10, 0),
        Err(Error::ZeroBatchSize)
    ));
    assert!(matches!(
        batch_slices(&[1, 2], 0),
        Err(Error::ZeroBatchSize)
    ));
}

#[test]
fn slices_are_not_copied() {
    let data: Vec<u16> = (0..1000).collect();
    let mut expected = data.as_ptr();
    for batch in batch_slices(&data, 300).expect("size") {
        assert_eq!(batch.as_ptr(), expected);
        expected = expected.wrapping_add(batch.len());
    }
}

#[test]
fn progress_keeps_every_batch() {
    let items: Vec<usize> = batch_iterator(0..1_000, 7)
        .expect("size")
        .progress()
        .map(|b| b.len())
        .collect();
    assert_eq!(items.iter().sum::<usize>(), 1_000);
}
