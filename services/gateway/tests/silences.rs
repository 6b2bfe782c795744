//! Silences through the API: scoped by ownership like everything else, validated, ended on
//! request; channels of every kind, their tests and what was sent.

mod common;

use reqwest::{Method, StatusCode};
use serde_json::json;

use common::{Gateway, code};

#[tokio::test]
async fn a_user_silences_their_own_servers_only_and_ends_it() {
    let gw = Gateway::start().await;
    // The first account is the admin; Ada and Bob are users.
    let _admin = gw.register("root@example.com").await;
    let ada = gw.register("ada@example.com").await;
    let bob = gw.register("bob@example.com").await;
    gw.create_server(&ada.access, json!({ "id": "ada-web", "name": "web" }))
        .await;

    let (status, silence) = gw
        .post(
            "/api/v1/silences",
            Some(&ada.access),
            json!({ "serverId": "ada-web", "durationSecs": 7200, "comment": "kernel upgrade" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{silence}");
    assert_eq!(silence["status"], "active");
    assert_eq!(silence["author"], "ada@example.com");
    let id = silence["id"].as_str().expect("id").to_owned();

    let (status, body) = gw
        .post(
            "/api/v1/silences",
            Some(&bob.access),
            json!({ "serverId": "ada-web", "durationSecs": 600 }),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "Bob silencing Ada's server: {body}"
    );
    let (_, listed) = gw.get("/api/v1/silences", &bob.access).await;
    assert_eq!(listed, json!([]), "Bob sees none of Ada's silences");
    let (status, _) = gw
        .call(
            Method::DELETE,
            &format!("/api/v1/silences/{id}"),
            Some(&bob.access),
            None,
        )
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "Bob cannot end Ada's silence"
    );

    for (body, field) in [
        (json!({ "serverId": "ada-web" }), "endsAt"),
        (
            json!({ "durationSecs": 60, "endsAt": "2099-01-01T00:00:00Z" }),
            "endsAt",
        ),
        (json!({ "endsAt": "2001-01-01T00:00:00Z" }), "endsAt"),
        (json!({ "durationSecs": 0 }), "durationSecs"),
        (
            json!({ "startsAt": "2098-01-01T00:00:00Z", "endsAt": "2099-01-01T00:00:00Z" }),
            "30 days",
        ),
        (json!({ "metric": "load", "durationSecs": 60 }), "metric"),
        (json!({ "tags": ["a\u{0}b"], "durationSecs": 60 }), "tags"),
    ] {
        let (status, answer) = gw
            .post("/api/v1/silences", Some(&ada.access), body.clone())
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {answer}");
        assert!(
            answer.to_string().contains(field),
            "{body}: {answer} names {field}"
        );
    }

    let (status, _) = gw
        .call(
            Method::DELETE,
            &format!("/api/v1/silences/{id}"),
            Some(&ada.access),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, active) = gw.get("/api/v1/silences", &ada.access).await;
    assert_eq!(active, json!([]), "ended: no longer active");
    let (_, all) = gw.get("/api/v1/silences?expired=true", &ada.access).await;
    assert_eq!(all[0]["status"], "expired", "{all}");
    gw.stop().await;
}

#[tokio::test]
async fn channels_of_every_kind_are_validated_tested_through_the_alerter_and_keep_secrets() {
    let gw = Gateway::start_with(|c| c.notify.allow_hosts = vec!["127.0.0.1".into()]).await;
    let admin = gw.register("root@example.com").await;
    let create = |body: serde_json::Value| {
        gw.post("/api/v1/notification-channels", Some(&admin.access), body)
    };

    let (status, telegram) = create(json!({
        "name": "on-call", "kind": "telegram", "url": "https://api.telegram.org",
        "settings": { "chatId": "-100123" }, "secret": "123456:bot-token-secret",
        "criticalOnly": true, "tags": ["prod"], "repeatSecs": 3600,
    }))
    .await;
    assert_eq!(status, StatusCode::CREATED, "{telegram}");
    assert_eq!(telegram["hasSecret"], true);
    assert_eq!(telegram["criticalOnly"], true);
    assert!(
        !telegram.to_string().contains("bot-token-secret"),
        "the secret is never returned"
    );

    let (status, body) = create(json!({
        "name": "mail", "kind": "email", "url": "smtp://127.0.0.1:2525",
        "settings": { "from": "flick@example.com", "to": ["ops@example.com"] },
    }))
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = create(json!({
        "name": "std", "kind": "standard_webhook", "url": "https://hooks.example.com/x",
        "signingSecret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    }))
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    for (body, field) in [
        (
            json!({ "name": "x", "kind": "pager", "url": "https://a.example" }),
            "kind",
        ),
        (
            json!({ "name": "x", "kind": "telegram", "url": "https://api.telegram.org", "secret": "t" }),
            "chatId",
        ),
        (
            json!({ "name": "x", "kind": "telegram", "url": "https://api.telegram.org", "settings": { "chatId": "1" } }),
            "bot token",
        ),
        (
            json!({ "name": "x", "kind": "email", "url": "https://mail.example", "settings": { "from": "a@b", "to": ["c@d"] } }),
            "smtp://",
        ),
        (
            json!({ "name": "x", "kind": "email", "url": "smtp://mail.example", "settings": { "from": "a@b", "to": [] } }),
            "settings.to",
        ),
        (
            json!({ "name": "x", "kind": "standard_webhook", "url": "https://a.example", "signingSecret": "whsec_!!" }),
            "signingSecret",
        ),
        (
            json!({ "name": "x", "url": "https://a.example", "repeatSecs": 5 }),
            "repeatSecs",
        ),
        (
            json!({ "name": "x", "kind": "email", "url": "smtp://127.0.0.2:25", "settings": { "from": "a@b", "to": ["c@d"] } }),
            "url",
        ),
    ] {
        let (status, answer) = create(body.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {answer}");
        assert!(
            answer.to_string().contains(field),
            "{body}: {answer} names {field}"
        );
    }

    // "Send test": queued for the leading alerter; its notice lists under the channel.
    let id = telegram["id"].as_str().expect("id");
    let (status, queued) = gw
        .post(
            &format!("/api/v1/notification-channels/{id}/test"),
            Some(&admin.access),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{queued}");
    let queued_in_db: i64 =
        sqlx::query_scalar("SELECT count(*) FROM notification_tests WHERE channel_id = $1::uuid")
            .bind(id)
            .fetch_one(&gw.db.pool)
            .await
            .expect("count");
    assert_eq!(queued_in_db, 1);
    let (status, body) = gw
        .post(
            &format!(
                "/api/v1/notification-channels/{}/test",
                uuid::Uuid::new_v4()
            ),
            Some(&admin.access),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, listed) = gw
        .get(
            &format!("/api/v1/notification-channels/{id}/notifications"),
            &admin.access,
        )
        .await;
    assert_eq!(
        (status, listed),
        (StatusCode::OK, json!([])),
        "nothing sent yet (no alerter runs here)"
    );
    let user = gw.register("ada@example.com").await;
    let (status, body) = gw
        .post(
            &format!("/api/v1/notification-channels/{id}/test"),
            Some(&user.access),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(code(&body), "forbidden");
    gw.stop().await;
}
