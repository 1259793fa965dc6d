//! The Binance-mode mock upstream as a program, to try on-demand mode by hand
//! without the network (the README's sample output comes from it): serves
//! Binance's stream protocol on 127.0.0.1 (a port chosen by the system,
//! printed first), sends a ticker every second per subscribed stream, and
//! prints every `SUBSCRIBE`/`UNSUBSCRIBE` it receives, as it arrives.
//!
//! ```text
//! cargo run -p tickstream-mock-upstream --example mock_binance
//! ```

use std::time::Duration;

use tickstream_mock_upstream::ws::{BinanceOptions, MockWs};

/// Binance's documented raw `24hrTicker` payload, the template of every ticker sent.
const TICKER: &str = include_str!("../../../services/ingest-binance/test_data/ws_ticker_raw.json");

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let ws = MockWs::start_binance(BinanceOptions {
        ticker_template: TICKER.to_owned(),
        // Binance pushes each 24hr ticker once a second.
        tick_interval: Some(Duration::from_secs(1)),
    })
    .await;
    println!("mock Binance listening: BINANCE_WS_URL={}", ws.url());
    let started = std::time::Instant::now();
    let mut shown = vec![0usize; 0];
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => return Ok(()),
            _ = tokio::time::sleep(Duration::from_millis(50)) => {}
        }
        let connections = ws.connections();
        shown.resize(connections, 0);
        for (i, seen) in shown.iter_mut().enumerate() {
            let controls = ws.controls(i);
            for c in controls.iter().skip(*seen) {
                let at = c.at.saturating_duration_since(started).as_secs_f64();
                println!(
                    "{at:8.3}s connection {i}: {} {} (id {})",
                    c.method,
                    c.params.join(","),
                    c.id.clone().unwrap_or_default()
                );
            }
            *seen = controls.len();
        }
    }
}
