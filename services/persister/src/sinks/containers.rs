//! The container lists that ride on samples, into `containers`: one row per container per
//! list, idempotent on (server, time, name), written in the transaction of the samples that
//! carried them, so a list is stored exactly when its sample is. A list without containers
//! (the engine has none) is one row with an empty name (no container has one), so that "the
//! newest list" is that empty one, not the last list that had containers.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use flick_shared::wire::ContainerUsage;

use super::metrics::column;

/// One stored container: the server and list time, and the container as the wire has it.
pub type ContainerRow<'a> = (&'a str, DateTime<Utc>, &'a ContainerUsage);

/// The row of a list without containers.
static NO_CONTAINERS: ContainerUsage = ContainerUsage {
    id: String::new(),
    name: String::new(),
    image: String::new(),
    state: String::new(),
    health: None,
    exit_code: None,
    restarts: 0,
    cpu_percent: 0.0,
    memory_bytes: 0,
    memory_limit_bytes: None,
    net_rx_bytes: 0,
    net_tx_bytes: 0,
    block_read_bytes: 0,
    block_write_bytes: 0,
};

/// The rows of one sample's list: none without a list, the empty-name row for an empty one.
pub fn rows_of<'a>(
    server: &'a str,
    ts: DateTime<Utc>,
    list: Option<&'a [ContainerUsage]>,
) -> impl Iterator<Item = ContainerRow<'a>> {
    let list = match list {
        Some([]) => std::slice::from_ref(&NO_CONTAINERS),
        Some(list) => list,
        None => &[],
    };
    list.iter().map(move |c| (server, ts, c))
}

fn big(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// Inserts the containers of a batch; ones already stored (a redelivered sample) are skipped.
pub async fn write(conn: &mut PgConnection, rows: &[ContainerRow<'_>]) -> Result<u64, sqlx::Error> {
    if rows.is_empty() {
        return Ok(0);
    }
    let done = sqlx::query(
        "INSERT INTO containers (server_id, ts, name, container_id, image, state, health, exit_code,
                                 restarts, cpu_percent, memory_bytes, memory_limit_bytes,
                                 net_rx_bytes, net_tx_bytes, block_read_bytes, block_write_bytes)
         SELECT * FROM UNNEST($1::text[], $2::timestamptz[], $3::text[], $4::text[], $5::text[],
                              $6::text[], $7::text[], $8::int8[], $9::int8[], $10::real[],
                              $11::int8[], $12::int8[], $13::int8[], $14::int8[], $15::int8[],
                              $16::int8[])
         ON CONFLICT (server_id, ts, name) DO NOTHING",
    )
    .bind(column(rows, |r| r.0))
    .bind(column(rows, |r| r.1))
    .bind(column(rows, |r| r.2.name.as_str()))
    .bind(column(rows, |r| r.2.id.as_str()))
    .bind(column(rows, |r| r.2.image.as_str()))
    .bind(column(rows, |r| r.2.state.as_str()))
    .bind(column(rows, |r| r.2.health.as_deref()))
    .bind(column(rows, |r| r.2.exit_code))
    .bind(column(rows, |r| big(r.2.restarts)))
    .bind(column(rows, |r| r.2.cpu_percent as f32))
    .bind(column(rows, |r| big(r.2.memory_bytes)))
    .bind(column(rows, |r| r.2.memory_limit_bytes.map(big)))
    .bind(column(rows, |r| big(r.2.net_rx_bytes)))
    .bind(column(rows, |r| big(r.2.net_tx_bytes)))
    .bind(column(rows, |r| big(r.2.block_read_bytes)))
    .bind(column(rows, |r| big(r.2.block_write_bytes)))
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected())
}
