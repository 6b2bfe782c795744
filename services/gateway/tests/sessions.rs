//! Sessions end when they should: logout, a deleted or disabled account and a demoted admin
//! take effect within seconds on REST and on the live socket, not when the 15-minute access
//! token expires; and two refreshes of one token at once leave no usable token behind.

mod common;

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use common::ws::{closed, expect, open};
use common::{Gateway, PASSWORD, Session, code};

/// Within this long of a change, every request must see it.
const EFFECTIVE_WITHIN: Duration = Duration::from_secs(5);

/// Polls `GET path` with `token` until it answers `status`; how long that took.
async fn until_status(gw: &Gateway, path: &str, token: &str, status: StatusCode) -> Duration {
    let started = Instant::now();
    loop {
        let (now, body) = gw.get(path, token).await;
        if now == status {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < EFFECTIVE_WITHIN,
            "{path} still {now} ({body}) after {EFFECTIVE_WITHIN:?}; expected {status}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn login(gw: &Gateway, email: &str) -> Session {
    let (status, body) = gw
        .post(
            "/api/v1/auth/login",
            None,
            json!({ "email": email, "password": PASSWORD }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    Session::from(body)
}

#[tokio::test]
async fn logout_ends_the_access_token_and_the_live_socket_within_seconds() {
    let gw = Gateway::start().await;
    let ada = gw.register("ada@example.com").await;
    let other = login(&gw, "ada@example.com").await;
    let mut socket = open(&gw, Some(&ada.access), None).await.expect("upgrade");

    // Logging out with the access token alone ends its session …
    let (status, _) = gw
        .post("/api/v1/auth/logout", Some(&ada.access), json!({}))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let took = until_status(
        &gw,
        "/api/v1/auth/me",
        &ada.access,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    let (close, reason) = closed(&mut socket, EFFECTIVE_WITHIN).await;
    assert_eq!(close, CloseCode::Policy, "{reason}");
    assert!(reason.contains("session"), "{reason}");
    let (status, _) = gw
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({ "refreshToken": ada.refresh }),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "its refresh token too");
    // … and only it: the other login keeps working.
    let (status, _) = gw.get("/api/v1/auth/me", &other.access).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "another session of the same account"
    );

    // Logging out with the refresh token ends that session as well.
    let (status, _) = gw
        .post(
            "/api/v1/auth/logout",
            None,
            json!({ "refreshToken": other.refresh }),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    until_status(
        &gw,
        "/api/v1/auth/me",
        &other.access,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    eprintln!("logout effective after {took:?}");
    gw.stop().await;
}

#[tokio::test]
async fn a_demoted_admin_a_disabled_and_a_deleted_account_lose_access_within_seconds() {
    let gw = Gateway::start().await;
    let _first = gw.register("first@example.com").await;
    let bob = gw.register("bob@example.com").await;
    let carol = gw.register("carol@example.com").await;
    let admin_route = "/api/v1/notification-channels";
    let (status, _) = gw.get(admin_route, &bob.access).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Promoted, then demoted, by hand in the database: the token issued to a user follows.
    sqlx::query("UPDATE users SET role = 'admin' WHERE email = 'bob@example.com'")
        .execute(&gw.db.pool)
        .await
        .expect("promote");
    until_status(&gw, admin_route, &bob.access, StatusCode::OK).await;
    let mut socket = open(&gw, Some(&bob.access), None).await.expect("upgrade");
    sqlx::query("UPDATE users SET role = 'user' WHERE email = 'bob@example.com'")
        .execute(&gw.db.pool)
        .await
        .expect("demote");
    let demoted = until_status(&gw, admin_route, &bob.access, StatusCode::FORBIDDEN).await;
    let (status, me) = gw.get("/api/v1/auth/me", &bob.access).await;
    assert_eq!(
        (status, me["role"].as_str()),
        (StatusCode::OK, Some("user"))
    );

    // Disabled: refused everywhere, login included, with the same answer as a wrong password.
    sqlx::query("UPDATE users SET disabled_at = now() WHERE email = 'bob@example.com'")
        .execute(&gw.db.pool)
        .await
        .expect("disable");
    until_status(
        &gw,
        "/api/v1/auth/me",
        &bob.access,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    let (close, reason) = closed(&mut socket, EFFECTIVE_WITHIN).await;
    assert_eq!(close, CloseCode::Policy, "{reason}");
    let (status, body) = gw
        .post(
            "/api/v1/auth/login",
            None,
            json!({ "email": "bob@example.com", "password": PASSWORD }),
        )
        .await;
    assert_eq!(
        (status, body["error"]["message"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid email or password"))
    );
    let (status, _) = gw
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({ "refreshToken": bob.refresh }),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Deleted.
    sqlx::query("DELETE FROM users WHERE email = 'carol@example.com'")
        .execute(&gw.db.pool)
        .await
        .expect("delete");
    let deleted = until_status(
        &gw,
        "/api/v1/servers",
        &carol.access,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    eprintln!("demotion effective after {demoted:?}, deletion after {deleted:?}");
    gw.stop().await;
}

#[tokio::test]
async fn a_changed_role_reaches_the_live_socket_of_the_session() {
    let gw = Gateway::start().await;
    let _first = gw.register("first@example.com").await;
    let bob = gw.register("bob@example.com").await;
    sqlx::query("UPDATE users SET role = 'admin' WHERE email = 'bob@example.com'")
        .execute(&gw.db.pool)
        .await
        .expect("promote");
    until_status(
        &gw,
        "/api/v1/notification-channels",
        &bob.access,
        StatusCode::OK,
    )
    .await;
    let mut socket = open(&gw, Some(&bob.access), None).await.expect("upgrade");
    common::ws::send(
        &mut socket,
        json!({ "type": "auth", "data": { "token": bob.access }, "id": 1 }),
    )
    .await;
    let ack = expect(&mut socket, "ack").await;
    assert_eq!(
        ack["data"]["role"], "admin",
        "the role now, not the token's: {ack}"
    );
    gw.stop().await;
}

#[tokio::test]
async fn two_refreshes_of_one_token_at_once_leave_no_token_that_works() {
    // 40 logins and 120 refreshes from one address: budgets out of the way.
    let gw = Gateway::start_with(|c| c.gateway.auth_burst = 1_000).await;
    gw.register("ada@example.com").await;
    let runs = 40;
    let mut survivors = Vec::new();
    let mut both_won = 0;
    for run in 0..runs {
        let session = login(&gw, "ada@example.com").await;
        let refresh = || {
            gw.post(
                "/api/v1/auth/refresh",
                None,
                json!({ "refreshToken": session.refresh }),
            )
        };
        let (a, b) = tokio::join!(refresh(), refresh());
        let winners: Vec<Session> = [a, b]
            .into_iter()
            .filter(|(status, _)| *status == StatusCode::OK)
            .map(|(_, body)| Session::from(body))
            .collect();
        if winners.len() > 1 {
            both_won += 1;
        }
        for winner in winners {
            // Reuse was detected (the loser presented a used token): the winner's session is
            // over, its new refresh token and its access token with it.
            let (status, body) = gw
                .post(
                    "/api/v1/auth/refresh",
                    None,
                    json!({ "refreshToken": winner.refresh }),
                )
                .await;
            let deadline = Instant::now() + EFFECTIVE_WITHIN;
            let mut access_works = true;
            while access_works && Instant::now() < deadline {
                access_works = gw.get("/api/v1/auth/me", &winner.access).await.0 == StatusCode::OK;
                if access_works {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
            if status == StatusCode::OK || access_works {
                survivors.push((run, status, code(&body).to_owned(), access_works));
            }
        }
    }
    eprintln!(
        "{runs} runs of two concurrent refreshes: {} survivors",
        survivors.len()
    );
    assert_eq!(both_won, 0, "one refresh token rotated twice");
    assert!(
        survivors.is_empty(),
        "tokens still working after reuse: {survivors:?}"
    );
    gw.stop().await;
}

/// A page reloaded while its refresh was in flight: the gateway rotated the token, the answer
/// (and its cookie) never arrived, and the reloaded page presents the old token again. With
/// the attempt id it kept, that is a retry, not a theft; without it, or too late, or after the
/// new token was used, it is reuse.
#[tokio::test]
async fn a_refresh_whose_answer_was_lost_can_be_retried_with_its_attempt_id() {
    let gw = Gateway::start_with(|c| c.gateway.auth_burst = 1_000).await;
    gw.register("ada@example.com").await;
    let refresh = |token: String, attempt: Option<&'static str>| {
        let body = match attempt {
            Some(attempt) => json!({ "refreshToken": token, "attempt": attempt }),
            None => json!({ "refreshToken": token }),
        };
        gw.post("/api/v1/auth/refresh", None, body)
    };
    let ended = |session: &Session| {
        let token = session.access.clone();
        let gw = &gw;
        async move { until_status(gw, "/api/v1/auth/me", &token, StatusCode::UNAUTHORIZED).await }
    };
    const ATTEMPT: &str = "6f1c2a9e-4b7d-4e0a-9c3f-2d8e5b1a7c40";

    // The retry gets working tokens; the lost ones stop working; the session lives on.
    let first = login(&gw, "ada@example.com").await;
    let (status, lost) = refresh(first.refresh.clone(), Some(ATTEMPT)).await;
    assert_eq!(status, StatusCode::OK, "{lost}");
    let lost = Session::from(lost);
    let (status, retried) = refresh(first.refresh.clone(), Some(ATTEMPT)).await;
    assert_eq!(status, StatusCode::OK, "the retry: {retried}");
    let retried = Session::from(retried);
    assert_eq!(retried.session_id, first.session_id, "the same session");
    let (status, body) = refresh(lost.refresh.clone(), None).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "the lost answer's token: {body}"
    );
    let (status, body) = refresh(retried.refresh.clone(), Some(ATTEMPT)).await;
    assert_eq!(status, StatusCode::OK, "the retry's token works: {body}");
    let next = Session::from(body);
    assert_eq!(
        gw.get("/api/v1/auth/me", &next.access).await.0,
        StatusCode::OK
    );

    // A second use without the attempt id, or with another one, is reuse: the session ends.
    for other in [None, Some("another-attempt-0000-0000")] {
        let session = login(&gw, "ada@example.com").await;
        let (status, body) = refresh(session.refresh.clone(), Some(ATTEMPT)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let winner = Session::from(body);
        let (status, body) = refresh(session.refresh.clone(), other).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{other:?}: {body}");
        assert_eq!(code(&body), "unauthorized");
        let (status, _) = refresh(winner.refresh.clone(), None).await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "{other:?}: the session ended"
        );
        ended(&winner).await;
    }

    // Once the new token was used, the old one is stale whatever the id: reuse.
    let session = login(&gw, "ada@example.com").await;
    let (_, body) = refresh(session.refresh.clone(), Some(ATTEMPT)).await;
    let used = Session::from(body);
    let (status, body) = refresh(used.refresh.clone(), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let latest = Session::from(body);
    let (status, _) = refresh(session.refresh.clone(), Some(ATTEMPT)).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "a retry after the new token was used"
    );
    ended(&latest).await;

    // Later than 60 s after the first use: reuse.
    let session = login(&gw, "ada@example.com").await;
    let (_, body) = refresh(session.refresh.clone(), Some(ATTEMPT)).await;
    let winner = Session::from(body);
    sqlx::query("UPDATE refresh_tokens SET used_at = used_at - interval '61 seconds' WHERE used_at IS NOT NULL")
        .execute(&gw.db.pool)
        .await
        .expect("age the use");
    let (status, _) = refresh(session.refresh.clone(), Some(ATTEMPT)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "a retry 61 s later");
    ended(&winner).await;

    // An attempt id that is not one: 422 naming it.
    let session = login(&gw, "ada@example.com").await;
    let (status, body) = gw
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({ "refreshToken": session.refresh, "attempt": "short" }),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body.to_string().contains("attempt"), "{body}");
    gw.stop().await;
}
