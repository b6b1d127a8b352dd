//! Which partitions this replica writes, and the loop that keeps it so: partitions owned under
//! this replica's lease in PostgreSQL (`store::leases`), renewed several times per lease, spread evenly over the live
//! replicas, handed over at a graceful stop and taken over when a replica stops renewing.
//!
//! A partition becomes writable here only once this replica has published every change up to
//! the partition's version read after taking it: its owner decides from memory, so that memory must hold
//! everything the previous owner committed (whose later commits the new epoch fences off).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use shelfcast_protocol::partition::partition_of;
use shelfcast_protocol::PositionKey;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::replicas::Sequencer;
use super::state::State;
use super::writer::Writer;
use crate::metrics::Metrics;
use crate::store::leases::Leases;
use crate::store::DbResult;

/// The NATS subject on which replicas say that they joined, left or gave partitions up, so the
/// others look at the leases at once instead of at their next renewal.
pub const MEMBERS: &str = "shelfcast.members";

/// The most partitions a replica takes in one look at the leases (their positions are loaded
/// before the next renewal).
const TAKE_AT_ONCE: usize = 32;

fn mine_now(o: &Ownership) -> usize {
    o.held.read().expect("ownership lock").len()
}

/// How long a replica waits to tell the others of a change of membership.
const ANNOUNCE_WITHIN: Duration = Duration::from_secs(1);

pub struct Ownership {
    pub me: String,
    partitions: u32,
    /// The partitions this replica writes, with the epoch it holds each at.
    held: RwLock<HashMap<u32, i64>>,
    /// Each partition's owner as last read (`None`: nobody's for the moment), for routing.
    owners: RwLock<Vec<Option<String>>>,
    nudge: Notify,
    lease: Duration,
    /// One read of the owners at a time, and when the last one was made.
    reading: tokio::sync::Mutex<()>,
    read_at: std::sync::Mutex<Option<std::time::Instant>>,
}

/// What this replica writes, as of the start of one group commit.
pub struct Owned {
    partitions: u32,
    held: HashMap<u32, i64>,
}

impl Owned {
    pub fn len(&self) -> usize {
        self.held.len()
    }

    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }

    pub fn holds(&self, sku: &str) -> bool {
        self.held.contains_key(&partition_of(sku, self.partitions))
    }

    /// The partitions of `keys` with their epochs, sorted: what a commit is fenced with.
    pub fn fence<'k>(&self, keys: impl Iterator<Item = &'k PositionKey>) -> Vec<(u32, i64)> {
        let mut out: Vec<(u32, i64)> = keys
            .filter_map(|k| {
                let p = partition_of(k.sku.as_str(), self.partitions);
                self.held.get(&p).map(|e| (p, *e))
            })
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }
}

impl Ownership {
    /// `lease`: how long partitions stay with a replica that stopped renewing (killed, cut off).
    pub fn new(me: String, partitions: u32, lease: Duration) -> Ownership {
        Ownership {
            me,
            partitions,
            held: RwLock::default(),
            owners: RwLock::new(vec![None; partitions as usize]),
            nudge: Notify::new(),
            lease,
            reading: tokio::sync::Mutex::new(()),
            read_at: std::sync::Mutex::new(None),
        }
    }

    pub fn partition(&self, sku: &str) -> u32 {
        partition_of(sku, self.partitions)
    }

    pub fn owned(&self) -> Owned {
        Owned { partitions: self.partitions, held: self.held.read().expect("ownership lock").clone() }
    }

    /// Whether this replica writes `partition` now.
    pub fn writes(&self, partition: u32) -> bool {
        self.held.read().expect("ownership lock").contains_key(&partition)
    }

    /// The replica that owns `partition`, as last read.
    pub fn owner(&self, partition: u32) -> Option<String> {
        self.owners.read().expect("ownership lock").get(partition as usize).cloned().flatten()
    }

    /// Look at the leases now rather than at the next renewal.
    pub fn nudge(&self) {
        self.nudge.notify_one();
    }

    /// How long a lease is taken or renewed for (and a replica silent for longer is no longer
    /// counted among the live), and how often it is renewed: a replica that stops renewing
    /// loses its partitions at most 0.6 + 0.1 leases after its last renewal, plus the time the
    /// others take to read what it last committed.
    fn hold(&self) -> Duration {
        self.lease.mul_f64(0.6)
    }

    fn every(&self) -> Duration {
        self.lease / 10
    }

    /// Reads the owners of every partition again (routing), unless they were read in the last
    /// 20 ms: the requests waiting for a moving partition share one read.
    pub async fn refresh(&self, leases: &Leases) -> DbResult<()> {
        let asked = std::time::Instant::now();
        let _one = self.reading.lock().await;
        if self.read_at.lock().expect("ownership lock").is_some_and(|at| at + Duration::from_millis(20) > asked) {
            return Ok(());
        }
        let owners = leases.owners().await?;
        *self.owners.write().expect("ownership lock") = owners;
        *self.read_at.lock().expect("ownership lock") = Some(std::time::Instant::now());
        Ok(())
    }
}

/// What the lease loop works with.
pub struct Lessee {
    pub ownership: Arc<Ownership>,
    pub leases: Leases,
    /// This replica's own writer (not routed): hand-overs wait for its queue.
    pub writer: Writer,
    pub state: Arc<State>,
    pub sequencer: Arc<Sequencer>,
    pub nats: Option<async_nats::Client>,
    pub metrics: Arc<Metrics>,
}

impl Lessee {
    /// One look at the leases: say this replica is alive, renew what it holds, notice what was
    /// taken from it, give up what is above its fair share or take up to it (at most
    /// `TAKE_AT_ONCE`, so the positions loaded in one look stay well within the lease), and read
    /// the owners for routing. Whether this replica holds its fair share now.
    pub async fn tick(&self) -> DbResult<bool> {
        let o = &self.ownership;
        let live = self.leases.heartbeat(o.hold()).await?;
        let renewed: HashMap<u32, i64> = self.leases.renew(o.hold()).await?.into_iter().collect();
        let lost: Vec<u32> = {
            let mut held = o.held.write().expect("ownership lock");
            let lost = held.iter().filter(|(p, e)| renewed.get(p) != Some(e)).map(|(p, _)| *p).collect();
            held.retain(|p, e| renewed.get(p) == Some(e));
            lost
        };
        if !lost.is_empty() {
            tracing::warn!(partitions = ?lost, "partitions taken over by another replica (this one's lease had passed)");
        }
        // A fair share: the partitions divided by the live replicas, the remainder to the first.
        let n = live.len().max(1) as u32;
        let rank = live.iter().position(|m| *m == o.me).unwrap_or(live.len()) as u32;
        let share = (o.partitions / n + u32::from(rank < o.partitions % n)) as usize;
        let mut mine: Vec<(u32, i64)> = renewed.into_iter().collect();
        mine.sort_unstable();
        if mine.len() > share {
            let extra: Vec<u32> = mine.split_off(share).into_iter().map(|(p, _)| p).collect();
            self.hand_over(&extra).await?;
        } else if mine.len() < share {
            mine.extend(self.leases.acquire((share - mine.len()).min(TAKE_AT_ONCE), o.hold()).await?);
        }
        let adopt: Vec<(u32, i64)> = {
            let held = o.held.read().expect("ownership lock");
            mine.into_iter().filter(|(p, _)| !held.contains_key(p)).collect()
        };
        if !adopt.is_empty() {
            // Every change the previous owners committed is at or below these versions.
            let ids: Vec<u32> = adopt.iter().map(|(p, _)| *p).collect();
            let versions = self.leases.versions(&ids).await?;
            self.sequencer.follow(&ids).await?;
            self.sequencer.heard(&versions);
            if !self.state.caught_up(&versions, o.lease).await {
                return Err(crate::store::StoreError::Data("not caught up with the partitions' last versions to take them over".into()));
            }
            o.held.write().expect("ownership lock").extend(adopt.iter().copied());
            tracing::info!(partitions = adopt.len(), "partitions taken: this replica writes them now");
        }
        self.metrics.partitions_owned.set(o.held.read().expect("ownership lock").len() as i64);
        o.refresh(&self.leases).await?;
        // Short only while others hold what is free to take: a partition is taken once its
        // owner's lease has passed.
        Ok(mine_now(o) >= share || !self.leases.any_free().await?)
    }

    /// Looks at the leases until this replica holds its fair share (at a start: it is ready
    /// with the partitions it will write).
    pub async fn settle(&self) -> DbResult<()> {
        while !self.tick().await? {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(())
    }

    /// Stops writing `partitions`, waits for the commits already queued, and releases them.
    async fn hand_over(&self, partitions: &[u32]) -> DbResult<()> {
        {
            let mut held = self.ownership.held.write().expect("ownership lock");
            for p in partitions {
                held.remove(p);
            }
        }
        let _ = self.writer.barrier().await;
        self.leases.release(partitions).await?;
        tracing::info!(partitions = partitions.len(), "partitions handed over");
        self.announce().await;
        Ok(())
    }

    /// Tells the others to look at the leases now. Bounded: with NATS away (its client would
    /// wait for it to come back) the others see the change at their next renewal, and a
    /// stopping replica is not held up.
    async fn announce(&self) {
        if let Some(nats) = &self.nats {
            let _ = tokio::time::timeout(ANNOUNCE_WITHIN, async {
                let _ = nats.publish(MEMBERS, self.ownership.me.clone().into()).await;
                let _ = nats.flush().await;
            })
            .await;
        }
    }

    /// Renews and rebalances until `shutdown`, then hands every partition over and leaves.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut failing = false;
        self.announce().await;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = self.ownership.nudge.notified() => {}
                _ = tokio::time::sleep(self.ownership.every()) => {}
            }
            match self.tick().await {
                Ok(settled) if failing => {
                    if !settled {
                        self.ownership.nudge();
                    }
                    failing = false;
                    tracing::info!("partition leases renewed again");
                }
                // Partitions left to take: the next look at once.
                Ok(false) => self.ownership.nudge(),
                Ok(true) => {}
                Err(error) => {
                    if !failing {
                        tracing::warn!(%error, "cannot renew or take partition leases; retrying");
                    }
                    failing = true;
                }
            }
        }
        let all: Vec<u32> = self.ownership.held.read().expect("ownership lock").keys().copied().collect();
        self.ownership.held.write().expect("ownership lock").clear();
        let _ = self.writer.barrier().await;
        match self.leases.leave().await {
            Ok(()) => tracing::info!(partitions = all.len(), "partitions handed over; left the replicas"),
            Err(error) => tracing::warn!(%error, "partitions not released; they pass to the others when their leases run out"),
        }
        self.metrics.partitions_owned.set(0);
        self.announce().await;
    }
}

/// Listens for other replicas joining, leaving or handing partitions over.
pub async fn listen(nats: async_nats::Client, ownership: Arc<Ownership>, shutdown: CancellationToken) {
    use futures_util::StreamExt;
    let mut sub = match nats.subscribe(MEMBERS).await {
        Ok(s) => s,
        Err(error) => return tracing::error!(%error, "NATS: cannot subscribe to membership news"),
    };
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            Some(msg) = sub.next() => {
                if msg.payload.as_ref() != ownership.me.as_bytes() {
                    ownership.nudge();
                }
            }
        }
    }
}
