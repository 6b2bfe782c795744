//! One notice to each kind of channel, received by real servers on loopback: HTTP receivers
//! (axum) that record every request, and an SMTP server (Python's aiosmtpd, started by the
//! test) that writes every message it accepts. Each kind's request is checked against the
//! shape its service documents, signatures are recomputed here independently, and the answers
//! that must be retried (503, Telegram's 429, SMTP 451) are told from the final ones (302, 400,
//! SMTP 550, a forbidden destination).

use std::collections::VecDeque;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use chrono::Utc;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use uuid::Uuid;

use flick_alerter::notify::notice::{Channel, Failure, Kind, Notice, Route};
use flick_alerter::notify::send::{self, text};
use flick_shared::outbound::Destinations;
use flick_shared::wire::{AlertEvent, AlertSeverity, AlertState, ServerId};

// ---------------------------------------------------------------------------------------------
// Notices and channels

fn event(server: &str, metric: &str, severity: AlertSeverity, state: AlertState) -> AlertEvent {
    let at = Utc::now();
    AlertEvent {
        v: 1,
        id: Uuid::new_v4(),
        alert_id: Uuid::new_v4(),
        server_id: ServerId::parse(server).expect("valid id"),
        metric: metric.into(),
        severity,
        state,
        value: (metric != "offline").then_some(97.0),
        threshold: (metric != "offline").then_some(90.0),
        started_at: at - chrono::Duration::minutes(3),
        at,
        message: None,
        top_processes: Vec::new(),
        container: None,
    }
}

fn cpu_critical(server: &str) -> AlertEvent {
    event(server, "cpu", AlertSeverity::Critical, AlertState::Firing)
}

fn notice(events: Vec<AlertEvent>) -> Notice {
    Notice {
        id: Uuid::new_v4(),
        events,
        repeat: false,
        test: false,
    }
}

fn fifty_offline() -> Notice {
    notice(
        (1..=50)
            .map(|i| {
                event(
                    &format!("web-{i:02}"),
                    "offline",
                    AlertSeverity::Critical,
                    AlertState::Firing,
                )
            })
            .collect(),
    )
}

fn channel(kind: Kind, url: String) -> Channel {
    Channel {
        id: Uuid::new_v4(),
        name: "ops".into(),
        kind,
        url,
        headers: Vec::new(),
        signing_secret: None,
        secret: None,
        settings: json!({}),
        route: Route::default(),
    }
}

/// Built as `Notifier::new` builds its client: no redirects, no proxy, a timeout.
fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .expect("an HTTP client")
}

/// The receivers here are on loopback, which only `notify.allow_hosts` lets through.
fn loopback_allowed() -> Destinations {
    Destinations::new(&["127.0.0.1".into()]).expect("a valid policy")
}

async fn attempt_once(channel: &Channel, notice: &Notice) -> Result<(), Failure> {
    send::attempt(&client(), &loopback_allowed(), channel, notice, 1).await
}

fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("any key length");
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().to_vec()
}

// ---------------------------------------------------------------------------------------------
// An HTTP receiver that records every request and answers from a script (then 200)

#[derive(Debug, Clone)]
struct Recorded {
    method: Method,
    path: String,
    headers: HeaderMap,
    body: Bytes,
}

impl Recorded {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

#[derive(Debug, Clone)]
struct Answer {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: String,
}

impl Answer {
    fn status(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: String::new(),
        }
    }
}

#[derive(Debug, Clone)]
struct Receiver {
    base: String,
    calls: Arc<Mutex<Vec<Recorded>>>,
    answers: Arc<Mutex<VecDeque<Answer>>>,
}

async fn record(
    State(receiver): State<Receiver>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    receiver.calls.lock().expect("lock").push(Recorded {
        method,
        path: uri.path().to_owned(),
        headers,
        body,
    });
    let answer = receiver
        .answers
        .lock()
        .expect("lock")
        .pop_front()
        .unwrap_or(Answer {
            status: 200,
            headers: Vec::new(),
            body: "ok".into(),
        });
    let mut response = (
        StatusCode::from_u16(answer.status).expect("a valid status"),
        answer.body,
    )
        .into_response();
    for (name, value) in answer.headers {
        response
            .headers_mut()
            .insert(name, value.parse().expect("a valid header value"));
    }
    response
}

impl Receiver {
    async fn start(answers: Vec<Answer>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let receiver = Receiver {
            base: format!("http://{}", listener.local_addr().expect("an address")),
            calls: Arc::default(),
            answers: Arc::new(Mutex::new(answers.into())),
        };
        let app = Router::new().fallback(record).with_state(receiver.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        receiver
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn calls(&self) -> Vec<Recorded> {
        self.calls.lock().expect("lock").clone()
    }

    fn only_call(&self) -> Recorded {
        let calls = self.calls();
        assert_eq!(calls.len(), 1, "exactly one request: {calls:?}");
        calls.into_iter().next().expect("one call")
    }
}

// ---------------------------------------------------------------------------------------------
// FLick's webhook and Standard Webhooks

#[tokio::test]
async fn a_webhook_gets_one_event_as_the_alert_event_signed_as_before() {
    let receiver = Receiver::start(Vec::new()).await;
    let secret = b"flick-signing-secret".to_vec();
    let mut channel = channel(Kind::Webhook, receiver.url("/hook"));
    channel.signing_secret = Some(secret.clone());
    channel.headers = vec![("authorization".into(), "Bearer receiver-token".into())];
    let event = cpu_critical("web-01");
    let notice = notice(vec![event.clone()]);

    send::attempt(&client(), &loopback_allowed(), &channel, &notice, 3)
        .await
        .expect("delivered");

    let call = receiver.only_call();
    assert_eq!(call.method, Method::POST);
    assert_eq!(call.path, "/hook");
    assert_eq!(call.header("content-type"), Some("application/json"));
    assert_eq!(
        call.json(),
        serde_json::to_value(&event).expect("serialises"),
        "the body is the AlertEvent, as before groups"
    );
    let event_id = event.id.to_string();
    let notice_id = notice.id.to_string();
    assert_eq!(call.header("x-flick-event-id"), Some(event_id.as_str()));
    assert_eq!(call.header("x-flick-notice-id"), Some(notice_id.as_str()));
    assert_eq!(call.header("x-flick-attempt"), Some("3"));
    assert_eq!(call.header("authorization"), Some("Bearer receiver-token"));
    let timestamp = call.header("x-flick-timestamp").expect("a timestamp");
    let age = Utc::now().timestamp() - timestamp.parse::<i64>().expect("unix seconds");
    assert!((0..60).contains(&age), "timestamp {timestamp} is now");
    let expected = format!(
        "sha256={}",
        hex::encode(hmac_sha256(
            &secret,
            &[timestamp.as_bytes(), b".", call.body.as_ref()]
        ))
    );
    assert_eq!(call.header("x-flick-signature"), Some(expected.as_str()));
}

#[tokio::test]
async fn a_webhook_gets_a_group_with_its_notice_id_summary_and_events() {
    let receiver = Receiver::start(Vec::new()).await;
    let channel = channel(Kind::Webhook, receiver.url("/hook"));
    let events = vec![
        event(
            "web-01",
            "offline",
            AlertSeverity::Critical,
            AlertState::Firing,
        ),
        event(
            "db-01",
            "disk",
            AlertSeverity::Warning,
            AlertState::Resolved,
        ),
    ];
    let notice = notice(events.clone());

    attempt_once(&channel, &notice).await.expect("delivered");

    let call = receiver.only_call();
    let body = call.json();
    assert_eq!(body["noticeId"], notice.id.to_string());
    assert_eq!(body["summary"], send::summary(&notice));
    assert_eq!(body["repeat"], false);
    assert_eq!(body["test"], false);
    assert_eq!(
        body["events"],
        serde_json::to_value(&events).expect("serialises")
    );
    assert_eq!(
        call.header("x-flick-event-id"),
        None,
        "a group has no one event id"
    );
    assert_eq!(
        call.header("x-flick-notice-id"),
        Some(notice.id.to_string().as_str())
    );
    assert_eq!(
        call.header("x-flick-signature"),
        None,
        "no secret, no signature"
    );
}

#[tokio::test]
async fn a_standard_webhook_is_signed_as_the_standard_says() {
    let receiver = Receiver::start(Vec::new()).await;
    // The channel holds `whsec_<base64>` decoded, as the caller passes it.
    let secret = base64::engine::general_purpose::STANDARD
        .decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
        .expect("base64");
    let mut channel = channel(Kind::StandardWebhook, receiver.url("/standard"));
    channel.signing_secret = Some(secret.clone());
    channel.headers = vec![("x-tenant".into(), "flick".into())];
    let notice = notice(vec![cpu_critical("web-01")]);

    attempt_once(&channel, &notice).await.expect("delivered");

    let call = receiver.only_call();
    let id = call.header("webhook-id").expect("webhook-id");
    assert_eq!(id, notice.id.to_string());
    let timestamp = call.header("webhook-timestamp").expect("webhook-timestamp");
    let age = Utc::now().timestamp() - timestamp.parse::<i64>().expect("unix seconds");
    assert!((0..60).contains(&age));
    let expected = base64::engine::general_purpose::STANDARD.encode(hmac_sha256(
        &secret,
        &[
            id.as_bytes(),
            b".",
            timestamp.as_bytes(),
            b".",
            call.body.as_ref(),
        ],
    ));
    let signature = call.header("webhook-signature").expect("webhook-signature");
    // A space-separated list of `v1,<base64>`; ours has one.
    assert_eq!(signature, format!("v1,{expected}"));
    assert_eq!(call.header("x-tenant"), Some("flick"));
    let body = call.json();
    assert_eq!(body["noticeId"], id);
    assert_eq!(body["events"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn a_standard_webhook_without_a_secret_is_not_sent() {
    let receiver = Receiver::start(Vec::new()).await;
    let channel = channel(Kind::StandardWebhook, receiver.url("/standard"));
    let failure = attempt_once(&channel, &notice(vec![cpu_critical("web-01")]))
        .await
        .expect_err("no secret");
    assert!(!failure.retry);
    assert!(receiver.calls().is_empty());
}

// ---------------------------------------------------------------------------------------------
// Chat services

#[tokio::test]
async fn slack_gets_text_and_a_mrkdwn_section_with_markup_escaped() {
    let receiver = Receiver::start(Vec::new()).await;
    let mut channel = channel(Kind::Slack, receiver.url("/services/T0/B0/XXXX"));
    channel.headers = vec![("x-extra".into(), "1".into())];
    let mut event = cpu_critical("web-01");
    event.message = Some("<!channel> CPU & more".into());
    let notice = notice(vec![event]);

    attempt_once(&channel, &notice).await.expect("delivered");

    let call = receiver.only_call();
    assert_eq!(call.path, "/services/T0/B0/XXXX");
    assert_eq!(call.header("x-extra"), Some("1"));
    let body = call.json();
    assert_eq!(body["text"], "CRITICAL: CPU usage 97.0 % on web-01");
    let section = &body["blocks"][0];
    assert_eq!(section["type"], "section");
    assert_eq!(section["text"]["type"], "mrkdwn");
    let markdown = section["text"]["text"].as_str().expect("section text");
    assert!(
        markdown.starts_with("*CRITICAL: CPU usage 97.0 % on web-01*\n"),
        "{markdown}"
    );
    assert!(
        markdown.contains("web-01 cpu 97.0 % (threshold 90.0 %)"),
        "{markdown}"
    );
    assert!(
        markdown.contains("&lt;!channel&gt; CPU &amp; more") && !markdown.contains("<!channel>"),
        "Slack markup is escaped: {markdown}"
    );
}

#[tokio::test]
async fn discord_gets_content_an_embed_and_no_mentions() {
    let receiver = Receiver::start(Vec::new()).await;
    let channel = channel(Kind::Discord, receiver.url("/api/webhooks/1/abc"));
    let mut event = cpu_critical("web-01");
    event.message = Some("@everyone look".into());
    let notice = notice(vec![event.clone()]);

    attempt_once(&channel, &notice).await.expect("delivered");

    let body = receiver.only_call().json();
    assert_eq!(body["content"], "CRITICAL: CPU usage 97.0 % on web-01");
    let embed = &body["embeds"][0];
    assert_eq!(embed["color"], 0xD32F2F, "red for critical");
    assert!(embed["title"].as_str().is_some_and(|t| !t.is_empty()));
    let description = embed["description"].as_str().expect("a description");
    assert!(
        description.contains("CRITICAL firing: web-01 cpu"),
        "{description}"
    );
    let timestamp = embed["timestamp"].as_str().expect("a timestamp");
    let parsed = chrono::DateTime::parse_from_rfc3339(timestamp).expect("ISO 8601");
    assert_eq!(parsed.timestamp(), event.at.timestamp());
    assert_eq!(body["allowed_mentions"], json!({ "parse": [] }));

    // Orange for a warning, green once resolved.
    for (severity, state, color) in [
        (AlertSeverity::Warning, AlertState::Firing, 0xF57C00),
        (AlertSeverity::Critical, AlertState::Resolved, 0x388E3C),
    ] {
        let notice = self::notice(vec![event_with("web-01", severity, state)]);
        attempt_once(&channel, &notice).await.expect("delivered");
        let last = receiver.calls().pop().expect("a call").json();
        assert_eq!(last["embeds"][0]["color"], color);
    }
}

fn event_with(server: &str, severity: AlertSeverity, state: AlertState) -> AlertEvent {
    event(server, "memory", severity, state)
}

#[tokio::test]
async fn telegram_gets_send_message_with_the_chat_id_in_plain_text() {
    let receiver = Receiver::start(vec![Answer {
        status: 200,
        headers: vec![("content-type", "application/json".into())],
        body: r#"{"ok":true,"result":{"message_id":1}}"#.into(),
    }])
    .await;
    let mut channel = channel(Kind::Telegram, receiver.base.clone());
    channel.secret = Some("123456:ABC-bot-token".into());
    channel.settings = json!({ "chatId": -1001234567890_i64 });
    channel.headers = vec![("x-not-for-telegram".into(), "1".into())];
    let notice = notice(vec![cpu_critical("web-01")]);

    attempt_once(&channel, &notice).await.expect("delivered");

    let call = receiver.only_call();
    assert_eq!(call.method, Method::POST);
    assert_eq!(call.path, "/bot123456:ABC-bot-token/sendMessage");
    assert_eq!(call.header("x-not-for-telegram"), None);
    let body = call.json();
    assert_eq!(body["chat_id"], -1001234567890_i64);
    assert_eq!(body["disable_web_page_preview"], true);
    assert!(body.get("parse_mode").is_none(), "plain text");
    let text = body["text"].as_str().expect("a text");
    assert!(
        text.starts_with("CRITICAL: CPU usage 97.0 % on web-01\n\n"),
        "{text}"
    );
    assert!(
        text.contains("CRITICAL firing: web-01 cpu 97.0 %"),
        "{text}"
    );
}

#[tokio::test]
async fn telegram_flood_control_is_retried_and_the_token_never_shows() {
    let token = "987654:SECRET-token";
    let receiver = Receiver::start(vec![
        Answer {
            status: 429,
            headers: vec![("content-type", "application/json".into())],
            body: json!({
                "ok": false,
                "error_code": 429,
                "description": "Too Many Requests: retry after 7",
                "parameters": { "retry_after": 7 }
            })
            .to_string(),
        },
        Answer {
            status: 400,
            headers: vec![("content-type", "application/json".into())],
            body: json!({
                "ok": false,
                "error_code": 400,
                "description": format!("Bad Request: chat not found for bot{token}")
            })
            .to_string(),
        },
    ])
    .await;
    let mut channel = channel(Kind::Telegram, receiver.base.clone());
    channel.secret = Some(token.into());
    channel.settings = json!({ "chatId": "@flick_alerts" });
    let notice = notice(vec![cpu_critical("web-01")]);

    let flood = attempt_once(&channel, &notice).await.expect_err("429");
    assert!(flood.retry, "{flood:?}");
    assert!(flood.reason.contains("retry after 7"), "{flood:?}");
    let wrong_chat = attempt_once(&channel, &notice).await.expect_err("400");
    assert!(!wrong_chat.retry, "{wrong_chat:?}");
    assert!(
        wrong_chat.reason.contains("chat not found"),
        "{wrong_chat:?}"
    );
    for failure in [&flood, &wrong_chat] {
        assert!(!failure.reason.contains(token), "{failure:?}");
    }
    assert_eq!(receiver.calls()[0].json()["chat_id"], "@flick_alerts");

    // No answer at all: the reason names no URL, so no token either.
    let closed = format!("http://127.0.0.1:{}", flick_shared::testkit::free_port());
    let mut gone = channel.clone();
    gone.url = closed;
    let failure = attempt_once(&gone, &notice)
        .await
        .expect_err("nobody listens");
    assert!(
        failure.retry && !failure.reason.contains(token),
        "{failure:?}"
    );
}

#[tokio::test]
async fn ntfy_gets_the_body_with_title_priority_tags_and_token() {
    let receiver = Receiver::start(Vec::new()).await;
    let mut channel = channel(Kind::Ntfy, receiver.url("/flick-alerts"));
    channel.secret = Some("tk_ntfytoken".into());
    let notice = notice(vec![cpu_critical("web-01")]);

    attempt_once(&channel, &notice).await.expect("delivered");

    let call = receiver.only_call();
    assert_eq!(call.path, "/flick-alerts");
    assert_eq!(
        call.header("title"),
        Some("CRITICAL: CPU usage 97.0 % on web-01")
    );
    assert_eq!(call.header("priority"), Some("5"));
    assert_eq!(call.header("tags"), Some("rotating_light"));
    assert_eq!(call.header("authorization"), Some("Bearer tk_ntfytoken"));
    assert!(
        call.header("content-type")
            .is_some_and(|c| c.starts_with("text/plain"))
    );
    let body = String::from_utf8(call.body.to_vec()).expect("UTF-8");
    assert_eq!(body, text::body_text(&notice).trim_end());

    // A resolution is quieter; a warning in between; the channel may fix the priority.
    let resolved = self::notice(vec![event_with(
        "web-01",
        AlertSeverity::Critical,
        AlertState::Resolved,
    )]);
    attempt_once(&channel, &resolved).await.expect("delivered");
    let call = receiver.calls().pop().expect("a call");
    assert_eq!(
        (call.header("priority"), call.header("tags")),
        (Some("3"), Some("white_check_mark"))
    );
    let warning = self::notice(vec![event_with(
        "web-01",
        AlertSeverity::Warning,
        AlertState::Firing,
    )]);
    attempt_once(&channel, &warning).await.expect("delivered");
    let call = receiver.calls().pop().expect("a call");
    assert_eq!(
        (call.header("priority"), call.header("tags")),
        (Some("4"), Some("warning"))
    );
    channel.settings = json!({ "priority": 2 });
    attempt_once(&channel, &notice).await.expect("delivered");
    assert_eq!(
        receiver.calls().pop().expect("a call").header("priority"),
        Some("2")
    );
}

#[tokio::test]
async fn an_ntfy_title_that_is_not_ascii_is_an_encoded_word() {
    let receiver = Receiver::start(Vec::new()).await;
    let channel = channel(Kind::Ntfy, receiver.url("/t"));
    let mut test = notice(vec![cpu_critical("web-01")]);
    test.test = true;
    let mut channel = channel;
    channel.name = "Bereitschaft Müller".into();

    attempt_once(&channel, &test).await.expect("delivered");

    let call = receiver.only_call();
    let title = call.header("title").expect("a title");
    let encoded = title
        .strip_prefix("=?UTF-8?B?")
        .and_then(|t| t.strip_suffix("?="))
        .expect("an RFC 2047 encoded-word");
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .expect("base64");
    assert_eq!(
        String::from_utf8(decoded).expect("UTF-8"),
        "FLick test notification from channel Bereitschaft Müller"
    );
    assert_eq!(call.header("tags"), Some("test_tube"));
}

// ---------------------------------------------------------------------------------------------
// What is retried, what is final

#[tokio::test]
async fn a_503_is_retried_and_the_next_attempt_delivers() {
    let receiver = Receiver::start(vec![Answer::status(503)]).await;
    let channel = channel(Kind::Slack, receiver.url("/hook"));
    let notice = notice(vec![cpu_critical("web-01")]);

    let first = attempt_once(&channel, &notice).await;
    assert_eq!(first, Err(Failure::transient("HTTP 503")));
    send::attempt(&client(), &loopback_allowed(), &channel, &notice, 2)
        .await
        .expect("the second attempt is delivered");
    assert_eq!(receiver.calls().len(), 2);
}

#[tokio::test]
async fn a_redirect_is_final_and_never_followed() {
    let elsewhere = Receiver::start(Vec::new()).await;
    let receiver = Receiver::start(vec![Answer {
        status: 302,
        headers: vec![("location", elsewhere.url("/stolen"))],
        body: String::new(),
    }])
    .await;
    let mut channel = channel(Kind::Webhook, receiver.url("/hook"));
    channel.signing_secret = Some(b"secret".to_vec());
    let failure = attempt_once(&channel, &notice(vec![cpu_critical("web-01")]))
        .await
        .expect_err("302");
    assert!(!failure.retry, "{failure:?}");
    assert!(
        failure.reason.contains("redirects are not followed"),
        "{failure:?}"
    );
    assert_eq!(receiver.calls().len(), 1);
    assert!(
        elsewhere.calls().is_empty(),
        "the redirect was not followed"
    );
}

#[tokio::test]
async fn a_400_is_final() {
    let receiver = Receiver::start(vec![Answer::status(400)]).await;
    let channel = channel(Kind::Discord, receiver.url("/api/webhooks/1/abc"));
    let failure = attempt_once(&channel, &notice(vec![cpu_critical("web-01")])).await;
    assert_eq!(failure, Err(Failure::permanent("HTTP 400")));
}

#[tokio::test]
async fn a_receiver_that_is_not_listening_is_worth_retrying() {
    let url = format!(
        "http://127.0.0.1:{}/hook",
        flick_shared::testkit::free_port()
    );
    let failure = attempt_once(
        &channel(Kind::Webhook, url),
        &notice(vec![cpu_critical("a")]),
    )
    .await
    .expect_err("nobody listens");
    assert!(failure.retry, "{failure:?}");
}

#[tokio::test]
async fn loopback_is_refused_for_every_kind_without_allow_hosts() {
    let receiver = Receiver::start(Vec::new()).await;
    let notice = notice(vec![cpu_critical("web-01")]);
    let no_exceptions = Destinations::new(&[]).expect("a valid policy");
    for kind in Kind::ALL {
        let url = match kind {
            Kind::Email => receiver.base.replace("http://", "smtp://") + "?tls=none",
            Kind::Telegram => receiver.base.clone(),
            _ => receiver.url("/hook"),
        };
        let mut channel = channel(kind, url);
        channel.signing_secret = Some(b"secret".to_vec());
        channel.secret = Some("123:token".into());
        channel.settings = json!({
            "chatId": 1,
            "from": "alerts@flick.test",
            "to": ["ops@flick.test"],
        });
        let failure = send::attempt(&client(), &no_exceptions, &channel, &notice, 1)
            .await
            .expect_err("loopback is refused");
        assert!(!failure.retry, "{kind:?}: {failure:?}");
        assert!(failure.reason.contains("loopback"), "{kind:?}: {failure:?}");
    }
    assert!(
        receiver.calls().is_empty(),
        "no request reached the receiver"
    );
}

#[tokio::test]
async fn fifty_servers_offline_are_counted_and_fit_discord_telegram_and_slack() {
    let notice = fifty_offline();
    let summary = send::summary(&notice);
    assert!(
        summary.starts_with("50 servers offline: web-01, web-02"),
        "{summary}"
    );
    assert!(summary.ends_with("and 45 more"), "{summary}");
    assert!(summary.chars().count() < 120, "{summary}");

    let receiver = Receiver::start(Vec::new()).await;
    let discord = channel(Kind::Discord, receiver.url("/discord"));
    let mut telegram = channel(Kind::Telegram, receiver.url("/telegram"));
    telegram.secret = Some("1:t".into());
    telegram.settings = json!({ "chatId": 1 });
    let slack = channel(Kind::Slack, receiver.url("/slack"));
    for channel in [&discord, &telegram, &slack] {
        attempt_once(channel, &notice).await.expect("delivered");
    }
    let calls = receiver.calls();
    let utf16 = |v: &Value| {
        v.as_str()
            .map(|s| s.encode_utf16().count())
            .expect("a string")
    };

    let discord = calls[0].json();
    assert_eq!(discord["content"], summary);
    assert!(utf16(&discord["content"]) <= 2000);
    assert!(utf16(&discord["embeds"][0]["description"]) <= 4096);
    let telegram = calls[1].json();
    let text = telegram["text"].as_str().expect("a text");
    assert!(utf16(&telegram["text"]) <= 4096);
    assert!(text.starts_with(&summary), "{text}");
    let slack = calls[2].json();
    assert!(utf16(&slack["blocks"][0]["text"]["text"]) <= 3000);

    // Fifty lines do not fit Slack's section: whole lines, then how many were left out.
    let section = slack["blocks"][0]["text"]["text"].as_str().expect("text");
    let shown = section
        .lines()
        .filter(|l| l.contains("CRITICAL firing"))
        .count();
    assert!(shown < 50, "{shown}");
    assert!(
        section.ends_with(&format!("… and {} more", 50 - shown)),
        "{section}"
    );
}

// ---------------------------------------------------------------------------------------------
// E-mail, through a real SMTP server on loopback

/// aiosmtpd running `tests/support/smtp_sink.py`; killed when dropped.
struct SmtpSink {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl SmtpSink {
    /// Starts the server; fails the test if it cannot (install aiosmtpd with
    /// `python3 -m pip install aiosmtpd`).
    fn start(mode: &str, extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/smtp_sink.py");
        let stderr = std::fs::File::create(dir.path().join("stderr.log")).expect("a log file");
        let mut child = Command::new("python3")
            .arg(&script)
            .arg("--dir")
            .arg(dir.path())
            .args(["--mode", mode])
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("python3 runs");
        let stdout = child.stdout.take().expect("a piped stdout");
        let mut line = String::new();
        // The first line is the port, printed once the server listens.
        let read = BufReader::new(stdout).read_line(&mut line);
        let port = match (read, line.trim().parse::<u16>()) {
            (Ok(_), Ok(port)) => port,
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                let log =
                    std::fs::read_to_string(dir.path().join("stderr.log")).unwrap_or_default();
                panic!(
                    "the SMTP server (aiosmtpd) did not start; `python3 -m pip install aiosmtpd`?\n{log}"
                );
            }
        };
        Self { child, port, dir }
    }

    /// The `n`th message received (from 1), as the server's e-mail parser read it.
    async fn message(&self, n: usize) -> Value {
        let path: PathBuf = self.dir.path().join(format!("{n:04}.json"));
        for _ in 0..200 {
            if let Ok(text) = std::fs::read_to_string(&path) {
                return serde_json::from_str(&text).expect("the sink writes JSON");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no message {n} within 10 s");
    }

    fn received(&self) -> usize {
        std::fs::read_dir(self.dir.path())
            .expect("the sink directory")
            .filter_map(Result::ok)
            .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
            .count()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log = std::fs::read_to_string(self.dir.path().join("stderr.log"));
            eprintln!("SMTP server log:\n{}", log.unwrap_or_default());
        }
    }
}

fn email_channel(url: String) -> Channel {
    let mut channel = channel(Kind::Email, url);
    channel.settings = json!({
        "from": "FLick <alerts@flick.test>",
        "to": ["ops@flick.test", "On Call <oncall@flick.test>"],
    });
    channel
}

/// The body as sent, without SMTP's CRLF line ends and the message's final line end.
fn lines(body: &Value) -> String {
    body.as_str()
        .expect("a body")
        .replace("\r\n", "\n")
        .trim_end()
        .to_owned()
}

#[tokio::test]
async fn an_email_over_plain_smtp_has_from_to_subject_message_id_and_body() {
    let sink = SmtpSink::start("plain", &[]);
    let channel = email_channel(format!("smtp://127.0.0.1:{}?tls=none", sink.port));
    let notice = notice(vec![
        cpu_critical("web-01"),
        event(
            "web-02",
            "offline",
            AlertSeverity::Critical,
            AlertState::Firing,
        ),
    ]);

    attempt_once(&channel, &notice).await.expect("delivered");

    let mail = sink.message(1).await;
    assert_eq!(mail["mail_from"], "alerts@flick.test");
    assert_eq!(
        mail["rcpt_tos"],
        json!(["ops@flick.test", "oncall@flick.test"])
    );
    assert_eq!(mail["tls"], false);
    assert_eq!(mail["from"], "FLick <alerts@flick.test>");
    assert_eq!(mail["to"], "ops@flick.test, On Call <oncall@flick.test>");
    assert_eq!(mail["subject"], send::summary(&notice));
    assert_eq!(mail["message_id"], format!("<{}@flick>", notice.id));
    assert_eq!(mail["content_type"], "text/plain");
    assert_eq!(lines(&mail["body"]), send::body_text(&notice).trim_end());
}

#[tokio::test]
async fn smtp_550_is_final_and_451_is_retried() {
    let sink = SmtpSink::start("plain", &[]);
    let url = format!("smtp://127.0.0.1:{}?tls=none", sink.port);
    let notice = notice(vec![cpu_critical("web-01")]);

    let mut refused = email_channel(url.clone());
    refused.settings["to"] = json!(["nobody@flick.test"]);
    let failure = attempt_once(&refused, &notice).await.expect_err("550");
    assert!(!failure.retry, "{failure:?}");
    assert!(failure.reason.starts_with("SMTP 550"), "{failure:?}");
    assert!(
        failure.reason.contains("mailbox unavailable"),
        "{failure:?}"
    );

    let mut later = email_channel(url);
    later.settings["to"] = json!("later@flick.test");
    let failure = attempt_once(&later, &notice).await.expect_err("451");
    assert!(failure.retry, "{failure:?}");
    assert!(failure.reason.starts_with("SMTP 451"), "{failure:?}");
    assert_eq!(sink.received(), 0);
}

#[tokio::test]
async fn an_smtp_server_that_is_not_listening_is_worth_retrying() {
    let url = format!(
        "smtp://127.0.0.1:{}?tls=none",
        flick_shared::testkit::free_port()
    );
    let failure = attempt_once(&email_channel(url), &notice(vec![cpu_critical("web-01")]))
        .await
        .expect_err("nobody listens");
    assert!(failure.retry, "{failure:?}");
}

/// A self-signed certificate for 127.0.0.1: (certificate PEM, its path, key path).
fn certificate(dir: &Path) -> (String, PathBuf, PathBuf) {
    let certified =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).expect("a certificate");
    let cert_pem = certified.cert.pem();
    let cert_path = dir.join("cert.pem");
    let key_path = dir.join("key.pem");
    std::fs::write(&cert_path, &cert_pem).expect("write the certificate");
    std::fs::write(&key_path, certified.key_pair.serialize_pem()).expect("write the key");
    (cert_pem, cert_path, key_path)
}

#[tokio::test]
async fn starttls_is_required_verified_and_carries_the_credentials() {
    let certs = tempfile::tempdir().expect("a temporary directory");
    let (cert_pem, cert, key) = certificate(certs.path());
    let sink = SmtpSink::start(
        "starttls",
        &[
            "--cert",
            cert.to_str().expect("UTF-8 path"),
            "--key",
            key.to_str().expect("UTF-8 path"),
            "--user",
            "flick",
            "--password",
            "smtp-password",
        ],
    );
    let url = format!("smtp://127.0.0.1:{}", sink.port);
    let notice = notice(vec![cpu_critical("web-01")]);

    // Without the private CA the certificate does not verify: final, nothing sent.
    let mut untrusted = email_channel(url.clone());
    untrusted.settings["username"] = "flick".into();
    untrusted.secret = Some("smtp-password".into());
    let failure = attempt_once(&untrusted, &notice)
        .await
        .expect_err("unknown CA");
    assert!(!failure.retry, "{failure:?}");
    assert!(!failure.reason.contains("smtp-password"), "{failure:?}");

    let mut trusted = untrusted.clone();
    trusted.settings["tlsCaPem"] = cert_pem.into();
    attempt_once(&trusted, &notice).await.expect("delivered");
    let mail = sink.message(1).await;
    assert_eq!(mail["tls"], true, "STARTTLS was used");
    assert_eq!(mail["authenticated"], true);
    assert_eq!(mail["login"], "flick");
    assert_eq!(mail["message_id"], format!("<{}@flick>", notice.id));
    assert_eq!(lines(&mail["body"]), send::body_text(&notice).trim_end());

    // The wrong password: the server's 535 is final.
    let mut wrong = trusted.clone();
    wrong.secret = Some("not-it".into());
    let failure = attempt_once(&wrong, &notice).await.expect_err("535");
    assert!(
        !failure.retry && failure.reason.starts_with("SMTP 535"),
        "{failure:?}"
    );
}

#[tokio::test]
async fn smtp_without_starttls_on_the_server_sends_nothing() {
    let sink = SmtpSink::start("plain", &[]);
    // No `?tls=none`: STARTTLS is required, and this server does not offer it.
    let channel = email_channel(format!("smtp://127.0.0.1:{}", sink.port));
    let failure = attempt_once(&channel, &notice(vec![cpu_critical("web-01")]))
        .await
        .expect_err("no STARTTLS");
    assert!(!failure.retry, "{failure:?}");
    assert_eq!(sink.received(), 0);
}

#[tokio::test]
async fn smtps_speaks_tls_from_the_first_byte() {
    let certs = tempfile::tempdir().expect("a temporary directory");
    let (cert_pem, cert, key) = certificate(certs.path());
    let sink = SmtpSink::start(
        "tls",
        &[
            "--cert",
            cert.to_str().expect("UTF-8 path"),
            "--key",
            key.to_str().expect("UTF-8 path"),
        ],
    );
    let mut channel = email_channel(format!("smtps://127.0.0.1:{}", sink.port));
    channel.settings["tlsCaPem"] = cert_pem.into();
    let mut notice = notice(vec![cpu_critical("web-01")]);
    notice.test = true;

    attempt_once(&channel, &notice).await.expect("delivered");

    let mail = sink.message(1).await;
    assert_eq!(mail["tls"], true);
    assert_eq!(mail["subject"], "FLick test notification from channel ops");
    assert!(lines(&mail["body"]).starts_with("This is a test notification"));
}
