//! Reading and writing the 2-D (and 1-D) float tensors of `embeddings.safetensors`.
//!
//! Reading streams each tensor from the file into an f32 buffer instead of mapping the whole
//! file: training must stay within 1.5x the cache's size, and a mapped file's touched pages
//! count against that. The header is the safetensors one (8-byte length, JSON), validated here.

use crate::error::{CacheError, Result};
use crate::matrix::Matrix;
use crate::meta::Dtype;
use half::{bf16, f16};
use serde_json::Value;
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// One tensor's entry in the header.
#[derive(Clone, Debug)]
pub struct TensorInfo {
    pub dtype: String,
    pub shape: Vec<usize>,
    /// Absolute byte range in the file.
    pub start: u64,
    pub end: u64,
}

/// An opened safetensors file: its validated header and the file itself.
pub struct TensorFile {
    path: PathBuf,
    file: BufReader<File>,
    pub tensors: BTreeMap<String, TensorInfo>,
    pub metadata: HashMap<String, String>,
}

impl TensorFile {
    pub fn open(path: &Path) -> Result<Self> {
        let bad = |m: String| CacheError::invalid(path, m);
        let mut file = File::open(path).map_err(|e| CacheError::io(path, e))?;
        let file_len = file.metadata().map_err(|e| CacheError::io(path, e))?.len();
        let mut len = [0u8; 8];
        file.read_exact(&mut len).map_err(|_| {
            bad("too short to be a safetensors file (no 8-byte header length)".into())
        })?;
        let header_len = u64::from_le_bytes(len);
        if header_len > 100_000_000 || 8 + header_len > file_len {
            return Err(bad(format!("header length {header_len} does not fit a {file_len}-byte file: not safetensors, or truncated")));
        }
        let mut header = vec![0u8; header_len as usize];
        file.read_exact(&mut header)
            .map_err(|e| CacheError::io(path, e))?;
        let header: serde_json::Map<String, Value> = serde_json::from_slice(&header)
            .map_err(|e| bad(format!("header is not valid JSON: {e}")))?;
        let data_start = 8 + header_len;
        let mut tensors = BTreeMap::new();
        let mut metadata = HashMap::new();
        for (name, v) in header {
            if name == "__metadata__" {
                if let Some(m) = v.as_object() {
                    for (k, v) in m {
                        metadata.insert(k.clone(), v.as_str().unwrap_or_default().to_string());
                    }
                }
                continue;
            }
            let info = parse_info(&name, &v, data_start).map_err(bad)?;
            if info.end > file_len {
                return Err(bad(format!(
                    "tensor `{name}` ends at byte {} but the file has {file_len}: truncated file",
                    info.end
                )));
            }
            tensors.insert(name, info);
        }
        Ok(TensorFile {
            path: path.to_path_buf(),
            file: BufReader::new(file),
            tensors,
            metadata,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads a 2-D tensor as f32, checking it for NaN/Inf.
    pub fn read_matrix(&mut self, name: &str) -> Result<Matrix> {
        let info = self.info(name)?.clone();
        if info.shape.len() != 2 {
            return Err(CacheError::invalid(
                &self.path,
                format!(
                    "tensor `{name}` has shape {:?}; expected [n, d]",
                    info.shape
                ),
            ));
        }
        let data = self.read_f32(name, &info)?;
        Ok(Matrix::new(info.shape[0], info.shape[1], data))
    }

    /// Reads a 1-D tensor as f32.
    pub fn read_vector(&mut self, name: &str) -> Result<Vec<f32>> {
        let info = self.info(name)?.clone();
        if info.shape.len() != 1 {
            return Err(CacheError::invalid(
                &self.path,
                format!("tensor `{name}` has shape {:?}; expected [n]", info.shape),
            ));
        }
        self.read_f32(name, &info)
    }

    /// Streams a 2-D tensor row-chunk by row-chunk as f32 into `f(first_row, values)`.
    pub fn stream_rows(
        &mut self,
        name: &str,
        mut f: impl FnMut(usize, &[f32]) -> Result<()>,
    ) -> Result<(usize, usize)> {
        let info = self.info(name)?.clone();
        if info.shape.len() != 2 {
            return Err(CacheError::invalid(
                &self.path,
                format!(
                    "tensor `{name}` has shape {:?}; expected [n, d]",
                    info.shape
                ),
            ));
        }
        let (rows, cols) = (info.shape[0], info.shape[1]);
        let width = dtype_size(&info.dtype).ok_or_else(|| self.unknown_dtype(name, &info.dtype))?;
        let chunk_rows = (1 << 20) / (cols.max(1) * width) + 1;
        self.file
            .seek(SeekFrom::Start(info.start))
            .map_err(|e| CacheError::io(&self.path, e))?;
        let mut bytes = Vec::new();
        let mut values = Vec::new();
        let mut row = 0;
        while row < rows {
            let take = chunk_rows.min(rows - row);
            bytes.resize(take * cols * width, 0);
            self.file
                .read_exact(&mut bytes)
                .map_err(|e| CacheError::io(&self.path, e))?;
            values.clear();
            decode(&info.dtype, &bytes, &mut values);
            self.check_finite(name, row, cols, &values)?;
            f(row, &values)?;
            row += take;
        }
        Ok((rows, cols))
    }

    fn info(&self, name: &str) -> Result<&TensorInfo> {
        self.tensors.get(name).ok_or_else(|| {
            let have: Vec<&str> = self.tensors.keys().map(String::as_str).collect();
            CacheError::invalid(
                &self.path,
                format!(
                    "missing tensor `{name}` (the file has: {})",
                    have.join(", ")
                ),
            )
        })
    }

    fn unknown_dtype(&self, name: &str, dtype: &str) -> CacheError {
        CacheError::invalid(
            &self.path,
            format!("tensor `{name}` has dtype {dtype}; supported: F32, F16, BF16, F64"),
        )
    }

    fn read_f32(&mut self, name: &str, info: &TensorInfo) -> Result<Vec<f32>> {
        let cols = info.shape.iter().skip(1).product::<usize>().max(1);
        let mut out = Vec::with_capacity(info.shape.iter().product());
        if info.shape.len() == 2 {
            self.stream_rows(name, |_, v| {
                out.extend_from_slice(v);
                Ok(())
            })?;
        } else {
            dtype_size(&info.dtype).ok_or_else(|| self.unknown_dtype(name, &info.dtype))?;
            let mut bytes = vec![0u8; (info.end - info.start) as usize];
            self.file
                .seek(SeekFrom::Start(info.start))
                .map_err(|e| CacheError::io(&self.path, e))?;
            self.file
                .read_exact(&mut bytes)
                .map_err(|e| CacheError::io(&self.path, e))?;
            decode(&info.dtype, &bytes, &mut out);
            self.check_finite(name, 0, cols, &out)?;
        }
        Ok(out)
    }

    fn check_finite(
        &self,
        name: &str,
        first_row: usize,
        cols: usize,
        values: &[f32],
    ) -> Result<()> {
        if let Some(i) = values.iter().position(|v| !v.is_finite()) {
            return Err(CacheError::invalid(
                &self.path,
                format!(
                    "tensor `{name}` row {} column {} is {} (NaN/Inf are not allowed)",
                    first_row + i / cols,
                    i % cols,
                    values[i]
                ),
            ));
        }
        Ok(())
    }
}

fn parse_info(name: &str, v: &Value, data_start: u64) -> std::result::Result<TensorInfo, String> {
    let dtype = v
        .get("dtype")
        .and_then(Value::as_str)
        .ok_or(format!("tensor `{name}`: no dtype in header"))?;
    let shape: Vec<usize> = v
        .get("shape")
        .and_then(Value::as_array)
        .and_then(|a| a.iter().map(|x| x.as_u64().map(|x| x as usize)).collect())
        .ok_or(format!("tensor `{name}`: no valid shape in header"))?;
    let offs: Vec<u64> = v
        .get("data_offsets")
        .and_then(Value::as_array)
        .and_then(|a| a.iter().map(Value::as_u64).collect())
        .filter(|o: &Vec<u64>| o.len() == 2 && o[0] <= o[1])
        .ok_or(format!("tensor `{name}`: no valid data_offsets in header"))?;
    if let Some(size) = dtype_size(dtype) {
        let expect = shape.iter().product::<usize>() * size;
        if (offs[1] - offs[0]) as usize != expect {
            return Err(format!(
                "tensor `{name}`: shape {shape:?} of {dtype} needs {expect} bytes, header gives {}",
                offs[1] - offs[0]
            ));
        }
    }
    Ok(TensorInfo {
        dtype: dtype.to_string(),
        shape,
        start: data_start + offs[0],
        end: data_start + offs[1],
    })
}

fn dtype_size(dtype: &str) -> Option<usize> {
    match dtype {
        "F32" => Some(4),
        "F16" | "BF16" => Some(2),
        "F64" => Some(8),
        _ => None,
    }
}

fn decode(dtype: &str, bytes: &[u8], out: &mut Vec<f32>) {
    match dtype {
        "F32" => out.extend(
            bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        ),
        "F16" => out.extend(
            bytes
                .chunks_exact(2)
                .map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32()),
        ),
        "BF16" => out.extend(
            bytes
                .chunks_exact(2)
                .map(|b| bf16::from_le_bytes([b[0], b[1]]).to_f32()),
        ),
        "F64" => out.extend(
            bytes
                .chunks_exact(8)
                .map(|b| f64::from_le_bytes(b.try_into().unwrap_or([0; 8])) as f32),
        ),
        _ => {}
    }
}

/// Encodes f32 values into the little-endian bytes of `dtype`.
pub fn encode(values: &[f32], dtype: Dtype) -> Vec<u8> {
    match dtype {
        Dtype::F32 => values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        Dtype::F16 => values
            .iter()
            .flat_map(|v| f16::from_f32(*v).to_le_bytes())
            .collect(),
        Dtype::Bf16 => values
            .iter()
            .flat_map(|v| bf16::from_f32(*v).to_le_bytes())
            .collect(),
    }
}

/// A tensor's name, shape and file bytes.
type Encoded<'a> = (&'a str, Vec<usize>, Cow<'a, [u8]>);

/// Writes named tensors (2-D matrices or 1-D vectors) to a safetensors file.
pub fn write(
    path: &Path,
    tensors: &[(&str, TensorData<'_>)],
    dtype: Dtype,
    metadata: Option<HashMap<String, String>>,
) -> Result<()> {
    use safetensors::tensor::TensorView;
    let st_dtype = match dtype {
        Dtype::F32 => safetensors::Dtype::F32,
        Dtype::F16 => safetensors::Dtype::F16,
        Dtype::Bf16 => safetensors::Dtype::BF16,
    };
    let encoded: Vec<Encoded> = tensors
        .iter()
        .map(|(name, t)| {
            let (shape, values) = match t {
                TensorData::Matrix(m) => (vec![m.rows, m.cols], &m.data[..]),
                TensorData::Vector(v) => (vec![v.len()], &v[..]),
            };
            // f32 on a little-endian machine is already the file's bytes: no second copy of
            // the cache while it is written.
            let bytes = match dtype {
                Dtype::F32 if cfg!(target_endian = "little") => {
                    Cow::Borrowed(bytemuck::cast_slice(values))
                }
                _ => Cow::Owned(encode(values, dtype)),
            };
            (*name, shape, bytes)
        })
        .collect();
    let views = encoded
        .iter()
        .map(|(name, shape, bytes)| {
            TensorView::new(st_dtype, shape.clone(), bytes)
                .map(|v| (name.to_string(), v))
                .map_err(|e| CacheError::invalid(path, format!("tensor `{name}`: {e}")))
        })
        .collect::<Result<Vec<_>>>()?;
    let tmp = path.with_extension("safetensors.tmp");
    safetensors::serialize_to_file(views, metadata, &tmp)
        .map_err(|e| CacheError::invalid(&tmp, e.to_string()))?;
    std::fs::rename(&tmp, path).map_err(|e| CacheError::io(path, e))
}

/// A tensor to write.
pub enum TensorData<'a> {
    Matrix(&'a Matrix),
    Vector(&'a [f32]),
}
