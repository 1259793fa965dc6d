//! A minimal native-protocol client, to try on-demand mode by hand: connects to
//! a gateway's `/ws`, subscribes to the symbols given, prints each frame's
//! event, symbol and price with the time since it subscribed, and leaves after
//! the given number of seconds.
//!
//! ```text
//! cargo run -p tickstream-mock-upstream --example ws_client -- ws://127.0.0.1:5021/ws ETHUSDT 5
//! ```

use std::time::{Duration, Instant};

use anyhow::Context;
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .context("usage: ws_client URL SYMBOLS SECONDS")?;
    let symbols: Vec<String> = args
        .next()
        .context("usage: ws_client URL SYMBOLS SECONDS")?
        .split(',')
        .map(str::to_owned)
        .collect();
    let seconds: u64 = args.next().unwrap_or_else(|| "5".to_owned()).parse()?;
    let (mut ws, _) = tokio_tungstenite::connect_async(url.as_str()).await?;
    let request = serde_json::json!({"event": "subscribe", "data": {"symbols": symbols}});
    ws.send(Message::text(request.to_string())).await?;
    let asked = Instant::now();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(seconds);
    while let Ok(Some(frame)) = tokio::time::timeout_at(deadline, ws.next()).await {
        let Message::Text(text) = frame? else {
            continue;
        };
        let v: serde_json::Value = serde_json::from_str(text.as_str())?;
        let data = &v["data"];
        let line = format!(
            "{:7.3}s {} {} {}",
            asked.elapsed().as_secs_f64(),
            v["event"].as_str().unwrap_or("?"),
            data["symbol"].as_str().unwrap_or(""),
            data.get("price")
                .map(ToString::to_string)
                .unwrap_or_default()
        );
        println!("{}", line.trim_end());
    }
    ws.close(None).await?;
    println!("{:7.3}s left", asked.elapsed().as_secs_f64());
    Ok(())
}
