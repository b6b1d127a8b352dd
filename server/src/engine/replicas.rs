//! Several hub replicas on one PostgreSQL: how each keeps its in-memory positions (what reads
//! and streams serve) complete and in version order.
//!
//! Each partition hands out its versions in commit order (its owner's commits take them under
//! the partition row's lock, `store::postgres`), so "every change of partition p up to version
//! v" is a prefix of the ledger that PostgreSQL can always answer. A replica publishes only
//! such prefixes, partition by partition: its own commit directly when it follows the last
//! published version of its partition, otherwise it reads what changed since from PostgreSQL
//! (`resync`). NATS only carries the news that a replica committed up to some versions, so the
//! others resync at once; a periodic resync covers a lost message and a NATS outage, and a
//! resync follows every reconnection. A resuming stream client therefore never misses a change
//! on any replica.

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

/// Partitions' last versions, as `p:v,p:v` (what an announcement carries).
fn encode(versions: &[(u32, u64)]) -> String {
    versions.iter().map(|(p, v)| format!("{p}:{v}")).collect::<Vec<_>>().join(",")
}

fn decode(text: &str) -> Vec<(u32, u64)> {
    text.split(',').filter_map(|pair| pair.split_once(':')).filter_map(|(p, v)| Some((p.parse().ok()?, v.parse().ok()?))).collect()
}

pub struct Sequencer {
    state: Arc<State>,
    changes: Changes,
    order: Mutex<()>,
    behind: Notify,
    announce: Option<mpsc::UnboundedSender<Vec<(u32, u64)>>>,
    /// One load of partitions to follow at a time (requests that need the same wait for it).
    loading: tokio::sync::Mutex<()>,
}

impl Sequencer {
    /// This replica committed these changes, taking versions `first..=last` of each partition
    /// in `ranges` (partition, first, last). Returns the changes it made visible at once, whose
    /// streams the caller wakes once it has answered, and those of partitions not published up
    /// to just before their first version (a commit of an earlier owner is not read yet):
    /// given back, not visible yet; the resync publishes them.
    pub fn committed(&self, changes: Committed, ranges: &[(u32, u64, u64)]) -> (Committed, Committed) {
        let result = {
            let _order = self.order.lock().expect("sequencer lock");
            let mut follows = Vec::new();
            let mut later = Vec::new();
            for (p, first, last) in ranges {
                let published = self.state.published(*p);
                if *first == published + 1 {
                    follows.push((*p, *last));
                } else if *last > published {
                    later.push(*p);
                }
            }
            if !later.is_empty() {
                self.behind.notify_one();
            }
            // A partition this replica stopped following meanwhile (taken over, let go) is not
            // written into memory: whoever follows it again loads it from the ledger.
            let (visible, given_back): (Committed, Committed) = changes
                .into_iter()
                .filter(|(k, _)| self.state.follows(self.state.partition(k.sku.as_str())))
                .partition(|(k, _)| !later.contains(&self.state.partition(k.sku.as_str())));
            self.state.make_visible(&visible, &follows);
            (visible, given_back)
        };
        if let Some(tx) = &self.announce {
            let _ = tx.send(ranges.iter().map(|(p, _, last)| (*p, *last)).collect());
        }
        result
    }

    /// Another replica says it committed up to these versions of these partitions.
    pub fn heard(&self, versions: &[(u32, u64)]) {
        if versions.iter().any(|(p, v)| self.state.follows(*p) && *v > self.state.published(*p)) {
            self.behind.notify_one();
        }
    }

    /// Reads what changed in the followed partitions since their published versions and
    /// publishes it.
    async fn resync(&self) -> Result<(), crate::store::StoreError> {
        let since = self.state.followed();
        if since.is_empty() {
            return Ok(());
        }
        let state = self.state.clone();
        let known = move |k: &PositionKey| state.entry(k).map(|e| (e.version, e.stock));
        let (rows, upto) = self.changes.since(&since, &known).await?;
        let _order = self.order.lock().expect("sequencer lock");
        // Published now, and only for partitions still followed (one let go meanwhile is not).
        let behind = |p: u32| self.state.follows(p).then(|| self.state.published(p));
        let fresh: Vec<(PositionKey, Entry)> = rows
            .into_iter()
            .filter(|(k, _, v)| behind(self.state.partition(k.sku.as_str())).is_some_and(|b| *v > b))
            .map(|(k, stock, version)| (k, Entry { stock, version }))
            .collect();
        let advanced: Vec<(u32, u64)> = upto.into_iter().filter(|(p, v)| behind(*p).is_some_and(|b| *v > b)).collect();
        if !advanced.is_empty() || !fresh.is_empty() {
            self.state.publish(fresh, &advanced);
        }
        Ok(())
    }

    /// Follows `partitions` from now on, loading those not followed yet from the ledger;
    /// returns once their positions are here. Marks them as needed now.
    pub async fn follow(&self, partitions: &[u32]) -> Result<(), crate::store::StoreError> {
        self.state.touch(partitions);
        if self.state.missing(partitions).is_empty() {
            return Ok(());
        }
        let _one = self.loading.lock().await;
        let missing = self.state.missing(partitions);
        if missing.is_empty() {
            return Ok(());
        }
        let started = std::time::Instant::now();
        let (table, versions) = self.changes.partitions(&missing).await?;
        let positions = table.len();
        {
            let _order = self.order.lock().expect("sequencer lock");
            self.state.adopt(table, &versions);
        }
        tracing::debug!(partitions = missing.len(), positions, ms = started.elapsed().as_millis() as u64, "partitions followed");
        Ok(())
    }

    /// Lets go of followed partitions that `keep` does not keep and nothing needed for `idle`.
    pub fn let_go(&self, idle: Duration, keep: &dyn Fn(u32) -> bool) {
        let before = self.state.clock.now() - idle.as_millis() as i64;
        let _order = self.order.lock().expect("sequencer lock");
        let idle: Vec<u32> = self.state.idle(before).into_iter().filter(|p| !keep(*p)).collect();
        if !idle.is_empty() {
            self.state.forget(&idle);
            tracing::debug!(partitions = idle.len(), "partitions no longer followed");
        }
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
    let sequencer = Arc::new(Sequencer {
        state,
        changes,
        order: Mutex::new(()),
        behind: Notify::new(),
        announce: nats.is_some().then_some(tx),
        loading: tokio::sync::Mutex::new(()),
    });
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
            match s.resync().await {
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

/// Lets go of the partitions this replica neither owns nor needed for `idle`, checking every
/// tenth of that, until `shutdown`.
pub async fn let_go(sequencer: Arc<Sequencer>, ownership: Arc<super::ownership::Ownership>, idle: Duration, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(idle / 10) => {}
        }
        sequencer.let_go(idle, &|p| ownership.writes(p));
    }
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
    mut rx: mpsc::UnboundedReceiver<Vec<(u32, u64)>>,
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
            Some(first) = rx.recv() => {
                // While NATS is away the client buffers a little; the others resync anyway.
                // Announcements that queued up go out as one: each partition's newest version.
                let mut last = std::collections::BTreeMap::new();
                let mut next = Some(first);
                while let Some(versions) = next {
                    for (p, v) in versions {
                        let at = last.entry(p).or_insert(v);
                        *at = (*at).max(v);
                    }
                    next = rx.try_recv().ok();
                }
                let versions: Vec<(u32, u64)> = last.into_iter().collect();
                // Sent now, not when the client's write buffer next fills or times out; with
                // NATS away, not waited for (the others resync anyway).
                let sent = tokio::time::timeout(Duration::from_secs(1), async {
                    client.publish(SUBJECT, encode(&versions).into()).await.is_ok() && client.flush().await.is_ok()
                })
                .await;
                if sent != Ok(true) {
                    tracing::debug!("NATS: announcement not sent");
                }
            }
            Some(msg) = sub.next() => {
                if let Ok(text) = std::str::from_utf8(&msg.payload) {
                    sequencer.heard(&decode(text));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_announcement_round_trips_and_ignores_what_does_not_parse() {
        let versions = vec![(0, 7), (255, 123_456_789)];
        assert_eq!(super::decode(&super::encode(&versions)), versions);
        assert_eq!(super::decode("3:4,x:1,5:,9"), vec![(3, 4)]);
    }
}
