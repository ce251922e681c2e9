//! Liveness and readiness for orchestrators and load balancers (issue 16's signals): the
//! readiness answer follows the store (its 503 while PostgreSQL is down is proved in
//! `ci::postgres_restart`, the one test that stops it).

use crate::common::*;

#[tokio::test]
async fn live_and_ready_answer_with_the_store_up() {
    let s = TestServer::start().await;
    for (path, body) in [("/health/live", "live"), ("/health/ready", "ready"), ("/healthz", "ok")] {
        let res = reqwest::get(format!("{}{path}", s.url)).await.unwrap();
        assert_eq!(res.status(), 200, "{path}");
        assert_eq!(res.headers()["x-frame-options"], "DENY", "{path}: anti-framing as everywhere");
        if path != "/healthz" {
            assert_eq!(res.headers()["cache-control"], "no-store", "{path}: never a cached health answer");
        }
        assert_eq!(res.text().await.unwrap(), body, "{path}");
    }
    let res = reqwest::Client::new().post(format!("{}/health/ready", s.url)).send().await.unwrap();
    assert_eq!(res.status(), 405, "GET only");
}
