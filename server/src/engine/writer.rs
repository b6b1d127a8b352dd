//! The single writer. Requests queue as commands; the writer thread takes every command waiting,
//! decides each one with the pure rules against the current state, writes them all in ONE
//! transaction, commits (fsync), then makes the new positions visible, answers every request
//! and wakes the streams that watch them.
//! Many concurrent requests thus share one fsync (group commit), and no lock is ever held across
//! disk I/O: readers see the previous state until the commit is durable.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use shelfcast_protocol::clock::Millis;
use shelfcast_protocol::decide::{self, KeyUse};
use shelfcast_protocol::ledger::Outcome;
use shelfcast_protocol::partition::Stamps;
use shelfcast_protocol::sync;
use shelfcast_protocol::{
    Action, Event, Hold, PositionKey, Reservation, ReservationKey, ReservationStatus, StaffRelease, Stock, TransitionError,
};
use subtle::ConstantTimeEq;
use tokio::sync::{mpsc, oneshot};

use super::ownership::{Owned, Ownership};
use super::replicas::Sequencer;
use super::route::Route;
use super::state::{Entry, State};
use crate::auth::Scope;
use crate::metrics::Metrics;
use crate::store::{Answered, Backend, Change, Changed, DbResult, EdgeLedger, Ledger, Rejection, ReservationRow, SharedLedger, StoreError};

/// A commit takes at most this many events, so one huge backlog cannot starve a reservation.
const MAX_BATCH_EVENTS: usize = 50_000;
const MAX_BATCH_COMMANDS: usize = 4_096;
const QUEUE: usize = 8_192;

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum WriteError {
    #[error("storage unavailable")]
    Unavailable,
    /// A partitioned hub: the position's partition is moving between replicas (or has no
    /// owner for the moment); nothing was changed.
    #[error("partition moving")]
    Moved,
    #[error("no such reservation")]
    NotFound,
    #[error("the device token does not cover this location")]
    Forbidden,
    #[error("insufficient stock: {available} available")]
    Insufficient { available: i64 },
    #[error("idempotency key reused")]
    KeyReused,
    #[error("{0}")]
    Transition(TransitionError),
    /// A bug, or replicas of releases that do not understand each other.
    #[error("{0}")]
    Internal(String),
}

/// Who asks for a change to a reservation.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
pub enum ActAuth {
    /// The shopper, with the reservation's token.
    Holder(String),
    /// A store device, with its scope and its token's label.
    Device(Scope, Label),
    /// Store staff releasing a reservation they cannot hand over, with their scope, their
    /// token's label and their reason.
    Staff(Scope, Label, StaffRelease),
}

/// What a change records as having made it: a device token's label (`auth`), `admin`, or
/// [`SHOPPER`].
pub type Label = Arc<str>;

/// The label of changes a shopper made (a hold, its confirmation or release).
pub const SHOPPER: &str = "shopper";

impl ActAuth {
    /// What the store recorded when it released the reservation (staff only).
    fn released(&self) -> Option<&StaffRelease> {
        match self {
            ActAuth::Staff(_, _, release) => Some(release),
            _ => None,
        }
    }

    fn label(&self) -> Label {
        match self {
            ActAuth::Holder(_) => SHOPPER.into(),
            ActAuth::Device(_, by) | ActAuth::Staff(_, by, _) => by.clone(),
        }
    }
}

/// A position as the hub answered it to an edge node: on-hand, version and open holds.
pub struct HubPosition {
    pub key: PositionKey,
    pub on_hand: i64,
    pub version: u64,
    pub holds: Vec<Hold>,
}

#[derive(serde::Serialize, serde::Deserialize)]
pub struct Reserved {
    pub row: ReservationRow,
    /// `false` when the key had already been granted this reservation.
    pub created: bool,
}

enum Command {
    Ingest {
        events: Vec<Event>,
        by: Label,
        reply: oneshot::Sender<Result<Vec<(Outcome, u64)>, WriteError>>,
    },
    Reserve {
        key: ReservationKey,
        position: PositionKey,
        qty: i64,
        reply: oneshot::Sender<Result<Reserved, WriteError>>,
    },
    Act {
        id: String,
        auth: ActAuth,
        action: Action,
        reply: oneshot::Sender<Result<ReservationRow, WriteError>>,
    },
    Sweep,
    /// Writes one row and commits: can storage take writes again?
    Probe {
        reply: oneshot::Sender<Result<(), WriteError>>,
    },
    /// An edge node's report of its link (JSON), kept for the console's Stores page.
    EdgeReport {
        location: String,
        report: String,
        reply: oneshot::Sender<Result<(), WriteError>>,
    },
    /// Sets a store's directory entry (JSON), or removes it (`None`).
    SetStore {
        id: String,
        store: Option<String>,
        reply: oneshot::Sender<Result<(), WriteError>>,
    },
    /// Adds a webhook subscription.
    AddWebhook {
        webhook: crate::store::Webhook,
        reply: oneshot::Sender<Result<(), WriteError>>,
    },
    /// Removes a webhook subscription and ends its pending deliveries.
    DeleteWebhook {
        id: String,
        reply: oneshot::Sender<Result<(), WriteError>>,
    },
    /// Records how webhook deliveries' tries went.
    Tried {
        tries: Vec<crate::store::Tried>,
        reply: oneshot::Sender<Result<(), WriteError>>,
    },
    /// Forgets deliveries that ended, and watches that fired, before `before`.
    PruneDeliveries {
        before: Millis,
    },
    /// Adds a back-in-stock watch.
    Watch {
        watch: crate::store::WatchRow,
        reply: oneshot::Sender<Result<(), WriteError>>,
    },
    /// Answered once every command sent before it is committed (or refused).
    Barrier {
        reply: oneshot::Sender<Result<(), WriteError>>,
    },
    /// An edge node learned the hub's view of positions: each becomes the hub's position plus
    /// this node's events that state does not count, with the hub's holds, when that is
    /// unambiguous (`protocol::sync`); otherwise it stays as it is.
    Rebase {
        positions: Vec<HubPosition>,
        /// Every own event up to this ledger position may have been sent when the hub's
        /// states were read.
        sent_through: i64,
        /// The hub started over (it lost its data): versions learned before mean nothing now.
        from_scratch: bool,
    },
    /// An edge node: the hub acknowledged this node's ledger up to `last_seq`.
    Acknowledge {
        last_seq: i64,
        answered: Vec<Answered>,
        rejected: Vec<Rejection>,
        reply: oneshot::Sender<Result<(), WriteError>>,
    },
}

impl Command {
    fn weight(&self) -> usize {
        match self {
            Command::Ingest { events, .. } => events.len(),
            Command::Rebase { positions, .. } => positions.len(),
            _ => 1,
        }
    }
}

/// Sends commands to the writer thread; cheap to clone.
#[derive(Clone)]
pub struct Writer {
    tx: mpsc::Sender<Command>,
    /// Whether the last commit succeeded (disk full, read-only or failing storage: no).
    storage_ok: Arc<AtomicBool>,
    /// A partitioned hub: writes for partitions other replicas own go to them.
    route: Option<Arc<Route>>,
}

impl Writer {
    /// Starts the writer thread over `store`, publishing into `state`.
    /// `sequencer`: set when replicas share the ledger; commits are published through it.
    /// `owners`: with a shared ledger, the partitions this replica writes.
    pub fn spawn(
        store: Box<dyn Backend>,
        state: Arc<State>,
        metrics: Arc<Metrics>,
        hold_ttl: Millis,
        commit_wait: Duration,
        sequencer: Option<Arc<Sequencer>>,
        owners: Option<Arc<Ownership>>,
    ) -> (Writer, JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        let storage_ok = Arc::new(AtomicBool::new(true));
        let ok = storage_ok.clone();
        let handle = std::thread::Builder::new()
            .name("shelfcast-writer".into())
            .spawn(move || {
                let engine = Engine { state, metrics, hold_ttl, commit_wait, storage_ok: ok, sequencer, owners, pending: HashMap::new() };
                engine.run(store, rx)
            })
            .expect("spawn writer thread");
        (Writer { tx, storage_ok, route: None }, handle)
    }

    /// This writer, sending each write to the replica that owns its partition.
    pub fn routed(mut self, route: Arc<Route>) -> Writer {
        self.route = Some(route);
        self
    }

    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<Result<T, WriteError>>) -> Command) -> Result<T, WriteError> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(make(reply)).await.map_err(|_| WriteError::Unavailable)?;
        rx.await.map_err(|_| WriteError::Unavailable)?
    }

    /// Applies valid events once each; answers only when they are durable, with each event's
    /// outcome and the version of its position from which the hub's state counts it (the
    /// version this commit gave the position, or for a duplicate the position's version now).
    /// `by`: the label of the token that sent them.
    pub async fn ingest(&self, events: Vec<Event>, by: Label) -> Result<Vec<(Outcome, u64)>, WriteError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        match &self.route {
            Some(route) => route.ingest(self, events, by).await,
            None => self.ingest_here(events, by).await,
        }
    }

    /// Written by this replica's writer, whoever owns the positions (the writer refuses what
    /// it does not own).
    pub async fn ingest_here(&self, events: Vec<Event>, by: Label) -> Result<Vec<(Outcome, u64)>, WriteError> {
        self.ask(|reply| Command::Ingest { events, by, reply }).await
    }

    pub async fn reserve(&self, key: ReservationKey, position: PositionKey, qty: i64) -> Result<Reserved, WriteError> {
        match &self.route {
            Some(route) => route.reserve(self, key, position, qty).await,
            None => self.reserve_here(key, position, qty).await,
        }
    }

    pub async fn reserve_here(&self, key: ReservationKey, position: PositionKey, qty: i64) -> Result<Reserved, WriteError> {
        self.ask(|reply| Command::Reserve { key, position, qty, reply }).await
    }

    pub async fn act(&self, id: String, auth: ActAuth, action: Action) -> Result<ReservationRow, WriteError> {
        match &self.route {
            Some(route) => route.act(self, id, auth, action).await,
            None => self.act_here(id, auth, action).await,
        }
    }

    pub async fn act_here(&self, id: String, auth: ActAuth, action: Action) -> Result<ReservationRow, WriteError> {
        self.ask(|reply| Command::Act { id, auth, action, reply }).await
    }

    /// Waits until every write sent to this replica's writer before it is committed or refused.
    pub async fn barrier(&self) -> Result<(), WriteError> {
        self.ask(|reply| Command::Barrier { reply }).await
    }

    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }

    /// Whether storage takes writes: the last commit's outcome, or, after a failure, a fresh
    /// test write (so readiness comes back by itself once space or permissions return).
    pub async fn storage_ok(&self) -> bool {
        if self.storage_ok.load(Ordering::Acquire) {
            return true;
        }
        self.ask(|reply| Command::Probe { reply }).await.is_ok()
    }

    /// Keeps an edge node's report of its link; not partitioned, so any replica writes it.
    pub async fn edge_report(&self, location: String, report: String) -> Result<(), WriteError> {
        self.ask(|reply| Command::EdgeReport { location, report, reply }).await
    }

    /// Sets or removes (`None`) a store's directory entry; not partitioned, so any replica writes it.
    pub async fn set_store(&self, id: String, store: Option<String>) -> Result<(), WriteError> {
        self.ask(|reply| Command::SetStore { id, store, reply }).await
    }

    /// Adds a webhook subscription; not partitioned, so any replica writes it.
    pub async fn add_webhook(&self, webhook: crate::store::Webhook) -> Result<(), WriteError> {
        self.ask(|reply| Command::AddWebhook { webhook, reply }).await
    }

    pub async fn delete_webhook(&self, id: String) -> Result<(), WriteError> {
        self.ask(|reply| Command::DeleteWebhook { id, reply }).await
    }

    /// Records webhook deliveries' tries.
    pub async fn record_tries(&self, tries: Vec<crate::store::Tried>) -> Result<(), WriteError> {
        if tries.is_empty() {
            return Ok(());
        }
        self.ask(|reply| Command::Tried { tries, reply }).await
    }

    /// Forgets ended deliveries and fired watches older than `before`; does not wait.
    pub fn prune_deliveries(&self, before: Millis) {
        let _ = self.tx.try_send(Command::PruneDeliveries { before });
    }

    /// Adds a back-in-stock watch; it fires in the commit that brings its position back.
    pub async fn watch(&self, watch: crate::store::WatchRow) -> Result<(), WriteError> {
        self.ask(|reply| Command::Watch { watch, reply }).await
    }

    /// For an edge node: rebase on the hub's positions (see `Command::Rebase`); does not wait.
    pub async fn rebase(&self, positions: Vec<HubPosition>, sent_through: i64, from_scratch: bool) {
        if !positions.is_empty() || from_scratch {
            let _ = self.tx.send(Command::Rebase { positions, sent_through, from_scratch }).await;
        }
    }

    /// For an edge node: records how far the hub has acknowledged the ledger and what it
    /// answered for each event; answers once durable.
    pub async fn acknowledge(&self, last_seq: i64, answered: Vec<Answered>, rejected: Vec<Rejection>) -> Result<(), WriteError> {
        self.ask(|reply| Command::Acknowledge { last_seq, answered, rejected, reply }).await
    }

    /// Asks the writer to expire lapsed holds; does not wait.
    pub fn sweep(&self) {
        let _ = self.tx.try_send(Command::Sweep);
    }
}

/// A decided command's answer, sent only after the commit.
enum Answer {
    /// The outcomes, and the events' positions (their versions are known after the commit).
    Ingest(oneshot::Sender<Result<Vec<(Outcome, u64)>, WriteError>>, Vec<Outcome>, Vec<Event>),
    /// With the request, to decide it again if the commit's claimed keys were taken.
    Reserve(oneshot::Sender<Result<Reserved, WriteError>>, Result<Reserved, WriteError>, (ReservationKey, PositionKey, i64)),
    Act(oneshot::Sender<Result<ReservationRow, WriteError>>, Result<ReservationRow, WriteError>),
    Done(oneshot::Sender<Result<(), WriteError>>),
    None,
}

impl Answer {
    /// Sends the answer, or `failed` when the commit did not happen; `version` is a
    /// position's version once the commit is visible.
    fn send(self, failed: Option<WriteError>, version: &dyn Fn(&PositionKey) -> u64) {
        match (self, failed) {
            (Answer::Ingest(tx, ..), Some(e)) => drop(tx.send(Err(e))),
            (Answer::Ingest(tx, outcomes, events), None) => {
                drop(tx.send(Ok(outcomes.into_iter().zip(&events).map(|(o, e)| (o, version(&e.key))).collect())))
            }
            (Answer::Reserve(tx, r, _), failed) => drop(tx.send(failed.map_or(r, Err))),
            (Answer::Act(tx, r), failed) => drop(tx.send(failed.map_or(r, Err))),
            (Answer::Done(tx), failed) => drop(tx.send(failed.map_or(Ok(()), Err))),
            (Answer::None, _) => {}
        }
    }

    /// The hold to decide again, its answer unsent, after a commit that kept nothing; any other
    /// answer is sent as failed.
    fn again(self) -> Option<Command> {
        match self {
            Answer::Reserve(reply, _, (key, position, qty)) => Some(Command::Reserve { key, position, qty, reply }),
            other => {
                other.send(Some(WriteError::Unavailable), &|_| 0);
                None
            }
        }
    }
}

impl Command {
    /// Whether every position the command names is in a partition this replica writes (an
    /// action's position is known once its reservation is read).
    fn within(&self, owned: &Owned) -> bool {
        match self {
            Command::Ingest { events, .. } => events.iter().all(|e| owned.holds(e.key.sku.as_str())),
            Command::Reserve { position, .. } => owned.holds(position.sku.as_str()),
            _ => true,
        }
    }

    /// Answers the command with `e` at once; it changes nothing.
    fn refuse(self, e: WriteError) -> Answer {
        match self {
            Command::Ingest { reply, .. } => drop(reply.send(Err(e))),
            Command::Reserve { reply, .. } => drop(reply.send(Err(e))),
            Command::Act { reply, .. } => drop(reply.send(Err(e))),
            Command::Probe { reply }
            | Command::Barrier { reply }
            | Command::Acknowledge { reply, .. }
            | Command::EdgeReport { reply, .. }
            | Command::SetStore { reply, .. }
            | Command::AddWebhook { reply, .. }
            | Command::DeleteWebhook { reply, .. }
            | Command::Tried { reply, .. }
            | Command::Watch { reply, .. } => drop(reply.send(Err(e))),
            Command::Sweep | Command::Rebase { .. } | Command::PruneDeliveries { .. } => {}
        }
        Answer::None
    }
}

struct Engine {
    storage_ok: Arc<AtomicBool>,
    state: Arc<State>,
    metrics: Arc<Metrics>,
    hold_ttl: Millis,
    /// How long to wait for more writes before a group commit while writes come together.
    commit_wait: Duration,
    /// Shared ledger: commits are published in version order through this.
    sequencer: Option<Arc<Sequencer>>,
    /// Shared ledger: the partitions this replica owns, the only ones it writes.
    owners: Option<Arc<Ownership>>,
    /// Shared ledger: this replica's commits not yet published (another replica's commit came
    /// between: the sequencer publishes them with it, a moment later). Decisions start from
    /// these, so an owner never decides from less than what it committed.
    pending: HashMap<PositionKey, Entry>,
}

/// The positions one batch reads and changes, starting from what this process committed.
struct Overlay<'s> {
    state: &'s State,
    pending: &'s HashMap<PositionKey, Entry>,
    /// Each position this batch touched: (as it was before the batch, as it is now).
    stocks: hashbrown::HashMap<PositionKey, (Stock, Stock)>,
    /// The changes for the positions' histories (`None`: an edge node, which keeps none; the
    /// hub keeps its store's).
    history: Option<Vec<Change>>,
}

impl Overlay<'_> {
    /// The positions whose stock this batch really changed (a refused hold changes nothing).
    fn changed(mut self) -> Vec<(PositionKey, Stock)> {
        let stocks = std::mem::take(&mut self.stocks);
        let mut out: Vec<(PositionKey, Stock)> =
            stocks.into_iter().filter(|(_, (before, now))| before != now).map(|(k, (_, now))| (k, now)).collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Records `what` in `key`'s history, with the position as the batch has it now.
    fn record(&mut self, key: &PositionKey, what: Changed, qty: i64, at: Option<Millis>, by: Option<&Label>, now: Millis) {
        if self.history.is_none() {
            return;
        }
        let stock = self.stock(key);
        let (on_hand, reserved) = (stock.on_hand, stock.reserved_at(now));
        let change = Change { key: key.clone(), what, qty, at, by: by.cloned(), on_hand, reserved, version: None };
        self.history.as_mut().expect("recording").push(change);
    }

    /// One lookup when the batch has seen the position before; the key is copied only the
    /// first time.
    fn stock(&mut self, key: &PositionKey) -> &mut Stock {
        let (pending, state) = (self.pending, self.state);
        let (_, now) = self.stocks.entry_ref(key).or_insert_with(|| {
            let before = match pending.get(key) {
                Some(e) => e.stock.clone(),
                None => state.entry(key).map(|e| e.stock).unwrap_or_default(),
            };
            (before.clone(), before)
        });
        now
    }
}

/// A position's version as a commit leaves it, for ingest answers: the one the commit gave it
/// (`versions`, by `changed` sorted), else the one this process committed last.
fn version_in(key: &PositionKey, changed: &[PositionKey], versions: &[u64], pending: &HashMap<PositionKey, Entry>, state: &State) -> u64 {
    match changed.binary_search(key) {
        Ok(i) => versions[i],
        Err(_) => pending.get(key).map(|e| e.version).or_else(|| state.entry(key).map(|e| e.version)).unwrap_or(0),
    }
}

/// Inserts the events of every ingest among `commands` in one statement, in the commands' order
/// (an id twice in the batch is new the first time only, as if each request went in on its
/// own), and answers, for each ingest in order, which of its events were new.
fn insert_all_events(txn: &mut dyn Ledger, commands: &mut [Command], now: Millis) -> DbResult<Vec<Vec<bool>>> {
    let mut all = Vec::new();
    let mut counts = Vec::new();
    for c in commands.iter_mut() {
        if let Command::Ingest { events, .. } = c {
            counts.push(events.len());
            all.append(events);
        }
    }
    let mut fresh = if all.is_empty() { Vec::new() } else { txn.insert_events(&all, now)? };
    // Each request gets its events back, from the last.
    let mut out = Vec::with_capacity(counts.len());
    for c in commands.iter_mut().rev() {
        if let Command::Ingest { events, .. } = c {
            let n = counts.pop().expect("a count per ingest");
            *events = all.split_off(all.len() - n);
            out.push(fresh.split_off(fresh.len() - n));
        }
    }
    out.reverse();
    Ok(out)
}

/// Adds the commands already queued to `batch`, up to a batch's limits; how many it added.
fn take_queued(rx: &mut mpsc::Receiver<Command>, batch: &mut Vec<Command>, weight: &mut usize) -> usize {
    let before = batch.len();
    while *weight < MAX_BATCH_EVENTS && batch.len() < MAX_BATCH_COMMANDS {
        match rx.try_recv() {
            Ok(c) => {
                *weight += c.weight();
                batch.push(c);
            }
            Err(_) => break,
        }
    }
    batch.len() - before
}

/// The shared part of a ledger: only a shared ledger is locked and fenced.
fn shared_ledger(txn: &mut dyn Ledger) -> DbResult<&mut dyn SharedLedger> {
    txn.as_shared().ok_or_else(|| StoreError::Data("only a shared ledger is locked".into()))
}

/// The edge node's part of its ledger: only an edge node sends the commands that need it.
fn edge_ledger(txn: &mut dyn Ledger) -> DbResult<&mut dyn EdgeLedger> {
    txn.as_edge().ok_or_else(|| StoreError::Data("sync bookkeeping asked of a ledger that is not an edge node's".into()))
}

/// Each changed position with the version the commit gave it (in the order it wrote them).
fn versioned(stocks: Vec<(PositionKey, Stock)>, versions: &[u64]) -> Vec<(PositionKey, Entry)> {
    stocks.into_iter().zip(versions).map(|((key, stock), version)| (key, Entry { stock, version: *version })).collect()
}

fn key_hash(key: &ReservationKey) -> [u8; 32] {
    Sha256::digest(key.as_str().as_bytes()).into()
}

/// Unguessable ids and tokens from the thread's CSPRNG (ChaCha, seeded and reseeded from the
/// OS): the same strength as the OS generator without a system call for each.
fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut buf);
    hex::encode(buf)
}

impl Engine {
    fn run(mut self, mut store: Box<dyn Backend>, mut rx: mpsc::Receiver<Command>) {
        let mut last = 0;
        while let Some(first) = rx.blocking_recv() {
            let mut weight = first.weight();
            let mut batch = vec![first];
            take_queued(&mut rx, &mut batch, &mut weight);
            // Writes coming together (the last commit carried several): wait a moment for
            // more, in steps, as long as more arrive. A commit costs the same round trips
            // whatever it carries, and on a busy machine each costs CPU of its own.
            if last > 1 && !self.commit_wait.is_zero() {
                let until = Instant::now() + self.commit_wait;
                // A full batch takes nothing more, which ends the wait too.
                while Instant::now() < until {
                    std::thread::sleep(self.commit_wait / 4);
                    if take_queued(&mut rx, &mut batch, &mut weight) == 0 {
                        break;
                    }
                }
            }
            last = batch.len();
            self.commit_batch(store.as_mut(), batch, weight);
        }
        if let Err(error) = store.save() {
            // Nothing is lost: the ledger holds every committed event, applied again at the start.
            tracing::warn!(%error, "positions not written at the stop; they are recomputed from the ledger at the next start");
        }
        tracing::info!("writer stopped: every acknowledged change is committed");
    }

    fn commit_batch(&mut self, store: &mut dyn Backend, batch: Vec<Command>, weight: usize) {
        let started = Instant::now();
        let commands = batch.len();
        if let Some(again) = self.commit(store, batch, true) {
            // Nothing was kept; the holds are decided again with their keys read.
            self.commit(store, again, false);
        }
        self.metrics.commit_batch_commands.observe(commands as f64);
        self.metrics.commit_batch_events.observe(weight as f64);
        self.metrics.commit_seconds.observe(started.elapsed().as_secs_f64());
    }

    /// Decides `batch` and commits it. `claim`: a batch of holds alone claims their keys
    /// unread (`SharedLedger::claim_keys`), so its commit is one round trip; if a key may have
    /// been granted already ([`StoreError::KeyTaken`]), nothing is kept and the holds come
    /// back, unanswered, to be decided again.
    fn commit(&mut self, store: &mut dyn Backend, batch: Vec<Command>, claim: bool) -> Option<Vec<Command>> {
        let now = self.state.clock.now();
        let state = self.state.clone();
        let shared = store.shared();
        // A shared ledger: what this replica owns now (partition, epoch); everything else is refused.
        let owned = self.owners.as_ref().map(|o| o.owned());
        self.prune_pending();
        let mut answers = Vec::with_capacity(batch.len());
        let commands = batch.len();
        let pending = std::mem::take(&mut self.pending);
        let mut overlay = Overlay { state: &state, pending: &pending, stocks: hashbrown::HashMap::new(), history: None };
        // `None`: nothing to write. `Some((changed positions, their partitions, each
        // partition's last version))`: committed.
        type Committed = Option<(Vec<(PositionKey, Stock)>, Stamps, Vec<(u32, u64)>)>;
        // Whether the batch's keys were claimed unread (`claim` and holds alone).
        let mut claimed = false;
        let result = (|| -> DbResult<Committed> {
            let mut txn = store.begin()?;
            if txn.as_edge().is_none() {
                overlay.history = Some(Vec::new());
            }
            let mut todo = Vec::with_capacity(batch.len());
            for command in batch {
                match &owned {
                    Some(owned) if !command.within(owned) => answers.push(command.refuse(WriteError::Moved)),
                    _ => todo.push(command),
                }
            }
            claimed = shared && claim && todo.iter().all(|c| matches!(c, Command::Reserve { .. }));
            if shared {
                let keys: Vec<[u8; 32]> =
                    todo.iter().filter_map(|c| if let Command::Reserve { key, .. } = c { Some(key_hash(key)) } else { None }).collect();
                // A shopper's hold, the common case, uses a new key: claimed, not read.
                match claimed {
                    true => shared_ledger(txn.as_mut())?.claim_keys(&keys),
                    false => shared_ledger(txn.as_mut())?.lock_keys(&keys)?,
                }
            }
            // A shared ledger: every event of the batch's requests inserted in one statement
            // (which ones are new depends on no decision), not a round trip per request.
            let mut fresh = match shared {
                true => insert_all_events(txn.as_mut(), &mut todo, now)?,
                false => Vec::new(),
            }
            .into_iter();
            let mut wrote = false;
            for command in todo {
                let known = match &command {
                    Command::Ingest { .. } => fresh.next(),
                    _ => None,
                };
                answers.push(self.decide(txn.as_mut(), &mut overlay, command, known, now, owned.as_ref(), &mut wrote)?);
            }
            // A hold refused from memory (sold out) may repeat a key granted before: its
            // answer is that reservation, which only the keys' read tells.
            if claimed && answers.iter().any(|a| matches!(a, Answer::Reserve(_, Err(_), _))) {
                return Err(StoreError::KeyTaken);
            }
            if !wrote {
                return Ok(None);
            }
            if let (Some(owned), Some(owners)) = (&owned, &self.owners) {
                let fence = owned.fence(overlay.stocks.keys());
                shared_ledger(txn.as_mut())?.fence(&owners.me, &fence)?;
            }
            let history = overlay.history.take();
            let delivered = match &history {
                Some(history) => self.record_deliveries(txn.as_mut(), &overlay, history, now)?,
                None => false,
            };
            let history = history.unwrap_or_default();
            let changed = overlay.changed();
            if !history.is_empty() {
                // A change that left its position as it was (a count of what was there) keeps
                // the position's version; the others get the one this commit gives.
                let keys: Vec<&PositionKey> = changed.iter().map(|(k, _)| k).collect();
                let history = history
                    .into_iter()
                    .map(|mut c| {
                        if keys.binary_search(&&c.key).is_err() {
                            c.version = Some(version_in(&c.key, &[], &[], &pending, &state));
                        }
                        c
                    })
                    .collect();
                txn.record_history(history, now)?;
            }
            let stamps = Stamps::new(changed.iter().map(|(k, _)| state.partition(k.sku.as_str())).collect());
            let last = txn.save_and_commit(&changed, &stamps, self.state.published(0))?;
            if delivered {
                self.state.hooks.wake();
            }
            Ok(Some((changed, stamps, last)))
        })();
        self.pending = pending;
        match result {
            Ok(None) => answers.into_iter().for_each(|a| a.send(None, &|k| version_in(k, &[], &[], &self.pending, &state))),
            Ok(Some((changed, stamps, last))) => {
                if !self.storage_ok.swap(true, Ordering::AcqRel) {
                    tracing::info!("storage takes writes again");
                }
                let versions: Vec<u64> = (0..stamps.len()).map(|i| stamps.version(i, &last)).collect();
                // `changed` is sorted by key and versioned in that order.
                let keys: Vec<PositionKey> = if answers.iter().any(|a| matches!(a, Answer::Ingest(..))) {
                    changed.iter().map(|(k, _)| k.clone()).collect()
                } else {
                    Vec::new()
                };
                let changes = versioned(changed, &versions);
                let wake = match &self.sequencer {
                    Some(sequencer) if !changes.is_empty() => {
                        let ranges: Vec<(u32, u64, u64)> =
                            stamps.first(&last).into_iter().zip(&last).map(|((p, first), (_, last))| (p, first, *last)).collect();
                        let (visible, later) = sequencer.committed(changes, &ranges);
                        self.pending.extend(later);
                        visible
                    }
                    Some(_) => Vec::new(),
                    None => {
                        self.state.make_visible(&changes, &last);
                        changes
                    }
                };
                self.metrics.positions.set(self.state.len() as i64);
                // The requests are answered before the streams are woken: a position watched
                // by thousands of streams would otherwise queue every answer (a till's sale,
                // a shopper's hold) behind thousands of wake-ups. Readers already see the
                // change, so whoever is answered reads what they wrote.
                self.count_activity(&answers, now);
                for a in answers {
                    a.send(None, &|k| version_in(k, &keys, &versions, &self.pending, &state));
                }
                if !wake.is_empty() {
                    self.state.fanout.changed(wake.iter().map(|(k, _)| k));
                }
            }
            Err(StoreError::KeyTaken) if claimed => return Some(answers.into_iter().filter_map(Answer::again).collect()),
            Err(StoreError::Fenced) => {
                tracing::warn!(
                    commands,
                    "a partition of this commit was taken over by another replica; nothing committed, requests retried there"
                );
                self.metrics.commit_failures.with_label_values(&["fenced"]).inc();
                if let Some(owners) = &self.owners {
                    owners.nudge();
                }
                for a in answers {
                    a.send(Some(WriteError::Moved), &|_| 0);
                }
            }
            Err(e) => {
                self.storage_ok.store(false, Ordering::Release);
                tracing::error!(error = %e, commands, "group commit failed and was rolled back; requests answered 503");
                self.metrics.commit_failures.with_label_values(&["storage"]).inc();
                for a in answers {
                    a.send(Some(WriteError::Unavailable), &|_| 0);
                }
            }
        }
        None
    }

    /// What the console's Activity page counts: the events this commit applied (by type, with
    /// their lag) and the holds it granted, whoever sent them (a till, an edge, the demo's).
    fn count_activity(&self, answers: &[Answer], now: Millis) {
        let activity = &self.metrics.activity;
        let applied = answers.iter().flat_map(|a| match a {
            Answer::Ingest(_, outcomes, events) => {
                outcomes.iter().zip(events).filter(|(o, _)| **o == Outcome::Applied).map(|(_, e)| (e.kind, e.at)).collect()
            }
            _ => Vec::new(),
        });
        activity.events(applied, now);
        for a in answers {
            if let Answer::Reserve(_, Ok(Reserved { created: true, .. }), _) = a {
                activity.hold(now);
            }
        }
    }

    /// Records, in the commit, the webhook deliveries its changes call for: each position's
    /// change of status, each reservation's, and the watches of positions back in stock.
    /// `true` if there are any.
    fn record_deliveries(&self, txn: &mut dyn Ledger, overlay: &Overlay<'_>, history: &[Change], now: Millis) -> DbResult<bool> {
        let hooks = self.state.hooks.current();
        if hooks.is_empty() {
            return Ok(false);
        }
        let mut out = Vec::new();
        let mut back = Vec::new();
        let mut touched: Vec<_> = overlay.stocks.iter().collect();
        touched.sort_by(|a, b| a.0.cmp(b.0));
        for (key, (before, after)) in touched {
            let (deliveries, came_back) = crate::webhooks::for_position(&hooks, key, before, after, self.state.low_stock, now);
            out.extend(deliveries);
            if came_back && crate::webhooks::watched(&hooks, key.location.as_str()) {
                back.push((key.clone(), after.available_recorded()));
            }
        }
        back.sort();
        for (key, available) in back {
            for watch in txn.take_watches(&key, now)? {
                out.extend(crate::webhooks::for_watch(&hooks, &watch, available, now));
            }
        }
        for change in history {
            out.extend(crate::webhooks::for_reservation(&hooks, change, now));
        }
        if out.is_empty() {
            return Ok(false);
        }
        txn.record_deliveries(&out, now)?;
        Ok(true)
    }

    /// Forgets this replica's commits that are published by now (or overtaken: a partition
    /// that moved away and back is published beyond them before it is written again).
    fn prune_pending(&mut self) {
        if !self.pending.is_empty() {
            let state = &self.state;
            self.pending.retain(|k, e| state.entry(k).is_none_or(|now| now.version < e.version));
        }
    }

    /// `fresh`: for an ingest whose events are in the ledger already, which of them were new.
    #[allow(clippy::too_many_arguments)]
    fn decide(
        &mut self,
        txn: &mut dyn Ledger,
        overlay: &mut Overlay<'_>,
        command: Command,
        fresh: Option<Vec<bool>>,
        now: Millis,
        owned: Option<&Owned>,
        changed: &mut bool,
    ) -> DbResult<Answer> {
        Ok(match command {
            Command::Ingest { events, by, reply } => {
                let mut outcomes = Vec::with_capacity(events.len());
                let fresh = match fresh {
                    Some(fresh) => fresh,
                    None => txn.insert_events(&events, now)?,
                };
                for (e, fresh) in events.iter().zip(fresh) {
                    if fresh {
                        overlay.stock(&e.key).apply(e.kind, e.qty);
                        let what = Changed::Event { id: e.id.as_str().to_string(), kind: e.kind };
                        overlay.record(&e.key, what, e.qty, e.at, Some(&by), now);
                        *changed = true;
                        outcomes.push(Outcome::Applied);
                    } else {
                        outcomes.push(Outcome::Duplicate);
                    }
                }
                Answer::Ingest(reply, outcomes, events)
            }
            Command::Reserve { key, position, qty, reply } => {
                let key_hash = key_hash(&key);
                let earlier = txn.reservation_by_key(&key_hash)?;
                let answer = match (decide::key_use(earlier.as_ref().map(|r| (&r.key, r.qty)), &position, qty), earlier) {
                    (KeyUse::Repeat, Some(row)) => Ok(Reserved { row, created: false }),
                    (KeyUse::Reused, _) => Err(WriteError::KeyReused),
                    _ => {
                        // Time first (ms, hex), then 64 random bits: ids of one commit sort
                        // together, so their index entries share a page instead of each
                        // dirtying its own. The id is not a secret; the token is.
                        let id = format!("res_{:011x}{}", now.max(0), random_hex(8));
                        match decide::hold(overlay.stock(&position), &id, qty, now, self.hold_ttl) {
                            Err(i) => Err(WriteError::Insufficient { available: i.available }),
                            Ok(held) => {
                                let row = ReservationRow {
                                    id,
                                    token: random_hex(32),
                                    key: position.clone(),
                                    qty,
                                    status: held.status,
                                    expires_at: held.expires_at,
                                    released: None,
                                    created_at: now,
                                };
                                txn.insert_reservation(&row, &key_hash, now)?;
                                let what = Changed::Reservation { id: row.id.clone(), from: None, to: row.status };
                                overlay.record(&row.key, what, qty, None, Some(&SHOPPER.into()), now);
                                *changed = true;
                                Ok(Reserved { row, created: true })
                            }
                        }
                    }
                };
                Answer::Reserve(reply, answer, (key, position, qty))
            }
            Command::Act { id, auth, action, reply } => {
                let answer = match txn.reservation(&id)? {
                    None => Err(WriteError::NotFound),
                    Some(row) => match &auth {
                        ActAuth::Holder(t) if !bool::from(t.as_bytes().ct_eq(row.token.as_bytes())) => Err(WriteError::NotFound),
                        ActAuth::Device(scope, _) | ActAuth::Staff(scope, ..) if !scope.allows(&row.key.location) => {
                            Err(WriteError::Forbidden)
                        }
                        _ if owned.is_some_and(|o| !o.holds(row.key.sku.as_str())) => Err(WriteError::Moved),
                        _ => self.act(txn, overlay, row, (action, &auth), now, changed)?,
                    },
                };
                Answer::Act(reply, answer)
            }
            Command::Rebase { positions, sent_through, from_scratch } => {
                let edge = edge_ledger(txn)?;
                edge.save_positions_now();
                if from_scratch {
                    edge.forget_versions();
                }
                for p in positions {
                    let (events, adopted) = edge.own_events(&p.key);
                    let hub = Stock::with_holds(p.on_hand, p.holds);
                    // The view keeps what it shows unless this state counts the store's own
                    // events unambiguously (`protocol::sync`).
                    if let Some(view) = sync::rebase(&hub, p.version, adopted, &events, sent_through) {
                        edge.settle(&p.key, p.version);
                        *overlay.stock(&p.key) = view;
                        *changed = true;
                    }
                }
                Answer::None
            }
            Command::Sweep => {
                // A partitioned hub sweeps the partitions it owns; their owners sweep the rest.
                let mut keys = self.state.due_positions(now);
                if let Some(owned) = owned {
                    keys.retain(|k| owned.holds(k.sku.as_str()));
                }
                for key in keys {
                    let stock = overlay.stock(&key);
                    let qtys: HashMap<String, i64> = stock.holds().map(|h| (h.reservation.clone(), h.qty)).collect();
                    for expired in stock.expire(now) {
                        txn.expire_reservation(&expired, now)?;
                        let qty = qtys.get(&expired).copied().unwrap_or(0);
                        let what =
                            Changed::Reservation { id: expired, from: Some(ReservationStatus::Held), to: ReservationStatus::Expired };
                        overlay.record(&key, what, qty, None, None, now);
                        self.metrics.reservations.with_label_values(&["expired"]).inc();
                        *changed = true;
                    }
                }
                Answer::None
            }
            Command::Barrier { reply } => Answer::Done(reply),
            Command::Probe { reply } => {
                txn.touch_health(now)?;
                *changed = true;
                Answer::Done(reply)
            }
            Command::EdgeReport { location, report, reply } => {
                txn.record_edge(&location, &report, now)?;
                *changed = true;
                Answer::Done(reply)
            }
            Command::SetStore { id, store, reply } => {
                txn.set_store(&id, store.as_deref())?;
                *changed = true;
                Answer::Done(reply)
            }
            Command::AddWebhook { webhook, reply } => {
                txn.insert_webhook(&webhook)?;
                *changed = true;
                Answer::Done(reply)
            }
            Command::DeleteWebhook { id, reply } => {
                txn.delete_webhook(&id)?;
                *changed = true;
                Answer::Done(reply)
            }
            Command::Tried { tries, reply } => {
                txn.record_tries(&tries)?;
                *changed = true;
                Answer::Done(reply)
            }
            Command::PruneDeliveries { before } => {
                txn.prune_deliveries(before)?;
                *changed = true;
                Answer::None
            }
            Command::Watch { watch, reply } => {
                txn.insert_watch(&watch)?;
                *changed = true;
                Answer::Done(reply)
            }
            Command::Acknowledge { last_seq, answered, rejected, reply } => {
                edge_ledger(txn)?.acknowledge(last_seq, answered, &rejected, now)?;
                *changed = true;
                Answer::Done(reply)
            }
        })
    }

    fn act(
        &mut self,
        txn: &mut dyn Ledger,
        overlay: &mut Overlay<'_>,
        mut row: ReservationRow,
        (action, auth): (Action, &ActAuth),
        now: Millis,
        changed: &mut bool,
    ) -> DbResult<Result<ReservationRow, WriteError>> {
        let current = Reservation { status: row.status, qty: row.qty, expires_at: row.expires_at };
        let next = match decide::act(&current, &row.id, action, now, overlay.stock(&row.key)) {
            Err(e) => return Ok(Err(WriteError::Transition(e))),
            Ok(None) => {
                row.status = current.status_at(now);
                return Ok(Ok(row));
            }
            Ok(Some(next)) => next,
        };
        // A pickup takes the units off the shelf: in the ledger too, so on-hand can always be
        // recomputed from the events alone.
        if action == Action::Fulfil {
            txn.insert_fulfilment(&row.id, &row.key, row.qty, now)?;
        }
        let released = auth.released().filter(|_| next.status == ReservationStatus::Released);
        txn.set_reservation(&row.id, next.status, next.expires_at, released, now)?;
        let what = Changed::Reservation { id: row.id.clone(), from: Some(current.status), to: next.status };
        overlay.record(&row.key, what, row.qty, None, Some(&auth.label()), now);
        *changed = true;
        row.status = next.status;
        row.expires_at = next.expires_at;
        row.released = released.cloned();
        Ok(Ok(row))
    }
}
