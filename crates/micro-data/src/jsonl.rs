//! Line-oriented JSON, plain or gzip-compressed, with line numbers in every error.

use crate::error::{DataError, Result};
use crate::pair::PrefPair;
use flate2::read::MultiGzDecoder;
use serde_json::Value;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::Path;

/// Opens `path` for reading, transparently decompressing `.gz` (detected by magic bytes,
/// not by name, so a renamed file still works).
pub fn open_text(path: &Path) -> Result<Box<dyn BufRead>> {
    let mut file = File::open(path).map_err(|e| DataError::io(path, e))?;
    let mut magic = [0u8; 2];
    let n = file.read(&mut magic).map_err(|e| DataError::io(path, e))?;
    let file = File::open(path).map_err(|e| DataError::io(path, e))?;
    if n == 2 && magic == [0x1f, 0x8b] {
        Ok(Box::new(BufReader::new(MultiGzDecoder::new(file))))
    } else {
        Ok(Box::new(BufReader::new(file)))
    }
}

/// Reads every record of a JSONL(.gz) file (or a Parquet/Arrow file, see [`crate::record`])
/// as a JSON value, calling `f(line_no, value)`. Blank lines are skipped; a truncated gzip
/// stream or invalid JSON is an error naming the file and line.
pub fn for_each_value(path: &Path, mut f: impl FnMut(usize, Value) -> Result<()>) -> Result<()> {
    for record in crate::record::records(path)? {
        let record = record?;
        f(record.line, record.value)?;
    }
    Ok(())
}

/// Reads pairs in the native form (the field names of [`PrefPair`]).
pub fn read_pairs(path: &Path) -> Result<Vec<PrefPair>> {
    let mut pairs = Vec::new();
    for_each_value(path, |line, value| {
        pairs.push(crate::formats::native::pair_from_value(&value, path, line)?);
        Ok(())
    })?;
    if pairs.is_empty() {
        return Err(DataError::Empty {
            path: path.to_path_buf(),
            hint: "the file has no JSON lines".into(),
        });
    }
    Ok(pairs)
}

/// Writes pairs in the native form, one JSON object per line.
pub fn write_pairs(path: &Path, pairs: &[PrefPair]) -> Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| DataError::io(parent, e))?;
    }
    let file = File::create(path).map_err(|e| DataError::io(path, e))?;
    let mut out = BufWriter::new(file);
    for pair in pairs {
        serde_json::to_writer(&mut out, pair).map_err(|e| DataError::io(path, e.into()))?;
        out.write_all(b"\n").map_err(|e| DataError::io(path, e))?;
    }
    out.flush().map_err(|e| DataError::io(path, e))
}
