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

/// How this deployment spells Redis names: the plain contract names on one
/// Redis, hash-tagged names on Redis Cluster.
///
/// On a cluster every name of one symbol (channel, cache key, history stream,
/// seq) must hash to one slot so its publish stays one atomic script; the tag
/// is the last `:`-separated segment, which is the symbol for every per-symbol
/// name (`ticks:{BTCUSDT}`, `price:{BTCUSDT}`, `history:ticks:{BTCUSDT}`,
/// `tickstream:seq:{BTCUSDT}`) and the whole name otherwise (`{sentiment}`).
/// Client-facing channel names never carry the tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Naming {
    /// One Redis: the contract's names as they always were.
    Plain,
    /// Redis Cluster: names hash-tagged by symbol, sharded pub/sub.
    Tagged,
}

impl Naming {
    /// The Redis spelling of `name` (a channel or a key) under this naming.
    pub fn name(self, name: &str) -> String {
        match self {
            Naming::Plain => name.to_owned(),
            Naming::Tagged => tag(name),
        }
    }

    /// The client-facing channel name of a Redis pub/sub channel (the tag removed).
    pub fn client_channel(self, redis_channel: &str) -> String {
        match self {
            Naming::Plain => redis_channel.to_owned(),
            Naming::Tagged => redis_channel.replacen('{', "", 1).replacen('}', "", 1),
        }
    }
}

/// `a:b:SYM` → `a:b:{SYM}`, `name` → `{name}`: the last segment becomes the hash tag.
pub fn tag(name: &str) -> String {
    match name.rsplit_once(':') {
        Some((head, last)) => format!("{head}:{{{last}}}"),
        None => format!("{{{name}}}"),
    }
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

    #[test]
    fn tagged_names_share_the_symbol_slot() {
        let t = Naming::Tagged;
        assert_eq!(t.name("ticks:BTCUSDT"), "ticks:{BTCUSDT}");
        assert_eq!(t.name("price:EUR/USD"), "price:{EUR/USD}");
        assert_eq!(
            t.name("history:candles:1m:AAPL"),
            "history:candles:1m:{AAPL}"
        );
        assert_eq!(t.name("sentiment"), "{sentiment}");
        assert_eq!(t.client_channel("candles:1m:{AAPL}"), "candles:1m:AAPL");
        assert_eq!(t.client_channel("{feeds}"), "feeds");
        assert_eq!(Naming::Plain.name("ticks:A"), "ticks:A");
        let slot = |k: &str| redis::cluster_routing::Slot::for_key(k);
        assert_eq!(
            slot(&t.name("ticks:BTCUSDT")),
            slot(&t.name("price:BTCUSDT"))
        );
        assert_eq!(
            slot(&t.name("history:ticks:BTCUSDT")),
            slot(&t.name("tickstream:seq:BTCUSDT"))
        );
    }
}
