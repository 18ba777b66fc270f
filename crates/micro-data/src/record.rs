//! Records (one JSON object per row) from JSONL(.gz), Parquet or Arrow IPC files.
//!
//! The file kind is told by its first bytes, not its name: `PAR1` is Parquet, `ARROW1` an Arrow
//! IPC file, `ff ff ff ff` an Arrow IPC stream (the `data-*.arrow` shards
//! `datasets.save_to_disk` writes); anything else is text (plain or gzip, `1f 8b`): a JSON array
//! of objects when its first non-blank character is `[` (the `.json` files research code
//! publishes), else JSONL. An array file is read whole; each element's record number is the
//! line its text starts on, so errors point where an editor can jump.
//!
//! Python's `json.dump` writes NaN and infinities as bare `NaN`, `Infinity`, `-Infinity`, which
//! strict JSON rejects. Outside strings they are read as `null` (a missing value) and counted
//! in [`Records::non_finite`], so a loader can report them.

use crate::error::{DataError, Result};
use crate::jsonl::open_text;
use crate::table::batch_to_rows;
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use serde_json::Value;
use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

/// How a file stores its rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    Jsonl,
    /// One JSON array whose elements are the records.
    JsonArray,
    Parquet,
    ArrowFile,
    ArrowStream,
}

/// One row: its 1-based line (JSONL) or row (columnar) number, and its value.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    pub line: usize,
    pub value: Value,
}

/// Tells the file kind from the first bytes of `path`.
pub fn file_kind(path: &Path) -> Result<FileKind> {
    if path.is_dir() {
        return Err(DataError::Folder {
            path: path.to_path_buf(),
        });
    }
    let mut file = File::open(path).map_err(|e| DataError::io(path, e))?;
    let mut magic = [0u8; 6];
    let mut n = 0;
    while n < magic.len() {
        match file
            .read(&mut magic[n..])
            .map_err(|e| DataError::io(path, e))?
        {
            0 => break,
            k => n += k,
        }
    }
    Ok(match &magic[..n] {
        [b'P', b'A', b'R', b'1', ..] => FileKind::Parquet,
        b"ARROW1" => FileKind::ArrowFile,
        [0xff, 0xff, 0xff, 0xff, ..] => FileKind::ArrowStream,
        _ if first_text_byte(path)? == Some(b'[') => FileKind::JsonArray,
        _ => FileKind::Jsonl,
    })
}

/// The first non-whitespace byte of a text file (after gzip decompression), if any.
fn first_text_byte(path: &Path) -> Result<Option<u8>> {
    let mut text = open_text(path)?;
    loop {
        let buf = text.fill_buf().map_err(|e| DataError::io(path, e))?;
        if buf.is_empty() {
            return Ok(None);
        }
        if let Some(b) = buf.iter().find(|b| !b.is_ascii_whitespace()) {
            return Ok(Some(*b));
        }
        let n = buf.len();
        text.consume(n);
    }
}

/// Iterates over the records of a file of any supported kind.
pub struct Records {
    path: PathBuf,
    source: Source,
    /// Rows converted from the current batch, not yet returned.
    pending: VecDeque<Value>,
    next_line: usize,
    failed: bool,
    /// Bare `NaN`/`Infinity` tokens read as `null` so far.
    pub non_finite: usize,
}

enum Source {
    Lines(std::io::Lines<Box<dyn BufRead>>),
    Batches(Box<dyn Iterator<Item = std::result::Result<RecordBatch, ArrowError>>>),
    /// The elements of a JSON array file, each with the line it starts on.
    Elements(std::vec::IntoIter<Record>),
}

/// Opens `path` for reading records.
pub fn records(path: &Path) -> Result<Records> {
    let open = || File::open(path).map_err(|e| DataError::io(path, e));
    let columnar = |e: String| {
        DataError::invalid(
            path,
            None,
            None,
            format!("cannot read: {e} (truncated or corrupt file?)"),
        )
    };
    let mut non_finite = 0;
    let source = match file_kind(path)? {
        FileKind::Jsonl => Source::Lines(open_text(path)?.lines()),
        FileKind::JsonArray => {
            let (elements, replaced) = read_json_array(path)?;
            non_finite = replaced;
            Source::Elements(elements.into_iter())
        }
        FileKind::Parquet => {
            let reader =
                parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(open()?)
                    .and_then(|b| b.with_batch_size(1024).build())
                    .map_err(|e| columnar(e.to_string()))?;
            Source::Batches(Box::new(reader))
        }
        FileKind::ArrowFile => {
            let reader = arrow::ipc::reader::FileReader::try_new(BufReader::new(open()?), None)
                .map_err(|e| columnar(e.to_string()))?;
            Source::Batches(Box::new(reader))
        }
        FileKind::ArrowStream => {
            let reader = arrow::ipc::reader::StreamReader::try_new(BufReader::new(open()?), None)
                .map_err(|e| columnar(e.to_string()))?;
            Source::Batches(Box::new(reader))
        }
    };
    Ok(Records {
        path: path.to_path_buf(),
        source,
        pending: VecDeque::new(),
        next_line: 1,
        failed: false,
        non_finite,
    })
}

/// Reads a whole JSON array file into records numbered by the line each element starts on.
fn read_json_array(path: &Path) -> Result<(Vec<Record>, usize)> {
    let mut raw = String::new();
    open_text(path)?
        .read_to_string(&mut raw)
        .map_err(|e| DataError::io(path, e))?;
    let (text, replaced) = non_finite_to_null(&raw);
    let bad = |at: usize, what: String| {
        DataError::invalid(
            path,
            Some(line_at(&text, at)),
            None,
            format!(
                "{what} (the file starts with `[`, so it is read as one JSON array of records)"
            ),
        )
    };
    let skip_ws = |mut at: usize| {
        while text.as_bytes().get(at).is_some_and(u8::is_ascii_whitespace) {
            at += 1;
        }
        at
    };
    // The first non-blank byte is `[`: `file_kind` checked it.
    let mut at = skip_ws(0) + 1;
    let mut records = Vec::new();
    loop {
        at = skip_ws(at);
        match text.as_bytes().get(at) {
            Some(b']') if records.is_empty() => break,
            None => return Err(bad(at, "unexpected end of file inside the array".into())),
            _ => {}
        }
        let mut values = serde_json::Deserializer::from_str(&text[at..]).into_iter::<Value>();
        let value = match values.next() {
            Some(Ok(v)) => v,
            Some(Err(e)) => return Err(bad(at, format!("invalid JSON: {e}"))),
            None => return Err(bad(at, "unexpected end of file inside the array".into())),
        };
        records.push(Record {
            line: line_at(&text, at),
            value,
        });
        at = skip_ws(at + values.byte_offset());
        match text.as_bytes().get(at) {
            Some(b',') => at += 1,
            Some(b']') => break,
            _ => return Err(bad(at, "expected `,` or `]` after an array element".into())),
        }
    }
    let after = skip_ws(at + 1);
    if after < text.len() {
        return Err(bad(after, "text after the closing `]`".into()));
    }
    Ok((records, replaced))
}

/// The 1-based line of byte offset `at`.
fn line_at(text: &str, at: usize) -> usize {
    1 + text.as_bytes()[..at.min(text.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
}

/// `text` with the bare tokens `NaN`, `Infinity` and `-Infinity` outside strings replaced by
/// `null`, and how many were replaced. Byte offsets change but lines do not.
pub fn non_finite_to_null(text: &str) -> (std::borrow::Cow<'_, str>, usize) {
    const TOKENS: [&str; 3] = ["-Infinity", "Infinity", "NaN"];
    if !TOKENS.iter().any(|t| text.contains(t)) {
        return (text.into(), 0);
    }
    let mut out = String::with_capacity(text.len());
    let (mut in_string, mut escaped, mut replaced) = (false, false, 0);
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if !in_string {
            if let Some(t) = TOKENS.iter().find(|t| rest.starts_with(*t)) {
                out.push_str("null");
                rest = &rest[t.len()..];
                replaced += 1;
                continue;
            }
        }
        match (in_string, escaped, c) {
            (true, true, _) => escaped = false,
            (true, false, '\\') => escaped = true,
            (_, false, '"') => in_string = !in_string,
            _ => {}
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    (out.into(), replaced)
}

impl Records {
    fn next_line_record(&mut self) -> Option<Result<Record>> {
        let Source::Lines(lines) = &mut self.source else {
            return None;
        };
        loop {
            let line_no = self.next_line;
            let line = lines.next()?;
            self.next_line += 1;
            let line = match line {
                Ok(l) => l,
                Err(e) => {
                    return Some(Err(DataError::invalid(
                        &self.path,
                        Some(line_no),
                        None,
                        format!("cannot read: {e} (truncated or corrupt file? re-download it)"),
                    )))
                }
            };
            if line.trim().is_empty() {
                continue;
            }
            let parsed =
                serde_json::from_str::<Value>(&line).or_else(|e| match non_finite_to_null(&line) {
                    (fixed, n) if n > 0 => {
                        let value = serde_json::from_str::<Value>(&fixed).map_err(|_| e)?;
                        self.non_finite += n;
                        Ok(value)
                    }
                    _ => Err(e),
                });
            return Some(match parsed {
                Ok(value) => Ok(Record {
                    line: line_no,
                    value,
                }),
                Err(e) => Err(DataError::invalid(
                    &self.path,
                    Some(line_no),
                    None,
                    format!("invalid JSON: {e} (each line must hold one JSON object)"),
                )),
            });
        }
    }

    fn next_row_record(&mut self) -> Option<Result<Record>> {
        loop {
            if let Some(value) = self.pending.pop_front() {
                let line = self.next_line;
                self.next_line += 1;
                return Some(Ok(Record { line, value }));
            }
            let Source::Batches(batches) = &mut self.source else {
                return None;
            };
            let batch = match batches.next()? {
                Ok(b) => b,
                Err(e) => {
                    return Some(Err(DataError::invalid(
                        &self.path,
                        Some(self.next_line),
                        None,
                        format!("cannot read row: {e} (truncated or corrupt file? re-download it)"),
                    )))
                }
            };
            match batch_to_rows(&batch) {
                Ok(rows) => self.pending.extend(rows),
                Err(e) => {
                    return Some(Err(DataError::invalid(
                        &self.path,
                        Some(self.next_line),
                        None,
                        e.to_string(),
                    )))
                }
            }
        }
    }
}

impl Iterator for Records {
    type Item = Result<Record>;

    /// After the first error the iterator ends: a corrupt stream cannot be resynchronised.
    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let item = match &mut self.source {
            Source::Lines(_) => self.next_line_record(),
            Source::Batches(_) => self.next_row_record(),
            Source::Elements(elements) => elements.next().map(Ok),
        };
        if matches!(item, Some(Err(_))) {
            self.failed = true;
        }
        item
    }
}

/// The first record of `path`, if any (used to sniff the dataset format).
pub fn first_record(path: &Path) -> Result<Option<Record>> {
    records(path)?.next().transpose()
}
