//! 100,000 messages that no consumer may store, each of a kind an operator meets in the
//! wild, published through JetStream onto the metrics subjects.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use async_nats::jetstream;
use chrono::Utc;
use flick_shared::Subjects;
use flick_shared::wire::{MetricSample, ServerId};

/// Just under the NATS server's default `max_payload` (1 MiB).
const NEAR_MAX_PAYLOAD: usize = (1 << 20) - 200;

/// What was published.
#[derive(Debug)]
pub struct Flood {
    pub bytes: u64,
    pub huge: u64,
    /// Messages on the watched server's subject (the gateway reads only those).
    pub on_watched: u64,
    pub kinds: BTreeMap<&'static str, u64>,
}

/// SplitMix64: reproducible garbage without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

/// A well-formed sample of `server`, as a JSON object to spoil.
fn sample(server: &ServerId) -> serde_json::Value {
    let sample = MetricSample::minimal(server.clone(), Utc::now(), 42.0, 50.0, 60.0, 1_000);
    serde_json::to_value(sample).expect("a sample serialises")
}

/// One malformed message for the subject of `server`: its kind, the server id of the subject
/// it goes to (`server`'s, or an invalid one), its payload.
fn malformed(
    rng: &mut Rng,
    n: u64,
    server: &ServerId,
    servers: &[ServerId],
) -> (&'static str, String, Vec<u8>) {
    let others: Vec<&ServerId> = servers.iter().filter(|other| *other != server).collect();
    let other = others[rng.below(others.len() as u64) as usize];
    let subject_id = server.as_str().to_owned();
    if n % 10_000 == 250 {
        // As large as NATS takes (1 MiB by default): no room left for the dead letter's headers.
        return ("huge", subject_id, rng.bytes(NEAR_MAX_PAYLOAD));
    }
    if n % 500 == 250 {
        // Hundreds of kilobytes: garbage, a wrong type, or one bad value among 100,000.
        let size = 100_000 + rng.below(600_000) as usize;
        let payload = match n % 3 {
            0 => rng.bytes(size),
            1 => {
                let mut value = sample(server);
                value["cpuUsage"] = "9".repeat(size).into();
                serde_json::to_vec(&value).expect("json")
            }
            _ => {
                let mut value = sample(server);
                let mut cores = vec![serde_json::json!(10.5); size / 6];
                cores[size / 12] = serde_json::json!(150.0);
                value["cpuCores"] = cores.into();
                serde_json::to_vec(&value).expect("json")
            }
        };
        return ("huge", subject_id, payload);
    }
    let mut value = sample(server);
    let (kind, subject_id, payload): (&'static str, String, serde_json::Value) = match n % 14 {
        0 => {
            let len = 1 + rng.below(1_000) as usize;
            return ("random_bytes", subject_id, rng.bytes(len));
        }
        1 => {
            value["cpuUsage"] = "95 %".into();
            ("wrong_type", subject_id, value)
        }
        2 => {
            value["timestamp"] = 1_764_072_000.into();
            ("wrong_type", subject_id, value)
        }
        3 => {
            let not_an_object = [
                serde_json::json!([1, 2, 3]),
                serde_json::json!("sample"),
                serde_json::json!(42),
                serde_json::Value::Null,
                serde_json::json!({}),
            ];
            let pick = rng.below(not_an_object.len() as u64) as usize;
            ("not_an_object", subject_id, not_an_object[pick].clone())
        }
        4 => {
            let object = value.as_object_mut().expect("an object");
            let field = [
                "cpuUsage",
                "memoryUsage",
                "diskUsage",
                "networkUsage",
                "timestamp",
                "serverId",
            ][rng.below(6) as usize];
            object.remove(field);
            ("missing_field", subject_id, value)
        }
        5 => {
            value["v"] = 2.into();
            ("wrong_version", subject_id, value)
        }
        6 => {
            let too_long = "x".repeat(65);
            let bad = ["bad id!", "", "a.b", "x*", &too_long][rng.below(5) as usize];
            value["serverId"] = bad.into();
            ("invalid_server_id_in_payload", subject_id, value)
        }
        7 => ("server_id_not_its_subject", subject_id, sample(other)),
        8 => ("invalid_server_id_in_subject", "bad!id".to_owned(), value),
        9 => {
            value["cpuUsage"] = [150.0, -1.0, 1e300][rng.below(3) as usize].into();
            ("out_of_range", subject_id, value)
        }
        10 => {
            value["timestamp"] = (Utc::now() + chrono::Duration::days(1))
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
                .into();
            ("timestamp_in_the_future", subject_id, value)
        }
        11 => {
            value["hostname"] = "web\u{0}01".into();
            ("nul_in_a_string", subject_id, value)
        }
        12 => {
            let text = serde_json::to_vec(&value).expect("json");
            let cut = text.len() / 2;
            return ("truncated", subject_id, text[..cut].to_vec());
        }
        _ => {
            value["loadAverage"] = serde_json::json!({"one": -1.0, "five": 0.5, "fifteen": 0.5});
            ("out_of_range", subject_id, value)
        }
    };
    (
        kind,
        subject_id,
        serde_json::to_vec(&payload).expect("json"),
    )
}

/// The flood, built before it is published so that building it does not compete with the
/// services for the CPU while they take it in.
pub struct Prepared {
    messages: Vec<(String, Vec<u8>)>,
    pub flood: Flood,
}

/// Builds `total` malformed messages. One in ten goes to the watched server's subject, the
/// rest to the 20 simulated servers' and to a few unknown ones.
pub fn prepare(subjects: &Subjects, total: u64, watched: &ServerId) -> Prepared {
    let mut servers: Vec<ServerId> = (0..20).map(flick_collector::simulate::server_id).collect();
    servers.extend((0..5).map(|n| ServerId::parse(format!("flood-{n}")).expect("valid")));
    let mut rng = Rng(7);
    let mut flood = Flood {
        bytes: 0,
        huge: 0,
        on_watched: 0,
        kinds: BTreeMap::new(),
    };
    let messages = (0..total)
        .map(|n| {
            let server = if n % 10 == 3 {
                watched
            } else {
                &servers[rng.below(servers.len() as u64) as usize]
            };
            let (kind, subject_id, payload) = malformed(&mut rng, n, server, &servers);
            if subject_id == watched.as_str() {
                flood.on_watched += 1;
            }
            *flood.kinds.entry(kind).or_default() += 1;
            if kind == "huge" {
                flood.huge += 1;
            }
            flood.bytes += payload.len() as u64;
            let subject = format!("{}.metrics.{subject_id}", subjects.prefix());
            (subject, payload)
        })
        .collect();
    Prepared { messages, flood }
}

impl Prepared {
    /// Publishes the messages through JetStream at `per_second`, in steps of 100, with up to
    /// 2,048 acknowledgements awaited at once; returns what was published.
    pub async fn publish(self, js: &jetstream::Context, per_second: u64) -> Flood {
        let started = tokio::time::Instant::now();
        let mut in_flight = VecDeque::new();
        for (n, (subject, payload)) in self.messages.into_iter().enumerate() {
            if n % 100 == 0 {
                let due = started + Duration::from_secs_f64(n as f64 / per_second as f64);
                tokio::time::sleep_until(due).await;
            }
            let ack = js
                .publish(subject, payload.into())
                .await
                .expect("publish a malformed message");
            in_flight.push_back(ack);
            if in_flight.len() >= 2_048
                && let Some(ack) = in_flight.pop_front()
            {
                ack.await.expect("JetStream stores a malformed message");
            }
        }
        for ack in in_flight {
            ack.await.expect("JetStream stores a malformed message");
        }
        self.flood
    }
}
