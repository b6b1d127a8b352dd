//! Expiry is lazy (a lapsed hold reserves nothing, swept or not), but a lapse is also a change
//! that streams must show: the sweeper asks the writer to record it within a fraction of a
//! second of `expires_at`.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{State, Writer};

pub fn spawn(state: Arc<State>, writer: Writer, every: Duration, shutdown: CancellationToken) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.cancelled() => break,
            }
            if state.next_expiry() <= state.clock.now() {
                writer.sweep();
            }
        }
    });
}
