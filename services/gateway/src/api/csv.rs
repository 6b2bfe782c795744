//! CSV answers (`format=csv`, or `Accept: text/csv`) of the list routes: a server's metric
//! history and the alerts.
//!
//! The file is RFC 4180: a header row, CRLF line ends, a field quoted when it holds a comma, a
//! double quote, CR or LF, double quotes doubled inside. The columns are the JSON form's field
//! names, nested objects flattened in camelCase (`cpu.avg` → `cpuAvg`); times are RFC 3339 as in
//! JSON; numbers as Rust's `Display` prints them (no exponent; the digits parse back to the
//! same `f64`); `null` (and a non-finite number, which JSON shows as `null`) is an empty field.
//!
//! Formula injection (OWASP, "CSV Injection"): a free-text cell (an alert's message, a server's
//! name) that starts with `=`, `+`, `-`, `@`, TAB or CR gets a leading `'`, so a spreadsheet shows
//! it as text instead of running it. Numbers, times, ids and enumerations are never altered: a
//! `-3.5` stays a number.
//!
//! Rows go out as the database returns them, in chunks of about [`CHUNK`] bytes: nothing is
//! collected first. The query runs on a connection of its own, on a task of its own, and the
//! response starts with the first chunk, so an error before it (a statement timeout, a bad row)
//! is still an ordinary error response. After it the status is sent: an error can only end
//! the stream early. The body then fails (the client sees a truncated, failed transfer, never a
//! short file that looks complete) and the gateway logs why. A download is bounded like a
//! request: it must be read within `gateway.request_timeout_ms` of its start, or it is cut the
//! same way, so a client that stops reading cannot hold a database connection (or a history
//! slot), and a graceful shutdown waits at most that long for one.

use std::fmt::Write as _;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use axum::response::Response;
use chrono::{DateTime, SecondsFormat, Utc};
use futures::{StreamExt as _, TryStreamExt as _};
use serde::Deserialize;
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::{FromRow, PgConnection, PgPool, Postgres};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::Instrument as _;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::{ApiError, ApiResult};
use crate::heavy::Cancellable;
use crate::state::AppState;

pub const CONTENT_TYPE: &str = "text/csv; charset=utf-8";
/// About this many bytes of rows go out at a time.
pub const CHUNK: usize = 8 * 1024;

/// What a list route answers with: the `format` query parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Json,
    Csv,
}

impl Format {
    /// `format` when given (400 unless `json` or `csv`); without it, CSV when the `Accept`
    /// header asks for `text/csv` at least as much as for `application/json`.
    pub fn of(format: Option<&str>, headers: &HeaderMap) -> ApiResult<Self> {
        match format {
            Some("json") => Ok(Self::Json),
            Some("csv") => Ok(Self::Csv),
            Some(other) => Err(ApiError::bad_request(format!(
                "format {other:?} is not one of json, csv"
            ))),
            None => {
                let accept: Vec<&str> = headers
                    .get_all(header::ACCEPT)
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .collect();
                Ok(if prefers_csv(&accept.join(",")) {
                    Self::Csv
                } else {
                    Self::Json
                })
            }
        }
    }
}

/// Whether an `Accept` value names `text/csv` (q > 0) and does not prefer `application/json`.
/// Wildcards do not count: `*/*` accepts the default, JSON.
fn prefers_csv(accept: &str) -> bool {
    let quality = |wanted: &str| {
        accept
            .split(',')
            .filter_map(|range| {
                let mut parts = range.split(';');
                let media = parts.next()?.trim();
                if !media.eq_ignore_ascii_case(wanted) {
                    return None;
                }
                let q = parts
                    .filter_map(|p| {
                        let (name, value) = p.split_once('=')?;
                        name.trim()
                            .eq_ignore_ascii_case("q")
                            .then(|| value.trim().parse::<f32>().unwrap_or(0.0))
                    })
                    .next()
                    .unwrap_or(1.0);
                Some(q)
            })
            .reduce(f32::max)
    };
    match (quality("text/csv"), quality("application/json")) {
        (Some(csv), json) => csv > 0.0 && json.is_none_or(|json| csv >= json),
        (None, _) => false,
    }
}

/// A type with a CSV form: one record a value.
pub trait Row {
    /// The header row: the JSON form's field names, nested objects flattened.
    const COLUMNS: &'static [&'static str];
    /// Writes the fields, in [`Row::COLUMNS`] order.
    fn write(&self, record: &mut Record<'_>);
}

/// One record being written; each method appends a field.
#[derive(Debug)]
pub struct Record<'a> {
    out: &'a mut String,
    fields: usize,
}

impl Record<'_> {
    fn separate(&mut self) {
        if self.fields > 0 {
            self.out.push(',');
        }
        self.fields += 1;
    }

    /// A number as Rust prints it (parses back to the same `f64`); `None` and non-finite
    /// values (`null` in JSON) are empty.
    pub fn number(&mut self, value: Option<f64>) -> &mut Self {
        self.separate();
        if let Some(value) = value.filter(|v| v.is_finite()) {
            let _ = write!(self.out, "{value}");
        }
        self
    }

    pub fn integer(&mut self, value: i64) -> &mut Self {
        self.separate();
        let _ = write!(self.out, "{value}");
        self
    }

    /// RFC 3339 as the JSON form writes it (`Z`, fractional seconds only when there are some).
    pub fn time(&mut self, value: Option<DateTime<Utc>>) -> &mut Self {
        self.separate();
        if let Some(value) = value {
            self.out
                .push_str(&value.to_rfc3339_opts(SecondsFormat::AutoSi, true));
        }
        self
    }

    pub fn uuid(&mut self, value: Option<Uuid>) -> &mut Self {
        self.separate();
        if let Some(value) = value {
            let _ = write!(self.out, "{value}");
        }
        self
    }

    /// An identifier or enumeration (`serverId`, `state`): quoted when needed, never altered.
    pub fn plain(&mut self, value: Option<&str>) -> &mut Self {
        self.separate();
        if let Some(value) = value {
            quote(self.out, value);
        }
        self
    }

    /// Free text (a message, a name): quoted when needed, with a leading `'` when it would
    /// otherwise start a spreadsheet formula.
    pub fn text(&mut self, value: Option<&str>) -> &mut Self {
        self.separate();
        if let Some(value) = value {
            if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
                quote(self.out, &format!("'{value}"));
            } else {
                quote(self.out, value);
            }
        }
        self
    }
}

/// `value` as an RFC 4180 field.
fn quote(out: &mut String, value: &str) {
    if value.contains([',', '"', '\r', '\n']) {
        out.push('"');
        out.push_str(&value.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(value);
    }
}

/// The header row of `T`.
pub fn header<T: Row>(out: &mut String) {
    let mut record = Record { out, fields: 0 };
    for column in T::COLUMNS {
        record.plain(Some(column));
    }
    out.push_str("\r\n");
}

/// One CRLF-ended record of `row`.
pub fn record<T: Row>(row: &T, out: &mut String) {
    let mut record = Record { out, fields: 0 };
    row.write(&mut record);
    debug_assert_eq!(record.fields, T::COLUMNS.len(), "fields of one record");
    out.push_str("\r\n");
}

/// A connection of its own for one download: closed, not returned to the pool, unless the
/// download finished (the client went away, the query failed, the task stopped), as
/// [`crate::heavy::Cancellable`] is for the JSON history; optionally in one snapshot.
#[derive(Debug)]
pub struct Connection {
    inner: Cancellable,
    in_snapshot: bool,
}

impl Connection {
    pub async fn acquire(pool: &PgPool) -> ApiResult<Self> {
        Ok(Self {
            inner: Cancellable::acquire(pool).await?,
            in_snapshot: false,
        })
    }

    pub fn get(&mut self) -> ApiResult<&mut PgConnection> {
        self.inner.get()
    }

    /// Every later query on this connection sees one snapshot (a read-only, repeatable-read
    /// transaction, committed by [`Connection::release`]).
    pub async fn begin_snapshot(&mut self) -> ApiResult<()> {
        sqlx::raw_sql("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(self.get()?)
            .await?;
        self.in_snapshot = true;
        Ok(())
    }

    /// Finished: back to the pool (its snapshot committed).
    async fn release(mut self) -> ApiResult<()> {
        if self.in_snapshot {
            sqlx::raw_sql("COMMIT").execute(self.get()?).await?;
        }
        self.inner.finish();
        Ok(())
    }
}

/// The file of a download: its name and headers beside the body's.
#[derive(Debug)]
pub struct Download {
    /// `Content-Disposition: attachment; filename="…"` (ASCII letters, digits, `-_.` only).
    pub filename: String,
    /// What the JSON form carries beside its rows (`X-Next-Cursor`, `X-Bucket-Secs`, …).
    pub headers: Vec<(HeaderName, String)>,
}

/// What the writing task hands the response body.
#[derive(Debug)]
enum Piece {
    Chunk(Bytes),
    /// The file is complete. A channel closed without it is a failed transfer.
    End,
    /// Failed before anything was sent: the handler answers with this error.
    Failed(ApiError),
}

/// Why a download stopped early.
#[derive(Debug, thiserror::Error)]
enum StreamError {
    #[error("the client went away")]
    Gone,
    #[error("the client did not read the file within {0:?}")]
    TooSlow(Duration),
    #[error(transparent)]
    Api(#[from] ApiError),
}

impl From<sqlx::Error> for StreamError {
    fn from(err: sqlx::Error) -> Self {
        StreamError::Api(err.into())
    }
}

/// Writes records into chunks and hands them to the response body.
#[derive(Debug)]
struct Writer {
    tx: mpsc::Sender<Piece>,
    buffer: String,
    /// Whether a chunk went out: from then on an error can only cut the body.
    sent: bool,
    rows: u64,
    bytes: usize,
    limit: Duration,
    deadline: Instant,
}

impl Writer {
    fn new<T: Row>(tx: mpsc::Sender<Piece>, limit: Duration) -> Self {
        let mut buffer = String::with_capacity(2 * CHUNK);
        header::<T>(&mut buffer);
        Self {
            tx,
            buffer,
            sent: false,
            rows: 0,
            bytes: 0,
            limit,
            deadline: Instant::now() + limit,
        }
    }

    /// Adds a record; [`Writer::flush_if_full`] sends it on.
    fn push<T: Row>(&mut self, row: &T) {
        record(row, &mut self.buffer);
        self.rows += 1;
    }

    async fn flush_if_full(&mut self) -> Result<(), StreamError> {
        if self.buffer.len() >= CHUNK {
            self.flush().await?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), StreamError> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buffer, String::with_capacity(2 * CHUNK));
        self.bytes += chunk.len();
        self.send(Piece::Chunk(Bytes::from(chunk))).await?;
        self.sent = true;
        Ok(())
    }

    async fn send(&self, piece: Piece) -> Result<(), StreamError> {
        match tokio::time::timeout_at(self.deadline, self.tx.send(piece)).await {
            Err(_) => Err(StreamError::TooSlow(self.limit)),
            Ok(Err(_)) => Err(StreamError::Gone),
            Ok(Ok(())) => Ok(()),
        }
    }

    /// Ends the file: the rest and the end marker, or how it failed (logged; before the first
    /// chunk, handed to the handler as its error).
    async fn finish(mut self, outcome: Result<(), StreamError>) {
        let outcome = match outcome {
            Ok(()) => match self.flush().await {
                Ok(()) => self.send(Piece::End).await,
                Err(err) => Err(err),
            },
            Err(err) => Err(err),
        };
        let (rows, bytes) = (self.rows, self.bytes);
        match outcome {
            Ok(()) => tracing::debug!(rows, bytes, "Streamed a CSV download"),
            Err(StreamError::Gone) => {
                tracing::debug!(rows, bytes, "The client left during a CSV download");
            }
            Err(StreamError::Api(err)) if !self.sent => {
                // The handler still waits for the first piece: an ordinary error response.
                let _ = self.tx.send(Piece::Failed(err)).await;
            }
            Err(StreamError::TooSlow(limit)) => tracing::warn!(
                rows,
                bytes,
                limit_ms = limit.as_millis() as u64,
                "Cut a CSV download the client did not read in time"
            ),
            Err(StreamError::Api(err)) => {
                let error = match &err {
                    ApiError::Internal(cause) => flick_shared::telemetry::one_line(cause),
                    other => other.to_string(),
                };
                tracing::error!(
                    rows,
                    bytes,
                    %error,
                    "A CSV download failed after its first rows were sent; the client gets a truncated transfer"
                );
            }
        }
        // Dropping the sender without `End` fails the body.
    }
}

/// Streams the rows of `query`, read on `connection`, as the CSV file `download`. `hold` (a
/// history admission) is kept until the file is written. Answers once the first chunk is
/// ready, so an error before it is an ordinary error response; see the module's header for
/// what happens after.
pub async fn download<T>(
    state: &AppState,
    download: Download,
    connection: Connection,
    query: sqlx::query::Query<'static, Postgres, PgArguments>,
    hold: impl Send + 'static,
) -> ApiResult<Response>
where
    T: Row + for<'r> FromRow<'r, PgRow> + Send + 'static,
{
    let disposition = format!("attachment; filename=\"{}\"", download.filename);
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    for (name, value) in
        std::iter::once((header::CONTENT_DISPOSITION, disposition)).chain(download.headers)
    {
        let value = HeaderValue::from_str(&value)
            .map_err(|err| ApiError::Internal(anyhow::Error::new(err).context("CSV header")))?;
        headers.insert(name, value);
    }

    let (tx, mut rx) = mpsc::channel(2);
    let limit = Duration::from_millis(state.settings.request_timeout_ms);
    let span = tracing::info_span!("csv", file = %download.filename);
    tokio::spawn(
        async move {
            let _hold = hold;
            let mut writer = Writer::new::<T>(tx, limit);
            let outcome = write_rows::<T>(&mut writer, connection, query).await;
            writer.finish(outcome).await;
        }
        .instrument(span),
    );

    let first = match rx.recv().await {
        Some(Piece::Chunk(chunk)) => chunk,
        Some(Piece::Failed(err)) => return Err(err),
        Some(Piece::End) | None => {
            return Err(ApiError::Internal(anyhow::anyhow!(
                "the CSV task stopped before its first chunk"
            )));
        }
    };
    let body = futures::stream::once(async move { Ok(first) }).chain(rest_of(rx));
    let mut response = Response::new(Body::from_stream(body));
    *response.headers_mut() = headers;
    Ok(response)
}

/// The body after its first chunk: the chunks until the end marker; a failure, or a channel
/// closed without the marker (the task failed or panicked), fails the body.
fn rest_of(
    rx: mpsc::Receiver<Piece>,
) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    futures::stream::unfold(Some(rx), |rx| async move {
        let mut rx = rx?;
        match rx.recv().await {
            Some(Piece::Chunk(chunk)) => Some((Ok(chunk), Some(rx))),
            Some(Piece::End) => None,
            Some(Piece::Failed(_)) | None => Some((
                Err(std::io::Error::other(
                    "the CSV download was cut short (the gateway logged why)",
                )),
                None,
            )),
        }
    })
}

async fn write_rows<T>(
    writer: &mut Writer,
    mut connection: Connection,
    query: sqlx::query::Query<'static, Postgres, PgArguments>,
) -> Result<(), StreamError>
where
    T: Row + for<'r> FromRow<'r, PgRow>,
{
    {
        let mut rows = query.fetch(connection.get()?);
        while let Some(row) = rows.try_next().await? {
            writer.push(&T::from_row(&row)?);
            writer.flush_if_full().await?;
        }
    }
    // Back to the pool before the last chunk waits for the client.
    connection.release().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Sample {
        n: Option<f64>,
        text: Option<String>,
    }

    impl Row for Sample {
        const COLUMNS: &'static [&'static str] = &["n", "text"];
        fn write(&self, record: &mut Record<'_>) {
            record.number(self.n).text(self.text.as_deref());
        }
    }

    fn line(n: Option<f64>, text: Option<&str>) -> String {
        let mut out = String::new();
        let text = text.map(str::to_owned);
        record(&Sample { n, text }, &mut out);
        out
    }

    #[test]
    fn fields_are_quoted_as_rfc_4180_says() {
        assert_eq!(line(Some(1.5), Some("plain")), "1.5,plain\r\n");
        assert_eq!(line(None, None), ",\r\n");
        assert_eq!(line(None, Some("a,b")), ",\"a,b\"\r\n");
        assert_eq!(line(None, Some("say \"hi\"")), ",\"say \"\"hi\"\"\"\r\n");
        assert_eq!(line(None, Some("two\nlines")), ",\"two\nlines\"\r\n");
        assert_eq!(line(None, Some("cr\rhere")), ",\"cr\rhere\"\r\n");
        let mut out = String::new();
        header::<Sample>(&mut out);
        assert_eq!(out, "n,text\r\n");
    }

    #[test]
    fn formulas_in_text_are_defused_but_numbers_never_altered() {
        assert_eq!(line(Some(-3.5), Some("=1+1")), "-3.5,'=1+1\r\n");
        for start in ["+", "-", "@", "\t"] {
            assert_eq!(
                line(None, Some(&format!("{start}x"))),
                format!(",'{start}x\r\n")
            );
        }
        assert_eq!(line(None, Some("\rx")), ",\"'\rx\"\r\n");
        assert_eq!(
            line(None, Some("=HYPERLINK(\"x\",\"y\")")),
            ",\"'=HYPERLINK(\"\"x\"\",\"\"y\"\")\"\r\n"
        );
        assert_eq!(line(None, Some("a=b")), ",a=b\r\n", "only a leading sign");
    }

    #[test]
    fn numbers_parse_back_to_the_same_f64_and_non_finite_ones_are_empty() {
        for value in [
            0.0,
            -0.0,
            59.5,
            0.1 + 0.2,
            1e-7,
            1e300,
            f64::MAX,
            f64::MIN_POSITIVE,
            -123.456,
        ] {
            let text = line(Some(value), None);
            let field = text.trim_end_matches(",\r\n");
            assert_eq!(field.parse::<f64>().ok(), Some(value), "{value} as {field}");
        }
        for value in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert_eq!(line(Some(value), None), ",\r\n", "{value} is null in JSON");
        }
    }

    #[test]
    fn times_are_written_exactly_as_the_json_form_writes_them() {
        for micros in [0, 123_000, 123_456] {
            let at = DateTime::from_timestamp(1_795_000_000, micros * 1_000).expect("time");
            let mut out = String::new();
            Record {
                out: &mut out,
                fields: 0,
            }
            .time(Some(at));
            let json = serde_json::to_string(&at).expect("json");
            assert_eq!(format!("\"{out}\""), json);
        }
    }

    #[test]
    fn csv_is_chosen_by_the_format_parameter_or_an_accept_header_that_prefers_it() {
        let none = HeaderMap::new();
        assert_eq!(Format::of(None, &none).ok(), Some(Format::Json));
        assert_eq!(Format::of(Some("csv"), &none).ok(), Some(Format::Csv));
        assert_eq!(Format::of(Some("json"), &none).ok(), Some(Format::Json));
        for bad in ["xml", "CSV", ""] {
            assert!(
                matches!(Format::of(Some(bad), &none), Err(ApiError::BadRequest(_))),
                "{bad:?}"
            );
        }
        assert!(prefers_csv("text/csv"));
        assert!(prefers_csv("text/csv, */*"));
        assert!(prefers_csv("application/json;q=0.5, text/csv"));
        assert!(prefers_csv("TEXT/CSV; charset=utf-8"));
        assert!(!prefers_csv("application/json, text/csv;q=0.9"));
        assert!(!prefers_csv("text/csv;q=0"));
        assert!(!prefers_csv("*/*"));
        assert!(!prefers_csv("text/html,application/xhtml+xml,*/*;q=0.8"));
        assert!(!prefers_csv(""));
        let mut accept = HeaderMap::new();
        accept.insert(header::ACCEPT, HeaderValue::from_static("text/csv"));
        assert_eq!(Format::of(None, &accept).ok(), Some(Format::Csv));
        assert_eq!(Format::of(Some("json"), &accept).ok(), Some(Format::Json));
    }

    /// The body a writer's pieces make, as a client reads it.
    async fn body_of(rx: mpsc::Receiver<Piece>) -> Result<String, String> {
        let chunks: Vec<Bytes> = rest_of(rx)
            .try_collect()
            .await
            .map_err(|err| err.to_string())?;
        Ok(chunks
            .iter()
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect())
    }

    /// A writer that has written 400 rows of `row` (several chunks), and the task reading its
    /// body.
    async fn four_hundred_rows(
        row: &Sample,
    ) -> (Writer, tokio::task::JoinHandle<Result<String, String>>) {
        let (tx, rx) = mpsc::channel(64);
        let reader = tokio::spawn(body_of(rx));
        let mut writer = Writer::new::<Sample>(tx, Duration::from_secs(5));
        for _ in 0..400 {
            writer.push(row);
            writer.flush_if_full().await.expect("written");
        }
        (writer, reader)
    }

    #[tokio::test]
    async fn an_error_after_the_first_chunk_fails_the_body_and_one_before_it_is_handed_over() {
        let big = Sample {
            n: Some(1.0),
            text: Some("a text of some length to fill chunks quickly......".to_owned()),
        };
        // After a chunk went out: the body fails, it does not just end.
        let (writer, reader) = four_hundred_rows(&big).await;
        assert!(writer.sent, "more than a chunk went out");
        writer
            .finish(Err(StreamError::Api(ApiError::Internal(anyhow::anyhow!(
                "boom"
            )))))
            .await;
        assert!(reader.await.expect("join").is_err(), "cut");

        // Before: the error itself is the first piece.
        let (tx, mut rx) = mpsc::channel(4);
        let mut writer = Writer::new::<Sample>(tx, Duration::from_secs(5));
        writer.push(&big);
        writer.flush_if_full().await.expect("written");
        writer
            .finish(Err(StreamError::Api(ApiError::unprocessable("bad"))))
            .await;
        assert!(matches!(
            rx.recv().await,
            Some(Piece::Failed(ApiError::Unprocessable(_)))
        ));

        // Finished: the whole file, then the end.
        let (writer, reader) = four_hundred_rows(&big).await;
        writer.finish(Ok(())).await;
        let body = reader.await.expect("join").expect("complete");
        assert_eq!(body.matches("\r\n").count(), 401, "header and 400 rows");

        // A task that stops without finishing (a panic) fails the body too.
        let (writer, reader) = four_hundred_rows(&big).await;
        drop(writer);
        assert!(reader.await.expect("join").is_err(), "cut");
    }

    #[tokio::test]
    async fn a_client_that_stops_reading_is_cut_at_the_time_limit() {
        let (tx, _rx) = mpsc::channel(1);
        let mut writer = Writer::new::<Sample>(tx, Duration::from_millis(50));
        let big = Sample {
            n: None,
            text: Some("x".repeat(CHUNK)),
        };
        let mut outcome = Ok(());
        for _ in 0..3 {
            writer.push(&big);
            outcome = writer.flush_if_full().await;
            if outcome.is_err() {
                break;
            }
        }
        assert!(
            matches!(outcome, Err(StreamError::TooSlow(_))),
            "{outcome:?}"
        );
    }
}
