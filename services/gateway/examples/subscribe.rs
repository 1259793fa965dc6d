//! Minimal native-protocol client: subscribe and print every frame.
//!
//! `cargo run -p gateway --example subscribe -- ws://127.0.0.1:5021/ws BTCUSDT ETHUSDT`

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .unwrap_or_else(|| "ws://127.0.0.1:5021/ws".to_owned());
    let symbols: Vec<String> = args.collect();
    let symbols = if symbols.is_empty() {
        vec!["BTCUSDT".to_owned()]
    } else {
        symbols
    };
    let (mut ws, _) = tokio_tungstenite::connect_async(url.as_str()).await?;
    let request = serde_json::json!({"event": "subscribe", "data": {"symbols": symbols}});
    ws.send(Message::text(request.to_string())).await?;
    while let Some(msg) = ws.next().await {
        if let Message::Text(text) = msg? {
            println!("{text}");
        }
    }
    Ok(())
}
