//! The current positions, in memory, for reads and streams. Only the writer changes them, and
//! only after the change is committed: nothing a reader sees can be lost in a crash.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use shelfcast_protocol::clock::Millis;
use shelfcast_protocol::{LocationId, Position, PositionKey, Stock};

use super::fanout::Fanout;
use crate::clock::Clock;

#[derive(Clone, Debug, Default)]
pub struct Entry {
    pub stock: Stock,
    pub version: u64,
}

pub struct State {
    positions: RwLock<HashMap<PositionKey, Entry>>,
    /// Every change up to this version is visible in `positions`.
    published: AtomicU64,
    /// The earliest `expires_at` of any held reservation (`i64::MAX` if none): the sweeper's cue.
    next_expiry: AtomicI64,
    pub fanout: Arc<Fanout>,
    pub clock: Clock,
    pub low_stock: i64,
}

impl State {
    pub fn new(positions: HashMap<PositionKey, Entry>, version: u64, clock: Clock, low_stock: i64) -> Self {
        let next = positions.values().filter_map(|e| e.stock.next_expiry()).min().unwrap_or(i64::MAX);
        Self {
            positions: RwLock::new(positions),
            published: AtomicU64::new(version),
            next_expiry: AtomicI64::new(next),
            fanout: Arc::default(),
            clock,
            low_stock,
        }
    }

    pub fn published(&self) -> u64 {
        self.published.load(Ordering::Acquire)
    }

    pub fn next_expiry(&self) -> Millis {
        self.next_expiry.load(Ordering::Acquire)
    }

    /// The positions asked for, in the order asked, as of `now`.
    pub fn positions(&self, keys: &[PositionKey], now: Millis) -> Vec<Position> {
        let map = self.positions.read().expect("positions lock");
        keys.iter()
            .map(|k| match map.get(k) {
                Some(e) => e.stock.position(k, e.version, now, self.low_stock),
                None => Stock::default().position(k, 0, now, self.low_stock),
            })
            .collect()
    }

    /// For a stream: the watched positions whose version is above `sent[i]` and at most the
    /// published version, each marked as sent. Returned in ascending version order, so a client
    /// cut off mid-burst resumes from the right place.
    pub fn changed_since(&self, keys: &[PositionKey], sent: &mut [i64], now: Millis) -> Vec<Position> {
        let upto = self.published() as i64;
        let map = self.positions.read().expect("positions lock");
        let mut out = Vec::new();
        let never_written = Stock::default();
        for (k, seen) in keys.iter().zip(sent.iter_mut()) {
            let (stock, version) = match map.get(k) {
                Some(e) => (&e.stock, e.version),
                None => (&never_written, 0),
            };
            let v = version as i64;
            if v > *seen && v <= upto {
                *seen = v;
                out.push(stock.position(k, version, now, self.low_stock));
            }
        }
        drop(map);
        out.sort_by_key(|p| p.version);
        out
    }

    /// The writer's view of one position before this batch changes it.
    pub fn entry(&self, key: &PositionKey) -> Option<Entry> {
        self.positions.read().expect("positions lock").get(key).cloned()
    }

    /// Makes a committed batch visible, then wakes the streams that watch it.
    pub fn publish(&self, changes: Vec<(PositionKey, Entry)>, version: u64, next_expiry: Millis) {
        let keys: Vec<PositionKey> = changes.iter().map(|(k, _)| k.clone()).collect();
        self.positions.write().expect("positions lock").extend(changes);
        self.next_expiry.store(next_expiry, Ordering::Release);
        self.published.store(version, Ordering::Release);
        self.fanout.changed(&keys);
    }

    /// Positions whose holds exceed their on-hand (negative `available`) as of `now`, in
    /// key order: offline sales took units that shoppers had reserved.
    pub fn oversold(&self, now: Millis, keep: impl Fn(&PositionKey) -> bool) -> Vec<Position> {
        let map = self.positions.read().expect("positions lock");
        let mut out: Vec<Position> = map
            .iter()
            .filter(|(k, e)| e.stock.available_at(now) < 0 && keep(k))
            .map(|(k, e)| e.stock.position(k, e.version, now, self.low_stock))
            .collect();
        drop(map);
        out.sort_by(|a, b| (&a.sku, &a.location).cmp(&(&b.sku, &b.location)));
        out
    }

    /// A location's positions whose version is above `since`, in ascending version order.
    pub fn changed_at(&self, location: &LocationId, since: u64, now: Millis) -> Vec<Position> {
        let map = self.positions.read().expect("positions lock");
        let mut out: Vec<Position> = map
            .iter()
            .filter(|(k, e)| &k.location == location && e.version > since)
            .map(|(k, e)| e.stock.position(k, e.version, now, self.low_stock))
            .collect();
        drop(map);
        out.sort_by_key(|p| p.version);
        out
    }

    /// Every position with a hold that can lapse, with the earliest such instant.
    pub fn next_expiries(&self) -> Vec<(Millis, PositionKey)> {
        let map = self.positions.read().expect("positions lock");
        map.iter().filter_map(|(k, e)| e.stock.next_expiry().map(|t| (t, k.clone()))).collect()
    }

    pub fn len(&self) -> usize {
        self.positions.read().expect("positions lock").len()
    }
}
