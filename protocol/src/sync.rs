//! How an edge node's view of a position follows the hub without counting its own events twice
//! or not at all.
//!
//! The edge shows "the hub's position plus the store's events the hub does not count yet". Its
//! own events reach the hub through uploads, and the hub's positions reach it through a
//! separate channel (follow answers, re-reads), so the two arrive in any order. The hub's
//! answer to an upload says, per event, the position's version from which the hub counts it
//! (`EventResult::version`); a hub state of the position carries its version. From these,
//! each own event stands in one of three places:
//! - **local**: never sent, so no hub state can count it;
//! - **unanswered**: sent, no answer yet (in flight, or the answer was lost): a hub state may
//!   or may not count it;
//! - **counted from version v**: hub states at v or later count it, earlier ones do not.
//!
//! A hub state at version `V` becomes the base of the view only when it is unambiguous: no own
//! event of the position is unanswered, every answered one is counted at `V`, and `V` is not
//! older than the state the view already rests on. The view is then that state plus the local
//! events, in order, and the answered events leave the overlay. Otherwise the view stays as it
//! is (it was exact, and the edge's own new events keep being applied to it), until a state
//! that qualifies arrives: after each answer the edge reads the answered positions again, and
//! those reads are made after the hub counted the events.

use crate::event::EventKind;
use crate::stock::Stock;

/// One of the edge's own events at a position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OwnEvent {
    /// Its place in the edge's ledger (uploads go in this order).
    pub seq: i64,
    pub kind: EventKind,
    pub qty: i64,
    /// The hub answered for it: hub states from this version on count it.
    pub counted_from: Option<u64>,
}

/// Where an own event stands, given that everything up to `sent_through` may have been sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    Local,
    Unanswered,
    CountedFrom(u64),
}

impl OwnEvent {
    pub fn standing(&self, sent_through: i64) -> Standing {
        match self.counted_from {
            Some(v) => Standing::CountedFrom(v),
            None if self.seq <= sent_through => Standing::Unanswered,
            None => Standing::Local,
        }
    }
}

/// The view to show when the hub's state of the position is `hub` at `version`, or `None` to
/// keep the current view. `adopted`: the version of the hub state the view rests on now, if
/// known; `events`: the position's own events still in the overlay, in ledger order.
/// On `Some`, every answered event is counted by `hub`: the caller drops them from the overlay.
pub fn rebase(hub: &Stock, version: u64, adopted: Option<u64>, events: &[OwnEvent], sent_through: i64) -> Option<Stock> {
    if adopted.is_some_and(|a| version < a) {
        return None;
    }
    let mut view = hub.clone();
    for e in events {
        match e.standing(sent_through) {
            Standing::Unanswered => return None,
            Standing::CountedFrom(v) if v > version => return None,
            Standing::CountedFrom(_) => {}
            Standing::Local => view.apply(e.kind, e.qty),
        }
    }
    Some(view)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ev(seq: i64, kind: EventKind, qty: i64, counted_from: Option<u64>) -> OwnEvent {
        OwnEvent { seq, kind, qty, counted_from }
    }

    #[test]
    fn local_events_are_added_to_the_hub_state() {
        let events = [ev(1, EventKind::Sale, 2, None), ev(2, EventKind::Receipt, 5, None)];
        assert_eq!(rebase(&Stock::new(10), 4, None, &events, 0).map(|s| s.on_hand), Some(13));
    }

    #[test]
    fn a_state_is_not_taken_while_an_event_is_unanswered() {
        let events = [ev(1, EventKind::Sale, 2, None)];
        assert_eq!(rebase(&Stock::new(10), 4, None, &events, 1), None, "it may or may not count the sale");
    }

    #[test]
    fn a_state_older_than_an_answered_event_is_not_taken() {
        let events = [ev(1, EventKind::Sale, 2, Some(7))];
        assert_eq!(rebase(&Stock::new(10), 6, None, &events, 1), None);
        assert_eq!(rebase(&Stock::new(8), 7, None, &events, 1).map(|s| s.on_hand), Some(8), "counted by the hub, not again");
    }

    #[test]
    fn a_state_older_than_the_one_the_view_rests_on_is_not_taken() {
        assert_eq!(rebase(&Stock::new(10), 6, Some(7), &[], 0), None);
        assert!(rebase(&Stock::new(10), 7, Some(7), &[], 0).is_some());
    }

    /// A hub and an edge whose uploads, answers and follow answers travel separately and
    /// arrive in any order, are lost, duplicated, and survive restarts of the edge.
    #[derive(Debug, Clone)]
    enum Step {
        /// A till at the store records an event.
        Record(u8, u8),
        /// The edge sends everything not yet answered (a retry sends the same events again).
        Upload,
        /// The hub takes the request in flight at this index (applies, dedupes, answers).
        HubTakes(usize),
        /// The edge gets the answer at this index (or it is lost when `false`).
        Answer(usize, bool),
        /// Something else changes the position at the hub (an online receipt, a count).
        HubOther(u8),
        /// The hub's state, read now, starts its way to the edge.
        Read,
        /// The edge gets the read at this index.
        Follow(usize),
        /// The edge restarts: what was in flight is gone, everything unacknowledged may have been sent.
        Restart,
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            4 => (0u8..5, 1u8..4).prop_map(|(k, q)| Step::Record(k, q)),
            2 => Just(Step::Upload),
            2 => (0usize..4).prop_map(Step::HubTakes),
            2 => (0usize..4, prop::bool::weighted(0.85)).prop_map(|(i, ok)| Step::Answer(i, ok)),
            1 => (1u8..4).prop_map(Step::HubOther),
            3 => Just(Step::Read),
            3 => (0usize..6).prop_map(Step::Follow),
            1 => Just(Step::Restart),
        ]
    }

    fn kind(k: u8) -> EventKind {
        [EventKind::Sale, EventKind::Return, EventKind::Receipt, EventKind::Adjust, EventKind::Count][k as usize % 5]
    }

    struct World {
        /// Every own event ever recorded, by seq - 1.
        all: Vec<(EventKind, i64)>,
        /// The hub: its states by version (index), and which own events each counts.
        hub_states: Vec<(i64, Vec<bool>)>,
        /// Requests in flight to the hub (the seqs each carries); answers on their way back.
        requests: Vec<Vec<i64>>,
        answers: Vec<Vec<(i64, u64)>>,
        reads: Vec<(i64, u64)>,
        /// The edge: its overlay, acknowledged and sent marks, the state its view rests on.
        overlay: Vec<OwnEvent>,
        acked: i64,
        sent_through: i64,
        adopted: Option<u64>,
        basis: u64,
        view: Stock,
    }

    impl World {
        fn hub(&self) -> &(i64, Vec<bool>) {
            self.hub_states.last().expect("a first state")
        }

        /// What the view must be: the state it rests on, plus every own event that state does not count.
        fn truth(&self) -> i64 {
            let (on_hand, counts) = &self.hub_states[self.basis as usize];
            let mut s = Stock::new(*on_hand);
            for (i, &(k, q)) in self.all.iter().enumerate() {
                if !counts.get(i).copied().unwrap_or(false) {
                    s.apply(k, q);
                }
            }
            s.on_hand
        }

        fn run(&mut self, step: Step) {
            match step {
                Step::Record(k, q) => {
                    let (kind, qty) = (kind(k), q as i64);
                    self.all.push((kind, qty));
                    self.overlay.push(OwnEvent { seq: self.all.len() as i64, kind, qty, counted_from: None });
                    self.view.apply(kind, qty);
                }
                Step::Upload => {
                    let seqs: Vec<i64> = ((self.acked + 1)..=self.all.len() as i64).collect();
                    if let Some(&last) = seqs.last() {
                        self.sent_through = self.sent_through.max(last);
                        self.requests.push(seqs);
                    }
                }
                Step::HubTakes(i) if i < self.requests.len() => {
                    let seqs = self.requests.remove(i);
                    let (mut on_hand, mut counts) = self.hub().clone();
                    counts.resize(self.all.len(), false);
                    let mut fresh = false;
                    for &seq in &seqs {
                        if !counts[seq as usize - 1] {
                            let (k, q) = self.all[seq as usize - 1];
                            let mut s = Stock::new(on_hand);
                            s.apply(k, q);
                            on_hand = s.on_hand;
                            counts[seq as usize - 1] = true;
                            fresh = true;
                        }
                    }
                    if fresh {
                        self.hub_states.push((on_hand, counts));
                    }
                    // Applied ones: this commit's version; duplicates: the version now. Both count them.
                    let version = self.hub_states.len() as u64 - 1;
                    self.answers.push(seqs.into_iter().map(|s| (s, version)).collect());
                }
                Step::Answer(i, delivered) if i < self.answers.len() => {
                    let answer = self.answers.remove(i);
                    let last = answer.last().map(|&(s, _)| s).unwrap_or(0);
                    // The edge waits for the answer to its current upload; a stale one is dropped.
                    if delivered && answer.first().is_some_and(|&(s, _)| s == self.acked + 1) {
                        for (seq, version) in answer {
                            if let Some(e) = self.overlay.iter_mut().find(|e| e.seq == seq) {
                                e.counted_from = Some(version);
                            }
                        }
                        self.acked = self.acked.max(last);
                    }
                }
                Step::HubOther(q) => {
                    let (on_hand, counts) = self.hub().clone();
                    self.hub_states.push((on_hand + q as i64, counts));
                }
                Step::Read => {
                    let version = self.hub_states.len() as u64 - 1;
                    self.reads.push((self.hub().0, version));
                }
                Step::Follow(i) if i < self.reads.len() => {
                    let (on_hand, version) = self.reads.remove(i);
                    if let Some(view) = rebase(&Stock::new(on_hand), version, self.adopted, &self.overlay, self.sent_through) {
                        self.view = view;
                        self.adopted = Some(version);
                        self.basis = version;
                        self.overlay.retain(|e| e.counted_from.is_none());
                    }
                }
                Step::Restart => {
                    // Answered events leave the overlay at a restart (as the edge's store does):
                    // the view stays as persisted, and every read from now on counts them.
                    self.overlay.retain(|e| e.seq > self.acked);
                    for e in &mut self.overlay {
                        e.counted_from = None;
                    }
                    self.sent_through = self.all.len() as i64;
                    self.adopted = None;
                    self.reads.clear();
                    self.answers.clear();
                }
                _ => {}
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        /// After every step the edge's view is its basis plus exactly the own events that basis
        /// does not count: never one twice, never one missing.
        #[test]
        fn every_own_event_is_counted_exactly_once_at_every_step(steps in prop::collection::vec(step(), 1..120)) {
            let mut w = World {
                all: Vec::new(),
                hub_states: vec![(20, Vec::new())],
                requests: Vec::new(),
                answers: Vec::new(),
                reads: Vec::new(),
                overlay: Vec::new(),
                acked: 0,
                sent_through: 0,
                adopted: Some(0),
                basis: 0,
                view: Stock::new(20),
            };
            for (i, s) in steps.into_iter().enumerate() {
                let what = format!("{s:?}");
                w.run(s);
                prop_assert_eq!(w.view.on_hand, w.truth(), "after step {} ({})", i, what);
            }
            // The link settles: the last upload is answered and the position read after it.
            w.requests.clear();
            w.answers.clear();
            w.run(Step::Upload);
            if !w.requests.is_empty() {
                w.run(Step::HubTakes(0));
                w.run(Step::Answer(0, true));
            }
            w.reads.clear();
            w.run(Step::Read);
            w.run(Step::Follow(0));
            prop_assert_eq!(w.view.on_hand, w.hub().0, "settled, the view is the hub's");
            prop_assert!(w.overlay.is_empty());
        }
    }
}
