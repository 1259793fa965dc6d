//! One client's subscriptions and limits, independent of the wire protocol.
//!
//! Both transports (`/ws` native JSON in [`crate::ws`], Socket.IO in
//! the Socket.IO module) hold one [`ClientSession`] per client and feed it
//! parsed [`Action`]s; it talks to the [`Hub`] and Redis and answers with a
//! protocol-neutral [`Response`] (event name + data + cached values) that the
//! transport encodes in its own framing. Subscriptions are channels
//! (`symbols` in a request stand for their `ticks:` channels). Limits
//! (channels per connection, request rate, bad requests in a row, symbols a
//! token grants), per-channel rate caps (`max_hz`) and the snapshot seq-guard
//! live here once, so both protocols behave the same.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tickstream_model::{Channel, Symbol};

use super::limits::ConnPermit;
use super::request::{self, Action, ClientError, ErrorCode, Recovery, Targets};
use super::slow::{self, SlowConsumer, WriteFailed};
use crate::compat::aliases::Resolver;
use crate::fanout::{ClientId, Outbound, Outlet, Publication, Relay, TickQueue};
use crate::state::AppState;
pub use crate::vocabulary::Protocol;

/// How long a snapshot's seq guards against duplicate live frames queued before it.
const SNAPSHOT_GUARD: Duration = Duration::from_secs(5);

/// How long a recovery's seq guards against live frames its replay already covered.
///
/// Longer than [`SNAPSHOT_GUARD`]: a replay of thousands of items to a client
/// on a loaded machine can take longer than 5 s to write, and the live items
/// queued behind it must still be recognised as duplicates. (The guard ends at
/// the first newer frame anyway; the time limit only matters if the producer
/// started its seqs over.)
const RECOVERY_GUARD: Duration = Duration::from_secs(60);

/// A protocol-neutral answer to one request, encoded by the transport.
#[derive(Debug)]
pub struct Response {
    /// The event answering the request (`subscribed`, `unsubscribed`, `subscriptions`, `pong`, `error`).
    pub event: &'static str,
    /// Its payload, identical for every protocol.
    pub data: Value,
    /// Cached values to send right after the reply and before any live frame.
    pub snapshots: Vec<Publication>,
    /// Too many bad requests in a row: the transport must now close the connection.
    pub abuse: bool,
}

impl Response {
    fn event(event: &'static str, data: Value) -> Self {
        Self {
            event,
            data,
            snapshots: Vec::new(),
            abuse: false,
        }
    }
}

/// Refills `rate` tokens per second up to `rate`; one token per subscribe/unsubscribe.
struct TokenBucket {
    rate: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    fn new(rate: u32) -> Self {
        Self {
            rate: f64::from(rate),
            tokens: f64::from(rate),
            last: Instant::now(),
        }
    }

    fn take(&mut self) -> bool {
        let now = Instant::now();
        self.tokens =
            (self.tokens + now.duration_since(self.last).as_secs_f64() * self.rate).min(self.rate);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// One client's subscriptions, limits and hub registration, owned by its connection task.
pub struct ClientSession {
    /// Config, hub, Redis and metrics.
    state: Arc<AppState>,
    /// Which protocol, for the connection metrics.
    protocol: Protocol,
    /// Hub id.
    client: ClientId,
    /// Public id (`connected.client_id`, also the Socket.IO socket id).
    client_id: String,
    /// The bounded, conflating tick queue; shared with the hub per subscription.
    outlet: Arc<Outlet>,
    /// Channels subscribed with `max_hz`: at most that many updates per second, always the newest.
    throttles: HashMap<Channel, Throttle>,
    /// How many throttled channels hold an item waiting for its slot (0: no timer needed).
    held: usize,
    /// Symbols the client's token grants (`None`: no restriction).
    grant: Option<HashSet<Symbol>>,
    /// This connection's slot in the connection limits, released on drop.
    _permit: Option<ConnPermit>,
    /// Channels this client holds; frames for others (queued before an unsubscribe) are skipped.
    subscribed: HashSet<Channel>,
    /// How many of the next frames were queued before the last unsubscribe and must be checked against `subscribed`.
    ///
    /// The hub offers a client only its subscribed channels, so only frames
    /// already queued when an unsubscribe took effect can be unwanted; every
    /// other frame skips the set lookup (a measurable share of fan-out CPU).
    recheck: usize,
    /// Seq of the snapshot (or the last replayed item) sent per channel, and until when it
    /// guards: older live frames queued meanwhile are skipped as duplicates.
    snapshot_seq: HashMap<Channel, (u64, Instant)>,
    /// Limit breaches in a row; past the configured maximum the transport closes the connection.
    violations: u32,
    /// subscribe/unsubscribe rate limit.
    bucket: TokenBucket,
    /// The symbols feeds serve under their own names, read before resolving aliases.
    served: Arc<HashSet<String>>,
}

impl ClientSession {
    /// Registers a new client (counted in the connection metrics) and returns it with its tick queue.
    ///
    /// Called on the actix worker whose task will read the queue (see [`Relay`]).
    pub fn open(
        state: Arc<AppState>,
        protocol: Protocol,
        permit: Option<ConnPermit>,
    ) -> (Self, TickQueue) {
        let (client, client_id) = state.hub.new_client();
        let g = &state.cfg.gateway;
        // The connection task runs on this worker thread: the hub wakes it through the thread's relay.
        let relay = Relay::for_this_thread(Duration::from_millis(g.write_delay_ms));
        let (outlet, rx) = Outlet::relayed(g.queue_capacity, relay);
        let label = [protocol.label()];
        state.metrics.connections.with_label_values(&label).inc();
        state
            .metrics
            .connections_opened
            .with_label_values(&label)
            .inc();
        let session = Self {
            bucket: TokenBucket::new(g.requests_per_second),
            state,
            protocol,
            client,
            client_id,
            outlet,
            throttles: HashMap::new(),
            held: 0,
            grant: None,
            _permit: permit,
            subscribed: HashSet::new(),
            recheck: 0,
            snapshot_seq: HashMap::new(),
            violations: 0,
            served: Arc::default(),
        };
        (session, rx)
    }

    /// The public client id.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The outbound path, for the transport's drain and slow-consumer checks.
    pub fn outlet(&self) -> &Arc<Outlet> {
        &self.outlet
    }

    /// How long the client may stay behind before it is cut as a slow consumer (`gateway.slow_consumer_timeout_ms`).
    pub fn slow_timeout(&self) -> Duration {
        Duration::from_millis(self.state.cfg.gateway.slow_consumer_timeout_ms)
    }

    /// Awaits one write to this client's socket under the slow-consumer rule
    /// ([`outlet::write_or_slow`]), so every transport ends a connection for the same reasons.
    pub async fn write<E>(
        &self,
        write: impl std::future::Future<Output = Result<(), E>>,
    ) -> Result<(), WriteFailed> {
        let metrics = &self.state.metrics;
        match slow::write_or_slow(&self.outlet, self.slow_timeout(), metrics, write).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(WriteFailed::Closed),
            Err(SlowConsumer) => Err(WriteFailed::SlowConsumer),
        }
    }

    /// Hands a batch of encoded frames to the socket under the slow-consumer rule; `batch` is left empty.
    ///
    /// The usual case (room in the writer's queue) takes no future at all; the
    /// waiting one is boxed, so every connection task does not carry its state
    /// (memory per client). Every WebSocket transport writes its ticks through here.
    pub async fn write_batch(
        &self,
        out: &crate::websocket::write::WsOut,
        batch: &mut Vec<actix_web::web::Bytes>,
    ) -> Result<(), WriteFailed> {
        if batch.is_empty() {
            return Ok(());
        }
        match out.try_frames(batch) {
            Ok(true) => return Ok(()),
            Ok(false) => {}
            Err(_) => {
                batch.clear();
                return Err(WriteFailed::Closed);
            }
        }
        let result = Box::pin(self.write(out.frames(batch))).await;
        batch.clear();
        result
    }

    /// Restricts subscriptions to these symbols (the token's `symbols` claim).
    pub fn set_grant(&mut self, grant: Option<HashSet<Symbol>>) {
        self.grant = grant;
    }

    /// The shared state, for transport limits and the shutdown signal.
    pub fn state(&self) -> &Arc<AppState> {
        &self.state
    }

    /// The payload of the `connected` event every client gets first.
    pub fn connected(&self) -> Value {
        request::connected_data(&self.client_id)
    }

    /// Executes one request and says what to answer.
    ///
    /// Boxed: subscribing (snapshots, recovery, history reads) is a large future,
    /// and inlined it would sit in every connection task for its whole life;
    /// requests are rare next to the ticks a connection writes.
    pub async fn handle(&mut self, action: Action) -> Response {
        Box::pin(self.handle_inner(action)).await
    }

    async fn handle_inner(&mut self, action: Action) -> Response {
        match action {
            Action::Subscribe {
                targets,
                max_hz,
                recovery,
            } => {
                if !self.bucket.take() {
                    return self.reject(rate_limited());
                }
                self.subscribe(targets, max_hz, recovery).await
            }
            Action::History {
                channel,
                since_seq,
                limit,
            } => {
                if !self.bucket.take() {
                    return self.reject(rate_limited());
                }
                self.history(channel, since_seq, limit).await
            }
            Action::Unsubscribe(targets) => {
                if !self.bucket.take() {
                    return self.reject(rate_limited());
                }
                self.unsubscribe(targets).await
            }
            Action::List => {
                let mut list: Vec<Channel> = self.subscribed.iter().cloned().collect();
                list.sort();
                Response::event("subscriptions", request::subscriptions_data(&list))
            }
            Action::Ping => Response::event("pong", request::pong_data()),
        }
    }

    /// Subscribes to `?symbols=A,B` / `?channels=X,Y` lists given at connect (no rate limit, no violation on error).
    pub async fn subscribe_initial(
        &mut self,
        symbols: Option<&str>,
        channels: Option<&str>,
    ) -> Option<Response> {
        let data = serde_json::json!({ "symbols": symbols, "channels": channels });
        if symbols.is_none_or(|s| s.trim().is_empty())
            && channels.is_none_or(|c| c.trim().is_empty())
        {
            return None;
        }
        let max = self.state.cfg.gateway.max_symbols_per_connection;
        match request::parse_action("subscribe", &data, max) {
            Ok(Action::Subscribe {
                targets, max_hz, ..
            }) => Some(self.subscribe(targets, max_hz, None).await),
            Ok(_) => None,
            Err(e) => Some(self.error(e)),
        }
    }

    async fn subscribe(
        &mut self,
        targets: Targets,
        max_hz: Option<f64>,
        recovery: Option<Recovery>,
    ) -> Response {
        let channels = targets.all();
        self.refresh_served(&channels).await;
        if let Some(grant) = &self.grant {
            // Symbol-keyed channels need their symbol granted; `sentiment` and `feeds` carry no one symbol's data.
            // An alias is granted by its feed symbol (a token for BTCUSDT grants BTC).
            let denied = channels.iter().find_map(|c| {
                let sym = c.symbol()?;
                let fed = self.source_of(c);
                let fed_sym = fed.as_ref().and_then(Channel::symbol).unwrap_or(sym);
                let granted = Symbol::parse(fed_sym).is_ok_and(|s| grant.contains(&s));
                (!granted).then(|| sym.to_owned())
            });
            if let Some(denied) = denied {
                let e = ClientError::new(
                    ErrorCode::Unauthorized,
                    format!("your token does not grant {denied}"),
                );
                self.state
                    .metrics
                    .auth_failures
                    .with_label_values(&["symbol_denied"])
                    .inc();
                return self.reject(e);
            }
        }
        let max = self.state.cfg.gateway.max_symbols_per_connection;
        let new: Vec<Channel> = channels
            .iter()
            .filter(|c| !self.subscribed.contains(*c))
            .cloned()
            .collect();
        if self.subscribed.len() + new.len() > max {
            return self.reject(ClientError::new(
                ErrorCode::TooManySymbols,
                format!(
                    "holding {} channels, {} more would exceed the limit of {max}",
                    self.subscribed.len(),
                    new.len()
                ),
            ));
        }
        self.violations = 0;
        let sourced: Vec<(Channel, Option<Channel>)> =
            new.iter().map(|c| (c.clone(), self.source_of(c))).collect();
        let first = self
            .state
            .hub
            .subscribe_sourced(self.client, &self.outlet, &sourced);
        for ch in &first {
            self.state.subscriber.sync(ch.as_str()).await;
        }
        self.subscribed.extend(new.iter().cloned());
        // Each subscribe sets the rate of the channels it names (no max_hz: unlimited).
        for ch in &channels {
            let old = match max_hz {
                Some(hz) => self.throttles.insert(ch.clone(), Throttle::new(hz)),
                None => self.throttles.remove(ch),
            };
            if old.is_some_and(|t| t.held.is_some()) {
                self.held -= 1;
            }
        }
        let (replays, outcome) = match &recovery {
            Some(r) => self.recover(r).await,
            None => (Vec::new(), None),
        };
        // Recovered channels get their replay instead of a snapshot.
        let snapshot_for: Vec<Channel> = new
            .iter()
            .filter(|c| !outcome.as_ref().is_some_and(|o| o.recovered(c)))
            .cloned()
            .collect();
        let (mut snapshots, pending, epoch) = self.snapshots(&channels, &snapshot_for).await;
        let epoch = outcome.as_ref().map(|o| o.epoch.clone()).or(epoch);
        let mut data = request::subscribed_data(&targets, &pending, epoch.as_deref());
        if let Value::Object(obj) = &mut data {
            if let Some(hz) = max_hz {
                obj.insert("max_hz".to_owned(), serde_json::json!(hz));
            }
            if let Some(o) = &outcome {
                obj.insert("recovery".to_owned(), o.to_json());
            }
        }
        let mut response = Response::event("subscribed", data);
        snapshots.extend(replays);
        response.snapshots = snapshots;
        let now = Instant::now();
        for frame in &response.snapshots {
            if let Some(t) = self.throttles.get_mut(&frame.channel) {
                t.last_sent = Some(now);
            }
        }
        response
    }

    /// Reads the cache of every named channel in one round trip: the snapshots
    /// to send for the newly subscribed ones (where their kind has one, skipping
    /// invalid values, recording their seqs), the channels nobody has
    /// published on within the cache's TTL (`pending`), and the data set's epoch.
    ///
    /// When Redis cannot be read, nothing is reported pending (the gateway does
    /// not know) and the subscription goes on without snapshots.
    async fn snapshots(
        &mut self,
        named: &[Channel],
        new: &[Channel],
    ) -> (Vec<Publication>, Vec<Channel>, Option<String>) {
        if named.is_empty() {
            return (Vec::new(), Vec::new(), None);
        }
        let sources: Vec<Channel> = named
            .iter()
            .map(|c| self.source_of(c).unwrap_or_else(|| c.clone()))
            .collect();
        let (cached, epoch) = match self.state.redis.latest_channels_and_epoch(&sources).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "Cache unavailable; subscribing without snapshots.");
                return (Vec::new(), Vec::new(), None);
            }
        };
        let mut frames = Vec::new();
        let mut pending = Vec::new();
        for (ch, raw) in named.iter().zip(cached) {
            let Some(raw) = raw else {
                pending.push(ch.clone());
                continue;
            };
            if !ch.spec().snapshot || !new.contains(ch) {
                continue;
            }
            match self.decode_as(ch, &raw) {
                Ok(frame) => {
                    if frame.seq > 0 {
                        self.snapshot_seq
                            .insert(ch.clone(), (frame.seq, Instant::now() + SNAPSHOT_GUARD));
                    }
                    frames.push(frame);
                }
                Err(e) => {
                    tracing::debug!(channel = %ch, error = %e, "Skipping invalid cached value.")
                }
            }
        }
        (frames, pending, epoch)
    }

    /// Replays what the client missed on each channel of `recovery`, where the history still has it.
    ///
    /// Called after the channels are in the hub. For each one it first makes
    /// sure the Redis subscription is live (so every item published from then
    /// on reaches this client's queue), then reads the history after the
    /// client's seq: nothing can fall between the read and the live stream.
    /// The live items queued meanwhile that the replay also holds are skipped
    /// by the seq guard ([`Self::wants`]), so nothing arrives twice. A channel
    /// whose history no longer reaches back (trimmed), whose epoch changed, or
    /// that is more than `gateway.recovery_max_items` behind is not recovered:
    /// the reply says why and the client gets the latest snapshot instead.
    async fn recover(
        &mut self,
        recovery: &Recovery,
    ) -> (Vec<Publication>, Option<RecoveryOutcome>) {
        let cap = self.state.cfg.gateway.recovery_max_items;
        let mut frames = Vec::new();
        let mut outcome = RecoveryOutcome::default();
        for (channel, since) in &recovery.since {
            if !self
                .state
                .subscriber
                .sync_confirmed(channel.as_str(), RECOVERY_SUBSCRIBE_TIMEOUT)
                .await
            {
                tracing::debug!(channel = %channel, "Redis subscription not confirmed; recovering anyway.");
            }
            let source = self.source_of(channel).unwrap_or_else(|| channel.clone());
            let page = match self.state.redis.history(&source, *since, cap + 1).await {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!(channel = %channel, error = %e, "History unavailable; no recovery.");
                    outcome.push(channel, Err("unavailable"));
                    continue;
                }
            };
            if outcome.epoch.is_empty() {
                outcome.epoch = page.epoch.clone();
            }
            let result = if recovery.epoch.as_ref().is_some_and(|e| *e != page.epoch) {
                Err("epoch_changed")
            } else if page.newest.is_none() {
                Err("no_history")
            } else if !page.reaches(*since) {
                Err("trimmed")
            } else if page.items.len() > cap {
                Err("too_far_behind")
            } else {
                let mut last = *since;
                for (seq, raw) in &page.items {
                    match self.decode_as(channel, raw) {
                        Ok(frame) => {
                            last = *seq;
                            frames.push(frame);
                        }
                        Err(e) => {
                            tracing::debug!(channel = %channel, seq, error = %e, "Skipping an invalid history item.")
                        }
                    }
                }
                // Live items up to what the replay covered are duplicates.
                self.snapshot_seq
                    .insert(channel.clone(), (last, Instant::now() + RECOVERY_GUARD));
                Ok(page.items.len())
            };
            outcome.push(channel, result);
        }
        (frames, Some(outcome))
    }

    /// Answers a `history` request from the channel's stream.
    async fn history(&mut self, channel: Channel, since: u64, limit: Option<usize>) -> Response {
        self.refresh_served(std::slice::from_ref(&channel)).await;
        if let Some(grant) = &self.grant {
            let granted = channel
                .symbol()
                .and_then(|s| Symbol::parse(s).ok())
                .is_some_and(|s| grant.contains(&s));
            if !granted {
                return self.reject(ClientError::new(
                    ErrorCode::Unauthorized,
                    format!("your token does not grant {channel}"),
                ));
            }
        }
        let cap = self.state.cfg.gateway.history_max_items;
        let limit = limit.unwrap_or(cap).min(cap);
        let source = self.source_of(&channel).unwrap_or_else(|| channel.clone());
        match self.state.redis.history(&source, since, limit).await {
            Ok(page) => {
                let items = page
                    .items
                    .iter()
                    .filter_map(|(_, raw)| self.decode_as(&channel, raw).ok())
                    .filter_map(|p| serde_json::from_str::<Value>(p.data()).ok())
                    .collect();
                Response::event(
                    "history",
                    request::history_data(&channel, &page.epoch, items),
                )
            }
            Err(e) => {
                tracing::warn!(channel = %channel, error = %e, "History unavailable.");
                self.error(ClientError::new(
                    ErrorCode::Unavailable,
                    "history is unavailable right now (Redis); try again",
                ))
            }
        }
    }

    /// The channel an alias channel is fed from (`ticks:BTC` → `ticks:BTCUSDT`, by
    /// `gateway.compat`'s alias table); `None` when the channel is served under its own name.
    fn source_of(&self, channel: &Channel) -> Option<Channel> {
        let symbol = Symbol::parse(channel.symbol()?).ok()?;
        let aliases = Resolver::new(&self.state.cfg.gateway.compat, &self.served);
        channel.with_symbol(&aliases.target(&symbol)?)
    }

    /// Reads which symbols the feeds serve themselves, when some of `channels` could be aliases.
    async fn refresh_served(&mut self, channels: &[Channel]) {
        let compat = &self.state.cfg.gateway.compat;
        let maybe_alias = channels.iter().any(|c| {
            c.symbol()
                .and_then(|s| Symbol::parse(s).ok())
                .is_some_and(|s| Resolver::may_alias(compat, &s))
        });
        if maybe_alias {
            self.served = self.state.served.get(&self.state.redis).await;
        }
    }

    /// Decodes a stored or cached item of `channel`'s source as a publication on `channel`
    /// (renamed to the alias's symbol when `channel` is an alias).
    fn decode_as(&self, channel: &Channel, raw: &[u8]) -> Result<Publication, String> {
        match self.source_of(channel) {
            Some(source) => Publication::decode(&source, raw)?
                .renamed(channel)
                .ok_or_else(|| "no symbol to rename".to_owned()),
            None => Publication::decode(channel, raw),
        }
    }

    async fn unsubscribe(&mut self, targets: Targets) -> Response {
        self.violations = 0;
        let held: Vec<Channel> = targets
            .all()
            .into_iter()
            .filter(|c| self.subscribed.remove(c))
            .collect();
        for ch in &held {
            self.snapshot_seq.remove(ch);
            if self.throttles.remove(ch).is_some_and(|t| t.held.is_some()) {
                self.held -= 1;
            }
        }
        let emptied = self.state.hub.unsubscribe(self.client, held.iter());
        self.after_unsubscribe(&held);
        for ch in &emptied {
            self.state.subscriber.sync(ch.as_str()).await;
        }
        Response::event("unsubscribed", request::unsubscribed_data(&targets))
    }

    /// Drops every subscription (Socket.IO DISCONNECT keeps the transport but ends the client).
    pub async fn unsubscribe_all(&mut self) {
        let held: Vec<Channel> = self.subscribed.drain().collect();
        self.snapshot_seq.clear();
        self.throttles.clear();
        self.held = 0;
        let emptied = self.state.hub.unsubscribe(self.client, held.iter());
        self.after_unsubscribe(&held);
        for ch in &emptied {
            self.state.subscriber.sync(ch.as_str()).await;
        }
    }

    /// Marks what is queued now as possibly stale; the hub sends no newer frame for `held`.
    fn after_unsubscribe(&mut self, held: &[Channel]) {
        self.recheck = self.outlet.queued();
        self.outlet.forget(held);
    }

    /// Whether a queued frame should go out now: subscribed, newer than the snapshot sent, and within its channel's `max_hz`.
    ///
    /// A frame over its symbol's rate is held (replacing an older held one)
    /// and goes out when its slot comes ([`Self::release_due`]), so the
    /// client always ends on the newest tick.
    pub fn wants(&mut self, frame: &Outbound) -> bool {
        if self.recheck > 0 {
            self.recheck -= 1;
            if !self.subscribed.contains(&frame.channel) {
                return false;
            }
        }
        if !self.snapshot_seq.is_empty() {
            match self.snapshot_seq.get(&frame.channel) {
                Some(&(seq, until)) if frame.seq <= seq && Instant::now() < until => return false,
                Some(_) => {
                    self.snapshot_seq.remove(&frame.channel);
                }
                None => {}
            }
        }
        if self.throttles.is_empty() {
            return true;
        }
        let Some(t) = self.throttles.get_mut(&frame.channel) else {
            return true;
        };
        let now = Instant::now();
        match t.last_sent {
            Some(last) if now < last + t.interval => {
                if t.held.replace(frame.clone()).is_none() {
                    self.held += 1;
                }
                false
            }
            _ => {
                t.last_sent = Some(now);
                if t.held.take().is_some() {
                    self.held -= 1;
                }
                true
            }
        }
    }

    /// When the next held (rate-capped) tick is due, if any.
    pub fn next_release(&self) -> Option<Instant> {
        if self.held == 0 {
            return None;
        }
        self.throttles
            .values()
            .filter(|t| t.held.is_some())
            .filter_map(|t| t.last_sent.map(|l| l + t.interval))
            .min()
    }

    /// Moves every held tick whose slot has come into `out` (to be written now).
    pub fn release_due(&mut self, out: &mut Vec<Outbound>) {
        if self.held == 0 {
            return;
        }
        let now = Instant::now();
        for t in self.throttles.values_mut() {
            let due = t.last_sent.is_none_or(|l| l + t.interval <= now);
            if due {
                if let Some(frame) = t.held.take() {
                    t.last_sent = Some(now);
                    self.held -= 1;
                    out.push(frame);
                }
            }
        }
    }

    /// An `error` answer that does not count as a violation (counted in the error metric).
    pub fn error(&self, e: ClientError) -> Response {
        self.state
            .metrics
            .client_errors
            .with_label_values(&[e.code.as_str()])
            .inc();
        Response::event("error", request::error_data(&e))
    }

    /// An `error` answer to a bad request; flags abuse after too many in a row.
    pub fn reject(&mut self, e: ClientError) -> Response {
        let mut response = self.error(e);
        self.violations += 1;
        if self.violations > self.state.cfg.gateway.max_violations {
            self.state
                .metrics
                .disconnects
                .with_label_values(&[crate::vocabulary::Disconnect::Abuse.label()])
                .inc();
            response.abuse = true;
        }
        response
    }

    /// Leaves the hub (dropping Redis subscriptions nobody else needs) and the connection gauge.
    pub async fn close(mut self) {
        self.unsubscribe_all().await;
        self.state
            .metrics
            .connections
            .with_label_values(&[self.protocol.label()])
            .dec();
    }
}

/// How long a recovering subscribe waits for Redis to confirm a new subscription before reading history anyway.
const RECOVERY_SUBSCRIBE_TIMEOUT: Duration = Duration::from_secs(2);

/// The per-channel result of a recovery, for the `subscribed` reply.
#[derive(Debug, Default)]
struct RecoveryOutcome {
    /// The data set's epoch the replayed seqs belong to.
    epoch: String,
    /// Per channel: items replayed, or why it was not recovered.
    channels: Vec<(Channel, Result<usize, &'static str>)>,
}

impl RecoveryOutcome {
    fn push(&mut self, channel: &Channel, result: Result<usize, &'static str>) {
        self.channels.push((channel.clone(), result));
    }

    /// Whether `channel` was recovered (and so needs no snapshot).
    fn recovered(&self, channel: &Channel) -> bool {
        self.channels.iter().any(|(c, r)| c == channel && r.is_ok())
    }

    /// `{"ticks:X":{"recovered":true,"replayed":12},"trades:X":{"recovered":false,"reason":"trimmed"}}`.
    fn to_json(&self) -> Value {
        let map = self
            .channels
            .iter()
            .map(|(c, r)| {
                let v = match r {
                    Ok(n) => serde_json::json!({"recovered": true, "replayed": n}),
                    Err(reason) => serde_json::json!({"recovered": false, "reason": reason}),
                };
                (c.as_str().to_owned(), v)
            })
            .collect::<serde_json::Map<String, Value>>();
        Value::Object(map)
    }
}

/// Per-channel rate cap state of a `max_hz` subscription.
struct Throttle {
    /// 1 / max_hz.
    interval: Duration,
    /// When an item of this channel last went out.
    last_sent: Option<Instant>,
    /// The newest tick that arrived too soon; sent when the interval has passed.
    held: Option<Outbound>,
}

impl Throttle {
    fn new(max_hz: f64) -> Self {
        Self {
            interval: Duration::from_secs_f64(1.0 / max_hz),
            last_sent: None,
            held: None,
        }
    }
}

fn rate_limited() -> ClientError {
    ClientError::new(
        ErrorCode::RateLimited,
        "too many subscribe/unsubscribe requests; slow down",
    )
}

/// A transport's half of [`drain_ticks`]: where the ticks a client wants go, and how they reach its socket.
pub(crate) trait TickSink {
    /// How the connection ends when a write fails or the client is too slow.
    type End;
    /// Ticks taken from the queue per drain before the connection task turns to its other events.
    const MAX_TAKEN: usize;
    /// The client's session: its filter (`wants`) and slow-consumer clock.
    fn session(&mut self) -> &mut ClientSession;
    /// Reused buffer for the conflated ticks taken from the outlet.
    fn pending(&mut self) -> &mut Vec<Outbound>;
    /// Queues one tick the client wants; true when enough is queued to write now.
    fn queue(&mut self, frame: &Outbound) -> bool;
    /// Hands the queued ticks to the socket, under [`ClientSession::write`]'s slow-consumer rule.
    async fn flush(&mut self) -> Result<(), Self::End>;
    /// The end of a client that is still behind past the slow-consumer timeout.
    fn slow_consumer() -> Self::End;
}

/// Writes `first` and whatever else is queued (up to [`TickSink::MAX_TAKEN`]),
/// then the conflated pending ticks once the queue is empty, for either transport.
///
/// Order per symbol holds: the outlet's conflated ticks are taken only after
/// the queue has been emptied and written ([`Outlet::take_pending`]). Frames
/// go to the socket in batches (one lock and one wake-up per batch).
pub(crate) async fn drain_ticks<S: TickSink>(
    sink: &mut S,
    first: Option<Outbound>,
    rx: &mut TickQueue,
) -> Result<(), S::End> {
    // The outlet is borrowed where needed, never cloned: its reference count shares a cache
    // line with what the hub reads on every tick, and a write there per drain bounced it.
    let timeout = sink.session().slow_timeout();
    let mut next = first.or_else(|| rx.try_recv());
    let mut taken = 0;
    loop {
        while let Some(frame) = next.take() {
            let full = sink.session().wants(&frame) && sink.queue(&frame);
            taken += 1;
            if taken >= S::MAX_TAKEN {
                return sink.flush().await;
            }
            if full {
                sink.flush().await?;
            }
            next = rx.try_recv();
        }
        sink.flush().await?;
        // Queue empty: behind for too long is a slow consumer even if it reads a little.
        if slow::is_overdue(sink.session().outlet(), timeout) {
            let session = sink.session();
            slow::slow_consumer(session.outlet(), &session.state().metrics);
            return Err(S::slow_consumer());
        }
        let mut pending = std::mem::take(sink.pending());
        if !sink.session().outlet().take_pending(rx, &mut pending) {
            *sink.pending() = pending;
            sink.session().outlet().caught_up();
            return Ok(());
        }
        for frame in pending.drain(..) {
            if sink.session().wants(&frame) {
                sink.queue(&frame);
            }
        }
        *sink.pending() = pending;
        sink.flush().await?;
        next = rx.try_recv();
    }
}
