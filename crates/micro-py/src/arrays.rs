//! numpy arrays in and out.
//!
//! Arguments that are only read (responses to score, router inputs) are read in numpy's own
//! memory when they are C-contiguous float32; anything else (float64, a transposed or sliced
//! view, a list) is first made into a C-contiguous float32 copy by numpy. Arrays a cache keeps
//! are copied once into the cache (which owns its arrays), read in place whatever their layout
//! when they are float32 or float64; other types (float16, lists) go through numpy's float32
//! copy first. Results are handed to numpy without a copy (numpy takes over the buffer).

use crate::error::{Error, OrRaise};
use micro_cache::Matrix;
use numpy::{
    PyArray1, PyArray2, PyArrayDyn, PyArrayMethods, PyReadonlyArrayDyn, PyUntypedArrayMethods,
};
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// A float32 array argument of rank 1 or 2, read in place.
pub struct Rows<'py> {
    array: PyReadonlyArrayDyn<'py, f32>,
    pub rows: usize,
    pub cols: usize,
    /// Given as one row (rank 1).
    pub single: bool,
}

impl Rows<'_> {
    /// The values, row-major.
    pub fn data(&self) -> PyResult<&[f32]> {
        Ok(self.array.as_slice()?)
    }
}

/// `obj` as rows of `width` values, `[n, width]` or (where `single` is allowed) `[width]`,
/// refused when not finite.
pub fn rows<'py>(
    obj: &Bound<'py, PyAny>,
    name: &'static str,
    width: usize,
    allow_single: bool,
) -> PyResult<Rows<'py>> {
    let array = match obj.cast::<PyArrayDyn<f32>>() {
        Ok(a) if a.is_c_contiguous() => a.readonly(),
        _ => contiguous_f32(obj)?.readonly(),
    };
    let shape = array.shape().to_vec();
    let expected = || {
        let one = if allow_single {
            format!("[{width}] or ")
        } else {
            String::new()
        };
        format!("{one}[n, {width}] (float32)")
    };
    let (rows, cols, single) = match shape[..] {
        [cols] if allow_single => (1, cols, true),
        [rows, cols] => (rows, cols, false),
        _ => (0, 0, false),
    };
    if cols != width || (shape.len() != 2 && !single) {
        return Err(Error::Shape {
            name,
            got: shape,
            expected: expected(),
        }
        .into());
    }
    let out = Rows {
        array,
        rows,
        cols,
        single,
    };
    check_finite(name, out.data()?, cols.max(1))?;
    Ok(out)
}

/// numpy's C-contiguous float32 version of `obj` (a copy unless it already is one).
fn contiguous_f32<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyArrayDyn<f32>>> {
    let py = obj.py();
    let kwargs = PyDict::new(py);
    kwargs.set_item("dtype", "float32")?;
    let array = py
        .import("numpy")?
        .call_method("ascontiguousarray", (obj,), Some(&kwargs))?;
    Ok(array.cast_into::<PyArrayDyn<f32>>()?)
}

/// A 2-D array argument copied into a matrix the library owns; refused when not finite.
pub fn matrix(obj: &Bound<'_, PyAny>, name: &'static str) -> PyResult<Matrix> {
    let (shape, data) = if let Ok(a) = obj.cast::<PyArrayDyn<f64>>() {
        let a = a.readonly();
        let data = a.as_array().iter().map(|&v| v as f32).collect();
        (a.shape().to_vec(), data)
    } else {
        let a = match obj.cast::<PyArrayDyn<f32>>() {
            Ok(a) => a.readonly(),
            Err(_) => contiguous_f32(obj)?.readonly(),
        };
        (a.shape().to_vec(), row_major(&a))
    };
    let [rows, width] = shape[..] else {
        return Err(Error::Shape {
            name,
            got: shape,
            expected: "[n, d] (float32)".into(),
        }
        .into());
    };
    check_finite(name, &data, width.max(1))?;
    Ok(Matrix::new(rows, width, data))
}

/// The values of `a` in row-major order: its memory copied at once when it is C-contiguous,
/// else row by row (a Fortran-ordered array's memory is column-major: never copied as it lies).
fn row_major(a: &PyReadonlyArrayDyn<'_, f32>) -> Vec<f32> {
    if let (true, Ok(s)) = (a.is_c_contiguous(), a.as_slice()) {
        return s.to_vec();
    }
    let view = a.as_array();
    if view.ndim() != 2 {
        return view.iter().copied().collect();
    }
    let mut data = Vec::with_capacity(view.len());
    for row in view.rows() {
        match row.as_slice() {
            Some(s) => data.extend_from_slice(s),
            None => data.extend(row.iter().copied()),
        }
    }
    data
}

/// Refuses the first NaN or infinite value, by row and column.
fn check_finite(name: &'static str, values: &[f32], cols: usize) -> Result<(), Error> {
    match values.iter().position(|v| !v.is_finite()) {
        Some(i) => Err(Error::NotFinite {
            name,
            row: i / cols,
            column: i % cols,
            value: values[i],
        }),
        None => Ok(()),
    }
}

/// `[rows, cols]` values as a numpy array that owns them.
pub fn array2(
    py: Python<'_>,
    rows: usize,
    cols: usize,
    data: Vec<f32>,
) -> PyResult<Bound<'_, PyArray2<f32>>> {
    PyArray1::from_vec(py, data).reshape([rows, cols])
}

/// A matrix of the library's as a numpy array (a copy: the library keeps its own).
pub fn matrix_copy<'py>(py: Python<'py>, m: &Matrix) -> PyResult<Bound<'py, PyArray2<f32>>> {
    array2(py, m.rows, m.cols, m.data.clone())
}

/// A 1-D numpy array that owns `data`.
pub fn array1(py: Python<'_>, data: Vec<f32>) -> Bound<'_, PyArray1<f32>> {
    PyArray1::from_vec(py, data)
}

/// A value of the library's as the Python object its JSON reads as (dicts, lists, numbers).
pub fn to_py<'py>(py: Python<'py>, value: &impl serde::Serialize) -> PyResult<Bound<'py, PyAny>> {
    let text = serde_json::to_string(value).map_err(|e| Error::Json {
        name: "result",
        message: e.to_string(),
    });
    py.import("json")?
        .call_method1("loads", (text.or_raise()?,))
}

/// A Python object (dicts, lists, strings) read as the library's type through its JSON form.
pub fn from_py<T: serde::de::DeserializeOwned>(
    obj: &Bound<'_, PyAny>,
    name: &'static str,
) -> PyResult<T> {
    let text: String = obj
        .py()
        .import("json")?
        .call_method1("dumps", (obj,))?
        .extract()?;
    serde_json::from_str(&text)
        .map_err(|e| Error::Json {
            name,
            message: e.to_string(),
        })
        .or_raise()
}
