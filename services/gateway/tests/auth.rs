//! Accounts and tokens: registration, login, refresh rotation with reuse detection, logout,
//! forged tokens, and the login rate limit.

mod common;

use base64::Engine as _;
use reqwest::{Method, StatusCode};
use serde_json::json;

use common::{Gateway, JWT_SECRET, PASSWORD, Session, code};

#[tokio::test]
async fn the_first_account_is_admin_the_next_are_users_and_emails_are_normalised() {
    let gw = Gateway::start().await;
    let admin = gw.register("  Ada@Example.com ").await;
    assert_eq!(admin.role, "admin");
    let user = gw.register("bob@example.com").await;
    assert_eq!(user.role, "user");

    let (status, body) = gw
        .post(
            "/api/v1/auth/register",
            None,
            json!({ "email": "ADA@example.COM", "password": PASSWORD }),
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::CONFLICT, "conflict"),
        "the same address, differently written"
    );
    let (status, body) = gw
        .post(
            "/api/v1/auth/register",
            None,
            json!({ "email": "not-an-email", "password": PASSWORD }),
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed")
    );
    let (status, body) = gw
        .post(
            "/api/v1/auth/register",
            None,
            json!({ "email": "c@example.com", "password": "short" }),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("password")
    );

    let (status, me) = gw.get("/api/v1/auth/me", &admin.access).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["email"], "ada@example.com");
    assert_eq!(me["role"], "admin");
    gw.stop().await;
}

#[tokio::test]
async fn malformed_and_mistyped_bodies_are_400_and_422_with_a_message() {
    let gw = Gateway::start().await;
    let response = gw
        .http
        .post(format!("{}/api/v1/auth/login", gw.base))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: serde_json::Value = response.json().await.expect("json error body");
    assert_eq!(code(&body), "bad_request");
    let (status, body) = gw
        .post(
            "/api/v1/auth/login",
            None,
            json!({ "email": 42, "password": PASSWORD }),
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed")
    );
    let (status, _) = gw
        .post(
            "/api/v1/auth/login",
            None,
            json!({ "email": "a@b.co", "password": "x", "admin": true }),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "unknown fields are refused"
    );
    gw.stop().await;
}

#[tokio::test]
async fn registration_can_be_closed_after_the_first_admin() {
    let gw = Gateway::start_with(|c| c.gateway.registration_open = false).await;
    let admin = gw.register("admin@example.com").await;
    assert_eq!(admin.role, "admin", "the first account is always possible");
    let (status, body) = gw
        .post(
            "/api/v1/auth/register",
            None,
            json!({ "email": "late@example.com", "password": PASSWORD }),
        )
        .await;
    assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "forbidden"));
    gw.stop().await;
}

#[tokio::test]
async fn an_unknown_email_and_a_wrong_password_get_the_same_answer() {
    let gw = Gateway::start().await;
    gw.register("ada@example.com").await;
    let (status, ok) = gw
        .post(
            "/api/v1/auth/login",
            None,
            json!({ "email": "ADA@example.com", "password": PASSWORD }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{ok}");
    assert_eq!(ok["tokenType"], "Bearer");
    assert_eq!(ok["expiresIn"], 900);
    let (s1, wrong) = gw
        .post(
            "/api/v1/auth/login",
            None,
            json!({ "email": "ada@example.com", "password": "wrong password!" }),
        )
        .await;
    let (s2, unknown) = gw
        .post(
            "/api/v1/auth/login",
            None,
            json!({ "email": "eve@example.com", "password": "wrong password!" }),
        )
        .await;
    assert_eq!(
        (s1, s2),
        (StatusCode::UNAUTHORIZED, StatusCode::UNAUTHORIZED)
    );
    assert_eq!(wrong, unknown);
    let failures: i64 =
        sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE action = 'login_failed'")
            .fetch_one(&gw.db.pool)
            .await
            .expect("audit");
    assert_eq!(failures, 2, "failed logins are audited");
    gw.stop().await;
}

#[tokio::test]
async fn the_sixth_login_attempt_in_a_burst_from_one_ip_gets_429_with_retry_after() {
    let gw = Gateway::start().await;
    gw.register("ada@example.com").await; // one attempt spent
    for _ in 0..4 {
        let (status, _) = gw
            .post(
                "/api/v1/auth/login",
                None,
                json!({ "email": "ada@example.com", "password": "nope nope nope" }),
            )
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let response = gw
        .http
        .post(format!("{}/api/v1/auth/login", gw.base))
        .json(&json!({ "email": "ada@example.com", "password": PASSWORD }))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("a Retry-After header");
    assert!((1..=12).contains(&retry_after), "{retry_after}");
    let body: serde_json::Value = response.json().await.expect("json");
    assert_eq!(code(&body), "rate_limited");
    gw.stop().await;
}

#[tokio::test]
async fn refresh_tokens_rotate_and_a_reused_one_revokes_its_family() {
    let gw = Gateway::start().await;
    let first = gw.register("ada@example.com").await;
    let (status, second) = gw
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({ "refreshToken": first.refresh }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{second}");
    let second = Session::from(second);
    assert_ne!(second.refresh, first.refresh, "rotated");
    let (status, _) = gw.get("/api/v1/auth/me", &second.access).await;
    assert_eq!(status, StatusCode::OK);

    // The old token again: refused, and the newer token of its family dies with it.
    let (status, body) = gw
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({ "refreshToken": first.refresh }),
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::UNAUTHORIZED, "unauthorized")
    );
    let (status, _) = gw
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({ "refreshToken": second.refresh }),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "the whole family is revoked"
    );

    // Logout revokes too; an unknown token is refused.
    let (_, third) = gw
        .post(
            "/api/v1/auth/login",
            None,
            json!({ "email": "ada@example.com", "password": PASSWORD }),
        )
        .await;
    let third = Session::from(third);
    let (status, _) = gw
        .post(
            "/api/v1/auth/logout",
            None,
            json!({ "refreshToken": third.refresh }),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = gw
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({ "refreshToken": third.refresh }),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = gw
        .post(
            "/api/v1/auth/refresh",
            None,
            json!({ "refreshToken": "made-up" }),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let stored: Vec<Vec<u8>> = sqlx::query_scalar("SELECT token_hash FROM refresh_tokens")
        .fetch_all(&gw.db.pool)
        .await
        .expect("read");
    assert!(
        stored
            .iter()
            .all(|h| h.len() == 32 && *h != third.refresh.as_bytes()),
        "only hashes are stored"
    );
    gw.stop().await;
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn hs256(secret: &[u8], signing_input: &str) -> String {
    use hmac::{Hmac, KeyInit, Mac};
    let mut mac = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(secret).expect("key");
    mac.update(signing_input.as_bytes());
    b64(&mac.finalize().into_bytes())
}

fn token(header: serde_json::Value, claims: serde_json::Value, secret: &[u8]) -> String {
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let signature = hs256(secret, &input);
    format!("{input}.{signature}")
}

#[tokio::test]
async fn forged_expired_and_incomplete_tokens_are_refused() {
    let gw = Gateway::start().await;
    let ada = gw.register("ada@example.com").await;
    let bob = gw.register("bob@example.com").await;
    let now = chrono::Utc::now().timestamp();
    let sid = ada.session_id.clone();
    let claims =
        json!({ "sub": ada.user_id, "sid": sid, "role": "admin", "iat": now, "exp": now + 600 });
    let signed = |claims: serde_json::Value| {
        token(
            json!({ "alg": "HS256", "typ": "JWT" }),
            claims,
            JWT_SECRET.as_bytes(),
        )
    };
    let good = signed(claims.clone());
    let (status, _) = gw.get("/api/v1/auth/me", &good).await;
    assert_eq!(status, StatusCode::OK, "the test's own signing is right");

    // Correctly signed, but the role is the database's: bob claiming admin is still a user.
    let bob_sid = bob.session_id.clone();
    let bob_as_admin = signed(
        json!({ "sub": bob.user_id, "sid": bob_sid, "role": "admin", "iat": now, "exp": now + 600 }),
    );
    let (status, me) = gw.get("/api/v1/auth/me", &bob_as_admin).await;
    assert_eq!(
        (status, me["role"].as_str()),
        (StatusCode::OK, Some("user"))
    );
    let (status, _) = gw.get("/api/v1/notification-channels", &bob_as_admin).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "a claimed role grants nothing"
    );

    let parts: Vec<&str> = ada.access.split('.').collect();
    let mut tampered_claims: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(parts[1])
            .expect("b64"),
    )
    .expect("json");
    tampered_claims["role"] = json!("admin");
    tampered_claims["sub"] = json!(uuid::Uuid::new_v4());
    let forged = [
        (
            "alg none",
            format!(
                "{}.{}.",
                b64(br#"{"alg":"none","typ":"JWT"}"#),
                b64(claims.to_string().as_bytes())
            ),
        ),
        (
            "another secret",
            token(
                json!({ "alg": "HS256" }),
                claims.clone(),
                b"another-secret-that-is-also-32-bytes-long",
            ),
        ),
        (
            "RS256 header",
            token(
                json!({ "alg": "RS256", "typ": "JWT" }),
                claims.clone(),
                JWT_SECRET.as_bytes(),
            ),
        ),
        (
            "HS512",
            token(
                json!({ "alg": "HS512" }),
                claims.clone(),
                JWT_SECRET.as_bytes(),
            ),
        ),
        (
            "expired",
            token(
                json!({ "alg": "HS256" }),
                json!({ "sub": ada.user_id, "role": "user", "iat": now - 3600, "exp": now - 1800 }),
                JWT_SECRET.as_bytes(),
            ),
        ),
        (
            "exp missing",
            token(
                json!({ "alg": "HS256" }),
                json!({ "sub": ada.user_id, "role": "user", "iat": now }),
                JWT_SECRET.as_bytes(),
            ),
        ),
        (
            "tampered payload",
            format!(
                "{}.{}.{}",
                parts[0],
                b64(tampered_claims.to_string().as_bytes()),
                parts[2]
            ),
        ),
        ("garbage", "abc.def.ghi".to_owned()),
        (
            "an account that does not exist",
            signed(
                json!({ "sub": uuid::Uuid::new_v4(), "sid": uuid::Uuid::new_v4(),
                           "role": "admin", "iat": now, "exp": now + 600 }),
            ),
        ),
        (
            "a session that does not exist",
            signed(json!({ "sub": ada.user_id, "sid": uuid::Uuid::new_v4(),
                           "role": "admin", "iat": now, "exp": now + 600 })),
        ),
        (
            "no session",
            signed(json!({ "sub": ada.user_id, "role": "admin", "iat": now, "exp": now + 600 })),
        ),
        (
            "longer-lived than the gateway issues",
            signed(json!({ "sub": ada.user_id, "sid": sid, "role": "admin",
                           "iat": now, "exp": now + 30 * 86_400 })),
        ),
        (
            "issued in the future",
            signed(json!({ "sub": ada.user_id, "sid": sid, "role": "admin",
                           "iat": now + 300, "exp": now + 600 })),
        ),
    ];
    for (what, token) in forged {
        let (status, body) = gw.get("/api/v1/auth/me", &token).await;
        assert_eq!(
            (status, code(&body)),
            (StatusCode::UNAUTHORIZED, "unauthorized"),
            "{what}"
        );
    }
    let (status, _) = gw.call(Method::GET, "/api/v1/auth/me", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "no token");
    gw.stop().await;
}

/// A request to the gateway with raw headers; the status, `Set-Cookie` and JSON answer.
async fn raw(
    gw: &Gateway,
    path: &str,
    headers: &[(&str, String)],
    body: serde_json::Value,
) -> (StatusCode, Option<String>, serde_json::Value) {
    let mut request = gw.http.post(format!("{}{path}", gw.base)).json(&body);
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let response = request.send().await.expect("send");
    let status = response.status();
    let cookie = response
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let text = response.text().await.expect("body");
    (
        status,
        cookie,
        serde_json::from_str(&text).unwrap_or_default(),
    )
}

/// `flick_refresh=<value>` of a `Set-Cookie` header.
fn cookie_pair(set_cookie: &str) -> String {
    set_cookie
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_owned()
}

#[tokio::test]
async fn browsers_keep_the_refresh_token_in_an_http_only_strict_cookie_scoped_to_auth() {
    let gw = Gateway::start().await;
    let body = json!({ "email": "ada@example.com", "password": PASSWORD, "refreshIn": "cookie" });
    let (status, set_cookie, session) = raw(&gw, "/api/v1/auth/register", &[], body).await;
    assert_eq!(status, StatusCode::CREATED, "{session}");
    assert!(
        session.get("refreshToken").is_none(),
        "no refresh token a script could read: {session}"
    );
    assert!(session["accessToken"].is_string());
    let set_cookie = set_cookie.expect("a cookie");
    for part in [
        "flick_refresh=",
        "HttpOnly",
        "Secure",
        "SameSite=Strict",
        "Path=/api/v1/auth",
        "Max-Age=",
    ] {
        assert!(set_cookie.contains(part), "{part} in {set_cookie}");
    }
    let mut cookie = cookie_pair(&set_cookie);
    let own_origin = format!("http://{}", gw.address);

    // The page refreshes with the cookie alone; the token rotates in the cookie.
    let (status, rotated, renewed) = raw(
        &gw,
        "/api/v1/auth/refresh",
        &[("cookie", cookie.clone()), ("origin", own_origin.clone())],
        json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{renewed}");
    assert!(renewed.get("refreshToken").is_none());
    let rotated = cookie_pair(&rotated.expect("a new cookie"));
    assert_ne!(rotated, cookie);
    cookie = rotated;

    // A page of another site cannot use it (the browser would not even send it: SameSite).
    let (status, _, body) = raw(
        &gw,
        "/api/v1/auth/refresh",
        &[
            ("cookie", cookie.clone()),
            ("origin", "https://evil.example.com".into()),
        ],
        json!({}),
    )
    .await;
    assert_eq!((status, code(&body)), (StatusCode::FORBIDDEN, "forbidden"));

    // Logging out ends the session and clears the cookie.
    let (status, cleared, _) = raw(
        &gw,
        "/api/v1/auth/logout",
        &[("cookie", cookie.clone()), ("origin", own_origin.clone())],
        json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(
        cleared.unwrap_or_default().contains("Max-Age=0"),
        "the cookie is cleared"
    );
    let (status, _, _) = raw(
        &gw,
        "/api/v1/auth/refresh",
        &[("cookie", cookie), ("origin", own_origin)],
        json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Not "keep me signed in": a cookie that ends with the browser, also after a refresh.
    let body = json!({ "email": "ada@example.com", "password": PASSWORD, "refreshIn": "cookie", "remember": false });
    let (status, set_cookie, _) = raw(&gw, "/api/v1/auth/login", &[], body).await;
    assert_eq!(status, StatusCode::OK);
    let set_cookie = set_cookie.expect("a cookie");
    assert!(!set_cookie.contains("Max-Age"), "{set_cookie}");
    let (status, again, _) = raw(
        &gw,
        "/api/v1/auth/refresh",
        &[("cookie", cookie_pair(&set_cookie))],
        json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(!again.expect("a cookie").contains("Max-Age"));
    gw.stop().await;
}

#[tokio::test]
async fn an_enormous_email_is_refused_before_it_reaches_the_log_or_the_audit() {
    let gw = Gateway::start().await;
    let huge = format!("{}@example.com", "a".repeat(60_000));
    for path in ["/api/v1/auth/login", "/api/v1/auth/register"] {
        let (status, body) = gw
            .post(path, None, json!({ "email": huge, "password": PASSWORD }))
            .await;
        assert_eq!(
            (status, code(&body)),
            (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
            "{path}"
        );
        assert!(body.to_string().len() < 500, "the answer does not echo it");
    }
    let longest: Option<i32> =
        sqlx::query_scalar("SELECT max(length(coalesce(target, ''))) FROM audit_log")
            .fetch_one(&gw.db.pool)
            .await
            .expect("audit");
    assert!(
        longest.unwrap_or(0) <= 256,
        "audited targets are bounded: {longest:?}"
    );
    gw.stop().await;
}
