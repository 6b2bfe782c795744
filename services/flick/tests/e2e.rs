//! The whole stack through its public interfaces only: every service a separate process (the
//! real binaries) on the real NATS and PostgreSQL.

mod common;

use common::Stack;

#[tokio::test]
async fn the_stack_starts_and_every_service_is_ready() {
    let stack = Stack::new().await;
    let _backend = stack.start_backend().await;
}
