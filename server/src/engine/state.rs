//! The current positions, in memory, for reads and streams. Only the writer changes them, and
//! only after the change is committed: nothing a reader sees can be lost in a crash.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use shelfcast_protocol::clock::Millis;
use shelfcast_protocol::partition::{partition_of, Cursor};
use shelfcast_protocol::{LocationId, Position, PositionKey};

use super::fanout::Fanout;
use crate::clock::Clock;
pub use crate::positions::Entry;
use crate::positions::{Handle, Table};

pub struct State {
    positions: RwLock<Table>,
    /// How many partitions count their own versions (`protocol::partition`); 1 on a hub that
    /// writes alone, whose versions rise across the hub.
    partitions: u32,
    /// Every change of partition p up to version `published[p]` is visible in `positions`
    /// (while p is followed).
    published: Vec<AtomicU64>,
    /// Whether `positions` holds partition p and keeps it up to date. A hub that writes alone
    /// follows its one partition; a replica, the partitions it owns and those its readers need.
    followed: Vec<AtomicBool>,
    /// Open streams watching positions of partition p, and when a request last needed it (ms):
    /// a partition nobody needs any more is let go (`idle`).
    watching: Vec<AtomicUsize>,
    used_at: Vec<AtomicI64>,
    /// Rises at every publication, for those who wait for a version (`caught_up`).
    published_watch: tokio::sync::watch::Sender<u64>,
    /// The earliest `expires_at` of any held reservation (`i64::MAX` if none): the sweeper's cue.
    next_expiry: AtomicI64,
    /// Positions by the earliest expiry of their holds, as published. On a shared ledger this
    /// includes the holds other replicas granted, so every replica knows when one lapses.
    expiries: Mutex<Expiries>,
    pub fanout: Arc<Fanout>,
    pub clock: Clock,
    pub low_stock: i64,
    /// The webhook subscriptions each commit is matched against.
    pub hooks: Arc<crate::webhooks::Hooks>,
}

impl State {
    /// `versions`: the version each partition is published up to (one entry: one partition),
    /// all followed.
    pub fn new(positions: Table, versions: Vec<u64>, clock: Clock, low_stock: i64) -> Self {
        let state = Self::following_none(positions, versions, clock, low_stock);
        state.followed.iter().for_each(|f| f.store(true, Ordering::Release));
        state
    }

    /// A replica's state before it follows any of its `partitions` (`adopt` loads them).
    pub fn partitioned(partitions: u32, clock: Clock, low_stock: i64) -> Self {
        Self::following_none(Table::default(), vec![0; partitions.max(1) as usize], clock, low_stock)
    }

    fn following_none(positions: Table, versions: Vec<u64>, clock: Clock, low_stock: i64) -> Self {
        let mut expiries = Expiries::default();
        for (handle, next) in positions.with_holds() {
            expiries.set(handle, next);
        }
        let next = expiries.next().unwrap_or(i64::MAX);
        let versions = if versions.is_empty() { vec![0] } else { versions };
        Self {
            expiries: Mutex::new(expiries),
            positions: RwLock::new(positions),
            partitions: versions.len() as u32,
            followed: versions.iter().map(|_| AtomicBool::new(false)).collect(),
            watching: versions.iter().map(|_| AtomicUsize::new(0)).collect(),
            used_at: versions.iter().map(|_| AtomicI64::new(0)).collect(),
            published: versions.into_iter().map(AtomicU64::new).collect(),
            published_watch: tokio::sync::watch::Sender::new(0),
            next_expiry: AtomicI64::new(next),
            fanout: Arc::default(),
            clock,
            low_stock,
            hooks: Arc::default(),
        }
    }

    pub fn partitions(&self) -> u32 {
        self.partitions
    }

    /// The partition whose versions `sku`'s positions take.
    pub fn partition(&self, sku: &str) -> u32 {
        partition_of(sku, self.partitions)
    }

    /// The version `partition` is published up to.
    pub fn published(&self, partition: u32) -> u64 {
        self.published.get(partition as usize).map_or(0, |v| v.load(Ordering::Acquire))
    }

    /// The version each partition is published up to, by partition.
    pub fn published_all(&self) -> Vec<u64> {
        self.published.iter().map(|v| v.load(Ordering::Acquire)).collect()
    }

    /// Whether `partition`'s positions are here and kept up to date.
    pub fn follows(&self, partition: u32) -> bool {
        self.followed.get(partition as usize).is_some_and(|f| f.load(Ordering::Acquire))
    }

    /// The partitions followed, with the version each is published up to.
    pub fn followed(&self) -> Vec<(u32, u64)> {
        (0..self.partitions).filter(|p| self.follows(*p)).map(|p| (p, self.published(p))).collect()
    }

    /// Marks `partitions` as needed now: an idle partition is let go (`idle`), a used one kept.
    pub fn touch(&self, partitions: &[u32]) {
        let now = self.clock.now();
        for p in partitions {
            if let Some(at) = self.used_at.get(*p as usize) {
                at.store(now, Ordering::Release);
            }
        }
    }

    /// Of `partitions`, those not followed, sorted and once each.
    pub fn missing(&self, partitions: &[u32]) -> Vec<u32> {
        let mut out: Vec<u32> = partitions.iter().copied().filter(|p| !self.follows(*p)).collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Follows partitions from now on: `table` holds their positions and open holds as of
    /// `versions` (read in one snapshot). Call with the publications in order (the sequencer's
    /// lock): nothing of these partitions is published meanwhile.
    pub fn adopt(&self, table: Table, versions: &[(u32, u64)]) {
        let held = self.positions.write().expect("positions lock").absorb(table);
        let next_expiry = {
            let mut expiries = self.expiries.lock().expect("expiries lock");
            for (handle, next) in held {
                expiries.set(handle, next);
            }
            expiries.next().unwrap_or(i64::MAX)
        };
        self.next_expiry.store(next_expiry, Ordering::Release);
        let now = self.clock.now();
        for (p, v) in versions {
            if let (Some(at), Some(f), Some(u)) =
                (self.published.get(*p as usize), self.followed.get(*p as usize), self.used_at.get(*p as usize))
            {
                at.store(*v, Ordering::Release);
                u.store(now, Ordering::Release);
                f.store(true, Ordering::Release);
            }
        }
        self.published_watch.send_modify(|n| *n += 1);
    }

    /// Stops following `partitions`: their positions leave memory.
    pub fn forget(&self, partitions: &[u32]) {
        for p in partitions {
            if let Some(f) = self.followed.get(*p as usize) {
                f.store(false, Ordering::Release);
            }
        }
        let gone = self.positions.write().expect("positions lock").remove_skus(|sku| partitions.contains(&self.partition(sku)));
        let next_expiry = {
            let mut expiries = self.expiries.lock().expect("expiries lock");
            for handle in gone {
                expiries.set(handle, None);
            }
            expiries.next().unwrap_or(i64::MAX)
        };
        self.next_expiry.store(next_expiry, Ordering::Release);
    }

    /// Followed partitions that no stream watches and no request needed since `before` (ms).
    pub fn idle(&self, before: Millis) -> Vec<u32> {
        (0..self.partitions)
            .filter(|p| {
                let i = *p as usize;
                self.follows(*p) && self.watching[i].load(Ordering::Acquire) == 0 && self.used_at[i].load(Ordering::Acquire) < before
            })
            .collect()
    }

    /// Counts a stream watching `partitions` until the guard is dropped.
    pub fn watch(self: &Arc<Self>, partitions: &[u32]) -> Watching {
        for p in partitions {
            if let Some(w) = self.watching.get(*p as usize) {
                w.fetch_add(1, Ordering::AcqRel);
            }
        }
        Watching { state: self.clone(), partitions: partitions.to_vec() }
    }

    /// Every change published, counted over the partitions (a hub that writes alone: its
    /// version). It only rises on one process; for metrics and readiness.
    pub fn changes_published(&self) -> u64 {
        self.published.iter().map(|v| v.load(Ordering::Acquire)).sum()
    }

    /// Waits until every change up to each (partition, version) is visible, at most `within`;
    /// whether it is.
    pub async fn caught_up(&self, versions: &[(u32, u64)], within: std::time::Duration) -> bool {
        let mut published = self.published_watch.subscribe();
        let reached = |_: &u64| versions.iter().all(|(p, v)| self.published(*p) >= *v);
        let outcome = tokio::time::timeout(within, published.wait_for(reached)).await;
        matches!(outcome, Ok(Ok(_)))
    }

    pub fn next_expiry(&self) -> Millis {
        self.next_expiry.load(Ordering::Acquire)
    }

    /// The positions asked for, in the order asked, as of `now`.
    pub fn positions(&self, keys: &[PositionKey], now: Millis) -> Vec<Position> {
        let table = self.positions.read().expect("positions lock");
        keys.iter()
            .map(|k| {
                let e = table.get(k).unwrap_or_default();
                e.stock.position(k, e.version, now, self.low_stock)
            })
            .collect()
    }

    /// For a stream: the watched positions whose version is above `sent[i]` and at most the
    /// version their partition is published up to, each marked as sent. Returned in ascending
    /// version order (within a partition, which is all that versions order), so a client cut
    /// off mid-burst resumes from the right place.
    pub fn changed_since(&self, keys: &[PositionKey], parts: &[u32], sent: &mut [i64], now: Millis) -> Vec<(u32, Position)> {
        // Each partition's bound is read once, before the positions: a commit is in the table
        // before it is published, so every version up to the bound is there. Read again for
        // each position, a publish in between would let a later position's higher version
        // out ahead of lower ones skipped a moment before, and a client resuming from that
        // id would miss them.
        let published = self.published_all();
        let bound = |p: u32| published.get(p as usize).map_or(0, |v| *v as i64);
        let table = self.positions.read().expect("positions lock");
        let mut out = Vec::new();
        for ((k, p), seen) in keys.iter().zip(parts).zip(sent.iter_mut()) {
            // The version first: only a position to be sent has its stock read.
            let handle = table.handle(k);
            let v = handle.and_then(|h| table.version_at(h)).unwrap_or(0) as i64;
            if v > *seen && v <= bound(*p) {
                *seen = v;
                let e = handle.and_then(|h| table.at(h)).unwrap_or_default();
                out.push((*p, e.stock.position(k, e.version, now, self.low_stock)));
            }
        }
        drop(table);
        out.sort_by_key(|(_, p)| p.version);
        out
    }

    /// The writer's view of one position before this batch changes it.
    pub fn entry(&self, key: &PositionKey) -> Option<Entry> {
        self.positions.read().expect("positions lock").get(key)
    }

    /// Makes a committed batch visible, then wakes the streams that watch it.
    pub fn publish(&self, changes: Vec<(PositionKey, Entry)>, upto: &[(u32, u64)]) {
        self.make_visible(&changes, upto);
        self.fanout.changed(changes.iter().map(|(k, _)| k));
    }

    /// Makes a committed batch visible to readers, without waking its streams (`fanout.changed`):
    /// its positions, and each partition published up to its version in `upto`.
    pub fn make_visible(&self, changes: &[(PositionKey, Entry)], upto: &[(u32, u64)]) {
        let handles: Vec<Handle> = {
            let mut table = self.positions.write().expect("positions lock");
            changes.iter().map(|(k, e)| table.set(k, e)).collect()
        };
        let next_expiry = {
            let mut expiries = self.expiries.lock().expect("expiries lock");
            for (handle, (_, e)) in handles.into_iter().zip(changes) {
                expiries.set(handle, e.stock.next_expiry());
            }
            expiries.next().unwrap_or(i64::MAX)
        };
        self.next_expiry.store(next_expiry, Ordering::Release);
        for (p, v) in upto {
            if let Some(at) = self.published.get(*p as usize) {
                at.fetch_max(*v, Ordering::AcqRel);
            }
        }
        self.published_watch.send_modify(|n| *n += 1);
    }

    /// Positions whose holds exceed their on-hand (negative `available`) as of `now`, in
    /// key order: offline sales took units that shoppers had reserved.
    pub fn oversold(&self, now: Millis, keep: impl Fn(&PositionKey) -> bool) -> Vec<Position> {
        let table = self.positions.read().expect("positions lock");
        let mut out: Vec<Position> = table
            .short(now)
            .map(|h| (table.key(h), h))
            .filter(|(k, _)| keep(k))
            .filter_map(|(k, h)| table.at(h).map(|e| e.stock.position(&k, e.version, now, self.low_stock)))
            .collect();
        drop(table);
        out.sort_by(|a, b| (&a.sku, &a.location).cmp(&(&b.sku, &b.location)));
        out
    }

    /// One part of a walk through every position (an export): the positions of up to `skus`
    /// SKUs from SKU handle `from` on, at the locations `keep` accepts, as of `now`; and where
    /// the next part starts (`None` after the last). Positions added meanwhile are met by a
    /// later part (a new SKU's handle comes after every other) or, for a new location of a
    /// SKU already passed, not at all: each position is read once, as its part found it.
    pub fn part(&self, from: usize, skus: usize, now: Millis, keep: impl Fn(&LocationId) -> bool) -> (Vec<Position>, Option<usize>) {
        let table = self.positions.read().expect("positions lock");
        let (handles, next) = table.of_skus(from..from.saturating_add(skus));
        let out = handles
            .into_iter()
            .map(|h| (table.key(h), h))
            .filter(|(k, _)| keep(&k.location))
            .filter_map(|(k, h)| table.at(h).map(|e| e.stock.position(&k, e.version, now, self.low_stock)))
            .collect();
        (out, next)
    }

    /// A location's positions whose version is above what `since` saw of their partition (all
    /// of a partition it does not name), in ascending version order within each partition.
    pub fn changed_at(&self, location: &LocationId, since: &Cursor, now: Millis) -> Vec<Position> {
        let table = self.positions.read().expect("positions lock");
        let Some(location) = table.location(location) else { return Vec::new() };
        let mut out: Vec<Position> = table
            .changed_at(location, |sku| since.get(self.partition(sku)))
            .filter_map(|h| table.at(h).map(|e| e.stock.position(&table.key(h), e.version, now, self.low_stock)))
            .collect();
        drop(table);
        out.sort_by_key(|p| p.version);
        out
    }

    /// The positions with a hold whose time is up at `now`.
    pub fn due_positions(&self, now: Millis) -> Vec<PositionKey> {
        let due = self.expiries.lock().expect("expiries lock").due(now);
        let table = self.positions.read().expect("positions lock");
        due.into_iter().map(|h| table.key(h)).collect()
    }

    pub fn len(&self) -> usize {
        self.positions.read().expect("positions lock").len()
    }
}

/// A stream's hold on the partitions it watches (`State::watch`).
pub struct Watching {
    state: Arc<State>,
    partitions: Vec<u32>,
}

impl Drop for Watching {
    fn drop(&mut self) {
        for p in &self.partitions {
            if let Some(w) = self.state.watching.get(*p as usize) {
                w.fetch_sub(1, Ordering::AcqRel);
            }
        }
    }
}

/// Positions by the earliest expiry of their holds, so a sweep touches only positions with a
/// lapsed hold (each stock finds its own lapsed holds in O(log n)).
#[derive(Default)]
struct Expiries {
    by_time: BTreeSet<(Millis, Handle)>,
    of: HashMap<Handle, Millis>,
}

impl Expiries {
    fn set(&mut self, handle: Handle, next: Option<Millis>) {
        let before = match next {
            Some(t) => self.of.insert(handle, t),
            None => self.of.remove(&handle),
        };
        if before != next {
            if let Some(t) = before {
                self.by_time.remove(&(t, handle));
            }
            if let Some(t) = next {
                self.by_time.insert((t, handle));
            }
        }
    }

    fn due(&self, now: Millis) -> Vec<Handle> {
        self.by_time.iter().take_while(|(t, _)| *t <= now).map(|(_, h)| *h).collect()
    }

    fn next(&self) -> Option<Millis> {
        self.by_time.first().map(|(t, _)| *t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_waiter_is_released_when_its_version_is_published_and_not_before() {
        let state = Arc::new(State::new(Table::default(), vec![3, 0], Clock::manual(0), 3));
        assert!(state.caught_up(&[(0, 3)], Duration::ZERO).await, "already visible: no wait");
        assert!(!state.caught_up(&[(0, 5)], Duration::from_millis(30)).await, "nothing published: times out");
        let waiter = tokio::spawn({
            let state = state.clone();
            async move { state.caught_up(&[(0, 5), (1, 2)], Duration::from_secs(10)).await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        state.publish(Vec::new(), &[(0, 4), (1, 2)]);
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished(), "version 4 is not version 5");
        state.publish(Vec::new(), &[(1, 9)]);
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished(), "another partition's version says nothing of this one");
        state.publish(Vec::new(), &[(0, 5)]);
        assert!(tokio::time::timeout(Duration::from_secs(5), waiter).await.unwrap().unwrap());
    }

    /// A stream's id is the highest version it has sent, so what it sends next must all be
    /// above it: commits of many positions published while a stream looks must never let a
    /// higher version out ahead of a lower one.
    #[test]
    fn a_stream_never_sends_a_version_below_one_it_has_sent_while_commits_publish() {
        use crate::positions::Entry;
        use shelfcast_protocol::Stock;
        const KEYS: usize = 50;
        const COMMITS: u64 = 2_000;
        let state = Arc::new(State::new(Table::default(), vec![0], Clock::manual(0), 3));
        let keys: Vec<PositionKey> =
            (0..KEYS).map(|i| PositionKey::new(format!("SKU-{i}").parse().unwrap(), "berlin".parse().unwrap())).collect();
        let writer = std::thread::spawn({
            let (state, keys) = (state.clone(), keys.clone());
            move || {
                for c in 0..COMMITS {
                    let base = c * KEYS as u64;
                    let changes: Vec<(PositionKey, Entry)> = keys
                        .iter()
                        .enumerate()
                        .map(|(i, k)| (k.clone(), Entry { stock: Stock::new(1), version: base + i as u64 + 1 }))
                        .collect();
                    state.publish(changes, &[(0, base + KEYS as u64)]);
                }
            }
        });
        let parts = vec![0; KEYS];
        let mut sent = vec![0; KEYS];
        let (mut highest, mut looks) = (0, 0u64);
        while !writer.is_finished() || looks == 0 {
            looks += 1;
            let before = sent.clone();
            let got = state.changed_since(&keys, &parts, &mut sent, 0);
            let vs: Vec<u64> = got.iter().map(|(_, p)| p.version).collect();
            for (_, p) in got {
                assert!(p.version > highest, "version {} sent after {highest} (look {looks}) {vs:?} after {before:?}", p.version);
                highest = p.version;
            }
        }
        writer.join().unwrap();
        state.changed_since(&keys, &parts, &mut sent, 0);
        assert_eq!(
            sent,
            (1..=KEYS as i64).map(|i| (COMMITS - 1) as i64 * KEYS as i64 + i).collect::<Vec<_>>(),
            "the last commit reached the stream"
        );
    }
}
