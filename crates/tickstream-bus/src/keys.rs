//! Key and channel names: the Redis half of the external contract.

/// Prefix of the per-symbol pub/sub channel; third-party publishers use it too.
pub const TICK_CHANNEL_PREFIX: &str = "ticks:";
/// Prefix of the latest-value cache key of every channel but ticks (`last:{channel}`).
pub const LAST_KEY_PREFIX: &str = "last:";
/// Prefix of the latest-tick cache key.
pub const PRICE_KEY_PREFIX: &str = "price:";
/// Prefix of an ingestor's heartbeat record (`tickstream:ingestor:{name}`).
pub const HEARTBEAT_KEY_PREFIX: &str = "tickstream:ingestor:";
/// Hash of the last published `seq` per symbol, so restarts continue the sequence.
pub const SEQ_HASH_KEY: &str = "tickstream:seq";
/// Hash of the last published trade `seq` per symbol (trades count separately from ticks).
pub const TRADE_SEQ_HASH_KEY: &str = "tickstream:seq:trades";
/// Prefix of the trade pub/sub channel.
pub const TRADE_CHANNEL_PREFIX: &str = "trades:";
/// Prefix of a channel's capped history stream (`history:ticks:BTCUSDT`), entry ids `{seq}-0`.
pub const HISTORY_KEY_PREFIX: &str = "history:";
/// The epoch of this Redis data set: created once, gone (and so renewed) when Redis loses its data.
pub const EPOCH_KEY: &str = "tickstream:epoch";

/// The channel a symbol's ticks are published on.
pub fn tick_channel(symbol: &str) -> String {
    format!("{TICK_CHANNEL_PREFIX}{symbol}")
}

/// The cache key holding a symbol's latest tick.
pub fn price_key(symbol: &str) -> String {
    format!("{PRICE_KEY_PREFIX}{symbol}")
}

/// The history stream of a channel.
pub fn history_key(channel: &str) -> String {
    format!("{HISTORY_KEY_PREFIX}{channel}")
}

/// The heartbeat key of one ingestor.
pub fn heartbeat_key(name: &str) -> String {
    format!("{HEARTBEAT_KEY_PREFIX}{name}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(tick_channel("EUR/USD"), "ticks:EUR/USD");
        assert_eq!(price_key("BTCUSDT"), "price:BTCUSDT");
        assert_eq!(history_key("trades:AAPL"), "history:trades:AAPL");
    }
}
