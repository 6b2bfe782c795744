//! The threshold preview through HTTP: a rule replayed over stored samples gives the alerts the
//! alerter would have fired; the defaults shown are the ones the alerter recorded.

mod common;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use common::{Gateway, code};

const PREVIEW: &str = "/api/v1/servers/web-1/thresholds/preview";

/// `web-1`'s CPU at 1 Hz from 10:00:00: 50 % for 60 s, 95 % for 30 s, 50 % for 60 s.
async fn store_a_hot_half_minute(gw: &Gateway) {
    sqlx::query(
        "INSERT INTO metrics (server_id, ts, cpu, memory, disk, network)
         SELECT 'web-1', TIMESTAMPTZ '2026-11-24 10:00:00+00' + n * interval '1 second',
                CASE WHEN n BETWEEN 60 AND 89 THEN 95 ELSE 50 END, 40, 50, 0
         FROM generate_series(0, 149) AS n",
    )
    .execute(&gw.db.pool)
    .await
    .expect("samples");
}

fn body(rule: Value) -> Value {
    json!({ "metric": "cpu", "rule": rule, "from": "2026-11-24T10:00:00Z", "to": "2026-11-24T11:00:00Z" })
}

/// `(severity, firedAt, resolvedAt, peak, threshold)` of each alert.
fn alerts(preview: &Value) -> Vec<(String, String, Value, f64, f64)> {
    preview["alerts"]
        .as_array()
        .expect("alerts")
        .iter()
        .map(|a| {
            (
                a["severity"].as_str().expect("severity").to_owned(),
                a["firedAt"].as_str().expect("firedAt").to_owned(),
                a["resolvedAt"].clone(),
                a["peak"].as_f64().expect("peak"),
                a["threshold"].as_f64().expect("threshold"),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_preview_replays_the_rule_over_stored_samples_with_the_right_times() {
    let gw = Gateway::start().await;
    let _admin = gw.register("admin@example.com").await;
    let ada = gw.register("ada@example.com").await;
    gw.create_server(&ada.access, json!({ "id": "web-1", "name": "web" }))
        .await;
    store_a_hot_half_minute(&gw).await;

    let rule =
        json!({ "warning": 80, "critical": 90, "forSecs": 10, "margin": 5, "enabled": true });
    let (status, preview) = gw.post(PREVIEW, Some(&ada.access), body(rule)).await;
    assert_eq!(status, StatusCode::OK, "{preview}");
    assert_eq!(preview["samples"], 150);
    assert_eq!(
        alerts(&preview),
        [
            (
                "warning".to_owned(),
                "2026-11-24T10:01:10Z".to_owned(),
                json!("2026-11-24T10:01:30Z"),
                95.0,
                80.0
            ),
            (
                "critical".to_owned(),
                "2026-11-24T10:01:10Z".to_owned(),
                json!("2026-11-24T10:01:30Z"),
                95.0,
                90.0
            ),
        ],
        "95 from 10:01:00 held 10 s fires at 10:01:10; 50 at 10:01:30 resolves: {preview}"
    );
    let states: Vec<(&str, &str)> = preview["transitions"]
        .as_array()
        .expect("transitions")
        .iter()
        .map(|t| {
            (
                t["severity"].as_str().unwrap_or(""),
                t["state"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        states,
        [
            ("warning", "firing"),
            ("critical", "firing"),
            ("critical", "resolved"),
            ("warning", "resolved")
        ]
    );
    assert_eq!(preview["rule"]["source"], "default");

    // Omitted fields are the rule in force: this server's override holds for 30 s, and 95 %
    // lasted only 30 samples (29 s from the first to the last), so nothing would fire.
    let (status, _) = gw
        .call(
            Method::PUT,
            "/api/v1/servers/web-1/thresholds",
            Some(&ada.access),
            Some(json!({ "cpu": { "warning": 80, "critical": 90, "forSecs": 30 } })),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, preview) = gw
        .post(PREVIEW, Some(&ada.access), body(json!({ "warning": 85 })))
        .await;
    assert_eq!(status, StatusCode::OK, "{preview}");
    assert_eq!(
        (
            preview["rule"]["forSecs"].clone(),
            preview["rule"]["source"].clone()
        ),
        (json!(30), json!("server"))
    );
    assert_eq!(preview["alerts"], json!([]));
    let (status, preview) = gw
        .post(PREVIEW, Some(&ada.access), body(json!({ "forSecs": 29 })))
        .await;
    assert_eq!(status, StatusCode::OK, "{preview}");
    assert_eq!(alerts(&preview).len(), 2, "held 29 s fires with forSecs 29");
    // An alert still firing at the end of the range has no resolution.
    let (_, preview) = gw
        .post(
            PREVIEW,
            Some(&ada.access),
            json!({ "metric": "cpu", "rule": { "forSecs": 0 }, "from": "2026-11-24T10:00:00Z", "to": "2026-11-24T10:01:20Z" }),
        )
        .await;
    assert_eq!(preview["samples"], 80);
    assert_eq!(preview["alerts"][0]["firedAt"], "2026-11-24T10:01:00Z");
    assert_eq!(preview["alerts"][0]["resolvedAt"], Value::Null);
    gw.stop().await;
}

#[tokio::test]
async fn a_temperature_rule_is_previewed_on_the_hottest_stored_sensor() {
    let gw = Gateway::start().await;
    let ada = gw.register("ada@example.com").await;
    gw.create_server(&ada.access, json!({ "id": "web-1", "name": "web" }))
        .await;
    // Two sensors; the second reaches 110 °C from 10:01:00 for 30 s. Samples without sensors
    // in between change nothing.
    sqlx::query(
        "INSERT INTO metrics (server_id, ts, cpu, memory, disk, network, temperatures)
         SELECT 'web-1', TIMESTAMPTZ '2026-11-24 10:00:00+00' + n * interval '1 second', 10, 40, 50, 0,
                CASE WHEN n BETWEEN 40 AND 49 THEN NULL ELSE json_build_array(
                    json_build_object('label', 'acpitz', 'celsius', 40),
                    json_build_object('label', 'coretemp', 'celsius',
                        CASE WHEN n BETWEEN 60 AND 89 THEN 110 ELSE 55 END)) END
         FROM generate_series(0, 149) AS n",
    )
    .execute(&gw.db.pool)
    .await
    .expect("samples with sensors");
    let (status, preview) = gw
        .post(
            PREVIEW,
            Some(&ada.access),
            json!({ "metric": "temperature", "rule": { "warning": 80, "critical": 105, "forSecs": 0 },
                    "from": "2026-11-24T10:00:00Z", "to": "2026-11-24T11:00:00Z" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{preview}");
    assert_eq!(
        alerts(&preview),
        [
            (
                "warning".to_owned(),
                "2026-11-24T10:01:00Z".to_owned(),
                json!("2026-11-24T10:01:30Z"),
                110.0,
                80.0
            ),
            (
                "critical".to_owned(),
                "2026-11-24T10:01:00Z".to_owned(),
                json!("2026-11-24T10:01:30Z"),
                110.0,
                105.0
            ),
        ],
        "{preview}"
    );
    gw.stop().await;
}

#[tokio::test]
async fn another_users_server_is_404_and_bad_ranges_and_rules_are_422_naming_the_field() {
    let gw = Gateway::start().await;
    let admin = gw.register("admin@example.com").await;
    let ada = gw.register("ada@example.com").await;
    let bob = gw.register("bob@example.com").await;
    gw.create_server(&ada.access, json!({ "id": "web-1", "name": "web" }))
        .await;
    store_a_hot_half_minute(&gw).await;

    let (status, refusal) = gw.post(PREVIEW, Some(&bob.access), body(json!({}))).await;
    assert_eq!(
        (status, code(&refusal)),
        (StatusCode::NOT_FOUND, "not_found")
    );
    let (status, _) = gw
        .post(
            "/api/v1/servers/nope/thresholds/preview",
            Some(&ada.access),
            body(json!({})),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "unknown looks like forbidden"
    );
    let (status, preview) = gw.post(PREVIEW, Some(&admin.access), body(json!({}))).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "an admin sees every server: {preview}"
    );
    assert_eq!(alerts(&preview).len(), 2, "the defaults: 80/90 for 10 s");

    let range = |from: &str, to: &str| json!({ "metric": "cpu", "from": from, "to": to });
    for (request, field) in [
        (range("2026-11-24T10:00:00Z", "2026-11-25T10:00:01Z"), "to:"),
        (range("2026-11-24T11:00:00Z", "2026-11-24T10:00:00Z"), "to:"),
        (range("2026-11-24T10:00:00Z", "2026-11-24T10:00:00Z"), "to:"),
        (range("an hour ago", "2026-11-24T10:00:00Z"), "from:"),
        (
            json!({ "metric": "offline", "from": "2026-11-24T10:00:00Z", "to": "2026-11-24T11:00:00Z" }),
            "metric:",
        ),
        (
            json!({ "metric": "swap", "from": "2026-11-24T10:00:00Z", "to": "2026-11-24T11:00:00Z" }),
            "metric:",
        ),
        (
            body(json!({ "warning": 95, "critical": 90 })),
            "rule.warning",
        ),
        (body(json!({ "critical": 101 })), "rule.critical"),
        (body(json!({ "forSecs": 86401 })), "rule.forSecs"),
        (body(json!({ "margin": 70 })), "rule.margin"),
    ] {
        let (status, refusal) = gw.post(PREVIEW, Some(&ada.access), request.clone()).await;
        assert_eq!(
            (status, code(&refusal)),
            (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
            "{request}: {refusal}"
        );
        let message = refusal["error"]["message"].as_str().unwrap_or_default();
        assert!(message.starts_with(field), "{request}: {message}");
    }
    let (status, _) = gw
        .post(
            PREVIEW,
            Some(&ada.access),
            json!({ "metric": "cpu", "from": "2026-11-24T10:00:00Z" }),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "to is required");
    gw.stop().await;
}

#[tokio::test]
async fn thresholds_show_the_defaults_the_alerter_recorded_else_the_built_in_ones() {
    let gw = Gateway::start().await;
    let ada = gw.register("ada@example.com").await;
    gw.create_server(&ada.access, json!({ "id": "web-1", "name": "web" }))
        .await;
    let (_, rules) = gw
        .get("/api/v1/servers/web-1/thresholds", &ada.access)
        .await;
    assert_eq!(
        (
            rules["defaultsFrom"].clone(),
            rules["defaultsRecordedAt"].clone()
        ),
        (json!("built-in"), Value::Null)
    );
    assert_eq!(rules["rules"]["cpu"]["warning"], 80.0);

    // What an alerter configured with cpu 60/70, for 20 s, margin 3 records at start.
    sqlx::query(
        "INSERT INTO alert_defaults (metric, warning, critical, for_secs, margin, enabled, recorded_by)
         VALUES ('cpu', 60, 70, 20, 3, true, 'alerter-a:1'), ('memory', 80, 90, 20, 3, true, 'alerter-a:1'),
                ('disk', 85, 95, 20, 3, true, 'alerter-a:1'), ('offline', NULL, NULL, 45, 0, true, 'alerter-a:1')",
    )
    .execute(&gw.db.pool)
    .await
    .expect("recorded defaults");
    let (_, rules) = gw
        .get("/api/v1/servers/web-1/thresholds", &ada.access)
        .await;
    assert_eq!(rules["defaultsFrom"], "alerter");
    assert!(rules["defaultsRecordedAt"].is_string(), "{rules}");
    assert_eq!(
        rules["rules"]["cpu"],
        json!({ "warning": 60.0, "critical": 70.0, "forSecs": 20, "margin": 3.0, "enabled": true, "source": "default" })
    );
    assert_eq!(rules["rules"]["offline"]["forSecs"], 45);

    // An override without a margin resolves with the recorded default's; a change is checked
    // against the recorded defaults (warning 75 is above their critical 70).
    let (status, rules) = gw
        .call(
            Method::PUT,
            "/api/v1/servers/web-1/thresholds",
            Some(&ada.access),
            Some(json!({ "cpu": { "forSecs": 5 } })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{rules}");
    assert_eq!(
        (
            rules["rules"]["cpu"]["margin"].clone(),
            rules["rules"]["cpu"]["warning"].clone()
        ),
        (json!(3.0), json!(60.0))
    );
    let (status, refusal) = gw
        .call(
            Method::PUT,
            "/api/v1/servers/web-1/thresholds",
            Some(&ada.access),
            Some(json!({ "cpu": { "warning": 75 } })),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refusal}");
    assert_eq!(
        refusal["error"]["message"],
        "cpu: warning must not be above critical"
    );
    gw.stop().await;
}
