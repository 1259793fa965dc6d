//! A private redis-server: starts, serves, crashes, comes back on its port.

use std::time::Duration;

use redis::AsyncCommands as _;
use tickstream_testkit::RedisServer;

#[tokio::test]
async fn set_get_kill_restart_on_same_port() {
    let mut server = RedisServer::start().await.unwrap();
    let port = server.port();
    assert_ne!(port, 6379, "must never use the shared Redis");
    assert_eq!(server.url(), format!("redis://127.0.0.1:{port}"));
    assert!(server.ping().await);

    let mut con = server.client().await.unwrap();
    let () = con.set("tick:BTC", "42000.5").await.unwrap();
    let got: String = con.get("tick:BTC").await.unwrap();
    assert_eq!(got, "42000.5");

    server.kill();
    assert!(!server.ping().await, "PING must fail after kill");
    assert!(server.client().await.is_err());
    // Killing twice is harmless.
    server.kill();

    server.restart().await.unwrap();
    assert_eq!(server.port(), port);
    assert!(server.ping().await);
    // Nothing is persisted: the restarted server is empty.
    let mut con = server.client().await.unwrap();
    let got: Option<String> = con.get("tick:BTC").await.unwrap();
    assert_eq!(got, None);
}

#[tokio::test]
async fn restart_while_running_replaces_the_process() {
    let mut server = RedisServer::start().await.unwrap();
    let port = server.port();
    let mut con = server.client().await.unwrap();
    let () = con.set("k", "v").await.unwrap();
    server.restart().await.unwrap();
    assert_eq!(server.port(), port);
    let mut con = server.client().await.unwrap();
    let got: Option<String> = con.get("k").await.unwrap();
    assert_eq!(got, None);
}

#[tokio::test]
async fn servers_are_independent() {
    let a = RedisServer::start().await.unwrap();
    let b = RedisServer::start().await.unwrap();
    assert_ne!(a.port(), b.port());
    let mut ca = a.client().await.unwrap();
    let mut cb = b.client().await.unwrap();
    let () = ca.set("only-in-a", 1).await.unwrap();
    let got: Option<i64> = cb.get("only-in-a").await.unwrap();
    assert_eq!(got, None);
}

#[tokio::test]
async fn drop_kills_the_process_and_removes_its_dir() {
    let server = RedisServer::start().await.unwrap();
    let dir = server.dir().to_path_buf();
    let url = server.url();
    assert!(dir.join("redis.log").exists());
    drop(server);
    assert!(!dir.exists(), "{} left behind", dir.display());
    let client = redis::Client::open(url).unwrap();
    let connect = tokio::time::timeout(
        Duration::from_secs(2),
        client.get_multiplexed_async_connection(),
    )
    .await;
    assert!(
        !matches!(connect, Ok(Ok(_))),
        "server still answers after drop"
    );
}

#[tokio::test]
async fn restart_waits_for_a_port_that_lingers() {
    let mut server = RedisServer::start().await.unwrap();
    let port = server.port();
    server.kill();
    // Someone else holds the port for a moment (the scenario, not a sync).
    let squatter = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    let release = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        drop(squatter);
    });
    server.restart().await.unwrap();
    release.await.unwrap();
    assert_eq!(server.port(), port);
    assert!(server.ping().await);
}
