//! The usual test surroundings: a fresh database, a private subject prefix with its streams, and
//! a NATS connection.

use async_nats::jetstream;

use super::{TestDb, connect, init_test_logs, stream_settings, unique_subjects};
use crate::Subjects;
use crate::subjects::StreamKind;

#[derive(Debug)]
pub struct TestBed {
    pub db: TestDb,
    pub subjects: Subjects,
    pub client: async_nats::Client,
    pub js: jetstream::Context,
}

impl TestBed {
    /// A migrated database, and the three streams under a new prefix (with small limits).
    pub async fn new() -> Self {
        init_test_logs();
        let db = TestDb::new().await;
        let subjects = unique_subjects();
        let client = connect().await;
        let js = jetstream::new(client.clone());
        crate::streams::ensure_streams(&js, &subjects, &stream_settings(), &StreamKind::ALL)
            .await
            .expect("create the test streams");
        Self {
            db,
            subjects,
            client,
            js,
        }
    }
}
