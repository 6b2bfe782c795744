//! The repository's `nats.conf` with the `auth.conf` `flick init` generates, started for real
//! (nats-server in operator mode, TLS on the client port): each service role can do its job and
//! nothing else, an enrolled host can publish only its own samples, and a revoked host is cut
//! off.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use async_nats::{Client, ConnectOptions, Event};
use tokio::sync::mpsc;

use flick_shared::Subjects;
use flick_shared::natsauth::{Role, jwt, roles};
use flick_shared::streams::ensure_streams;
use flick_shared::subjects::StreamKind;
use flick_shared::testkit::{self, HubServer, next_message};
use flick_shared::wire::ServerId;

/// A connection with `creds` that reports the server's errors (permission violations) and
/// disconnections on a channel.
async fn connect(
    hub: &HubServer,
    creds: &Path,
    inbox: &str,
) -> Result<(Client, mpsc::UnboundedReceiver<String>), async_nats::ConnectError> {
    let (tx, rx) = mpsc::unbounded_channel();
    let client = ConnectOptions::with_credentials_file(creds)
        .await
        .expect("read the creds")
        .add_root_certificates(hub.ca())
        .require_tls(true)
        .custom_inbox_prefix(inbox)
        .max_reconnects(Some(1))
        .event_callback(move |event| {
            let tx = tx.clone();
            async move {
                match event {
                    Event::ServerError(err) => {
                        let _ = tx.send(err.to_string().to_lowercase());
                    }
                    Event::Disconnected => {
                        let _ = tx.send("disconnected".into());
                    }
                    _ => {}
                }
            }
        })
        .connect(hub.url())
        .await?;
    Ok((client, rx))
}

async fn role(hub: &HubServer, role: Role) -> (Client, mpsc::UnboundedReceiver<String>) {
    connect(
        hub,
        &hub.creds(role),
        &flick_shared::nats::inbox_prefix(role.name()),
    )
    .await
    .unwrap_or_else(|err| panic!("connect as {}: {err}", role.name()))
}

async fn expect_violation(errors: &mut mpsc::UnboundedReceiver<String>, what: &str) {
    match tokio::time::timeout(Duration::from_secs(3), errors.recv()).await {
        Ok(Some(error)) => assert!(
            error.contains("permissions violation") && error.contains(what),
            "expected a violation for {what}, got {error}"
        ),
        _ => panic!("no permissions violation for {what}"),
    }
}

async fn expect_no_violation(client: &Client, errors: &mut mpsc::UnboundedReceiver<String>) {
    client.flush().await.expect("flush");
    if let Ok(Some(error)) = tokio::time::timeout(Duration::from_millis(500), errors.recv()).await {
        panic!("unexpected server error: {error}");
    }
}

async fn publish_refused(
    client: &Client,
    errors: &mut mpsc::UnboundedReceiver<String>,
    subject: String,
) {
    client
        .publish(subject.clone(), "{}".into())
        .await
        .expect("send PUB");
    client.flush().await.expect("flush");
    expect_violation(errors, "publish").await;
}

/// A hub with its streams created by the persister, as in a running stack.
async fn hub_with_streams() -> (HubServer, Subjects) {
    let subjects = testkit::unique_subjects();
    let hub = HubServer::start(&subjects);
    let (persister, _) = role(&hub, Role::Persister).await;
    let js = async_nats::jetstream::new(persister);
    ensure_streams(
        &js,
        &subjects,
        &testkit::stream_settings(),
        &StreamKind::ALL,
    )
    .await
    .expect("the persister creates its streams");
    (hub, subjects)
}

/// An enrolled host's `.creds` for `server`, as the gateway issues them; its public key.
fn host_creds(hub: &HubServer, subjects: &Subjects, server: &str) -> (std::path::PathBuf, String) {
    let keys = hub.keys();
    let host = nkeys::KeyPair::new_user();
    let id = ServerId::parse(server).expect("id");
    let token = jwt::user(
        &host.public_key(),
        server,
        &keys.account.public_key(),
        &roles::host(subjects, &id),
        chrono::Utc::now().timestamp(),
        None,
        &keys.account_signing,
    )
    .expect("sign");
    let path = hub.path(&format!("{server}.creds"));
    std::fs::write(&path, jwt::creds(&token, &host.seed().expect("seed"))).expect("write creds");
    (path, host.public_key())
}

async fn host(
    hub: &HubServer,
    creds: &Path,
    server: &str,
) -> (Client, mpsc::UnboundedReceiver<String>) {
    let id = ServerId::parse(server).expect("id");
    connect(hub, creds, &roles::host_inbox_prefix(&id))
        .await
        .expect("the host connects")
}

#[tokio::test]
async fn an_enrolled_host_publishes_its_own_samples_and_can_touch_nothing_else() {
    let (hub, subjects) = hub_with_streams().await;
    let (integration, _) = role(&hub, Role::Integration).await;
    let mut observed = integration
        .subscribe(subjects.all_servers(StreamKind::Metrics))
        .await
        .expect("subscribe");
    integration.flush().await.expect("flush");

    let (a_creds, _) = host_creds(&hub, &subjects, "host-a");
    let (a, mut errors) = host(&hub, &a_creds, "host-a").await;
    let js = async_nats::jetstream::new(a.clone());
    let ack = js
        .publish(
            subjects.metrics(&ServerId::parse("host-a").expect("id")),
            "{}".into(),
        )
        .await
        .expect("publish")
        .await
        .expect("JetStream acknowledges the host's own sample");
    assert_eq!(ack.stream, subjects.stream_name(StreamKind::Metrics));
    let seen = next_message(&mut observed, Duration::from_secs(5)).await;
    assert_eq!(
        seen.subject.as_str(),
        subjects.metrics(&ServerId::parse("host-a").expect("id"))
    );

    let (persister, _) = role(&hub, Role::Persister).await;
    let pjs = async_nats::jetstream::new(persister);
    let before = pjs
        .get_stream(subjects.stream_name(StreamKind::Metrics))
        .await
        .expect("stream")
        .info()
        .await
        .expect("info")
        .clone();

    let metrics = subjects.stream_name(StreamKind::Metrics);
    let prefix = subjects.prefix();
    for forbidden in [
        format!("{prefix}.metrics.host-b"),
        format!("{prefix}.status.host-b"),
        format!("{prefix}.alerts.host-a"),
        format!("{prefix}.logs.host-a"),
        format!("$JS.API.STREAM.UPDATE.{metrics}"),
        format!("$JS.API.STREAM.DELETE.{metrics}"),
        format!("$JS.API.STREAM.PURGE.{metrics}"),
        format!("$JS.API.STREAM.CREATE.{metrics}"),
        format!("$JS.API.CONSUMER.CREATE.{metrics}.persister"),
        format!("$JS.API.CONSUMER.DELETE.{metrics}.persister"),
        format!("$JS.API.CONSUMER.MSG.NEXT.{metrics}.persister"),
        "$JS.API.INFO".to_owned(),
    ] {
        publish_refused(&a, &mut errors, forbidden).await;
    }
    for forbidden in [
        ">",
        "_INBOX.host.host-b.>",
        "_INBOX.collector.>",
        &format!("{prefix}.metrics.*"),
    ] {
        let _sub = a.subscribe(forbidden.to_owned()).await.expect("send SUB");
        expect_violation(&mut errors, "subscription").await;
    }
    a.publish(format!("{prefix}.status.host-a"), "{}".into())
        .await
        .expect("its own status");
    expect_no_violation(&a, &mut errors).await;

    let after = pjs
        .get_stream(metrics.clone())
        .await
        .expect("stream")
        .info()
        .await
        .expect("info")
        .clone();
    assert_eq!(
        after.state.messages, before.state.messages,
        "nothing stored by the refused publishes"
    );
    assert_eq!(
        after.config.max_messages, before.config.max_messages,
        "the stream's limits unchanged"
    );
    assert!(
        !observed_has(&mut observed, "host-b").await,
        "host-b's subject saw nothing from host-a"
    );
}

async fn observed_has(subscriber: &mut async_nats::Subscriber, server: &str) -> bool {
    use futures::StreamExt as _;
    while let Ok(Some(message)) =
        tokio::time::timeout(Duration::from_millis(300), subscriber.next()).await
    {
        if message.subject.as_str().ends_with(server) {
            return true;
        }
    }
    false
}

#[tokio::test]
async fn without_valid_credentials_or_tls_nothing_connects() {
    let (hub, subjects) = hub_with_streams().await;
    assert!(async_nats::connect(hub.url()).await.is_err(), "anonymous");
    let plain = format!("nats://127.0.0.1:{}", hub.server.port());
    assert!(
        ConnectOptions::with_credentials_file(hub.creds(Role::Collector))
            .await
            .expect("creds")
            .connect(plain)
            .await
            .is_err(),
        "without TLS"
    );
    // A user signed by a key the account does not know.
    let stranger_account = nkeys::KeyPair::new_account();
    let user = nkeys::KeyPair::new_user();
    let token = jwt::user(
        &user.public_key(),
        "stranger",
        &hub.keys().account.public_key(),
        &roles::host(&subjects, &ServerId::parse("x").expect("id")),
        chrono::Utc::now().timestamp(),
        None,
        &stranger_account,
    )
    .expect("sign");
    let path = hub.path("stranger.creds");
    std::fs::write(&path, jwt::creds(&token, &user.seed().expect("seed"))).expect("write");
    assert!(
        connect(&hub, &path, "_INBOX.x").await.is_err(),
        "a forged user"
    );
}

#[tokio::test]
async fn a_revoked_host_is_disconnected_and_refused_while_others_stay() {
    let (hub, subjects) = hub_with_streams().await;
    let (a_creds, a_key) = host_creds(&hub, &subjects, "host-a");
    let (b_creds, _) = host_creds(&hub, &subjects, "host-b");
    let (a, mut a_events) = host(&hub, &a_creds, "host-a").await;
    let (b, mut b_events) = host(&hub, &b_creds, "host-b").await;
    let registrar = hub
        .connect_with(&hub.path("creds/registrar.creds"), "_INBOX.registrar")
        .await
        .expect("the gateway's registrar connects");
    let now = chrono::Utc::now().timestamp();
    let account = hub
        .keys()
        .account_jwt(&BTreeMap::from([(a_key, now)]), now + 1)
        .expect("sign the account");
    let answer = registrar
        .request("$SYS.REQ.CLAIMS.UPDATE", account.into())
        .await
        .expect("the server answers the update");
    let answer: serde_json::Value = serde_json::from_slice(&answer.payload).expect("json");
    assert_eq!(answer["data"]["code"], 200, "{answer}");
    match tokio::time::timeout(Duration::from_secs(5), a_events.recv()).await {
        Ok(Some(event)) => assert!(
            event.contains("disconnected")
                || event.contains("revoked")
                || event.contains("authorization"),
            "{event}"
        ),
        other => panic!("host-a was not disconnected: {other:?}"),
    }
    assert!(
        host_connects(&hub, &a_creds, "host-a").await.is_err(),
        "host-a cannot come back"
    );
    b.publish(
        subjects.status(&ServerId::parse("host-b").expect("id")),
        "{}".into(),
    )
    .await
    .expect("publish");
    expect_no_violation(&b, &mut b_events).await;
    assert!(b.connection_state() == async_nats::connection::State::Connected);
    drop(a);
}

async fn host_connects(
    hub: &HubServer,
    creds: &Path,
    server: &str,
) -> Result<Client, async_nats::ConnectError> {
    let id = ServerId::parse(server).expect("id");
    connect(hub, creds, &roles::host_inbox_prefix(&id))
        .await
        .map(|(c, _)| c)
}

#[tokio::test]
async fn the_collector_role_publishes_samples_of_any_server_and_touches_no_stream() {
    let (hub, subjects) = hub_with_streams().await;
    let prefix = subjects.prefix();
    let metrics = subjects.stream_name(StreamKind::Metrics);
    let (collector, mut errors) = role(&hub, Role::Collector).await;
    let js = async_nats::jetstream::new(collector.clone());
    js.publish(format!("{prefix}.metrics.web-1"), "{}".into())
        .await
        .expect("publish")
        .await
        .expect("acknowledged");
    for forbidden in [
        format!("$JS.API.STREAM.CREATE.{metrics}"),
        format!("$JS.API.STREAM.UPDATE.{metrics}"),
        format!("$JS.API.STREAM.DELETE.{metrics}"),
        format!("{prefix}.alerts.web-1"),
        format!("{prefix}.logs.web-1"),
    ] {
        publish_refused(&collector, &mut errors, forbidden).await;
    }
    for forbidden in [
        format!("{prefix}.metrics.>"),
        ">".to_owned(),
        "_INBOX.gateway.>".to_owned(),
    ] {
        let _sub = collector.subscribe(forbidden).await.expect("send SUB");
        expect_violation(&mut errors, "subscription").await;
    }
}

#[tokio::test]
async fn the_integration_user_reads_every_public_subject_and_publishes_nothing() {
    let (hub, subjects) = hub_with_streams().await;
    let (integration, mut errors) = role(&hub, Role::Integration).await;
    let mut subs = Vec::new();
    for kind in StreamKind::ALL {
        subs.push(
            integration
                .subscribe(subjects.all_servers(kind))
                .await
                .expect("subscribe"),
        );
    }
    subs.push(
        integration
            .subscribe(subjects.status_all())
            .await
            .expect("subscribe"),
    );
    expect_no_violation(&integration, &mut errors).await;
    let prefix = subjects.prefix();
    for forbidden in [
        format!("{prefix}.metrics.web-1"),
        format!("{prefix}.alerts.web-1"),
        format!("{prefix}.logs.web-1"),
        "$JS.API.INFO".to_owned(),
    ] {
        publish_refused(&integration, &mut errors, forbidden).await;
    }
    let _sub = integration
        .subscribe(format!("{prefix}.deadletter.*"))
        .await
        .expect("send SUB");
    expect_violation(&mut errors, "subscription").await;
}

#[tokio::test]
async fn each_service_role_is_held_to_its_own_subjects() {
    let (hub, subjects) = hub_with_streams().await;
    let prefix = subjects.prefix();
    let metrics = subjects.stream_name(StreamKind::Metrics);
    let cases = [
        (Role::Alerter, format!("{prefix}.metrics.web-1")),
        (Role::Alerter, format!("{prefix}.logs.web-1")),
        (Role::Gateway, format!("{prefix}.metrics.web-1")),
        (Role::Gateway, format!("{prefix}.alerts.web-1")),
        (Role::Gateway, format!("$JS.API.STREAM.UPDATE.{metrics}")),
        (Role::Persister, format!("{prefix}.metrics.web-1")),
        (Role::Persister, format!("$JS.API.STREAM.DELETE.{metrics}")),
    ];
    for (who, forbidden) in cases {
        let (client, mut errors) = role(&hub, who).await;
        publish_refused(&client, &mut errors, forbidden).await;
    }
    let allowed = [
        (Role::Alerter, format!("{prefix}.alerts.web-1")),
        (Role::Gateway, format!("{prefix}.logs.web-1")),
        (Role::Persister, format!("{prefix}.deadletter.persister")),
    ];
    for (who, subject) in allowed {
        let (client, mut errors) = role(&hub, who).await;
        client
            .publish(subject, "{}".into())
            .await
            .expect("send PUB");
        expect_no_violation(&client, &mut errors).await;
    }
}

#[tokio::test]
async fn the_gateway_replays_samples_through_an_ordered_consumer_and_cannot_pull_from_others() {
    use async_nats::jetstream::consumer::{DeliverPolicy, push};
    use futures::StreamExt;

    let (hub, subjects) = hub_with_streams().await;
    let (collector, _) = role(&hub, Role::Collector).await;
    let server = ServerId::parse("web-1").expect("id");
    for n in 0..5 {
        collector
            .publish(subjects.metrics(&server), format!("{{\"n\":{n}}}").into())
            .await
            .expect("publish");
    }
    collector.flush().await.expect("flush");
    tokio::time::sleep(Duration::from_millis(200)).await;

    // As the gateway's `since` replay reads the stream.
    let (gateway, mut errors) = role(&hub, Role::Gateway).await;
    let js = async_nats::jetstream::new(gateway.clone());
    let stream = js
        .get_stream_no_info(subjects.stream_name(StreamKind::Metrics))
        .await
        .expect("the stream");
    let consumer = stream
        .create_consumer(push::OrderedConfig {
            deliver_subject: gateway.new_inbox(),
            filter_subject: subjects.metrics(&server),
            deliver_policy: DeliverPolicy::ByStartTime {
                start_time: chrono::Utc::now() - chrono::Duration::minutes(1),
            },
            ..Default::default()
        })
        .await
        .expect("the gateway may create an ordered consumer on the metrics stream");
    let mut messages = consumer.messages().await.expect("messages");
    for n in 0..5 {
        let message = tokio::time::timeout(Duration::from_secs(5), messages.next())
            .await
            .expect("in time")
            .expect("a message")
            .expect("no error");
        assert_eq!(message.payload, format!("{{\"n\":{n}}}").as_bytes());
    }
    expect_no_violation(&gateway, &mut errors).await;
    let metrics = subjects.stream_name(StreamKind::Metrics);
    publish_refused(
        &gateway,
        &mut errors,
        format!("$JS.API.CONSUMER.MSG.NEXT.{metrics}.persister"),
    )
    .await;
    publish_refused(
        &gateway,
        &mut errors,
        format!("$JS.API.CONSUMER.DELETE.{metrics}.persister"),
    )
    .await;
}
