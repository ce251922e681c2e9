//! Graceful shutdown (issue 16): two `tessera serve` instances on one PostgreSQL database behind
//! a load balancer (this test: it sends each request to an instance whose `/health/ready`
//! answered 200 at its last check, every 50 ms) are restarted one after the other under
//! continuous token traffic. With `--shutdown-delay`, a SIGTERMed instance fails readiness at
//! once, keeps serving until the balancer has moved away, then stops accepting, finishes what
//! is in flight and exits 0: no request fails, by connection error or otherwise.

use crate::common::cluster::{Cluster, Instance, http};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rolling_restart_under_load_fails_no_request() {
    let cluster = Arc::new(Cluster::create().await);
    let args = ["--shutdown-delay", "1"];
    let mut instances: Vec<Instance> = vec![cluster.serve_with("a", &args), cluster.serve_with("b", &args)];
    // What the balancer knows: the instances' addresses.
    let urls: Arc<Mutex<Vec<String>>> = Arc::new(Mutex::new(instances.iter().map(|i| i.url.clone()).collect()));
    let ready: Arc<Mutex<Vec<String>>> = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));

    // The balancer's health checks.
    let checker = {
        let (urls, ready, stop) = (urls.clone(), ready.clone(), stop.clone());
        tokio::spawn(async move {
            let probe = reqwest::Client::builder().timeout(Duration::from_millis(500)).build().unwrap();
            while !stop.load(Ordering::Relaxed) {
                let known: Vec<String> = urls.lock().unwrap().clone();
                let mut up = Vec::new();
                for u in known {
                    if probe.get(format!("{u}/health/ready")).send().await.is_ok_and(|r| r.status() == 200) {
                        up.push(u);
                    }
                }
                *ready.lock().unwrap() = up;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    while ready.lock().unwrap().len() < 2 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Continuous traffic: four clients with keep-alive pools, round-robin over ready instances.
    let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(Mutex::new(Vec::<String>::new())));
    let mut load = Vec::new();
    for w in 0..4usize {
        let (cluster, ready, stop, ok, failed) = (cluster.clone(), ready.clone(), stop.clone(), ok.clone(), failed.clone());
        load.push(tokio::spawn(async move {
            let client = http();
            let mut n = w;
            while !stop.load(Ordering::Relaxed) {
                let target = {
                    let r = ready.lock().unwrap();
                    if r.is_empty() { None } else { Some(r[n % r.len()].clone()) }
                };
                n += 1;
                let Some(base) = target else {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    continue;
                };
                let res = client
                    .post(format!("{base}/token"))
                    .basic_auth(&cluster.client_id, Some(&cluster.secret))
                    .form(&[("grant_type", "client_credentials")])
                    .send()
                    .await;
                match res {
                    Ok(r) if r.status() == 200 => {
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(r) => failed.lock().unwrap().push(format!("{base}: HTTP {}", r.status())),
                    Err(e) => failed.lock().unwrap().push(format!("{base}: {e:?}")),
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    // The rolling restart: each instance in turn is stopped, and a new one takes its place.
    for (slot, name) in [(0usize, "a2"), (1, "b2")] {
        let before = ok.load(Ordering::Relaxed);
        let old_url = instances[slot].url.clone();
        let status = tokio::task::block_in_place(|| instances[slot].terminate(Duration::from_secs(15)));
        let status = status.unwrap_or_else(|| panic!("{old_url} still running 15 s after SIGTERM"));
        assert!(status.success(), "a SIGTERMed instance exits 0: {status:?}\n{}", instances[slot].log());
        let new = tokio::task::block_in_place(|| cluster.serve_with(name, &args));
        urls.lock().unwrap()[slot] = new.url.clone();
        instances[slot] = new;
        while ready.lock().unwrap().len() < 2 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(ok.load(Ordering::Relaxed) > before, "traffic went on during the restart of {old_url}");
    }
    stop.store(true, Ordering::Relaxed);
    for l in load {
        l.await.unwrap();
    }
    checker.await.unwrap();
    let failed = failed.lock().unwrap();
    let served = ok.load(Ordering::Relaxed);
    assert!(
        failed.is_empty(),
        "{} of {} requests failed during the rolling restart: {:?}",
        failed.len(),
        served + failed.len() as u64,
        &failed[..failed.len().min(10)]
    );
    assert!(served > 200, "only {served} requests were made");
}
