//! The test kit's per-test database: fresh, isolated, and gone after the test.

use flick_shared::testkit::TestDb;
use sqlx::PgPool;

#[tokio::test]
async fn each_test_gets_its_own_database_and_it_is_dropped_afterwards() {
    let first = TestDb::new().await;
    let second = TestDb::new().await;
    assert_ne!(first.name(), second.name());
    sqlx::query("CREATE TABLE only_here (x int)")
        .execute(&first.pool)
        .await
        .expect("create");
    let seen: Option<String> = sqlx::query_scalar("SELECT to_regclass('only_here')::text")
        .fetch_one(&second.pool)
        .await
        .expect("query");
    assert_eq!(seen, None, "databases are isolated");

    let name = first.name().to_owned();
    drop(first);
    let admin = PgPool::connect(&flick_shared::testkit::database_url())
        .await
        .expect("connect");
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(&name)
            .fetch_one(&admin)
            .await
            .expect("query");
    assert!(!exists, "{name} was dropped");
}
