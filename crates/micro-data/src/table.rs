//! Arrow record batches (from Parquet or Arrow IPC files) as JSON rows.
//!
//! Every loader reads `serde_json::Value` objects, whatever the file format, so each dataset
//! adapter has one code path. Strings, numbers, booleans, lists and structs map to their JSON
//! counterparts; dictionary columns are decoded; maps with string keys become objects; any
//! other type (dates, decimals, binary) becomes its display string.

use arrow::array::{Array, AsArray};
use arrow::datatypes::{
    DataType, Float16Type, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type, Int8Type,
    UInt16Type, UInt32Type, UInt64Type, UInt8Type,
};
use arrow::record_batch::RecordBatch;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use serde_json::{Map, Number, Value};

/// Why a column's values have no JSON form.
#[derive(Debug, thiserror::Error)]
pub enum TableError {
    #[error("dictionary key {key} is not an index")]
    DictionaryKey { key: Value },
    #[error("unsupported type {data_type}: {cause}")]
    Unsupported {
        data_type: DataType,
        cause: arrow::error::ArrowError,
    },
    #[error("column `{column}`: {cause}")]
    Column {
        column: String,
        cause: Box<TableError>,
    },
}

/// Converts every row of `batch` into a JSON object keyed by column name.
/// The error names the column whose values could not be converted.
pub fn batch_to_rows(batch: &RecordBatch) -> Result<Vec<Value>, TableError> {
    let schema = batch.schema();
    let mut rows: Vec<Map<String, Value>> = vec![Map::new(); batch.num_rows()];
    for (field, column) in schema.fields().iter().zip(batch.columns()) {
        for (i, row) in rows.iter_mut().enumerate() {
            let v = value_at(column.as_ref(), i).map_err(|e| TableError::Column {
                column: field.name().clone(),
                cause: Box::new(e),
            })?;
            row.insert(field.name().clone(), v);
        }
    }
    Ok(rows.into_iter().map(Value::Object).collect())
}

/// The JSON value of element `i` of `array`.
pub fn value_at(array: &dyn Array, i: usize) -> Result<Value, TableError> {
    if array.is_null(i) {
        return Ok(Value::Null);
    }
    let v = match array.data_type() {
        DataType::Null => Value::Null,
        DataType::Boolean => Value::Bool(array.as_boolean().value(i)),
        DataType::Int8 => int(array.as_primitive::<Int8Type>().value(i)),
        DataType::Int16 => int(array.as_primitive::<Int16Type>().value(i)),
        DataType::Int32 => int(array.as_primitive::<Int32Type>().value(i)),
        DataType::Int64 => int(array.as_primitive::<Int64Type>().value(i)),
        DataType::UInt8 => Value::from(array.as_primitive::<UInt8Type>().value(i)),
        DataType::UInt16 => Value::from(array.as_primitive::<UInt16Type>().value(i)),
        DataType::UInt32 => Value::from(array.as_primitive::<UInt32Type>().value(i)),
        DataType::UInt64 => Value::from(array.as_primitive::<UInt64Type>().value(i)),
        DataType::Float16 => float(array.as_primitive::<Float16Type>().value(i).to_f64()),
        DataType::Float32 => float(array.as_primitive::<Float32Type>().value(i) as f64),
        DataType::Float64 => float(array.as_primitive::<Float64Type>().value(i)),
        DataType::Utf8 => Value::String(array.as_string::<i32>().value(i).to_string()),
        DataType::LargeUtf8 => Value::String(array.as_string::<i64>().value(i).to_string()),
        DataType::Utf8View => Value::String(array.as_string_view().value(i).to_string()),
        DataType::List(_) => list(array.as_list::<i32>().value(i).as_ref())?,
        DataType::LargeList(_) => list(array.as_list::<i64>().value(i).as_ref())?,
        DataType::FixedSizeList(..) => list(array.as_fixed_size_list().value(i).as_ref())?,
        DataType::Struct(_) => {
            let s = array.as_struct();
            let mut obj = Map::new();
            for (name, child) in s.column_names().into_iter().zip(s.columns()) {
                obj.insert(name.to_string(), value_at(child.as_ref(), i)?);
            }
            Value::Object(obj)
        }
        DataType::Dictionary(..) => {
            let dict = array.as_any_dictionary();
            let key = value_at(dict.keys(), i)?;
            let key = key
                .as_u64()
                .ok_or_else(|| TableError::DictionaryKey { key: key.clone() })?;
            value_at(dict.values().as_ref(), key as usize)?
        }
        DataType::Map(..) => map_entry(array, i)?,
        _ => display(array, i)?,
    };
    Ok(v)
}

fn int(v: impl Into<i64>) -> Value {
    Value::from(v.into())
}

/// NaN and infinities have no JSON form; they read as null (a missing value).
fn float(v: f64) -> Value {
    Number::from_f64(v)
        .map(Value::Number)
        .unwrap_or(Value::Null)
}

fn list(values: &dyn Array) -> Result<Value, TableError> {
    (0..values.len())
        .map(|j| value_at(values, j))
        .collect::<Result<Vec<_>, _>>()
        .map(Value::Array)
}

/// A map becomes an object when its keys are strings, else a list of `{key, value}` objects.
fn map_entry(array: &dyn Array, i: usize) -> Result<Value, TableError> {
    let entries = array.as_map().value(i);
    let (keys, values) = (entries.column(0), entries.column(1));
    let mut obj = Map::new();
    let mut pairs = Vec::new();
    for j in 0..entries.len() {
        let (k, v) = (value_at(keys.as_ref(), j)?, value_at(values.as_ref(), j)?);
        match k {
            Value::String(s) => {
                obj.insert(s, v);
            }
            other => pairs.push(serde_json::json!({ "key": other, "value": v })),
        }
    }
    Ok(if pairs.is_empty() {
        Value::Object(obj)
    } else {
        Value::Array(pairs)
    })
}

fn display(array: &dyn Array, i: usize) -> Result<Value, TableError> {
    let formatter = ArrayFormatter::try_new(array, &FormatOptions::default()).map_err(|cause| {
        TableError::Unsupported {
            data_type: array.data_type().clone(),
            cause,
        }
    })?;
    Ok(Value::String(formatter.value(i).to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{
        ArrayRef, BooleanArray, Float64Array, Int64Array, LargeStringArray, ListBuilder,
        StringArray, StringBuilder, StructArray,
    };
    use arrow::datatypes::{Field, Schema};
    use serde_json::json;
    use std::sync::Arc;

    #[test]
    fn converts_scalars_lists_and_structs() {
        let mut lb = ListBuilder::new(StringBuilder::new());
        lb.values().append_value("a");
        lb.values().append_value("b");
        lb.append(true);
        lb.append(false);
        let list: ArrayRef = Arc::new(lb.finish());
        let s: ArrayRef = Arc::new(StructArray::from(vec![(
            Arc::new(Field::new("Rating", DataType::Utf8, true)),
            Arc::new(StringArray::from(vec![Some("4"), Some("N/A")])) as ArrayRef,
        )]));
        let columns: Vec<(&str, ArrayRef)> = vec![
            ("s", Arc::new(StringArray::from(vec![Some("x"), None]))),
            ("ls", Arc::new(LargeStringArray::from(vec!["y", "z"]))),
            ("i", Arc::new(Int64Array::from(vec![3, -1]))),
            ("f", Arc::new(Float64Array::from(vec![0.5, f64::NAN]))),
            ("b", Arc::new(BooleanArray::from(vec![true, false]))),
            ("l", list),
            ("st", s),
        ];
        let fields: Vec<Field> = columns
            .iter()
            .map(|(n, a)| Field::new(*n, a.data_type().clone(), true))
            .collect();
        let batch = RecordBatch::try_new(
            Arc::new(Schema::new(fields)),
            columns.into_iter().map(|(_, a)| a).collect(),
        )
        .unwrap();
        let rows = batch_to_rows(&batch).unwrap();
        assert_eq!(
            rows[0],
            json!({"s": "x", "ls": "y", "i": 3, "f": 0.5, "b": true, "l": ["a", "b"], "st": {"Rating": "4"}})
        );
        assert_eq!(
            rows[1],
            json!({"s": null, "ls": "z", "i": -1, "f": null, "b": false, "l": null, "st": {"Rating": "N/A"}})
        );
    }
}
