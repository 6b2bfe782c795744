//! `format=csv` of the metric history and the alerts: the same figures as the JSON form, read
//! back by Python's `csv` module; the same checks, filters and limits; streamed, and a download
//! that fails half-way is a failed transfer, never a short file that looks complete.

mod common;

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::{Map, Value, json};
use tokio::io::AsyncWriteExt as _;

use common::{Gateway, Session, code};

/// How a column's CSV text relates to its JSON value.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    /// The same text (times, ids, enumerations).
    Exact,
    /// Free text: the same, with a `'` before a leading `=`, `+`, `-`, `@`, TAB or CR.
    Text,
    /// A number: parses to the same `f64`.
    Number,
    /// JSON text of the value (the top processes).
    Json,
}

const POINT_COLUMNS: &[(&str, Kind)] = &[
    ("t", Kind::Exact),
    ("samples", Kind::Number),
    ("cpuAvg", Kind::Number),
    ("cpuMin", Kind::Number),
    ("cpuMax", Kind::Number),
    ("memoryAvg", Kind::Number),
    ("memoryMin", Kind::Number),
    ("memoryMax", Kind::Number),
    ("diskAvg", Kind::Number),
    ("diskMin", Kind::Number),
    ("diskMax", Kind::Number),
    ("networkAvg", Kind::Number),
    ("networkMin", Kind::Number),
    ("networkMax", Kind::Number),
    ("networkRx", Kind::Number),
    ("networkTx", Kind::Number),
    ("load1", Kind::Number),
];

const ALERT_COLUMNS: &[(&str, Kind)] = &[
    ("id", Kind::Exact),
    ("serverId", Kind::Exact),
    ("serverName", Kind::Text),
    ("metric", Kind::Exact),
    ("severity", Kind::Exact),
    ("state", Kind::Exact),
    ("value", Kind::Number),
    ("threshold", Kind::Number),
    ("startedAt", Kind::Exact),
    ("resolvedAt", Kind::Exact),
    ("message", Kind::Text),
    ("acknowledgedAt", Kind::Exact),
    ("acknowledgedBy", Kind::Exact),
    ("topProcesses", Kind::Json),
    ("container", Kind::Text),
];

/// An answer read as text, with its status and headers.
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|_| json!(self.body))
    }
}

async fn fetch(gw: &Gateway, path: &str, token: &str, accept: Option<&str>) -> Answer {
    let mut request = gw.http.get(format!("{}{path}", gw.base)).bearer_auth(token);
    if let Some(accept) = accept {
        request = request.header("accept", accept);
    }
    let response = request.send().await.expect("send");
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.text().await.expect("a complete body");
    Answer {
        status,
        headers,
        body,
    }
}

/// What a `python3 -c script` prints for `input`.
async fn python(script: &str, input: &str) -> Vec<u8> {
    let mut child = tokio::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(input.as_bytes()).await.expect("write");
    drop(stdin);
    let output = child.wait_with_output().await.expect("python3 ran");
    assert!(output.status.success(), "python3 failed on {input:.200}");
    output.stdout
}

/// The rows of a CSV file as Python's `csv.DictReader` reads them (a real `python3`). stdin is
/// opened with `newline=''`, as the csv module's documentation asks, so a CR or CRLF inside a
/// quoted field stays what it was.
async fn python_rows(csv: &str) -> Vec<Map<String, Value>> {
    let stdout = python(
        "import csv, io, json, sys; \
         print(json.dumps(list(csv.DictReader(io.TextIOWrapper(sys.stdin.buffer, encoding='utf-8', newline='')))))",
        csv,
    )
    .await;
    let rows: Vec<Value> = serde_json::from_slice(&stdout).expect("python's JSON");
    rows.into_iter()
        .map(|row| match row {
            Value::Object(map) => map,
            other => panic!("not a row: {other}"),
        })
        .collect()
}

/// A JSON text with each number kept as its text (Python's `parse_float=str`): serde_json
/// without its `float_roundtrip` feature may read a float one ULP off (it read
/// 112.96666717529297 as …295), so the figures are compared as Rust's correctly rounded
/// `str::parse::<f64>` reads both texts.
async fn numbers_as_text(json: &str) -> Value {
    let stdout = python(
        "import json, sys; print(json.dumps(json.load(sys.stdin, parse_float=str, parse_int=str)))",
        json,
    )
    .await;
    serde_json::from_slice(&stdout).expect("python's JSON")
}

/// A JSON answer, numbers as text.
async fn get_json(gw: &Gateway, path: &str, token: &str) -> (StatusCode, Value) {
    let answer = fetch(gw, path, token, None).await;
    assert_eq!(
        answer.header("content-type"),
        Some("application/json"),
        "{path}"
    );
    (answer.status, numbers_as_text(&answer.body).await)
}

/// A point's JSON with its nested figures flattened as the CSV names them (`cpu.avg` →
/// `cpuAvg`).
fn flatten(point: &Value) -> Map<String, Value> {
    let mut flat = Map::new();
    for (name, value) in point.as_object().expect("a point") {
        match value.as_object() {
            Some(nested) => {
                for (key, value) in nested {
                    let mut key = key.chars();
                    let first = key.next().map(|c| c.to_ascii_uppercase());
                    flat.insert(
                        format!("{name}{}{}", first.unwrap_or_default(), key.as_str()),
                        value.clone(),
                    );
                }
            }
            None => {
                flat.insert(name.clone(), value.clone());
            }
        }
    }
    flat
}

fn defused(text: &str) -> String {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_owned()
    }
}

/// Every field of every CSV row is the JSON figure (numbers as text, see [`numbers_as_text`]);
/// returns how many rows there were.
async fn assert_same(
    json_rows: &[Map<String, Value>],
    csv: &str,
    csv_rows: &[Map<String, Value>],
    columns: &[(&str, Kind)],
) -> usize {
    let header = csv.split("\r\n").next().expect("a header row");
    let names: Vec<&str> = columns.iter().map(|(name, _)| *name).collect();
    assert_eq!(header, names.join(","), "the header row");
    assert_eq!(
        csv.matches("\r\n").count() - inside_fields(json_rows, "\r\n"),
        csv.matches('\n').count() - inside_fields(json_rows, "\n"),
        "every line ends with CRLF"
    );
    assert_eq!(
        csv_rows.len(),
        json_rows.len(),
        "as many rows as JSON items"
    );
    for (i, (json_row, csv_row)) in json_rows.iter().zip(csv_rows).enumerate() {
        assert_eq!(csv_row.len(), columns.len(), "row {i}: {csv_row:?}");
        for (name, kind) in columns {
            let json_value = json_row.get(*name).unwrap_or(&Value::Null);
            let cell = csv_row
                .get(*name)
                .and_then(Value::as_str)
                .unwrap_or_else(|| panic!("row {i} has no {name}"));
            let context = format!("row {i}, {name}: CSV {cell:?}, JSON {json_value}");
            match (kind, json_value) {
                (_, Value::Null) => assert_eq!(cell, "", "{context}"),
                (Kind::Number, Value::String(number)) => {
                    let figure = number.parse::<f64>().expect("a JSON number");
                    assert_eq!(
                        cell.parse::<f64>().ok(),
                        Some(figure),
                        "the same f64: {context}"
                    );
                }
                (Kind::Exact, Value::String(text)) => assert_eq!(cell, text, "{context}"),
                (Kind::Text, Value::String(text)) => {
                    assert_eq!(cell, defused(text), "{context}");
                }
                (Kind::Json, value) => {
                    assert_eq!(&numbers_as_text(cell).await, value, "{context}");
                }
                (_, other) => panic!("unexpected JSON {other} for {context}"),
            }
        }
    }
    csv_rows.len()
}

/// How often `pattern` occurs in the text of fields (not at line ends).
fn inside_fields(rows: &[Map<String, Value>], pattern: &str) -> usize {
    rows.iter()
        .flat_map(|row| row.values())
        .map(|value| match value {
            Value::String(text) => text.matches(pattern).count(),
            _ => 0,
        })
        .sum()
}

fn points(history: &Value) -> Vec<Map<String, Value>> {
    history["points"]
        .as_array()
        .expect("points")
        .iter()
        .map(flatten)
        .collect()
}

fn items(page: &Value) -> Vec<Map<String, Value>> {
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|item| item.as_object().expect("an item").clone())
        .collect()
}

/// The JSON and the CSV form of `path` (which has a query string) agree; the CSV answer and
/// the rows compared.
async fn metrics_agree(gw: &Gateway, token: &str, path: &str) -> (Answer, usize) {
    let (status, history) = get_json(gw, path, token).await;
    assert_eq!(status, StatusCode::OK, "{path}: {history}");
    let csv = fetch(gw, &format!("{path}&format=csv"), token, None).await;
    assert_eq!(csv.status, StatusCode::OK, "{path}: {}", csv.body);
    assert_eq!(csv.header("content-type"), Some("text/csv; charset=utf-8"));
    let rows = python_rows(&csv.body).await;
    let n = assert_same(&points(&history), &csv.body, &rows, POINT_COLUMNS).await;
    for (header, field) in [
        ("x-bucket-secs", "bucketSecs"),
        ("x-source", "source"),
        ("x-from", "from"),
        ("x-to", "to"),
    ] {
        assert_eq!(
            csv.header(header),
            history[field].as_str(),
            "{path}: {header}"
        );
    }
    (csv, n)
}

/// The JSON and the CSV form of an alerts `query` agree, next cursor included; the CSV rows.
async fn alerts_agree(gw: &Gateway, token: &str, query: &str) -> Vec<Map<String, Value>> {
    let path = format!("/api/v1/alerts?{query}");
    let (status, page) = get_json(gw, &path, token).await;
    assert_eq!(status, StatusCode::OK, "{path}: {page}");
    let csv = fetch(gw, &format!("{path}&format=csv"), token, None).await;
    assert_eq!(csv.status, StatusCode::OK, "{path}: {}", csv.body);
    assert_eq!(csv.header("content-type"), Some("text/csv; charset=utf-8"));
    assert_eq!(
        csv.header("content-disposition"),
        Some("attachment; filename=\"alerts.csv\"")
    );
    assert_eq!(
        csv.header("x-next-cursor"),
        page["nextCursor"].as_str(),
        "{path}: the next cursor"
    );
    let rows = python_rows(&csv.body).await;
    assert_same(&items(&page), &csv.body, &rows, ALERT_COLUMNS).await;
    rows
}

/// `path` is refused with 422 as JSON, and as CSV with the same status and error body.
async fn same_refusal(gw: &Gateway, path: &str, token: &str) {
    let (status, json_error) = gw.get(path, token).await;
    let csv_error = fetch(gw, &format!("{path}&format=csv"), token, None).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{path}");
    assert_eq!(
        (csv_error.status, csv_error.json()),
        (status, json_error),
        "{path}"
    );
}

#[tokio::test]
async fn metrics_csv_round_trips_through_python_to_the_json_figures_with_the_same_filters() {
    let gw = Gateway::start().await;
    let _admin = gw.register("admin@example.com").await;
    let ada = gw.register("ada@example.com").await;
    let bob = gw.register("bob@example.com").await;
    gw.create_server(&ada.access, json!({ "id": "web-1", "name": "web" }))
        .await;
    gw.create_server(&bob.access, json!({ "id": "bob-1", "name": "bob's" }))
        .await;
    // One sample every 5 s for an hour, with figures whose decimal forms are long (thirds,
    // large byte counts) and gaps: no rx after 10:30, load only every other sample.
    sqlx::query(
        "INSERT INTO metrics (server_id, ts, cpu, memory, disk, network, network_rx, network_tx, load1)
         SELECT 'web-1', TIMESTAMPTZ '2026-11-24 10:00:00+00' + n * interval '5 seconds',
                (n % 97) / 7.0, 33.3 + n / 3.0, 60, n * 1234567,
                CASE WHEN n < 360 THEN n * 6 END, n * 4, CASE WHEN n % 2 = 0 THEN 0.1 * n END
         FROM generate_series(0, 719) AS n",
    )
    .execute(&gw.db.pool)
    .await
    .expect("samples");
    let hour = "/api/v1/servers/web-1/metrics?from=2026-11-24T10:00:00Z&to=2026-11-24T11:00:00Z";

    let (csv, n) = metrics_agree(&gw, &ada.access, &format!("{hour}&bucket=10m")).await;
    assert_eq!(n, 6);
    assert_eq!(
        csv.header("content-disposition"),
        Some("attachment; filename=\"web-1-metrics.csv\"")
    );
    assert!(
        csv.body.contains("\r\n2026-11-24T10:40:00Z,120,"),
        "RFC 3339 times as in JSON"
    );
    let rows = python_rows(&csv.body).await;
    assert_eq!(
        rows[5]["networkRx"], "",
        "no rx after 10:30: empty, as JSON's null"
    );
    assert_ne!(rows[0]["networkRx"], "");

    // Other filters, the same answers: a narrower range and bucket; the default bucket (720
    // points, many chunks); a bucket too small for the range, raised alike.
    let (_, n) = metrics_agree(
        &gw,
        &ada.access,
        "/api/v1/servers/web-1/metrics?from=2026-11-24T10:20:00Z&to=2026-11-24T10:50:00Z&bucket=5m",
    )
    .await;
    assert_eq!(n, 6);
    let (csv, n) = metrics_agree(&gw, &ada.access, hour).await;
    assert_eq!((n, csv.header("x-bucket-secs")), (720, Some("5")));
    assert!(csv.body.len() > 8 * 8 * 1024, "several chunks");
    let (csv, n) = metrics_agree(
        &gw,
        &ada.access,
        "/api/v1/servers/web-1/metrics?from=2026-11-01T00:00:00Z&to=2026-11-24T12:00:00Z&bucket=1",
    )
    .await;
    assert_eq!(
        (n, csv.header("x-bucket-secs")),
        (12, Some("300")),
        "at most 10,000 points, as JSON"
    );

    // Accept: text/csv asks for CSV too; format wins over it.
    let by_accept = fetch(&gw, hour, &ada.access, Some("text/csv")).await;
    assert_eq!(
        by_accept.header("content-type"),
        Some("text/csv; charset=utf-8")
    );
    assert_eq!(by_accept.body.matches("\r\n").count(), 721);
    let json_wins = fetch(
        &gw,
        &format!("{hour}&format=json"),
        &ada.access,
        Some("text/csv"),
    )
    .await;
    assert_eq!(json_wins.header("content-type"), Some("application/json"));

    // The same checks: another user's server and an unknown one are the JSON form's 404; bad
    // ranges its 422; an unknown format 400; no token 401.
    let theirs = "/api/v1/servers/bob-1/metrics?bucket=10m";
    let (status, json_404) = gw.get(theirs, &ada.access).await;
    for path in [
        format!("{theirs}&format=csv"),
        "/api/v1/servers/nobody/metrics?format=csv".to_owned(),
    ] {
        let csv_404 = fetch(&gw, &path, &ada.access, None).await;
        assert_eq!(
            (csv_404.status, csv_404.json()),
            (status, json_404.clone()),
            "{path}"
        );
    }
    assert_eq!(status, StatusCode::NOT_FOUND);
    let own = fetch(&gw, &format!("{theirs}&format=csv"), &bob.access, None).await;
    assert_eq!(own.status, StatusCode::OK, "bob's own");
    for query in [
        "from=2026-11-24T11:00:00Z&to=2026-11-24T10:00:00Z",
        "from=yesterday",
        "from=2026-01-01T00:00:00Z&to=2026-11-24T00:00:00Z",
        "bucket=fast",
    ] {
        let path = format!("/api/v1/servers/web-1/metrics?{query}");
        same_refusal(&gw, &path, &ada.access).await;
    }
    let bad = fetch(&gw, &format!("{hour}&format=xml"), &ada.access, None).await;
    assert_eq!(
        (bad.status, code(&bad.json())),
        (StatusCode::BAD_REQUEST, "bad_request")
    );
    assert!(
        bad.json()["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("json, csv")),
        "{}",
        bad.body
    );
    let anonymous = gw
        .http
        .get(format!("{}{hour}&format=csv", gw.base))
        .send()
        .await
        .expect("send");
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    gw.stop().await;
}

struct NewAlert<'a> {
    server: &'a str,
    metric: &'a str,
    severity: &'a str,
    state: &'a str,
    value: Option<f64>,
    threshold: Option<f64>,
    minutes_ago: f64,
    message: Option<&'a str>,
    container: &'a str,
    top_processes: Option<Value>,
}

impl Default for NewAlert<'_> {
    fn default() -> Self {
        Self {
            server: "web-1",
            metric: "cpu",
            severity: "warning",
            state: "firing",
            value: Some(95.0),
            threshold: Some(90.0),
            minutes_ago: 1.0,
            message: None,
            container: "",
            top_processes: None,
        }
    }
}

/// An alert as the alerter stores it.
async fn insert_alert(pool: &sqlx::PgPool, alert: NewAlert<'_>) -> uuid::Uuid {
    let id = uuid::Uuid::new_v4();
    sqlx::query(
        "INSERT INTO alerts (id, server_id, metric, severity, state, value, threshold, started_at,
                             resolved_at, message, container, top_processes)
         VALUES ($1, $2, $3, $4, $5, $6, $7, now() - $8 * interval '1 minute',
                 CASE WHEN $5 = 'resolved' THEN now() END, $9, $10, $11)",
    )
    .bind(id)
    .bind(alert.server)
    .bind(alert.metric)
    .bind(alert.severity)
    .bind(alert.state)
    .bind(alert.value)
    .bind(alert.threshold)
    .bind(alert.minutes_ago)
    .bind(alert.message)
    .bind(alert.container)
    .bind(alert.top_processes.map(sqlx::types::Json))
    .execute(pool)
    .await
    .expect("alert");
    id
}

/// ada's alerts: awkward text and figures, over two servers with awkward names.
async fn awkward_alerts(gw: &Gateway, ada: &Session) -> Vec<uuid::Uuid> {
    gw.create_server(
        &ada.access,
        json!({ "id": "web-1", "name": "web, \"east\"\nrack é" }),
    )
    .await;
    gw.create_server(
        &ada.access,
        json!({ "id": "db-1", "name": "=cmd|' /C calc'!A0" }),
    )
    .await;
    let messages: [Option<&str>; 10] = [
        Some("cpu at 95.5%, above 90"),
        Some("the \"db\" process, again"),
        Some("line one\nline two\r\nline three"),
        Some("=HYPERLINK(\"http://evil.example\",\"click\")"),
        Some("-5 °C below, odd"),
        Some("@SUM(A1)"),
        Some("+1 more"),
        Some("\tindented"),
        None,
        Some("plain"),
    ];
    let values = [
        Some(95.5),
        Some(0.1 + 0.2),
        None,
        Some(1e-7),
        Some(-3.25),
        Some(1e20),
        Some(1.0 / 3.0),
        Some(0.0),
        Some(1e9 / 7.0),
        Some(f64::MIN_POSITIVE),
    ];
    let mut ids = Vec::new();
    for (i, (message, value)) in messages.into_iter().zip(values).enumerate() {
        let top = (i == 1).then(|| {
            json!([{ "pid": 42, "name": "post,gres", "command": "postgres -D \"/data\"\n--x", "cpuPercent": 61.5 }])
        });
        ids.push(
            insert_alert(
                &gw.db.pool,
                NewAlert {
                    server: if i % 3 == 0 { "db-1" } else { "web-1" },
                    severity: if i % 2 == 0 { "warning" } else { "critical" },
                    state: if i % 4 == 3 { "resolved" } else { "firing" },
                    value,
                    threshold: if i == 4 {
                        None
                    } else {
                        Some(90.0 + i as f64 / 10.0)
                    },
                    // Fractions of a minute: times with microseconds.
                    minutes_ago: i as f64 * 7.123_457 + 0.5,
                    message,
                    metric: if i == 5 { "container_stopped" } else { "cpu" },
                    container: if i == 5 { "=redis" } else { "" },
                    top_processes: top,
                },
            )
            .await,
        );
    }
    ids
}

#[tokio::test]
async fn alerts_csv_round_trips_through_python_to_the_json_figures_with_the_same_filters_and_pages()
{
    let gw = Gateway::start().await;
    let _admin = gw.register("admin@example.com").await;
    let ada = gw.register("ada@example.com").await;
    let bob = gw.register("bob@example.com").await;
    let ids = awkward_alerts(&gw, &ada).await;
    gw.create_server(&bob.access, json!({ "id": "bob-1", "name": "bob's" }))
        .await;
    for minutes_ago in [2.0, 3.0] {
        insert_alert(
            &gw.db.pool,
            NewAlert {
                server: "bob-1",
                minutes_ago,
                message: Some("bob's"),
                ..NewAlert::default()
            },
        )
        .await;
    }
    let (status, _) = gw
        .post(
            &format!("/api/v1/alerts/{}/ack", ids[2]),
            Some(&ada.access),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "acknowledged through the API");

    let all = alerts_agree(&gw, &ada.access, "limit=500").await;
    assert_eq!(all.len(), 10, "ada's ten, none of bob's");
    let by_id = |id: uuid::Uuid| {
        all.iter()
            .find(|row| row["id"] == id.to_string())
            .expect("listed")
    };
    assert_eq!(
        by_id(ids[3])["message"],
        "'=HYPERLINK(\"http://evil.example\",\"click\")",
        "a formula is shown as text"
    );
    assert_eq!(by_id(ids[3])["serverName"], "'=cmd|' /C calc'!A0");
    assert_eq!(
        by_id(ids[4])["value"],
        "-3.25",
        "numbers are never prefixed"
    );
    assert_eq!(by_id(ids[2])["message"], "line one\nline two\r\nline three");
    assert_eq!(by_id(ids[1])["serverName"], "web, \"east\"\nrack é");
    assert_eq!(by_id(ids[5])["container"], "'=redis");
    assert_eq!(by_id(ids[8])["message"], "", "null is empty");
    assert_eq!(by_id(ids[2])["acknowledgedBy"], ada.user_id);

    // The same filters: each set gives the JSON form's rows.
    for (query, expected) in [
        ("state=firing&severity=warning&limit=500", 5),
        ("serverId=db-1&limit=500", 4),
        ("state=resolved", 2),
        ("serverId=bob-1", 0),
    ] {
        let rows = alerts_agree(&gw, &ada.access, query).await;
        assert_eq!(rows.len(), expected, "{query}");
    }
    let (_, newest) = gw.get("/api/v1/alerts?limit=500", &ada.access).await;
    let started = |i: usize| {
        newest["items"][i]["startedAt"]
            .as_str()
            .unwrap_or("")
            .to_owned()
    };
    let window = format!("from={}&to={}", started(6), started(1));
    let rows = alerts_agree(&gw, &ada.access, &window).await;
    assert_eq!(rows.len(), 5, "started in [7th, 2nd newest)");

    // The same limit and pages: limit rows each, the next cursor in X-Next-Cursor, followed
    // to the end without skipping or repeating a row.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let query = match &cursor {
            Some(c) => format!("limit=3&cursor={c}"),
            None => "limit=3".to_owned(),
        };
        let rows = alerts_agree(&gw, &ada.access, &query).await;
        assert!(rows.len() <= 3);
        seen.extend(rows.iter().map(|row| row["id"].clone()));
        let csv = fetch(
            &gw,
            &format!("/api/v1/alerts?{query}&format=csv"),
            &ada.access,
            None,
        )
        .await;
        match csv.header("x-next-cursor") {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    let everything: Vec<Value> = all.iter().map(|row| row["id"].clone()).collect();
    assert_eq!(seen, everything, "pages neither skip nor repeat");
    let default = fetch(&gw, "/api/v1/alerts?format=csv", &bob.access, None).await;
    assert_eq!(
        python_rows(&default.body).await.len(),
        2,
        "bob sees his own"
    );

    // The same refusals; an unknown format is a 400.
    for query in [
        "state=bogus",
        "limit=501",
        "limit=0",
        "cursor=garbage",
        "from=yesterday",
    ] {
        let path = format!("/api/v1/alerts?{query}");
        same_refusal(&gw, &path, &ada.access).await;
    }
    let bad = fetch(&gw, "/api/v1/alerts?format=excel", &ada.access, None).await;
    assert_eq!(
        (bad.status, code(&bad.json())),
        (StatusCode::BAD_REQUEST, "bad_request")
    );
    let by_accept = fetch(&gw, "/api/v1/alerts", &ada.access, Some("text/csv")).await;
    assert_eq!(
        by_accept.header("content-type"),
        Some("text/csv; charset=utf-8")
    );
    gw.stop().await;
}

/// What a client receives of a body before it ends: the bytes and whether it ended cleanly.
async fn read_all(mut response: reqwest::Response) -> (Vec<u8>, bool) {
    let mut received = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => received.extend_from_slice(&chunk),
            Ok(None) => return (received, true),
            Err(_) => return (received, false),
        }
    }
}

/// JSON nested deeper than the gateway's JSON reader accepts (128 levels): a row it cannot
/// decode, as a broken row or a failing database would be.
fn too_deep() -> String {
    format!("{}{}", "[".repeat(200), "]".repeat(200))
}

/// `count` firing CPU warnings of web-1, a second apart, newest a second ago, each with a
/// message of `message_len` bytes (to make the CSV as large as a case needs).
async fn firing_alerts(gw: &Gateway, count: i32, message_len: i32) {
    sqlx::query(
        "INSERT INTO alerts (id, server_id, metric, severity, state, value, threshold, started_at, message)
         SELECT gen_random_uuid(), 'web-1', 'cpu', 'warning', 'firing', 95, 90,
                now() - n * interval '1 second', repeat('m', $2)
         FROM generate_series(1, $1) AS n",
    )
    .bind(count)
    .bind(message_len)
    .execute(&gw.db.pool)
    .await
    .expect("firing alerts");
}

#[tokio::test]
async fn a_download_failing_after_its_first_rows_is_a_failed_transfer_and_before_them_an_error() {
    let gw = Gateway::start().await;
    let ada = gw.register("ada@example.com").await;
    gw.create_server(&ada.access, json!({ "id": "web-1", "name": "web" }))
        .await;
    gw.create_server(&ada.access, json!({ "id": "bad-1", "name": "bad" }))
        .await;
    // 300 good alerts (about 60 KB of CSV, several chunks), then, oldest, one that cannot be read.
    firing_alerts(&gw, 300, 100).await;
    sqlx::query(
        "INSERT INTO alerts (id, server_id, metric, severity, state, started_at, top_processes)
         VALUES (gen_random_uuid(), 'bad-1', 'cpu', 'warning', 'firing', now() - interval '1 hour', $1::json)",
    )
    .bind(too_deep())
    .execute(&gw.db.pool)
    .await
    .expect("a bad alert");

    let (status, body) = gw.get("/api/v1/alerts?limit=500", &ada.access).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        "the JSON form cannot read it either"
    );
    let response = gw
        .http
        .get(format!("{}/api/v1/alerts?limit=500&format=csv", gw.base))
        .bearer_auth(&ada.access)
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), StatusCode::OK, "the first rows went out");
    let (received, clean) = read_all(response).await;
    let text = String::from_utf8_lossy(&received);
    assert!(!clean, "the transfer fails; it does not just end");
    assert!(
        text.starts_with("id,serverId,"),
        "{}",
        &text[..text.len().min(80)]
    );
    assert!(
        text.matches("\r\n").count() > 20,
        "rows came before the failure"
    );
    assert!(
        !text.contains("bad-1"),
        "the bad row never reaches the file"
    );

    // The bad row first: nothing was sent yet, so the answer is the JSON form's error.
    let alone = fetch(
        &gw,
        "/api/v1/alerts?serverId=bad-1&format=csv",
        &ada.access,
        None,
    )
    .await;
    assert_eq!(
        (alone.status, code(&alone.json())),
        (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        "{}",
        alone.body
    );
    // The failed downloads' connections did not stay taken.
    for _ in 0..3 {
        let fine = fetch(
            &gw,
            "/api/v1/alerts?serverId=web-1&limit=500&format=csv",
            &ada.access,
            None,
        )
        .await;
        assert_eq!(fine.status, StatusCode::OK);
        assert_eq!(python_rows(&fine.body).await.len(), 300);
    }
    gw.stop().await;
}

#[tokio::test]
async fn a_download_the_client_stops_reading_is_cut_at_the_request_time_limit() {
    let gw = Gateway::start_with(|config| config.gateway.request_timeout_ms = 2_000).await;
    let ada = gw.register("ada@example.com").await;
    gw.create_server(&ada.access, json!({ "id": "web-1", "name": "web" }))
        .await;
    // 40 MB of CSV: far more than the socket buffers between the gateway and this client.
    firing_alerts(&gw, 400, 100_000).await;
    let response = gw
        .http
        .get(format!("{}/api/v1/alerts?limit=500&format=csv", gw.base))
        .bearer_auth(&ada.access)
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), StatusCode::OK);
    tokio::time::sleep(Duration::from_secs(4)).await;
    let (received, clean) = read_all(response).await;
    assert!(!clean, "cut, not ended");
    assert!(
        received.len() < 400 * 100_000,
        "only what was buffered: {} bytes",
        received.len()
    );
    // Its connection went back (closed): the gateway answers as before.
    let (status, _) = gw.get("/api/v1/alerts?limit=1", &ada.access).await;
    assert_eq!(status, StatusCode::OK);
    gw.stop().await;
}

#[tokio::test]
async fn the_openapi_document_offers_csv_on_both_routes_and_documents_format() {
    let gw = Gateway::start().await;
    let (status, document) = gw
        .call(reqwest::Method::GET, "/api/v1/openapi.json", None, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    for path in ["/api/v1/servers/{id}/metrics", "/api/v1/alerts"] {
        let get = &document["paths"][path]["get"];
        let content = &get["responses"]["200"]["content"];
        assert!(content.get("text/csv").is_some(), "{path}: {content}");
        assert!(
            content.get("application/json").is_some(),
            "{path}: {content}"
        );
        let format = get["parameters"]
            .as_array()
            .and_then(|params| params.iter().find(|p| p["name"] == "format"))
            .unwrap_or_else(|| panic!("{path} documents format"));
        assert_eq!(format["in"], "query");
        assert_eq!(format["schema"]["enum"], json!(["json", "csv"]), "{format}");
        assert!(get["responses"]["400"].is_object(), "{path}: 400");
    }
    gw.stop().await;
}
