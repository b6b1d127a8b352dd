//! Several hub replicas on one PostgreSQL: how each keeps its in-memory positions (what reads
//! and streams serve) complete and in version order.
//!
//! Versions are handed out in commit order (see `store::postgres`), so "every change up to
//! version v" is a prefix of the ledger that PostgreSQL can always answer. A replica publishes
//! only such prefixes: its own commit directly when it follows the last published version,
//! otherwise it reads what changed since from PostgreSQL (`resync`). NATS only carries the
//! news that a replica committed up to some version, so the others resync at once; a
//! periodic resync covers a lost message and a NATS outage, and a resync follows every
//! reconnection. A resuming stream client therefore never misses a change on any replica.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::{mpsc, Notify};
use tokio_util::sync::CancellationToken;

use super::state::{Entry, State};
use crate::store::Changes;
use shelfcast_protocol::PositionKey;

/// The subject on which replicas announce their commits.
pub const SUBJECT: &str = "shelfcast.committed";

/// Committed positions with their new entries.
type Committed = Vec<(PositionKey, Entry)>;

pub struct Sequencer {
    state: Arc<State>,
    order: Mutex<()>,
    behind: Notify,
    announce: Option<mpsc::UnboundedSender<u64>>,
}

impl Sequencer {
    /// This replica committed versions `first..=last` with these changes. `Ok`: the changes it
    /// made visible at once, whose streams the caller wakes once it has answered. `Err`: the
    /// changes given back, not visible yet (another replica committed in between: the resync
    /// publishes them with its commit).
    pub fn committed(&self, changes: Vec<(PositionKey, Entry)>, first: u64, last: u64) -> Result<Committed, Committed> {
        let visible = {
            let _order = self.order.lock().expect("sequencer lock");
            let published = self.state.published();
            if first == published + 1 {
                self.state.make_visible(&changes, last);
                Ok(changes)
            } else {
                if last > published {
                    // Another replica committed in between: read the whole prefix.
                    self.behind.notify_one();
                }
                Err(changes)
            }
        };
        if let Some(tx) = &self.announce {
            let _ = tx.send(last);
        }
        visible
    }

    /// Another replica says it committed up to `last`.
    pub fn heard(&self, last: u64) {
        if last > self.state.published() {
            self.behind.notify_one();
        }
    }

    /// Reads what changed since the last published version and publishes it.
    async fn resync(&self, changes: &Changes) -> Result<(), crate::store::StoreError> {
        let since = self.state.published();
        let state = self.state.clone();
        let known = move |k: &PositionKey| state.entry(k).map(|e| (e.version, e.stock));
        let (rows, upto) = changes.since(since, &known).await?;
        let _order = self.order.lock().expect("sequencer lock");
        let published = self.state.published();
        if upto > published {
            let fresh: Vec<(PositionKey, Entry)> =
                rows.into_iter().filter(|(_, _, v)| *v > published).map(|(k, stock, version)| (k, Entry { stock, version })).collect();
            self.state.publish(fresh, upto);
        }
        Ok(())
    }
}

/// Starts the sequencer, its resync loop, and (with `nats`) the announcer and listener; returns
/// the NATS client too, for the other uses replicas make of it.
pub async fn start(
    state: Arc<State>,
    changes: Changes,
    nats: Option<String>,
    every: Duration,
    shutdown: CancellationToken,
) -> (Arc<Sequencer>, Option<async_nats::Client>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let sequencer = Arc::new(Sequencer { state, order: Mutex::new(()), behind: Notify::new(), announce: nats.is_some().then_some(tx) });
    let s = sequencer.clone();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        let mut failing = false;
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = s.behind.notified() => {}
                _ = tokio::time::sleep(every) => {}
            }
            match s.resync(&changes).await {
                Ok(()) if failing => {
                    failing = false;
                    tracing::info!("replica resynchronised from the database");
                }
                Ok(()) => {}
                Err(error) if !failing => {
                    failing = true;
                    tracing::warn!(%error, "cannot read changes from the database; streams wait");
                }
                Err(_) => {}
            }
        }
    });
    let client = match nats {
        Some(url) => connect(&url, sequencer.clone()).await,
        None => None,
    };
    if let Some(client) = &client {
        tokio::spawn(nats_link(client.clone(), sequencer.clone(), rx, shutdown));
    }
    (sequencer, client)
}

/// Connects to NATS in the background (the client retries by itself); each (re)connection
/// triggers a resync, since announcements made while this replica was away are gone.
async fn connect(url: &str, sequencer: Arc<Sequencer>) -> Option<async_nats::Client> {
    let s = sequencer.clone();
    let options = async_nats::ConnectOptions::new().name("shelfcast hub").retry_on_initial_connect().event_callback(move |event| {
        let s = s.clone();
        async move {
            match event {
                async_nats::Event::Connected => {
                    tracing::info!("NATS connected");
                    s.behind.notify_one();
                }
                async_nats::Event::Disconnected => tracing::warn!("NATS lost; resynchronising from the database until it returns"),
                other => tracing::debug!(event = %other, "NATS"),
            }
        }
    });
    match options.connect(url).await {
        Ok(c) => Some(c),
        Err(error) => {
            tracing::error!(%error, %url, "NATS: cannot connect; replicas will only see each other through the database");
            None
        }
    }
}

/// Announces this replica's commits and listens for the others'.
async fn nats_link(
    client: async_nats::Client,
    sequencer: Arc<Sequencer>,
    mut rx: mpsc::UnboundedReceiver<u64>,
    shutdown: CancellationToken,
) {
    let mut sub = match client.subscribe(SUBJECT).await {
        Ok(s) => s,
        Err(error) => {
            tracing::error!(%error, "NATS: cannot subscribe");
            return;
        }
    };
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            Some(last) = rx.recv() => {
                // While NATS is away the client buffers a little; the others resync anyway.
                // Only the newest announcement matters: skip any that queued up behind it.
                let mut last = last;
                while let Ok(newer) = rx.try_recv() {
                    last = last.max(newer);
                }
                if let Err(error) = client.publish(SUBJECT, last.to_string().into()).await {
                    tracing::debug!(%error, "NATS: announcement not sent");
                }
                // Sent now, not when the client's write buffer next fills or times out.
                let _ = client.flush().await;
            }
            Some(msg) = sub.next() => {
                if let Some(v) = std::str::from_utf8(&msg.payload).ok().and_then(|s| s.parse::<u64>().ok()) {
                    sequencer.heard(v);
                }
            }
        }
    }
}
