//! `Service` against the `fake_service` example, which follows the services'
//! contract (HOST/PORT env, JSON `Listening.` line).

use std::path::PathBuf;
use std::time::Duration;

use tickstream_testkit::{http_get_json, target_dir, Service};

fn fake_service() -> PathBuf {
    let path = target_dir()
        .join("examples")
        .join(format!("fake_service{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.exists(),
        "{} not built: run `cargo test -p tickstream-testkit`, which builds examples",
        path.display()
    );
    path
}

#[tokio::test]
async fn spawn_serves_logs_and_terminates() {
    let mut svc = Service::spawn_path(&fake_service(), &[("FAKE_EXTRA", "x")])
        .await
        .unwrap();
    assert!(svc.addr().ip().is_loopback());
    assert_ne!(svc.addr().port(), 0);
    assert_eq!(
        svc.http_url("/a"),
        format!("http://127.0.0.1:{}/a", svc.addr().port())
    );
    assert_eq!(
        svc.ws_url("/ws"),
        format!("ws://127.0.0.1:{}/ws", svc.addr().port())
    );

    let (status, body) = http_get_json(&svc.http_url("/hello")).await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(body["path"], "/hello");
    assert_eq!(body["log_format"], "json");
    assert_eq!(body["extra"], "x");
    // A developer's REDIS_URL must never leak into a service under test.
    assert!(body["redis_url"].is_null(), "{body}");

    svc.wait_for_log(Duration::from_secs(5), r#""path":"/hello""#)
        .await
        .unwrap();
    let logs = svc.logs();
    assert!(
        logs.iter().any(|l| l.contains("plain stderr line")),
        "{logs:?}"
    );

    assert_eq!(svc.wait_exit(Duration::from_millis(50)).await, None);
    svc.terminate().unwrap();
    let status = svc.wait_exit(Duration::from_secs(5)).await.unwrap();
    assert!(!status.success());
    // Signalling an exited service is a no-op, not an error.
    svc.terminate().unwrap();
    svc.kill().unwrap();
}

#[tokio::test]
async fn caller_env_overrides_defaults() {
    let svc = Service::spawn_path(
        &fake_service(),
        &[("LOG_FORMAT", "text"), ("REDIS_URL", "redis://127.0.0.1:1")],
    )
    .await
    .unwrap();
    let (_, body) = http_get_json(&svc.http_url("/")).await.unwrap();
    assert_eq!(body["log_format"], "text");
    assert_eq!(body["redis_url"], "redis://127.0.0.1:1");
}

#[tokio::test]
async fn restart_comes_back_on_the_same_port() {
    let mut svc = Service::spawn_path(&fake_service(), &[]).await.unwrap();
    let addr = svc.addr();
    let old_pid = svc.pid();
    http_get_json(&svc.http_url("/before")).await.unwrap();

    svc.kill().unwrap();
    assert!(svc.wait_exit(Duration::from_secs(5)).await.is_some());
    assert!(http_get_json(&svc.http_url("/down")).await.is_err());

    svc.restart().await.unwrap();
    assert_eq!(svc.addr(), addr);
    assert_ne!(svc.pid(), old_pid);
    let (status, body) = http_get_json(&svc.http_url("/after")).await.unwrap();
    assert_eq!((status, body["path"].as_str()), (200, Some("/after")));
    // Logs cover the new process only.
    assert!(!svc.logs().iter().any(|l| l.contains("/before")));
}

#[tokio::test]
async fn exit_before_listening_reports_its_logs() {
    let err = Service::spawn_path(&fake_service(), &[("FAKE_EXIT", "3")])
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("before logging `Listening.`"), "{msg}");
    assert!(msg.contains("Exiting early."), "{msg}");
    assert!(msg.contains("plain stderr line"), "{msg}");
}

#[tokio::test]
async fn wait_for_log_timeout_names_the_needle() {
    let svc = Service::spawn_path(&fake_service(), &[]).await.unwrap();
    let err = svc
        .wait_for_log(Duration::from_millis(100), "never printed")
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("never printed"), "{msg}");
    assert!(msg.contains("Listening."), "{msg}");
}
