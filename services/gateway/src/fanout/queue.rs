//! A connection's outbound path: a bounded queue of publications that conflates when full.
//!
//! The hub offers every publication to a client's [`Outlet`] without waiting.
//! While the bounded queue has room it is queued as-is; when it is full the
//! outlet switches to *conflation* (the Lightstreamer "merge" model): it keeps
//! only the newest pending item per **channel** in a small slot map, replacing
//! an older item of the same channel, never another channel's (counted as
//! `conflated`). Memory per client is therefore bounded by `queue_capacity`
//! frames plus one frame per subscribed channel.
//!
//! Order per channel is preserved: while conflating, every new item goes to the
//! slot map (never to the queue), and the connection task takes the slot map
//! only after it has emptied the queue, writing those frames before it reads
//! the queue again.
//!
//! A client that stays behind (conflating) longer than
//! `gateway.slow_consumer_timeout_ms`, or whose socket write stays blocked
//! that long, is disconnected as a slow consumer (close 1008 `slow consumer`);
//! see [`write_or_slow`]. From that moment the outlet is *closing* and the hub
//! drops its ticks (counted as `queue_full`).

use std::collections::{HashMap, VecDeque};
use std::future::poll_fn;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_util::task::AtomicWaker;
use tickstream_model::Channel;
use tokio::sync::Notify;

use crate::fanout::Outbound;

/// What [`Outlet::offer`] did with a tick, for the hub's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offer {
    /// Queued (or kept as the newest pending item of its channel).
    Delivered,
    /// Kept as the newest pending tick, replacing an older one (`conflated`).
    Conflated,
    /// Dropped: the client is being disconnected as a slow consumer (`queue_full`).
    Dropped,
    /// The connection is gone; its cleanup removes it from the hub.
    Closed,
}

/// A [`TickQueue`]'s shared half: what the hub pushes and the connection task takes.
struct Ring {
    /// Frames pushed since the connection task last took them.
    shared: Mutex<VecDeque<Outbound>>,
    /// Frames in `shared` plus those the receiver took but has not handed out yet; bounded by `capacity`.
    len: AtomicUsize,
    /// Most frames queued before the outlet conflates.
    capacity: usize,
    /// The connection task waiting for frames.
    waker: AtomicWaker,
    /// The receiver is gone: offers answer [`Offer::Closed`].
    rx_gone: AtomicBool,
    /// The outlet is gone: the receiver ends once it has taken everything.
    tx_gone: AtomicBool,
    /// The relay of the worker thread the receiver runs on ([`Outlet::relayed`]); none: pushes wake the receiver directly.
    relay: Option<Arc<Relay>>,
    /// This ring is in its relay's list, waiting to be woken from there (queued once however many pushes).
    relayed: AtomicBool,
}

/// What [`Ring::push`] did.
enum Push {
    Queued,
    Full,
    Closed,
}

impl Ring {
    fn lock(&self) -> MutexGuard<'_, VecDeque<Outbound>> {
        // Plain pushes and swaps: a panic elsewhere cannot leave the deque inconsistent.
        self.shared
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Appends one frame unless the queue is full or its receiver gone; never waits.
    fn push(self: &Arc<Self>, frame: &Outbound) -> Push {
        if self.rx_gone.load(Ordering::Relaxed) {
            return Push::Closed;
        }
        if self.len.load(Ordering::Acquire) >= self.capacity {
            return Push::Full;
        }
        {
            let mut q = self.lock();
            q.push_back(frame.clone());
            self.len.fetch_add(1, Ordering::AcqRel);
        }
        match &self.relay {
            Some(relay) => {
                if !self.relayed.swap(true, Ordering::SeqCst) {
                    relay.enqueue(self);
                }
            }
            None => self.waker.wake(),
        }
        Push::Queued
    }
}

/// Wakes the connection tasks of one worker thread from that thread.
///
/// The hub runs on another runtime than the connections (the actix workers,
/// each a single-threaded runtime), and a task woken from outside its
/// runtime costs that runtime a wake-up of its I/O driver: one `eventfd`
/// write per woken connection, and as many returns from `epoll_wait`
/// (`strace` at 2,000 ticks/s: as many `eventfd` writes as socket writes).
/// A relay turns the wake-ups of one fan-out into one: the hub queues each
/// ring here, wakes the relay task once, and the relay, running on the
/// worker, wakes the connection tasks locally.
pub struct Relay {
    /// Rings with frames whose receivers are to be woken.
    queued: Mutex<Vec<Arc<Ring>>>,
    /// The relay task.
    waker: AtomicWaker,
}

impl Relay {
    /// Queues `ring` to be woken; wakes the relay task when the list was empty (once per burst).
    fn enqueue(&self, ring: &Arc<Ring>) {
        let first = {
            let mut q = self
                .queued
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            q.push(ring.clone());
            q.len() == 1
        };
        if first {
            self.waker.wake();
        }
    }

    /// This worker thread's relay, its task spawned on first use with this `delay` (the
    /// gateway's `write_delay_ms`, the same for every call in a process). Call it on an actix worker
    /// (inside its `LocalSet`), from the thread whose tasks will receive: a connection handler.
    pub fn for_this_thread(delay: Duration) -> Arc<Relay> {
        thread_local! {
            static RELAY: std::cell::OnceCell<Arc<Relay>> = const { std::cell::OnceCell::new() };
        }
        RELAY.with(|r| {
            r.get_or_init(|| {
                let relay = Arc::new(Relay {
                    queued: Mutex::new(Vec::new()),
                    waker: AtomicWaker::new(),
                });
                actix_web::rt::spawn(relay.clone().run(delay));
                relay
            })
            .clone()
        })
    }

    /// The relay task: wakes every queued ring's receiver, for as long as the worker runs. With a
    /// `delay` (write batching), it first waits that long after the first ring of a burst is queued,
    /// so every connection of the worker writes what arrived meanwhile in one go, on one timer.
    async fn run(self: Arc<Self>, delay: Duration) {
        let mut batch: Vec<Arc<Ring>> = Vec::new();
        loop {
            poll_fn(|cx| {
                self.waker.register(cx.waker());
                if self.lock().is_empty() {
                    Poll::Pending
                } else {
                    Poll::Ready(())
                }
            })
            .await;
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            // Rings queued while these are woken wake the task again (the list was empty).
            std::mem::swap(&mut *self.lock(), &mut batch);
            for ring in batch.drain(..) {
                // Cleared before the wake: a push from now on queues the ring again.
                ring.relayed.swap(false, Ordering::SeqCst);
                ring.waker.wake();
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Arc<Ring>>> {
        // Plain pushes and swaps: a panic elsewhere cannot leave the list inconsistent.
        self.queued
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The receiving end of a connection's tick queue, owned by its connection task.
///
/// A tokio `mpsc` channel did this before; per frame it cost a semaphore
/// permit on each side, and returning the permit takes the semaphore's lock
/// (about 15 % of the gateway's CPU at 10k ticks/s in `perf`). Here the hub
/// pushes under a mutex that is uncontended in practice, and the connection
/// task takes *everything* queued in one lock by swapping deques, then hands
/// frames out without locking.
pub struct TickQueue {
    ring: Arc<Ring>,
    /// Frames taken from the ring in one swap, handed out one by one.
    local: VecDeque<Outbound>,
}

/// Local buffer capacity above which an emptied buffer is released (a burst's memory is not kept per idle client).
const KEEP_CAPACITY: usize = 64;

impl TickQueue {
    /// The next frame, waiting for one; `None` once the outlet is gone and everything was taken.
    pub async fn recv(&mut self) -> Option<Outbound> {
        poll_fn(|cx| self.poll_recv(cx)).await
    }

    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Outbound>> {
        if let Some(f) = self.try_recv() {
            return Poll::Ready(Some(f));
        }
        self.ring.waker.register(cx.waker());
        // Re-check: a push between the first look and the registration woke nobody.
        if let Some(f) = self.try_recv() {
            return Poll::Ready(Some(f));
        }
        if self.ring.tx_gone.load(Ordering::Acquire) && self.ring.len.load(Ordering::Acquire) == 0 {
            return Poll::Ready(None);
        }
        Poll::Pending
    }

    /// The next frame if one is queued; never waits. Cancel-safe: frames live in `self`.
    pub fn try_recv(&mut self) -> Option<Outbound> {
        if self.local.is_empty() {
            if self.ring.len.load(Ordering::Acquire) == 0 {
                return None;
            }
            if self.local.capacity() > KEEP_CAPACITY {
                self.local = VecDeque::new();
            }
            std::mem::swap(&mut *self.ring.lock(), &mut self.local);
        }
        let f = self.local.pop_front()?;
        self.ring.len.fetch_sub(1, Ordering::AcqRel);
        Some(f)
    }

    /// Whether no frame is queued (taken-but-not-handed-out frames count as queued).
    pub fn is_empty(&self) -> bool {
        self.ring.len.load(Ordering::Acquire) == 0
    }
}

impl Drop for TickQueue {
    fn drop(&mut self) {
        self.ring.rx_gone.store(true, Ordering::Relaxed);
        // Free the frames now rather than when the hub lets go of the outlet.
        self.ring.lock().clear();
    }
}

/// One client's outbound path, shared by the hub (producer) and its connection task (consumer).
pub struct Outlet {
    /// The bounded queue; pushed without waiting, so the hub never blocks on a client.
    ring: Arc<Ring>,
    /// Set while ticks go to `pending` instead of the queue; read lock-free on every tick.
    conflating: AtomicBool,
    /// Newest pending item per channel while conflating; locked only on the slow path.
    pending: Mutex<HashMap<Channel, Outbound>>,
    /// When conflation started, in ms since `epoch` (0: not behind); the slow-consumer clock.
    behind_since_ms: AtomicU64,
    /// Set once the connection is being closed as a slow consumer: further ticks are dropped.
    closing: AtomicBool,
    /// Wakes the connection task when conflation starts, so it can arm its slow-consumer timer.
    behind: Notify,
    /// Reference point for `behind_since_ms`.
    epoch: Instant,
}

impl Outlet {
    /// A new outlet with a queue of `capacity` frames, and the queue's receiving end; pushes wake
    /// the receiver directly.
    pub fn new(capacity: usize) -> (Arc<Self>, TickQueue) {
        Self::with_relay(capacity, None)
    }

    /// Like [`Outlet::new`], the receiver woken through `relay`: that of the worker thread it runs on.
    pub fn relayed(capacity: usize, relay: Arc<Relay>) -> (Arc<Self>, TickQueue) {
        Self::with_relay(capacity, Some(relay))
    }

    fn with_relay(capacity: usize, relay: Option<Arc<Relay>>) -> (Arc<Self>, TickQueue) {
        let ring = Arc::new(Ring {
            shared: Mutex::new(VecDeque::new()),
            len: AtomicUsize::new(0),
            capacity: capacity.max(1),
            waker: AtomicWaker::new(),
            rx_gone: AtomicBool::new(false),
            tx_gone: AtomicBool::new(false),
            relay,
            relayed: AtomicBool::new(false),
        });
        let rx = TickQueue {
            ring: ring.clone(),
            local: VecDeque::new(),
        };
        let outlet = Arc::new(Self {
            ring,
            conflating: AtomicBool::new(false),
            pending: Mutex::new(HashMap::new()),
            behind_since_ms: AtomicU64::new(0),
            closing: AtomicBool::new(false),
            behind: Notify::new(),
            epoch: Instant::now(),
        });
        (outlet, rx)
    }

    /// Offers one tick without waiting: queue, conflate, or drop (hub side, hot path).
    pub fn offer(&self, frame: &Outbound) -> Offer {
        if !self.conflating.load(Ordering::Acquire) {
            match self.ring.push(frame) {
                Push::Queued => return Offer::Delivered,
                Push::Closed => return Offer::Closed,
                Push::Full => {}
            }
        }
        self.conflate(frame)
    }

    /// Slow path: the queue is full (or was, and the client has not caught up yet).
    #[cold]
    fn conflate(&self, frame: &Outbound) -> Offer {
        if self.closing.load(Ordering::Relaxed) {
            return Offer::Dropped;
        }
        let Ok(mut pending) = self.pending.lock() else {
            return Offer::Dropped;
        };
        if !self.conflating.load(Ordering::Acquire) {
            // The connection caught up between our check and the lock: the queue may have room again.
            match self.ring.push(frame) {
                Push::Queued => return Offer::Delivered,
                Push::Closed => return Offer::Closed,
                Push::Full => {}
            }
            self.conflating.store(true, Ordering::Release);
            let now = self.now_ms();
            let _ =
                self.behind_since_ms
                    .compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed);
            self.behind.notify_one();
        }
        match pending.get_mut(frame.channel.as_str()) {
            Some(slot) => {
                *slot = frame.clone();
                Offer::Conflated
            }
            None => {
                pending.insert(frame.channel.clone(), frame.clone());
                Offer::Delivered
            }
        }
    }

    /// Connection side: if its `queue` is empty, moves the pending ticks into `out` and leaves conflation.
    ///
    /// Returns whether anything was taken. The caller writes `out` before
    /// reading the queue again, which keeps the items of one channel in order.
    /// The queue is checked under the lock: while conflating the hub adds
    /// nothing to it, so "empty" cannot change before conflation ends here
    /// (checked earlier, the queue might have filled and conflation started
    /// since, and the pending ticks would overtake older queued ones).
    pub fn take_pending(&self, queue: &TickQueue, out: &mut Vec<Outbound>) -> bool {
        if !self.conflating.load(Ordering::Acquire) {
            return false;
        }
        let Ok(mut pending) = self.pending.lock() else {
            return false;
        };
        if !queue.is_empty() {
            return false;
        }
        let before = out.len();
        out.extend(pending.drain().map(|(_, f)| f));
        self.conflating.store(false, Ordering::Release);
        out.len() > before
    }

    /// Connection side: the queue and the slot map are empty again, the client has caught up.
    pub fn caught_up(&self) {
        // Called after every drain: written only when set, so the hub's cache line stays clean.
        if !self.conflating.load(Ordering::Acquire)
            && self.behind_since_ms.load(Ordering::Relaxed) != 0
        {
            self.behind_since_ms.store(0, Ordering::Relaxed);
        }
    }

    /// Frames in the queue now (not counting the slot map).
    pub fn queued(&self) -> usize {
        self.ring.len.load(Ordering::Acquire)
    }

    /// Drops pending (conflated) items of channels the client no longer wants.
    pub fn forget<'a>(&self, channels: impl IntoIterator<Item = &'a Channel>) {
        if !self.conflating.load(Ordering::Acquire) {
            return;
        }
        if let Ok(mut pending) = self.pending.lock() {
            for c in channels {
                pending.remove(c.as_str());
            }
        }
    }

    /// Whether ticks are waiting in the slot map (the connection must take them once its queue is empty).
    pub fn is_conflating(&self) -> bool {
        self.conflating.load(Ordering::Acquire)
    }

    /// When the client fell behind (started conflating), if it is behind now.
    pub fn behind_since(&self) -> Option<Instant> {
        match self.behind_since_ms.load(Ordering::Relaxed) {
            0 => None,
            ms => Some(self.epoch + Duration::from_millis(ms)),
        }
    }

    /// Resolves when conflation starts (or has started since the last call).
    pub async fn fell_behind(&self) {
        self.behind.notified().await;
    }

    /// Marks the client as being disconnected as a slow consumer; the hub drops its ticks from now on.
    pub fn close_slow(&self) {
        self.closing.store(true, Ordering::Relaxed);
        if let Ok(mut pending) = self.pending.lock() {
            pending.clear();
        }
    }

    fn now_ms(&self) -> u64 {
        // At least 1 so that 0 keeps meaning "not behind".
        u64::try_from(self.epoch.elapsed().as_millis())
            .unwrap_or(u64::MAX)
            .max(1)
    }
}

impl Drop for Outlet {
    /// The receiver ends once it has taken what is queued.
    fn drop(&mut self) {
        self.ring.tx_gone.store(true, Ordering::Release);
        self.ring.waker.wake();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fanout::Publication;
    use tickstream_model::Tick;

    fn frame(sym: &str, seq: u64) -> Outbound {
        let raw = format!(
            r#"{{"symbol":"{sym}","price":1.5,"timestamp":"2025-11-01T10:30:00.000Z","source":"sim","seq":{seq}}}"#
        );
        Arc::new(Publication::tick(&Tick::from_json(raw.as_bytes()).unwrap()))
    }

    /// Pushes from the hub's thread wake each receiver through the relay of the thread it runs on:
    /// a ring is queued there once however many frames arrive, and every frame arrives in order.
    #[test]
    fn pushes_from_another_thread_wake_receivers_through_their_threads_relay() {
        actix_web::rt::System::new().block_on(async {
            let (a, mut rx_a) = Outlet::relayed(1024, Relay::for_this_thread(Duration::ZERO));
            let (b, mut rx_b) = Outlet::relayed(1024, Relay::for_this_thread(Duration::ZERO));
            let relay = a.ring.relay.clone().unwrap();
            assert!(
                Arc::ptr_eq(&relay, b.ring.relay.as_ref().unwrap()),
                "one relay per thread"
            );

            // The receiver waits (polled once, its waker registered); three pushes queue its ring once.
            let nothing = tokio::time::timeout(Duration::ZERO, rx_a.recv()).await;
            assert!(nothing.is_err(), "nothing queued yet");
            for seq in 1..=3 {
                assert_eq!(a.offer(&frame("A", seq)), Offer::Delivered);
            }
            assert_eq!(relay.lock().len(), 1);
            assert!(a.ring.relayed.load(Ordering::SeqCst));
            // Waiting lets the relay task run: it empties its list and wakes the receiver.
            tokio::time::timeout(Duration::from_secs(5), async {
                while !relay.lock().is_empty() {
                    tokio::task::yield_now().await;
                }
            })
            .await
            .expect("the relay ran");
            for seq in 1..=3 {
                let f = tokio::time::timeout(Duration::from_secs(5), rx_a.recv()).await;
                assert_eq!(f.unwrap().unwrap().seq, seq);
            }
            assert!(!a.ring.relayed.load(Ordering::SeqCst));

            let producer = std::thread::spawn(move || {
                for seq in 4..=2_000 {
                    a.offer(&frame("A", seq));
                    b.offer(&frame("B", seq));
                }
            });
            for seq in 4..=2_000 {
                let fa = tokio::time::timeout(Duration::from_secs(5), rx_a.recv()).await;
                assert_eq!(fa.expect("A woken in time").unwrap().seq, seq);
                let fb = tokio::time::timeout(Duration::from_secs(5), rx_b.recv()).await;
                assert_eq!(fb.expect("B woken in time").unwrap().seq, seq);
            }
            producer.join().unwrap();
        });
    }

    #[test]
    fn full_queue_conflates_to_the_newest_per_symbol_in_order() {
        let (outlet, mut rx) = Outlet::new(2);
        assert_eq!(outlet.offer(&frame("A", 1)), Offer::Delivered);
        assert_eq!(outlet.offer(&frame("B", 1)), Offer::Delivered);
        assert!(outlet.behind_since().is_none());
        assert_eq!(outlet.offer(&frame("A", 2)), Offer::Delivered);
        assert!(outlet.is_conflating() && outlet.behind_since().is_some());
        assert_eq!(outlet.offer(&frame("A", 3)), Offer::Conflated);
        assert_eq!(outlet.offer(&frame("B", 2)), Offer::Delivered);
        // Room in the queue again, but still conflating: order per symbol wins.
        assert_eq!(rx.try_recv().unwrap().seq, 1);
        assert_eq!(outlet.offer(&frame("A", 4)), Offer::Conflated);
        assert_eq!(rx.try_recv().unwrap().channel.as_str(), "ticks:B");
        assert!(rx.try_recv().is_none());
        let mut out = Vec::new();
        assert!(outlet.take_pending(&rx, &mut out));
        out.sort_by(|a, b| a.channel.cmp(&b.channel));
        let got: Vec<(&str, u64)> = out.iter().map(|f| (f.channel.as_str(), f.seq)).collect();
        assert_eq!(got, vec![("ticks:A", 4), ("ticks:B", 2)]);
        outlet.caught_up();
        assert!(outlet.behind_since().is_none() && !outlet.is_conflating());
        assert_eq!(outlet.offer(&frame("A", 5)), Offer::Delivered);
        assert_eq!(rx.try_recv().unwrap().seq, 5);
        outlet.close_slow();
        outlet.offer(&frame("A", 6));
        outlet.offer(&frame("A", 7));
        assert_eq!(outlet.offer(&frame("A", 8)), Offer::Dropped);
    }

    fn item(channel: &str, seq: u64) -> Outbound {
        let channel = tickstream_model::Channel::parse(channel).unwrap();
        let data = bytestring::ByteString::from(format!(r#"{{"seq":{seq}}}"#));
        Arc::new(Publication::new(channel, seq, data))
    }

    #[test]
    fn conflation_never_replaces_one_channels_item_with_anothers() {
        let (outlet, rx) = Outlet::new(1);
        assert_eq!(outlet.offer(&frame("A", 1)), Offer::Delivered);
        // Queue full from here on: one slot per channel, all about symbol A.
        let channels = [
            "ticks:A",
            "trades:A",
            "candles:1m:A",
            "candles:5m:A",
            "signals:A",
            "sentiment",
        ];
        for seq in 2..=4 {
            for ch in channels {
                let offered = if ch == "ticks:A" {
                    frame("A", seq)
                } else {
                    item(ch, seq)
                };
                outlet.offer(&offered);
            }
        }
        let mut rx = rx;
        assert_eq!(rx.try_recv().unwrap().seq, 1);
        let mut out = Vec::new();
        assert!(outlet.take_pending(&rx, &mut out));
        let mut got: Vec<(String, u64)> = out
            .iter()
            .map(|f| (f.channel.as_str().to_owned(), f.seq))
            .collect();
        got.sort();
        let mut want: Vec<(String, u64)> = channels.iter().map(|c| ((*c).to_owned(), 4)).collect();
        want.sort();
        assert_eq!(
            got, want,
            "the newest item of every channel, none lost to another"
        );
    }
}

#[cfg(test)]
mod ring {
    use super::*;
    use crate::fanout::Publication;
    use tickstream_model::Tick;

    fn frame(seq: u64) -> Outbound {
        let raw = format!(
            r#"{{"symbol":"A","price":1.5,"timestamp":"2025-11-01T10:30:00.000Z","source":"sim","seq":{seq}}}"#
        );
        Arc::new(Publication::tick(&Tick::from_json(raw.as_bytes()).unwrap()))
    }

    #[tokio::test]
    async fn a_waiting_receiver_is_woken_and_ends_after_the_outlet() {
        let (outlet, mut rx) = Outlet::new(8);
        let waiting = tokio::spawn(async move {
            let first = rx.recv().await.map(|f| f.seq);
            let second = rx.recv().await.map(|f| f.seq);
            let end = rx.recv().await.map(|f| f.seq);
            (first, second, end)
        });
        tokio::task::yield_now().await;
        assert_eq!(outlet.offer(&frame(1)), Offer::Delivered);
        assert_eq!(outlet.offer(&frame(2)), Offer::Delivered);
        drop(outlet);
        let got = tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            got,
            (Some(1), Some(2), None),
            "queued frames first, then the end"
        );
    }

    #[test]
    fn the_bound_counts_frames_taken_but_not_handed_out() {
        let (outlet, mut rx) = Outlet::new(3);
        for seq in 1..=3 {
            assert_eq!(outlet.offer(&frame(seq)), Offer::Delivered);
        }
        assert_eq!(outlet.queued(), 3);
        // Takes all three into the receiver's local buffer, hands out one.
        assert_eq!(rx.try_recv().map(|f| f.seq), Some(1));
        assert_eq!(outlet.queued(), 2);
        assert_eq!(outlet.offer(&frame(4)), Offer::Delivered);
        assert_eq!(outlet.queued(), 3);
        // Full again: conflation, not a fourth queued frame.
        assert_eq!(outlet.offer(&frame(5)), Offer::Delivered);
        assert!(outlet.is_conflating());
        assert_eq!(outlet.queued(), 3);
        let seqs: Vec<u64> = std::iter::from_fn(|| rx.try_recv().map(|f| f.seq)).collect();
        assert_eq!(seqs, [2, 3, 4]);
        assert!(rx.is_empty());
    }

    #[test]
    fn offers_to_a_dropped_receiver_are_closed_and_freed() {
        let (outlet, rx) = Outlet::new(8);
        let f = frame(1);
        assert_eq!(outlet.offer(&f), Offer::Delivered);
        assert_eq!(Arc::strong_count(&f), 2);
        drop(rx);
        assert_eq!(
            Arc::strong_count(&f),
            1,
            "queued frames are freed with the receiver"
        );
        assert_eq!(outlet.offer(&f), Offer::Closed);
    }
}

#[cfg(test)]
mod stress {
    use super::*;
    use crate::fanout::Publication;
    use tickstream_model::Tick;

    fn frame(sym: &str, seq: u64) -> Outbound {
        let raw = format!(
            r#"{{"symbol":"{sym}","price":1.5,"timestamp":"2025-11-01T10:30:00.000Z","source":"sim","seq":{seq}}}"#
        );
        Arc::new(Publication::tick(&Tick::from_json(raw.as_bytes()).unwrap()))
    }

    /// A producer thread against a consumer that drains like the connection tasks do: per-symbol order holds and the last tick arrives.
    #[test]
    fn concurrent_producer_and_consumer_keep_order_per_symbol() {
        const N: u64 = 20_000;
        let syms = ["A", "B", "C"];
        let frames: Vec<Outbound> = (1..=N)
            .flat_map(|seq| syms.iter().map(move |s| frame(s, seq)))
            .collect();
        let (outlet, mut rx) = Outlet::new(4);
        let producer = {
            let outlet = outlet.clone();
            std::thread::spawn(move || {
                for f in &frames {
                    outlet.offer(f);
                }
            })
        };
        let mut last: HashMap<String, u64> = HashMap::new();
        let mut buf = Vec::new();
        let mut log: Vec<String> = Vec::new();
        let mut check = |f: &Outbound, last: &mut HashMap<String, u64>, src: &str| {
            log.push(format!("{src}{}{}", f.channel.as_str(), f.seq));
            let prev = last
                .insert(f.channel.symbol().unwrap_or_default().to_owned(), f.seq)
                .unwrap_or(0);
            assert!(
                f.seq > prev,
                "{}: {} after {prev}; {:?}",
                f.channel.as_str(),
                f.seq,
                &log[log.len().saturating_sub(30)..]
            );
        };
        loop {
            while let Some(f) = rx.try_recv() {
                check(&f, &mut last, "q");
                std::thread::yield_now();
            }
            if outlet.take_pending(&rx, &mut buf) {
                for f in buf.drain(..) {
                    check(&f, &mut last, "p");
                }
                continue;
            }
            outlet.caught_up();
            if producer.is_finished() && rx.is_empty() && !outlet.is_conflating() {
                break;
            }
        }
        producer.join().unwrap();
        assert!(syms.iter().all(|s| last.get(*s) == Some(&N)), "{last:?}");
    }
}
