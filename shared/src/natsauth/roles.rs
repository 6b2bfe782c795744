//! What each NATS identity of FLick may publish and subscribe, for a subject prefix: the
//! services' least-privilege sets, the read-only integration, the trusted local collector, and
//! one enrolled host.
//!
//! Only the persister, the alerter and the gateway may create or update their streams (and
//! only theirs), and each touches only its own durable consumers. Every identity subscribes
//! only to its own inbox prefix (`_INBOX.<role>.>`, an enrolled host `_INBOX.host.<id>.>`), so no
//! one reads the replies meant for another.

use crate::Subjects;
use crate::subjects::{ALERTER_CONSUMER, PERSISTER_CONSUMER, StreamKind};
use crate::wire::ServerId;

use super::jwt::Permissions;

/// A service role of the stack (each has one NATS user).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Persister,
    Alerter,
    Gateway,
    /// The collector of the hub's own host and the simulator: trusted, may publish for any
    /// server id (what they report appears as "discovered"), but touches no stream.
    Collector,
    /// Integrations: read-only.
    Integration,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::Persister,
        Role::Alerter,
        Role::Gateway,
        Role::Collector,
        Role::Integration,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Role::Persister => "persister",
            Role::Alerter => "alerter",
            Role::Gateway => "gateway",
            Role::Collector => "collector",
            Role::Integration => "integration",
        }
    }
}

fn inbox(role: &str) -> String {
    format!("{}.>", crate::nats::inbox_prefix(role))
}

/// Create, update and info of `stream`.
fn manage_stream(stream: &str) -> [String; 3] {
    [
        format!("$JS.API.STREAM.CREATE.{stream}"),
        format!("$JS.API.STREAM.UPDATE.{stream}"),
        format!("$JS.API.STREAM.INFO.{stream}"),
    ]
}

/// Reading one stored message (the newest of a subject) of `stream`.
fn read_message(stream: &str) -> String {
    format!("$JS.API.STREAM.MSG.GET.{stream}")
}

/// The durable pull consumer `durable` on `stream`: create, info, next, ack.
fn consume(stream: &str, durable: &str) -> Vec<String> {
    vec![
        format!("$JS.API.CONSUMER.CREATE.{stream}.{durable}"),
        format!("$JS.API.CONSUMER.CREATE.{stream}.{durable}.>"),
        format!("$JS.API.CONSUMER.DURABLE.CREATE.{stream}.{durable}"),
        format!("$JS.API.CONSUMER.INFO.{stream}.{durable}"),
        format!("$JS.API.CONSUMER.MSG.NEXT.{stream}.{durable}"),
        format!("$JS.ACK.{stream}.{durable}.>"),
    ]
}

/// The permissions of `role` under `subjects`' prefix.
pub fn permissions(role: Role, subjects: &Subjects) -> Permissions {
    let stream = |kind| subjects.stream_name(kind);
    let all = |kind| subjects.all_servers(kind);
    let api_info = "$JS.API.INFO".to_owned();
    match role {
        Role::Persister => {
            let mut publish = vec![subjects.deadletter("persister"), api_info];
            for kind in StreamKind::ALL {
                publish.extend(manage_stream(&stream(kind)));
                publish.extend(consume(&stream(kind), PERSISTER_CONSUMER));
            }
            Permissions {
                publish,
                subscribe: vec![inbox("persister")],
                deny_publish: vec![],
            }
        }
        Role::Alerter => {
            let metrics = stream(StreamKind::Metrics);
            let mut publish = vec![
                all(StreamKind::Alerts),
                subjects.deadletter("alerter"),
                api_info,
            ];
            publish.extend(manage_stream(&metrics));
            publish.extend(manage_stream(&stream(StreamKind::Alerts)));
            publish.extend(consume(&metrics, ALERTER_CONSUMER));
            // The newest process list of a server, attached to its firing events.
            publish.push(read_message(&stream(StreamKind::Processes)));
            publish.push(format!(
                "$JS.API.CONSUMER.DELETE.{metrics}.{ALERTER_CONSUMER}"
            ));
            Permissions {
                publish,
                subscribe: vec![inbox("alerter"), subjects.status_all()],
                deny_publish: vec![],
            }
        }
        Role::Gateway => {
            let mut publish = vec![
                all(StreamKind::Logs),
                subjects.deadletter("gateway"),
                api_info,
            ];
            publish.extend(manage_stream(&stream(StreamKind::Logs)));
            // The newest process list of a server, for its page.
            publish.push(read_message(&stream(StreamKind::Processes)));
            // A live subscription's `since`: an ephemeral ordered push consumer on the metrics
            // stream, delivering to the gateway's inbox, with its flow control answered. No
            // MSG.NEXT: the gateway cannot pull from the persister's or the alerter's consumer.
            let metrics = stream(StreamKind::Metrics);
            publish.push(format!("$JS.API.CONSUMER.CREATE.{metrics}"));
            publish.push(format!("$JS.FC.{metrics}.>"));
            Permissions {
                publish,
                subscribe: vec![
                    all(StreamKind::Metrics),
                    all(StreamKind::Alerts),
                    subjects.status_all(),
                    inbox("gateway"),
                ],
                deny_publish: vec![],
            }
        }
        Role::Collector => Permissions {
            publish: vec![
                all(StreamKind::Metrics),
                all(StreamKind::Processes),
                subjects.status_all(),
                api_info,
            ],
            subscribe: vec![inbox("collector")],
            deny_publish: vec![],
        },
        Role::Integration => Permissions {
            publish: vec![],
            subscribe: vec![
                all(StreamKind::Metrics),
                all(StreamKind::Alerts),
                all(StreamKind::Logs),
                all(StreamKind::Processes),
                subjects.status_all(),
            ],
            deny_publish: vec![">".into()],
        },
    }
}

/// The inbox prefix of an enrolled host (its JetStream acks arrive there).
pub fn host_inbox_prefix(server: &ServerId) -> String {
    format!("_INBOX.host.{server}")
}

/// An enrolled host: its own samples, process lists and status, its own inbox, nothing else.
pub fn host(subjects: &Subjects, server: &ServerId) -> Permissions {
    Permissions {
        publish: vec![
            subjects.metrics(server),
            subjects.processes(server),
            subjects.status(server),
        ],
        subscribe: vec![format!("{}.>", host_inbox_prefix(server))],
        deny_publish: vec![],
    }
}

/// The gateway's user in the system account: it pushes the FLICK account's JWT (new
/// revocations) to the servers.
pub fn registrar() -> Permissions {
    Permissions {
        publish: vec![
            "$SYS.REQ.CLAIMS.UPDATE".into(),
            "$SYS.REQ.ACCOUNT.*.CLAIMS.UPDATE".into(),
        ],
        subscribe: vec![inbox("registrar")],
        deny_publish: vec![],
    }
}
