//! Dates read from CSV text: which columns ([`ParseDates`]), what a value
//! that is not a date does ([`BadDates`]), and the ISO `YYYY-MM-DD` parser.
//!
//! # Design notes
//! - One format, ISO 8601's calendar date, parsed here: it is what files
//!   write when they write dates for machines, and a second format guessed
//!   per value (`01/08/1990`: January or August?) would be silently wrong
//!   data. A value in another format is an error naming it, or a null that
//!   the read's report counts: the caller chooses.
//! - Parsing by hand keeps polars' `temporal` features (and their time-zone
//!   database) out of the build.

use polars::prelude::*;

use crate::error::{Error, Result};

/// Which text columns of a CSV become `Date` columns.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ParseDates {
    /// None: dates stay text (the default).
    #[default]
    Off,
    /// These columns, whatever the inferred rows hold.
    Columns(Vec<String>),
    /// Every text column whose inferred rows are all ISO dates (`YYYY-MM-DD`).
    Infer,
}

/// What a value that is not an ISO date does in a date column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum BadDates {
    /// The read fails with an error naming the column, the record and the
    /// value (the default).
    #[default]
    Error,
    /// The value reads as null, and the read's
    /// [`ReadReport`](super::ReadReport) counts it per column.
    Null,
}

/// What became of one date column.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DateColumnReport {
    /// The column.
    pub column: String,
    /// Values that were not ISO dates and read as null ([`BadDates::Null`]).
    pub nulled: usize,
    /// The first of them: its record (1 is the first after the header) and text.
    pub first_bad: Option<(u64, String)>,
}

/// Days since 1970-01-01 of an ISO date `YYYY-MM-DD`, or `None`.
pub(super) fn parse_iso_date(s: &str) -> Option<i32> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let digits = |r: std::ops::Range<usize>| -> Option<i32> {
        b[r].iter().try_fold(0i32, |n, &c| {
            c.is_ascii_digit().then(|| n * 10 + i32::from(c - b'0'))
        })
    };
    let (y, m, d) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days_in_month = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&m) || d < 1 || d > days_in_month[(m - 1) as usize] {
        return None;
    }
    // Days from civil (proleptic Gregorian), with March as the first month
    // so that the leap day ends the year.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

/// Whether every non-null value of a text column is an ISO date (and one is).
pub(super) fn all_dates(column: &Column) -> bool {
    column.str().is_ok_and(|ca| {
        ca.null_count() < ca.len() && ca.iter().flatten().all(|s| parse_iso_date(s).is_some())
    })
}

/// The text column `column` as a `Date` column. `first_record` is the
/// record number of its first row, for errors and the report.
pub(super) fn to_date_column(
    column: &Column,
    bad: BadDates,
    first_record: u64,
    source: &str,
    report: &mut DateColumnReport,
) -> Result<Column> {
    let name = column.name().clone();
    let ca = column.str().map_err(Error::polars(format!(
        "{source}: reading column `{name}` as dates"
    )))?;
    let mut days = Vec::with_capacity(ca.len());
    for (row, value) in ca.iter().enumerate() {
        days.push(match value {
            None => None,
            Some(s) => match parse_iso_date(s.trim()) {
                Some(d) => Some(d),
                None => {
                    let record = first_record + row as u64;
                    if bad == BadDates::Error {
                        return Err(Error::DataFrame {
                            column: Some(name.to_string()),
                            message: format!(
                                "{source}, record {record}: `{s}` is not a date as YYYY-MM-DD; \
                                 read bad dates as nulls with .with_bad_dates(BadDates::Null), \
                                 or the column as text by leaving it out of parse_dates"
                            ),
                        });
                    }
                    report.nulled += 1;
                    report.first_bad.get_or_insert((record, s.to_owned()));
                    None
                }
            },
        });
    }
    let out = Int32Chunked::from_iter_options(name, days.into_iter())
        .into_series()
        .cast(&DataType::Date)
        .map_err(Error::polars(format!(
            "{source}: making column `{}` dates",
            column.name()
        )))?;
    Ok(Column::from(out))
}

#[cfg(test)]
mod tests {
    use super::parse_iso_date;

    #[test]
    fn iso_dates_count_days_from_the_epoch() {
        assert_eq!(parse_iso_date("1970-01-01"), Some(0));
        assert_eq!(parse_iso_date("1990-01-08"), Some(7312));
        assert_eq!(parse_iso_date("2000-02-29"), Some(11_016));
        assert_eq!(parse_iso_date("1969-12-31"), Some(-1));
        for bad in [
            "1900-02-29",
            "2013-13-01",
            "2013-04-31",
            "01/08/1990",
            "2013-1-01",
            "",
        ] {
            assert_eq!(parse_iso_date(bad), None, "{bad}");
        }
    }
}
