//! PostgreSQL's binary `COPY` format, written straight from the rows.
//!
//! The text format makes the persister print every float and timestamp and PostgreSQL parse
//! them back; in binary, each value is its bytes. Only the types `metrics` uses are here.

use chrono::{DateTime, Utc};

/// Microseconds between the Unix epoch and PostgreSQL's, 2000-01-01.
const POSTGRES_EPOCH_MICROS: i64 = 946_684_800_000_000;
/// `float4`'s type oid, named in an array's header.
const FLOAT4_OID: i32 = 700;

/// One `COPY … FROM STDIN (FORMAT binary)` payload.
#[derive(Debug)]
pub struct BinaryCopy {
    out: Vec<u8>,
}

impl BinaryCopy {
    /// The signature, no flags, no header extension; room for `capacity` bytes.
    pub fn with_capacity(capacity: usize) -> Self {
        let mut out = Vec::with_capacity(capacity + 21);
        out.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
        out.extend_from_slice(&0i32.to_be_bytes());
        out.extend_from_slice(&0i32.to_be_bytes());
        Self { out }
    }

    /// Starts a row of `fields` values.
    pub fn row(&mut self, fields: i16) {
        self.out.extend_from_slice(&fields.to_be_bytes());
    }

    pub fn null(&mut self) {
        self.out.extend_from_slice(&(-1i32).to_be_bytes());
    }

    fn value(&mut self, bytes: &[u8]) {
        self.len(bytes.len());
        self.out.extend_from_slice(bytes);
    }

    fn len(&mut self, len: usize) {
        let len = i32::try_from(len).unwrap_or(i32::MAX);
        self.out.extend_from_slice(&len.to_be_bytes());
    }

    /// `text` or `json` (whose binary form is its text).
    pub fn text(&mut self, value: &str) {
        self.value(value.as_bytes());
    }

    pub fn f32(&mut self, value: f32) {
        self.value(&value.to_be_bytes());
    }

    pub fn i32(&mut self, value: i32) {
        self.value(&value.to_be_bytes());
    }

    pub fn i64(&mut self, value: i64) {
        self.value(&value.to_be_bytes());
    }

    pub fn timestamptz(&mut self, at: DateTime<Utc>) {
        self.i64(at.timestamp_micros() - POSTGRES_EPOCH_MICROS);
    }

    /// A one-dimensional `real[]` without NULLs.
    pub fn f32_array(&mut self, values: &[f32]) {
        // ndim, has-nulls, element type, then the dimension's length and lower bound.
        self.len(20 + values.len() * 8);
        for word in [1, 0, FLOAT4_OID, values.len() as i32, 1] {
            self.out.extend_from_slice(&word.to_be_bytes());
        }
        for value in values {
            self.f32(*value);
        }
    }

    pub fn opt<T>(&mut self, value: Option<T>, write: impl FnOnce(&mut Self, T)) {
        match value {
            Some(value) => write(self, value),
            None => self.null(),
        }
    }

    /// The payload with its trailer.
    pub fn finish(mut self) -> Vec<u8> {
        self.out.extend_from_slice(&(-1i16).to_be_bytes());
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_payload_is_framed_as_postgresql_expects() {
        let mut copy = BinaryCopy::with_capacity(0);
        copy.row(3);
        copy.text("ab");
        copy.null();
        copy.f32_array(&[1.5]);
        let bytes = copy.finish();
        let mut expected = b"PGCOPY\n\xff\r\n\0".to_vec();
        expected.extend_from_slice(&[0; 8]);
        expected.extend_from_slice(&3i16.to_be_bytes());
        expected.extend_from_slice(&2i32.to_be_bytes());
        expected.extend_from_slice(b"ab");
        expected.extend_from_slice(&(-1i32).to_be_bytes());
        expected.extend_from_slice(&28i32.to_be_bytes());
        for word in [1i32, 0, 700, 1, 1, 4] {
            expected.extend_from_slice(&word.to_be_bytes());
        }
        expected.extend_from_slice(&1.5f32.to_be_bytes());
        expected.extend_from_slice(&(-1i16).to_be_bytes());
        assert_eq!(bytes, expected);
    }

    #[test]
    fn timestamps_count_from_the_year_2000() {
        let mut copy = BinaryCopy::with_capacity(0);
        let at = DateTime::parse_from_rfc3339("2000-01-01T00:00:01.5Z")
            .expect("valid")
            .with_timezone(&Utc);
        copy.timestamptz(at);
        let bytes = copy.finish();
        assert_eq!(&bytes[19..23], &8i32.to_be_bytes());
        assert_eq!(&bytes[23..31], &1_500_000i64.to_be_bytes());
    }
}
