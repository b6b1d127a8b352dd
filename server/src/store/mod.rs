//! Durable storage of the ledger, behind one seam. The embedded default is one SQLite file
//! that this process alone writes (`sqlite`); several hub replicas share PostgreSQL
//! (`postgres`); an edge node reads its sync bookkeeping through `sync`. The writer decides
//! every change with the rules of `protocol::decide` over either. All SQL lives here.

/// The statuses of an open reservation as an SQL list, for the stores' queries and partial
/// indexes: `ReservationStatus::is_open` in SQL (a test below holds the two together).
macro_rules! open_statuses {
    () => {
        "('held', 'confirmed')"
    };
}

pub mod leases;
pub mod postgres;
pub mod sqlite;
pub mod sync;

use shelfcast_protocol::clock::Millis;
use shelfcast_protocol::partition::Stamps;
use shelfcast_protocol::sync::OwnEvent;
use shelfcast_protocol::{Event, EventKind, LocationId, PositionKey, ReleaseReason, ReservationStatus, Sku, StaffRelease, Stock};

pub use sqlite::Store;

/// A reservation as both stores keep it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReservationRow {
    pub id: String,
    pub token: String,
    pub key: PositionKey,
    pub qty: i64,
    pub status: ReservationStatus,
    pub expires_at: Option<Millis>,
    /// Set when the store released it (staff at the pickup desk), with their reason.
    pub released: Option<StaffRelease>,
    /// When it was made.
    pub created_at: Millis,
}

/// One change to a position, for its history: written in the commit that makes it, with the
/// position as the change left it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub key: PositionKey,
    pub what: Changed,
    pub qty: i64,
    /// When an event happened at its source.
    pub at: Option<Millis>,
    /// The label of the token that made it (`None`: the hub itself, a hold that expired).
    pub by: Option<std::sync::Arc<str>>,
    pub on_hand: i64,
    pub reserved: i64,
    /// The position's version when the commit leaves the position as it was; `None`: the
    /// version the commit gives it, which the ledger fills in.
    pub version: Option<u64>,
}

/// A webhook subscription (contract v1.1 "Webhooks").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    pub id: String,
    pub url: String,
    /// `whsec_` and the base64 of the signing key.
    pub secret: String,
    pub topics: Vec<shelfcast_protocol::webhook::Topic>,
    /// Location ids, or `*` for all.
    pub locations: Vec<String>,
    pub created_at: Millis,
}

impl Webhook {
    /// The stored `events` and `locations` columns: comma-separated (neither topics nor
    /// location ids hold a comma).
    fn columns(&self) -> (String, String) {
        (self.topics.iter().map(|t| t.as_str()).collect::<Vec<_>>().join(","), self.locations.join(","))
    }

    fn from_columns(id: String, url: String, secret: String, events: &str, locations: &str, created_at: Millis) -> Webhook {
        let topics = events.split(',').filter_map(shelfcast_protocol::webhook::Topic::parse).collect();
        let locations = locations.split(',').filter(|l| !l.is_empty()).map(str::to_owned).collect();
        Webhook { id, url, secret, topics, locations, created_at }
    }
}

/// A delivery to make, recorded in the commit of the change it tells of.
#[derive(Debug, Clone)]
pub struct NewDelivery {
    pub webhook: String,
    /// `webhook-id`: the same on every try.
    pub msg_id: String,
    /// Deliveries of one subscription and lane (a position, `sku@location`) go out one at a
    /// time, in the order they were recorded.
    pub lane: String,
    pub topic: &'static str,
    pub body: String,
}

/// A delivery whose next try is due, with where it goes.
#[derive(Debug, Clone)]
pub struct DueDelivery {
    pub id: i64,
    pub msg_id: String,
    pub url: String,
    pub secret: String,
    pub body: String,
    pub attempts: i64,
    pub created_at: Millis,
}

/// The outcome of one try: `next_try` `None` ends the delivery (`state` says how).
#[derive(Debug, Clone)]
pub struct Tried {
    pub id: i64,
    pub state: &'static str,
    pub attempts: i64,
    pub status: Option<i64>,
    pub error: Option<String>,
    pub next_try: Option<Millis>,
}

/// A delivery as `GET /admin/webhooks/{id}/deliveries` lists it.
#[derive(Debug, Clone)]
pub struct DeliveryRow {
    pub msg_id: String,
    pub topic: String,
    pub attempts: i64,
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    pub next_try: Option<Millis>,
    pub state: String,
    pub created_at: Millis,
}

/// The states of a delivery.
pub const DELIVERY_PENDING: &str = "pending";
pub const DELIVERY_DELIVERED: &str = "delivered";
pub const DELIVERY_FAILED: &str = "failed";

/// A back-in-stock watch.
#[derive(Debug, Clone)]
pub struct WatchRow {
    pub id: String,
    pub key: PositionKey,
    pub subscriber: String,
    pub created_at: Millis,
}

/// What changed a position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Changed {
    Event { id: String, kind: EventKind },
    Reservation { id: String, from: Option<ReservationStatus>, to: ReservationStatus },
}

impl Change {
    /// The stored `kind`, `ref`, `from_status` and `to_status` columns.
    fn columns(&self) -> (&'static str, &str, Option<&'static str>, Option<&'static str>) {
        match &self.what {
            Changed::Event { id, kind } => (kind.as_str(), id, None, None),
            Changed::Reservation { id, from, to } => (RESERVATION_KIND, id, from.map(|s| s.as_str()), Some(to.as_str())),
        }
    }
}

/// The stored `kind` of a reservation's change (an event's is its type).
const RESERVATION_KIND: &str = "reservation";

/// A stored entry of a position's history.
pub struct HistoryRow {
    pub seq: i64,
    pub what: Changed,
    pub qty: i64,
    pub at: Option<Millis>,
    pub received_at: Millis,
    pub by: Option<String>,
    pub on_hand: i64,
    pub reserved: i64,
    pub version: u64,
}

/// The columns of a history entry, in the order [`HistoryRow::from_columns`] takes them.
const SELECT_HISTORY: &str = "SELECT seq, kind, ref, from_status, to_status, qty, at, received_at, by_label, on_hand, reserved, version";

impl HistoryRow {
    #[allow(clippy::too_many_arguments)]
    fn from_columns(
        seq: i64,
        (kind, id, from, to): (String, String, Option<String>, Option<String>),
        qty: i64,
        at: Option<Millis>,
        received_at: Millis,
        by: Option<String>,
        (on_hand, reserved, version): (i64, i64, i64),
    ) -> Result<HistoryRow, String> {
        let status = |s: String| ReservationStatus::parse(&s).ok_or_else(|| format!("stored status {s}"));
        let what = if kind == RESERVATION_KIND {
            let to = to.ok_or("a stored reservation change without its status")?;
            Changed::Reservation { id, from: from.map(status).transpose()?, to: status(to)? }
        } else {
            Changed::Event { id, kind: EventKind::parse(&kind).ok_or_else(|| format!("stored event type {kind}"))? }
        };
        Ok(HistoryRow { seq, what, qty, at, received_at, by, on_hand, reserved, version: version as u64 })
    }
}

/// The columns of a reservation, in the order [`ReservationRow::from_columns`] takes them.
const SELECT_RESERVATION: &str =
    "SELECT id, token, sku, location, qty, status, expires_at, release_reason, release_note, created_at FROM reservations";

/// A reservation's stored columns, as [`SELECT_RESERVATION`] reads them.
struct Columns {
    id: String,
    token: String,
    sku: String,
    location: String,
    qty: i64,
    status: String,
    expires_at: Option<Millis>,
    release_reason: Option<String>,
    release_note: Option<String>,
    created_at: Millis,
}

impl ReservationRow {
    /// A reservation from its stored columns; `Err` says which does not parse.
    fn from_columns(c: Columns) -> Result<Self, String> {
        let status = ReservationStatus::parse(&c.status).ok_or_else(|| format!("stored status {}", c.status))?;
        let released = match c.release_reason {
            Some(r) => Some(StaffRelease {
                reason: ReleaseReason::parse(&r).ok_or_else(|| format!("stored release reason {r}"))?,
                note: c.release_note,
            }),
            None => None,
        };
        Ok(ReservationRow {
            id: c.id,
            token: c.token,
            key: stored_key(c.sku, c.location)?,
            qty: c.qty,
            status,
            expires_at: c.expires_at,
            released,
            created_at: c.created_at,
        })
    }
}

/// A position from its stored columns; `Err` says what does not parse.
fn stored_key(sku: String, location: String) -> Result<PositionKey, String> {
    let bad = |e| format!("stored identifier {e}");
    Ok(PositionKey::new(Sku::try_from(sku).map_err(bad)?, LocationId::try_from(location).map_err(bad)?))
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    #[error("PostgreSQL: {}", pg_message(.0))]
    Postgres(#[from] ::postgres::Error),
    #[error("{0}")]
    Data(String),
    /// A partition this commit writes has another owner now (or its lease passed): nothing of
    /// the commit is kept.
    #[error("a partition this replica wrote to has moved to another replica")]
    Fenced,
    /// A reservation key the commit claimed without reading it (`SharedLedger::claim_keys`)
    /// was, or may have been, granted already (the insert found it; or a hold was refused,
    /// which a granted key would have answered): nothing of the commit is kept, and its holds
    /// are decided again with the keys read.
    #[error("a reservation key of this commit was granted already")]
    KeyTaken,
}

pub type DbResult<T> = Result<T, StoreError>;

/// The server's own words for a database error (the plain Display says only "db error").
fn pg_message(e: &::postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => match std::error::Error::source(e) {
            Some(source) => format!("{e}: {source}"),
            None => e.to_string(),
        },
    }
}

/// Where the writer keeps the ledger.
pub trait Backend: Send + 'static {
    fn begin(&mut self) -> DbResult<Box<dyn Ledger + '_>>;

    /// `true` when other processes write the same ledger: decisions then start from the
    /// stored positions (locked for the transaction), not from this process's memory.
    fn shared(&self) -> bool;

    /// Writes what waits to be written, when the writer stops (a ledger that writes positions
    /// at every commit has nothing waiting).
    fn save(&mut self) -> DbResult<()> {
        Ok(())
    }
}

/// An edge node's event the hub answered for: counted from this version of its position on,
/// or refused (`None`).
#[derive(Clone, Debug)]
pub struct Answered {
    pub key: PositionKey,
    pub seq: i64,
    pub counted_from: Option<u64>,
}

/// An edge node's event the hub refused: kept, with the reason, for `GET /v1/sync`.
#[derive(Clone, Debug)]
pub struct Rejection {
    pub seq: i64,
    pub id: String,
    pub code: String,
    pub message: String,
}

/// What every ledger does in a commit; the parts only some ledgers have are reached through
/// [`Ledger::as_shared`] (PostgreSQL) and [`Ledger::as_edge`] (an edge node's SQLite), so no
/// ledger carries a method it cannot carry out.
pub trait Ledger {
    /// Gives the changed positions of a commit their versions, in order, and saves them:
    /// `stamps` says each one's partition (all 0 on a ledger that one process writes) and its
    /// place among that partition's positions. Returns the last version each partition gave
    /// out, sorted by partition. `published` is the last version this process knows, which is
    /// all there is when it writes alone. A ledger across a network does it in one round trip
    /// (with the fence, `SharedLedger::fence`).
    fn version_and_save(&mut self, changed: &[(PositionKey, Stock)], stamps: &Stamps, published: u64) -> DbResult<Vec<(u32, u64)>>;
    /// `version_and_save`, then `commit`: a ledger across a network does both in one round trip.
    fn save_and_commit(
        mut self: Box<Self>,
        changed: &[(PositionKey, Stock)],
        stamps: &Stamps,
        published: u64,
    ) -> DbResult<Vec<(u32, u64)>> {
        let last = self.version_and_save(changed, stamps, published)?;
        self.commit()?;
        Ok(last)
    }
    fn touch_health(&mut self, now: Millis) -> DbResult<()>;
    /// Keeps an edge node's latest report of its link (JSON), received at `now`.
    fn record_edge(&mut self, location: &str, report: &str, now: Millis) -> DbResult<()>;
    /// Records an event; `false` if its id was recorded before (a duplicate).
    /// Sets a store's directory entry (JSON), or removes it (`None`).
    fn set_store(&mut self, id: &str, store: Option<&str>) -> DbResult<()>;
    fn insert_event(&mut self, e: &Event, now: Millis) -> DbResult<bool>;
    /// Records events in order; for each, `false` if its id was recorded before (a duplicate,
    /// also of an earlier event in `events`).
    fn insert_events(&mut self, events: &[Event], now: Millis) -> DbResult<Vec<bool>> {
        events.iter().map(|e| self.insert_event(e, now)).collect()
    }
    fn insert_fulfilment(&mut self, reservation: &str, key: &PositionKey, qty: i64, now: Millis) -> DbResult<()>;
    fn reservation_by_key(&mut self, key_hash: &[u8]) -> DbResult<Option<ReservationRow>>;
    fn reservation(&mut self, id: &str) -> DbResult<Option<ReservationRow>>;
    fn insert_reservation(&mut self, r: &ReservationRow, key_hash: &[u8], now: Millis) -> DbResult<()>;
    /// Moves a reservation to `status`; `released` records a release by the store.
    fn set_reservation(
        &mut self,
        id: &str,
        status: ReservationStatus,
        expires_at: Option<Millis>,
        released: Option<&StaffRelease>,
        now: Millis,
    ) -> DbResult<()>;
    fn expire_reservation(&mut self, id: &str, now: Millis) -> DbResult<()>;
    /// Records changes to positions' histories, written with the commit (received at `now`).
    fn record_history(&mut self, changes: Vec<Change>, now: Millis) -> DbResult<()>;
    /// Adds a webhook subscription.
    fn insert_webhook(&mut self, w: &Webhook) -> DbResult<()>;
    /// Removes a subscription and ends its pending deliveries; `false` if there was none.
    fn delete_webhook(&mut self, id: &str) -> DbResult<bool>;
    /// Records deliveries to make, due at once (`now`).
    fn record_deliveries(&mut self, deliveries: &[NewDelivery], now: Millis) -> DbResult<()>;
    /// Records how tries went.
    fn record_tries(&mut self, tries: &[Tried]) -> DbResult<()>;
    /// Forgets deliveries that ended, and watches that fired, before `before`.
    fn prune_deliveries(&mut self, before: Millis) -> DbResult<()>;
    fn insert_watch(&mut self, w: &WatchRow) -> DbResult<()>;
    /// The open watches of `key`, which are done from this commit on (`fired_at` = `now`).
    fn take_watches(&mut self, key: &PositionKey, now: Millis) -> DbResult<Vec<WatchRow>>;
    fn commit(self: Box<Self>) -> DbResult<()>;
    /// A ledger other replicas write too.
    fn as_shared(&mut self) -> Option<&mut dyn SharedLedger> {
        None
    }
    /// An edge node's ledger, with its sync bookkeeping.
    fn as_edge(&mut self) -> Option<&mut dyn EdgeLedger> {
        None
    }
}

/// A ledger several replicas write (PostgreSQL), each partition by its owner alone.
pub trait SharedLedger {
    /// Locks the reservation keys a batch uses, in one fixed order (sorted) so that replicas
    /// never deadlock, and reads their reservations: a key is granted once, whichever owners
    /// the same key reaches for different positions.
    fn lock_keys(&mut self, keys: &[[u8; 32]]) -> DbResult<()>;
    /// Claims keys a batch of new holds uses without reading them: each counts as not granted
    /// yet, and their locks are taken (as `lock_keys` takes them) in the commit's own round trip.
    /// If one was granted already, the commit fails with [`StoreError::KeyTaken`] and keeps
    /// nothing. A batch whose keys are new (nearly every one) costs one round trip, not two.
    fn claim_keys(&mut self, keys: &[[u8; 32]]);
    /// The commit fails with [`StoreError::Fenced`] unless `member` still owns each of these
    /// partitions at its epoch, within its lease: checked with the versions, or at the commit,
    /// and held until the commit, so no take-over overtakes it.
    fn fence(&mut self, member: &str, partitions: &[(u32, i64)]) -> DbResult<()>;
}

/// An edge node's ledger: what the hub acknowledged, and what the store's view rests on.
pub trait EdgeLedger {
    /// The positions this commit leaves are not what its events alone make of the positions
    /// before (a rebase onto the hub's counts): they are written with this commit.
    fn save_positions_now(&mut self);
    /// A position's own events its view does not rest on yet, in order, and the version of
    /// the hub state the view rests on (`protocol::sync`).
    fn own_events(&mut self, key: &PositionKey) -> (Vec<OwnEvent>, Option<u64>);
    /// The view of `key` now rests on the hub's state at `version` (from the commit on).
    fn settle(&mut self, key: &PositionKey, version: u64);
    /// The hub started over: forget the hub versions learned so far.
    fn forget_versions(&mut self);
    /// The hub acknowledged the ledger up to `last_seq`, answering `answered` and refusing `rejected`.
    fn acknowledge(&mut self, last_seq: i64, answered: Vec<Answered>, rejected: &[Rejection], now: Millis) -> DbResult<()>;
}

/// What the replicas of one shared ledger committed, read back so that a replica's in-memory
/// positions follow every commit in version order (`engine::replicas`).
#[derive(Clone)]
pub struct Changes(deadpool_postgres::Pool);

impl Changes {
    pub fn new(pool: deadpool_postgres::Pool) -> Changes {
        Changes(pool)
    }

    /// The positions of `partitions` with their open holds, and each one's version they are
    /// complete up to: what a replica starts following them from.
    pub async fn partitions(&self, partitions: &[u32]) -> DbResult<(crate::positions::Table, Vec<(u32, u64)>)> {
        postgres::load(&self.0, partitions).await
    }

    /// Positions changed after version v of their partition p, for each (p, v) of `since`,
    /// with their stock and version, and the version of each of those partitions the answer
    /// is complete up to. `known`: the caller's (version, stock) of a position, so that only the
    /// holds written after it are read.
    pub async fn since(
        &self,
        since: &[(u32, u64)],
        known: &(dyn Fn(&PositionKey) -> Option<(u64, Stock)> + Sync),
    ) -> DbResult<(Vec<(PositionKey, Stock, u64)>, Vec<(u32, u64)>)> {
        postgres::changes_since(&self.0, since, known).await
    }
}

/// Reads beside the writer: reservation lookups and readiness.
#[derive(Clone)]
pub enum Reader {
    Sqlite(std::sync::Arc<std::sync::Mutex<rusqlite::Connection>>),
    Postgres(deadpool_postgres::Pool),
}

impl Reader {
    pub async fn reservation(&self, id: &str) -> DbResult<Option<ReservationRow>> {
        match self {
            Reader::Sqlite(conn) => {
                let id = id.to_string();
                on_sqlite(conn, move |c| sqlite::reservation(c, &id)).await
            }
            Reader::Postgres(pool) => postgres::reservation(pool, id).await,
        }
    }

    pub async fn open_reservations(&self, location: &str) -> DbResult<Vec<ReservationRow>> {
        match self {
            Reader::Sqlite(conn) => {
                let location = location.to_string();
                on_sqlite(conn, move |c| sqlite::open_reservations(c, &location)).await
            }
            Reader::Postgres(pool) => postgres::open_reservations(pool, location).await,
        }
    }

    /// A position's history, newest first: at most `limit` entries older than `before`.
    pub async fn history(&self, key: &PositionKey, before: Option<i64>, limit: i64) -> DbResult<Vec<HistoryRow>> {
        let before = before.unwrap_or(i64::MAX);
        match self {
            Reader::Sqlite(conn) => {
                let key = key.clone();
                on_sqlite(conn, move |c| sqlite::history(c, &key, before, limit)).await
            }
            Reader::Postgres(pool) => postgres::history(pool, key, before, limit).await,
        }
    }

    /// Every edge node's latest report: location, when it arrived, the report (JSON).
    pub async fn edges(&self) -> DbResult<Vec<(String, Millis, String)>> {
        match self {
            Reader::Sqlite(conn) => on_sqlite(conn, sqlite::edges).await,
            Reader::Postgres(pool) => postgres::edges(pool).await,
        }
    }

    /// The store directory: (id, entry as JSON), by id.
    pub async fn stores(&self) -> DbResult<Vec<(String, String)>> {
        match self {
            Reader::Sqlite(conn) => on_sqlite(conn, sqlite::stores).await,
            Reader::Postgres(pool) => postgres::stores(pool).await,
        }
    }

    pub async fn webhooks(&self) -> DbResult<Vec<Webhook>> {
        match self {
            Reader::Sqlite(conn) => on_sqlite(conn, sqlite::webhooks).await,
            Reader::Postgres(pool) => postgres::webhooks(pool).await,
        }
    }

    /// A subscription's deliveries, newest first.
    pub async fn deliveries(&self, webhook: &str, limit: i64) -> DbResult<Vec<DeliveryRow>> {
        match self {
            Reader::Sqlite(conn) => {
                let webhook = webhook.to_string();
                on_sqlite(conn, move |c| sqlite::deliveries(c, &webhook, limit)).await
            }
            Reader::Postgres(pool) => postgres::deliveries(pool, webhook, limit).await,
        }
    }

    /// When the oldest delivery still pending was recorded.
    pub async fn oldest_pending(&self) -> DbResult<Option<Millis>> {
        match self {
            Reader::Sqlite(conn) => on_sqlite(conn, sqlite::oldest_pending).await,
            Reader::Postgres(pool) => postgres::oldest_pending(pool).await,
        }
    }

    /// Up to `limit` of subscription `webhook`'s deliveries due at `now`, oldest first, at most
    /// one per lane: the first pending one of its lane (the others wait for it). On a shared
    /// ledger each is claimed for `claim` ms, so that no other replica tries it meanwhile; this
    /// process alone tries a SQLite ledger's.
    pub async fn due_deliveries(&self, now: Millis, limit: i64, claim: Millis, webhook: &str) -> DbResult<Vec<DueDelivery>> {
        match self {
            Reader::Sqlite(conn) => {
                let webhook = webhook.to_string();
                on_sqlite(conn, move |c| sqlite::due_deliveries(c, now, limit, &webhook)).await
            }
            Reader::Postgres(pool) => postgres::due_deliveries(pool, now, limit, claim, webhook).await,
        }
    }

    /// Other replicas write to this ledger too (PostgreSQL).
    pub fn shared(&self) -> bool {
        matches!(self, Reader::Postgres(_))
    }

    /// Storage answers a read.
    pub async fn ping(&self) -> bool {
        match self {
            Reader::Sqlite(conn) => on_sqlite(conn, |c| c.query_row("SELECT count(*) FROM positions", [], |_| Ok(()))).await.is_ok(),
            Reader::Postgres(pool) => postgres::ping(pool).await,
        }
    }
}

/// Runs a read on the SQLite reader connection, off the async threads.
async fn on_sqlite<T: Send + 'static>(
    conn: &std::sync::Arc<std::sync::Mutex<rusqlite::Connection>>,
    read: impl FnOnce(&rusqlite::Connection) -> rusqlite::Result<T> + Send + 'static,
) -> DbResult<T> {
    let conn = conn.clone();
    tokio::task::spawn_blocking(move || {
        let c = conn.lock().map_err(|_| StoreError::Data("a reader panicked".into()))?;
        Ok(read(&c)?)
    })
    .await
    .map_err(|e| StoreError::Data(e.to_string()))?
}

#[cfg(test)]
mod tests {
    use shelfcast_protocol::ReservationStatus;

    #[test]
    fn the_sql_list_of_open_statuses_is_the_protocols() {
        let open: Vec<String> = ReservationStatus::ALL.iter().filter(|s| s.is_open()).map(|s| format!("'{}'", s.as_str())).collect();
        assert_eq!(open_statuses!(), format!("({})", open.join(", ")));
    }
}
