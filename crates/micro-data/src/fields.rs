//! Typed access to the fields of one record, with errors that name file, line and field.

use crate::error::{DataError, Result};
use crate::formats::native::kind;
use serde_json::{Map, Value};
use std::path::Path;

/// One record of a dataset, seen as a JSON object.
#[derive(Clone, Copy)]
pub struct Row<'a> {
    pub path: &'a Path,
    pub line: usize,
    pub obj: &'a Map<String, Value>,
    /// What the dataset rows must hold, quoted when a field is missing, e.g.
    /// "RPR rows need prompt, response_a, response_b, criteria_x, category_x, criteria_y, category_y".
    pub expects: &'a str,
}

impl<'a> Row<'a> {
    /// Views `value` as a row; anything but a JSON object is an error.
    pub fn new(value: &'a Value, path: &'a Path, line: usize, expects: &'a str) -> Result<Self> {
        let obj = value.as_object().ok_or_else(|| {
            DataError::invalid(
                path,
                Some(line),
                None,
                format!("expected a JSON object, got {}", kind(value)),
            )
        })?;
        Ok(Row {
            path,
            line,
            obj,
            expects,
        })
    }

    /// An error about `field` of this row.
    pub fn err(&self, field: &str, message: impl Into<String>) -> DataError {
        DataError::invalid(self.path, Some(self.line), Some(field), message)
    }

    /// The error for a missing required field.
    pub fn missing(&self, field: &str) -> DataError {
        self.err(
            field,
            format!(
                "missing: {}; check the file, or pick another --format",
                self.expects
            ),
        )
    }

    /// The wrong-type error for `field`.
    pub fn wrong_type(&self, field: &str, expected: &str, got: &Value) -> DataError {
        self.err(field, format!("expected {expected}, got {}", kind(got)))
    }

    /// A required field; JSON null counts as missing.
    pub fn get(&self, field: &str) -> Result<&'a Value> {
        match self.obj.get(field) {
            None | Some(Value::Null) => Err(self.missing(field)),
            Some(v) => Ok(v),
        }
    }

    pub fn has(&self, field: &str) -> bool {
        !matches!(self.obj.get(field), None | Some(Value::Null))
    }

    pub fn str(&self, field: &str) -> Result<&'a str> {
        let v = self.get(field)?;
        v.as_str()
            .ok_or_else(|| self.wrong_type(field, "a string", v))
    }

    /// The first of `fields` present, as a string (e.g. `instruction` or `prompt`).
    pub fn str_of(&self, fields: &[&str]) -> Result<&'a str> {
        match fields.iter().find(|f| self.has(f)) {
            Some(f) => self.str(f),
            None => Err(self.missing(&fields.join("` or `"))),
        }
    }

    pub fn opt_str(&self, field: &str) -> Result<Option<&'a str>> {
        if self.has(field) {
            self.str(field).map(Some)
        } else {
            Ok(None)
        }
    }

    /// A number; numeric strings are accepted because CSV-born exports often store them so.
    pub fn number(&self, field: &str) -> Result<f64> {
        let v = self.get(field)?;
        number_of(v).ok_or_else(|| self.wrong_type(field, "a number", v))
    }

    /// A 0/1 index choosing one of two responses (`true`/`false` read as 1/0).
    pub fn index01(&self, field: &str) -> Result<usize> {
        let v = self.get(field)?;
        match v {
            Value::Bool(b) => Ok(*b as usize),
            _ => match number_of(v) {
                Some(0.0) => Ok(0),
                Some(1.0) => Ok(1),
                Some(x) => Err(self.err(field, format!("expected 0 or 1, got {x}"))),
                None => Err(self.wrong_type(field, "0 or 1", v)),
            },
        }
    }

    pub fn bool(&self, field: &str) -> Result<bool> {
        let v = self.get(field)?;
        match v {
            Value::Bool(b) => Ok(*b),
            Value::Number(n) if n.as_f64() == Some(0.0) => Ok(false),
            Value::Number(n) if n.as_f64() == Some(1.0) => Ok(true),
            _ => Err(self.wrong_type(field, "a boolean", v)),
        }
    }

    pub fn array(&self, field: &str) -> Result<&'a Vec<Value>> {
        let v = self.get(field)?;
        v.as_array()
            .ok_or_else(|| self.wrong_type(field, "a list", v))
    }
}

/// A JSON number, or a string holding one.
pub fn number_of(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok().filter(|x| x.is_finite()),
        _ => None,
    }
}
