//! Budgets that cannot be stepped around: an IPv6 /64 is one client, a client cannot choose its
//! own `X-Forwarded-For`, refreshes are limited, all clients together meet a global login
//! budget, and live connections are capped per user and per address.

mod common;

use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use common::ws::{closed, expect, send};
use common::{Gateway, code};

/// A login attempt with `forwarded` as `X-Forwarded-For`; its status.
async fn login_from(gw: &Gateway, forwarded: &str) -> StatusCode {
    gw.http
        .post(format!("{}/api/v1/auth/login", gw.base))
        .header("x-forwarded-for", forwarded)
        .json(&json!({ "email": "nobody@example.com", "password": "wrong password" }))
        .send()
        .await
        .expect("send")
        .status()
}

/// How many of `forwarded`'s attempts (in order) were refused with 429.
async fn refused(gw: &Gateway, forwarded: &[String]) -> Vec<usize> {
    let mut refused = Vec::new();
    for (i, header) in forwarded.iter().enumerate() {
        if login_from(gw, header).await == StatusCode::TOO_MANY_REQUESTS {
            refused.push(i);
        }
    }
    refused
}

#[tokio::test]
async fn one_ipv6_64_and_one_proxied_client_get_one_budget_whatever_they_write() {
    let gw = Gateway::start_with(|c| {
        c.gateway.trust_forwarded_for = true;
        c.gateway.trusted_proxies = 1;
    })
    .await;
    // Eight addresses of one /64: the budget (a burst of 5) is theirs together.
    let v6: Vec<String> = (1..=8).map(|n| format!("2001:db8:7:1::{n:x}")).collect();
    assert_eq!(
        refused(&gw, &v6).await,
        vec![5, 6, 7],
        "one /64, one budget"
    );
    // Another /64 has its own.
    assert!(
        refused(&gw, &["2001:db8:7:2::1".to_owned()])
            .await
            .is_empty()
    );

    // The client writes whatever it likes on the left; the proxy appends what it saw.
    let spoofed: Vec<String> = (1..=8)
        .map(|n| format!("10.9.9.{n}, 203.0.113.50"))
        .collect();
    assert_eq!(
        refused(&gw, &spoofed).await,
        vec![5, 6, 7],
        "the right-most hop counts"
    );
    gw.stop().await;

    let two_proxies = Gateway::start_with(|c| {
        c.gateway.trust_forwarded_for = true;
        c.gateway.trusted_proxies = 2;
    })
    .await;
    let through_two: Vec<String> = (1..=8)
        .map(|n| format!("10.9.9.{n}, 203.0.113.60, 10.0.0.{n}"))
        .collect();
    assert_eq!(
        refused(&two_proxies, &through_two).await,
        vec![5, 6, 7],
        "two proxies: the second from the right"
    );
    two_proxies.stop().await;
}

#[tokio::test]
async fn forwarded_for_is_ignored_unless_trusted() {
    let gw = Gateway::start().await;
    let rotated: Vec<String> = (1..=8).map(|n| format!("198.51.100.{n}")).collect();
    assert_eq!(
        refused(&gw, &rotated).await,
        vec![5, 6, 7],
        "one peer, whatever X-Forwarded-For says"
    );
    gw.stop().await;
}

#[tokio::test]
async fn many_addresses_together_meet_the_global_login_budget() {
    let gw = Gateway::start_with(|c| {
        c.gateway.trust_forwarded_for = true;
        c.gateway.auth_global_burst = 10;
        c.gateway.auth_global_per_second = 1;
    })
    .await;
    let many: Vec<String> = (1..=40).map(|n| format!("192.0.2.{n}")).collect();
    let refused = refused(&gw, &many).await;
    assert!(
        (25..=30).contains(&refused.len()),
        "40 attempts from 40 addresses, a global burst of 10: {refused:?}"
    );
    gw.stop().await;
}

#[tokio::test]
async fn refreshes_are_limited_per_address() {
    let gw = Gateway::start().await;
    let mut statuses = Vec::new();
    for _ in 0..12 {
        let (status, body): (StatusCode, Value) = gw
            .post(
                "/api/v1/auth/refresh",
                None,
                json!({ "refreshToken": "guessed-token" }),
            )
            .await;
        statuses.push((status, code(&body).to_owned()));
    }
    assert!(
        statuses[..10]
            .iter()
            .all(|(s, _)| *s == StatusCode::UNAUTHORIZED),
        "{statuses:?}"
    );
    assert!(
        statuses[10..]
            .iter()
            .all(|(s, c)| *s == StatusCode::TOO_MANY_REQUESTS && c == "rate_limited"),
        "a burst of 10, then 429: {statuses:?}"
    );
    gw.stop().await;
}

#[tokio::test]
async fn live_connections_are_capped_per_address_and_per_user() {
    let gw = Gateway::start_with(|c| {
        c.gateway.trust_forwarded_for = true;
        c.gateway.ws_max_per_address = 3;
        c.gateway.ws_max_per_user = 2;
    })
    .await;
    let ada = gw.register("ada@example.com").await;
    let connect = |from: &'static str| {
        let mut request = format!("ws://{}/api/v1/ws", gw.address)
            .into_client_request()
            .expect("request");
        request
            .headers_mut()
            .insert("x-forwarded-for", from.parse().expect("header"));
        tokio_tungstenite::connect_async(request)
    };
    // Per address: three unauthenticated sockets, then 429 at the upgrade.
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(connect("192.0.2.10").await.expect("upgrade").0);
    }
    match connect("192.0.2.10").await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS)
        }
        other => panic!("a fourth socket from one address: {:?}", other.map(|_| ())),
    }
    drop(held);

    // Per user: two authenticated sockets (from different addresses), the third is closed.
    // One after the other: sent together, which of the three the gateway counts third is a race.
    let mut sockets = Vec::new();
    for from in ["192.0.2.21", "192.0.2.22", "192.0.2.23"] {
        let (mut socket, _) = connect(from).await.expect("upgrade");
        send(
            &mut socket,
            json!({ "type": "auth", "data": { "token": ada.access }, "id": 1 }),
        )
        .await;
        if sockets.len() < 2 {
            expect(&mut socket, "ack").await;
        }
        sockets.push(socket);
    }
    let (close, reason) = closed(&mut sockets[2], std::time::Duration::from_secs(5)).await;
    assert_eq!(close, CloseCode::Again, "{reason}");
    assert!(reason.contains("too many"), "{reason}");
    // A closed socket gives its place back.
    drop(sockets.remove(0));
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let (mut again, _) = connect("192.0.2.24").await.expect("upgrade");
    send(
        &mut again,
        json!({ "type": "auth", "data": { "token": ada.access }, "id": 2 }),
    )
    .await;
    expect(&mut again, "ack").await;
    gw.stop().await;
}
