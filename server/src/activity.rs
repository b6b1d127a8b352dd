//! What the console's Activity page draws: per second over the last five minutes, the events
//! applied by type, the holds granted and the till-to-hub lag (from each event's `at`). Kept in
//! memory by each process (each replica counts what it took in), in a ring of one slot a second.

use std::sync::Mutex;

use serde::Serialize;
use shelfcast_protocol::clock::Millis;
use shelfcast_protocol::EventKind;

/// Seconds kept.
pub const WINDOW: usize = 300;

/// One second of activity.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Second {
    /// Unix seconds.
    pub t: i64,
    /// Events applied, by type, in `EventKind::ALL` order.
    pub events: [u64; 5],
    pub holds: u64,
    /// Events that said when they happened, and the sum and largest of their lag (ms).
    pub lagged: u64,
    pub lag_sum_ms: u64,
    pub lag_max_ms: u64,
}

#[derive(Default)]
pub struct Activity {
    ring: Mutex<Vec<Second>>,
}

impl Activity {
    /// The slot of second `now / 1000`, started afresh when it last held an older second.
    fn with_second(&self, now: Millis, f: impl FnOnce(&mut Second)) {
        let t = now.div_euclid(1000);
        let mut ring = self.ring.lock().expect("activity lock");
        if ring.is_empty() {
            ring.resize(WINDOW, Second::default());
        }
        let slot = &mut ring[t.rem_euclid(WINDOW as i64) as usize];
        if slot.t != t {
            *slot = Second { t, ..Second::default() };
        }
        f(slot);
    }

    /// Events applied at `now`: each one's type and when it happened at the source, if said.
    pub fn events(&self, applied: impl IntoIterator<Item = (EventKind, Option<Millis>)>, now: Millis) {
        self.with_second(now, |s| {
            for (kind, at) in applied {
                let i = EventKind::ALL.iter().position(|k| *k == kind).unwrap_or(0);
                s.events[i] += 1;
                if let Some(at) = at {
                    let lag = now.saturating_sub(at).max(0) as u64;
                    s.lagged += 1;
                    s.lag_sum_ms += lag;
                    s.lag_max_ms = s.lag_max_ms.max(lag);
                }
            }
        });
    }

    pub fn hold(&self, now: Millis) {
        self.with_second(now, |s| s.holds += 1);
    }

    /// The seconds of the last five minutes up to `now`, oldest first, quiet ones included.
    pub fn last(&self, now: Millis) -> Vec<Second> {
        let t = now.div_euclid(1000);
        let ring = self.ring.lock().expect("activity lock");
        (t - WINDOW as i64 + 1..=t)
            .map(|second| {
                ring.get(second.rem_euclid(WINDOW as i64) as usize)
                    .filter(|s| s.t == second)
                    .copied()
                    .unwrap_or(Second { t: second, ..Second::default() })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_count_by_type_and_lag_and_old_ones_give_way() {
        let a = Activity::default();
        let t0 = 1_800_000_000_000;
        a.events([(EventKind::Sale, Some(t0 - 40)), (EventKind::Sale, None), (EventKind::Count, Some(t0 - 10))], t0);
        a.hold(t0 + 999);
        a.events([(EventKind::Receipt, None)], t0 + 1_000);
        let last = a.last(t0 + 1_000);
        assert_eq!(last.len(), WINDOW);
        let (before, now) = (last[WINDOW - 2], last[WINDOW - 1]);
        assert_eq!((before.events, before.holds, before.lagged, before.lag_sum_ms, before.lag_max_ms), ([2, 0, 0, 0, 1], 1, 2, 50, 40));
        assert_eq!(now.events, [0, 0, 1, 0, 0]);
        // Five minutes on, the slot of t0 holds a new second and t0's counts are gone.
        let later = t0 + WINDOW as i64 * 1_000;
        a.hold(later);
        let last = a.last(later);
        assert_eq!(last[WINDOW - 1].holds, 1);
        assert_eq!(last[WINDOW - 1].events, [0; 5], "the old second's events do not leak into the new one");
        assert!(last.iter().all(|s| s.t > t0 / 1000));
    }
}
