//! Who watches which position. A change wakes only the streams that watch its position, and a
//! wake is a permit, not a message: a stream that is slow to read coalesces any number of
//! changes into one look at the current state, so nothing is buffered per subscriber.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use shelfcast_protocol::PositionKey;
use tokio::sync::Notify;

/// The streams watching one position: subscription id and its wake-up.
type Watchers = Vec<(u64, Arc<Notify>)>;

#[derive(Default)]
pub struct Fanout {
    watchers: Mutex<HashMap<PositionKey, Watchers>>,
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

    /// Wakes every stream watching any of `keys`.
    pub fn changed<'a>(&self, keys: impl IntoIterator<Item = &'a PositionKey>) {
        let w = self.watchers.lock().expect("fanout lock");
        for k in keys {
            if let Some(subs) = w.get(k) {
                for (_, n) in subs {
                    n.notify_one();
                }
            }
        }
    }

    pub fn open_streams(&self) -> usize {
        self.open.load(Ordering::Relaxed)
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
