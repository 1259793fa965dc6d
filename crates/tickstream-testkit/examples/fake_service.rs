//! A stand-in for a tickstream service, used only by the testkit's own tests
//! of [`Service`](tickstream_testkit::Service) before real service binaries
//! exist.
//!
//! It follows the services' contract: binds `HOST:PORT`, logs a JSON
//! `Listening.` line with `fields.addr` on stdout, and dies on SIGTERM. Every
//! HTTP request gets a JSON body echoing the path and a few environment
//! variables. `FAKE_EXIT=<code>` makes it log a line and exit before listening.

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{TcpListener, TcpStream};

fn main() -> std::io::Result<()> {
    eprintln!("fake service starting (a plain stderr line)");
    if let Ok(code) = std::env::var("FAKE_EXIT") {
        println!(r#"{{"level":"ERROR","fields":{{"message":"Exiting early."}}}}"#);
        std::process::exit(code.parse().unwrap_or(1));
    }
    let host = std::env::var("HOST").unwrap_or_else(|_| "127.0.0.1".to_string());
    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    let listener = TcpListener::bind((host.as_str(), port))?;
    let addr = listener.local_addr()?;
    println!(
        r#"{{"timestamp":"2025-01-01T00:00:00Z","level":"INFO","fields":{{"message":"Listening.","addr":"{addr}"}},"target":"fake_service"}}"#
    );
    for stream in listener.incoming() {
        if let Err(e) = stream.and_then(serve) {
            eprintln!("request failed: {e}");
        }
    }
    Ok(())
}

/// Answers one HTTP/1.1 request with a JSON echo and closes the connection.
fn serve(mut stream: TcpStream) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    // Skip the headers; requests from the tests have no body.
    let mut header = String::new();
    while reader.read_line(&mut header)? > 2 {
        header.clear();
    }
    let path = request_line.split_whitespace().nth(1).unwrap_or("/");
    println!(r#"{{"level":"INFO","fields":{{"message":"Request.","path":"{path}"}}}}"#);
    let env = |key: &str| std::env::var(key).ok();
    let body = serde_json::json!({
        "path": path,
        "log_format": env("LOG_FORMAT"),
        "redis_url": env("REDIS_URL"),
        "extra": env("FAKE_EXTRA"),
    })
    .to_string();
    write!(
        stream,
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    stream.flush()
}
