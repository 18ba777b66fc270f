//! Records (one JSON object per row) from JSONL(.gz), Parquet or Arrow IPC files.
//!
//! The file kind is told by its first bytes, not its name: gzip (`1f 8b`) or anything else
//! is JSONL, `PAR1` is Parquet, `ARROW1` an Arrow IPC file, `ff ff ff ff` an Arrow IPC stream
//! (the `data-*.arrow` shards `datasets.save_to_disk` writes).

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
        return Err(DataError::Other(format!(
            "{}: is a folder; pass the data files inside it (e.g. {}/*.parquet)",
            path.display(),
            path.display()
        )));
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
        _ => FileKind::Jsonl,
    })
}

/// Iterates over the records of a file of any supported kind.
pub struct Records {
    path: PathBuf,
    source: Source,
    /// Rows converted from the current batch, not yet returned.
    pending: VecDeque<Value>,
    next_line: usize,
    failed: bool,
}

enum Source {
    Lines(std::io::Lines<Box<dyn BufRead>>),
    Batches(Box<dyn Iterator<Item = std::result::Result<RecordBatch, ArrowError>>>),
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
    let source = match file_kind(path)? {
        FileKind::Jsonl => Source::Lines(open_text(path)?.lines()),
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
    })
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
            return Some(match serde_json::from_str::<Value>(&line) {
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
                        e,
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
        let item = match self.source {
            Source::Lines(_) => self.next_line_record(),
            Source::Batches(_) => self.next_row_record(),
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
