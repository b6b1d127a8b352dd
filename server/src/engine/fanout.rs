//! Who watches which position. A change wakes only the streams that watch its position, and a
//! wake is a permit, not a message: a stream that is slow to read coalesces any number of
//! changes into one look at the current state, so nothing is buffered per subscriber.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use shelfcast_protocol::{LocationId, PositionKey};
use tokio::sync::Notify;

/// The streams watching one position: subscription id and its wake-up.
type Watchers = Vec<(u64, Arc<Notify>)>;

#[derive(Default)]
pub struct Fanout {
    watchers: Mutex<HashMap<PositionKey, Watchers>>,
    /// Edge nodes waiting for any change at their location.
    locations: Mutex<HashMap<LocationId, Watchers>>,
    next_id: AtomicU64,
    open: AtomicUsize,
}

pub struct Subscription {
    fanout: Arc<Fanout>,
    id: u64,
    keys: Vec<PositionKey>,
    pub notify: Arc<Notify>,
}

impl Fanout {
    pub fn subscribe(self: &Arc<Self>, keys: &[PositionKey]) -> Subscription {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let notify = Arc::new(Notify::new());
        let mut w = self.watchers.lock().expect("fanout lock");
        for k in keys {
            w.entry(k.clone()).or_default().push((id, notify.clone()));
        }
        self.open.fetch_add(1, Ordering::Relaxed);
        Subscription { fanout: self.clone(), id, keys: keys.to_vec(), notify }
    }

    /// Wakes every stream watching any of `keys`, and every edge node waiting on their locations.
    pub fn changed<'a>(&self, keys: impl IntoIterator<Item = &'a PositionKey> + Clone) {
        let w = self.watchers.lock().expect("fanout lock");
        for k in keys.clone() {
            if let Some(subs) = w.get(k) {
                for (_, n) in subs {
                    n.notify_one();
                }
            }
        }
        drop(w);
        let l = self.locations.lock().expect("fanout lock");
        if l.is_empty() {
            return;
        }
        for k in keys {
            if let Some(subs) = l.get(&k.location) {
                for (_, n) in subs {
                    n.notify_one();
                }
            }
        }
    }

    /// A wake-up for the next change at `location`, whatever the SKU.
    pub fn watch_location(self: &Arc<Self>, location: &LocationId) -> LocationWatch {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let notify = Arc::new(Notify::new());
        self.locations.lock().expect("fanout lock").entry(location.clone()).or_default().push((id, notify.clone()));
        LocationWatch { fanout: self.clone(), id, location: location.clone(), notify }
    }

    pub fn open_streams(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }
}

pub struct LocationWatch {
    fanout: Arc<Fanout>,
    id: u64,
    location: LocationId,
    pub notify: Arc<Notify>,
}

impl Drop for LocationWatch {
    fn drop(&mut self) {
        let mut l = self.fanout.locations.lock().expect("fanout lock");
        if let Some(subs) = l.get_mut(&self.location) {
            subs.retain(|(id, _)| *id != self.id);
            if subs.is_empty() {
                l.remove(&self.location);
            }
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut w = self.fanout.watchers.lock().expect("fanout lock");
        for k in &self.keys {
            if let Some(subs) = w.get_mut(k) {
                subs.retain(|(id, _)| *id != self.id);
                if subs.is_empty() {
                    w.remove(k);
                }
            }
        }
        self.fanout.open.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_change_wakes_only_the_streams_watching_it() {
        let fanout = Arc::new(Fanout::default());
        let a = PositionKey::parse_pair("A@s").unwrap();
        let b = PositionKey::parse_pair("B@s").unwrap();
        let on_a = fanout.subscribe(std::slice::from_ref(&a));
        let on_b = fanout.subscribe(std::slice::from_ref(&b));
        fanout.changed([&a]);
        tokio::time::timeout(Duration::from_secs(5), on_a.notify.notified()).await.expect("A's stream woken");
        assert!(tokio::time::timeout(Duration::from_millis(30), on_b.notify.notified()).await.is_err(), "B's stream left alone");
        drop(on_a);
        assert_eq!(fanout.open_streams(), 1);
    }
}
