//! Malformed and invalid messages: dead-lettered with their reason, never blocking valid ones.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::{Harness, samples};
use flick_shared::deadletter::{REASON_HEADER, SUBJECT_HEADER};
use flick_shared::subjects::StreamKind;
use flick_shared::testkit;
use flick_shared::wire::ServerId;

#[tokio::test]
async fn valid_samples_are_stored_and_every_malformed_one_is_dead_lettered_with_its_reason() {
    let harness = Harness::new().await;
    let mut dead = harness
        .client
        .subscribe(harness.subjects.deadletter("persister"))
        .await
        .expect("subscribe to dead letters");
    harness.client.flush().await.expect("flush");

    let valid = samples(10, 50);
    let good = serde_json::to_value(&valid[0]).expect("json");
    let with = |field: &str, value: serde_json::Value| {
        let mut json = good.clone();
        json[field] = value;
        serde_json::to_vec(&json).expect("json")
    };
    let subject_a = harness
        .subjects
        .metrics(&ServerId::parse("host-a").expect("valid"));
    let own_subject = harness.subjects.metrics(&valid[0].server_id);
    let mut missing = good.clone();
    missing.as_object_mut().expect("object").remove("cpuUsage");
    let future = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let huge = format!("{{\"v\":1,\"padding\":\"{}\"}}", "x".repeat(900_000));

    // (subject, payload, expected reason kind)
    let refused: Vec<(String, Vec<u8>, &str)> = vec![
        (
            subject_a.clone(),
            b"not json at all".to_vec(),
            "malformed_json",
        ),
        (
            subject_a.clone(),
            vec![0xff, 0x00, 0x13, 0x37, 0xfe],
            "malformed_json",
        ),
        (
            own_subject.clone(),
            with("v", 2.into()),
            "unsupported_version",
        ),
        (
            subject_a.clone(),
            serde_json::to_vec(&good).expect("json"),
            "subject_mismatch",
        ),
        (own_subject.clone(), with("cpuUsage", 150.into()), "invalid"),
        (
            own_subject.clone(),
            with("timestamp", future.into()),
            "invalid",
        ),
        (
            own_subject.clone(),
            serde_json::to_vec(&missing).expect("json"),
            "malformed_json",
        ),
        (
            own_subject.clone(),
            with("cpuUsage", "very high".into()),
            "malformed_json",
        ),
        (own_subject.clone(), huge.into_bytes(), "malformed_json"),
    ];
    let persister = harness.start(harness.config());
    // Interleave: refused messages arrive in the middle of valid traffic.
    let (first, second) = valid.split_at(250);
    harness.publish(first).await;
    for (subject, payload, _) in &refused {
        harness.publish_raw(subject.clone(), payload.clone()).await;
    }
    harness.publish(second).await;

    harness
        .wait_for_rows("metrics", 500, Duration::from_secs(60))
        .await;
    let mut seen: HashMap<Vec<u8>, (String, String)> = HashMap::new();
    for _ in 0..refused.len() {
        let message = testkit::next_message(&mut dead, Duration::from_secs(10)).await;
        let headers = message.headers.expect("dead letters carry headers");
        let reason = headers
            .get(REASON_HEADER)
            .expect("reason header")
            .to_string();
        let subject = headers
            .get(SUBJECT_HEADER)
            .expect("subject header")
            .to_string();
        seen.insert(message.payload.to_vec(), (reason, subject));
    }
    for (subject, payload, kind) in &refused {
        let (reason, original) = seen
            .get(payload)
            .unwrap_or_else(|| panic!("{kind} message not dead-lettered"));
        assert!(reason.starts_with(kind), "expected {kind}, got {reason}");
        assert_eq!(original, subject);
    }
    // Refused messages were acknowledged: nothing stays pending.
    harness.wait_all_acked().await;
    let stream = harness.subjects.stream_name(StreamKind::Metrics);
    assert!(harness.js.get_stream(&stream).await.is_ok());
    persister.stop().await;
}
