//! "Did you mean" suggestions for misspelt names, shared by `flowyml`'s
//! run-time errors and `flowyml-macros`' compile errors so that both
//! suggest names the same way.

/// `"; did you mean `x`?"` for the known name closest to `wanted`, or `""`
/// when none is close enough to be a typo (see [`closest`]).
///
/// ```
/// use flowyml_suggest::did_you_mean;
///
/// let known = ["features", "clean"];
/// assert_eq!(did_you_mean("claen", known.into_iter()), "; did you mean `clean`?");
/// assert_eq!(did_you_mean("weights", known.into_iter()), "");
/// ```
pub fn did_you_mean<'a>(wanted: &str, known: impl Iterator<Item = &'a str>) -> String {
    closest(wanted, known).map_or_else(String::new, |k| format!("; did you mean `{k}`?"))
}

/// The known name closest to `wanted` by edit distance, unless it is too
/// far to be a typo (more than a third of the longer name's characters
/// would have to change).
///
/// ```
/// use flowyml_suggest::closest;
///
/// assert_eq!(closest("modle", ["model", "data"].into_iter()), Some("model"));
/// assert_eq!(closest("x", ["model"].into_iter()), None);
/// ```
pub fn closest<'a>(wanted: &str, known: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    known
        .map(|k| (levenshtein(wanted, k), k))
        .filter(|(d, k)| *d <= wanted.len().max(k.len()).div_ceil(3))
        .min()
        .map(|(_, k)| k)
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (diagonal + usize::from(ca != *cb))
                .min(row[j] + 1)
                .min(above + 1);
            diagonal = above;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::did_you_mean;

    #[test]
    fn suggests_close_names_only() {
        let known = ["features", "clean", "model"];
        assert_eq!(
            did_you_mean("feature", known.iter().copied()),
            "; did you mean `features`?"
        );
        assert_eq!(
            did_you_mean("claen", known.iter().copied()),
            "; did you mean `clean`?"
        );
        assert_eq!(did_you_mean("weights", known.iter().copied()), "");
    }
}
