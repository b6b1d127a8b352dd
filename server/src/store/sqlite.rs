//! The SQLite ledger: one file in WAL mode with `synchronous=FULL`, so a commit is on disk when
//! it returns. Only the writer thread writes; request handlers read through their own
//! connection, which WAL lets run beside the writer.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use shelfcast_protocol::clock::Millis;
use shelfcast_protocol::sync::OwnEvent;
use shelfcast_protocol::{Event, EventKind, Hold, PositionKey, ReservationStatus, StaffRelease, Stock, Versions};

use super::{ReservationRow, SELECT_RESERVATION};
use crate::positions::Table;

const SCHEMA: &str = concat!(
    "
CREATE TABLE IF NOT EXISTS events (
    seq         INTEGER PRIMARY KEY,   -- order of application
    id          TEXT NOT NULL UNIQUE,  -- kept forever: a duplicate is known however late it comes
    type        TEXT NOT NULL,
    sku         TEXT NOT NULL,
    location    TEXT NOT NULL,
    qty         INTEGER NOT NULL,
    at          INTEGER,               -- when it happened at the source, ms
    recorded_at INTEGER NOT NULL       -- when the hub committed it, ms
);
-- Every change to a position (an event, a reservation's change of status), with the position
-- as the change left it: what `GET /v1/positions/{sku}/{location}/history` pages through.
-- `kind` is the event's type or `reservation`; `ref` the event's or reservation's id; `by_label`
-- the label of the token that made it (never the token).
-- A commit appends to `history` (in `seq` order: a group commit of changes to a thousand
-- positions dirties a page or two). Its index by position, `history_by_position`, is brought
-- up to date about once a second with the positions snapshot, up to `history_indexed.upto`, in
-- one go: one leaf of it written per position and second, not per position and commit. A read
-- takes the newer entries from the table itself, the rest through the index.
CREATE TABLE IF NOT EXISTS history (
    seq         INTEGER PRIMARY KEY,
    sku         TEXT NOT NULL,
    location    TEXT NOT NULL,
    kind        TEXT NOT NULL,
    ref         TEXT NOT NULL,
    from_status TEXT,
    to_status   TEXT,
    qty         INTEGER NOT NULL,
    at          INTEGER,
    received_at INTEGER NOT NULL,
    by_label    TEXT,
    on_hand     INTEGER NOT NULL,
    reserved    INTEGER NOT NULL,
    version     INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS history_by_position (
    sku      TEXT NOT NULL,
    location TEXT NOT NULL,
    seq      INTEGER NOT NULL,
    PRIMARY KEY (sku, location, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS history_indexed (
    k    INTEGER PRIMARY KEY CHECK (k = 1),
    upto INTEGER NOT NULL
);
INSERT OR IGNORE INTO history_indexed (k, upto) VALUES (1, 0);
-- Each edge node's latest report of its link to the hub (`wire::EdgeReport` as JSON).
CREATE TABLE IF NOT EXISTS edges (
    location    TEXT PRIMARY KEY,
    reported_at INTEGER NOT NULL,
    report      TEXT NOT NULL
);
-- The store directory: each location's entry (`protocol::directory::Store` as JSON).
CREATE TABLE IF NOT EXISTS locations (
    id    TEXT PRIMARY KEY,
    store TEXT NOT NULL
);
-- Webhook subscriptions; `events` and `locations` comma-separated.
CREATE TABLE IF NOT EXISTS webhooks (
    id         TEXT PRIMARY KEY,
    url        TEXT NOT NULL,
    secret     TEXT NOT NULL,
    events     TEXT NOT NULL,
    locations  TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
-- Each delivery to make, written in the commit of its change (the outbox), then each try.
-- `next_try` is NULL once it ended: delivered, failed for good, or its webhook deleted.
CREATE TABLE IF NOT EXISTS deliveries (
    id          INTEGER PRIMARY KEY,
    webhook     TEXT NOT NULL,
    msg_id      TEXT NOT NULL,
    lane        TEXT NOT NULL,             -- the position: a lane's deliveries go in order
    type        TEXT NOT NULL,
    body        TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    last_status INTEGER,
    last_error  TEXT,
    next_try    INTEGER,
    state       TEXT NOT NULL DEFAULT 'pending'
);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (next_try) WHERE next_try IS NOT NULL;
CREATE INDEX IF NOT EXISTS deliveries_of ON deliveries (webhook, id);
CREATE INDEX IF NOT EXISTS deliveries_lane ON deliveries (webhook, lane, id) WHERE next_try IS NOT NULL;
-- Each subscription's sender reads its own due deliveries, oldest first.
CREATE INDEX IF NOT EXISTS deliveries_due_of ON deliveries (webhook, next_try, id) WHERE next_try IS NOT NULL;
-- Back-in-stock watches; `fired_at` set when the position came back.
CREATE TABLE IF NOT EXISTS watches (
    id         TEXT PRIMARY KEY,
    sku        TEXT NOT NULL,
    location   TEXT NOT NULL,
    subscriber TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    fired_at   INTEGER
);
CREATE INDEX IF NOT EXISTS watches_open ON watches (sku, location) WHERE fired_at IS NULL;
CREATE TABLE IF NOT EXISTS health (
    k  INTEGER PRIMARY KEY CHECK (k = 1),
    at INTEGER NOT NULL                -- the last test write after a failed commit, ms
);
CREATE TABLE IF NOT EXISTS positions (
    sku      TEXT NOT NULL,
    location TEXT NOT NULL,
    on_hand  INTEGER NOT NULL,
    version  INTEGER NOT NULL,
    PRIMARY KEY (sku, location)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS reservations (
    id         TEXT PRIMARY KEY,
    key_hash   BLOB NOT NULL UNIQUE,
    token      TEXT NOT NULL,
    sku        TEXT NOT NULL,
    location   TEXT NOT NULL,
    qty        INTEGER NOT NULL,
    status     TEXT NOT NULL,
    expires_at INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    -- `issued` when the row was last written: a row at or above the snapshot's `version` was
    -- written after the positions table (NULL: written by a release that did not record it).
    issued     INTEGER,
    -- Set when the store released it: why (`ReleaseReason`), and the staff's note.
    release_reason TEXT,
    release_note   TEXT
);
CREATE INDEX IF NOT EXISTS reservations_open ON reservations (status) WHERE status IN ",
    open_statuses!(),
    ";
-- The positions table is a snapshot, written about once a second rather than at every commit:
-- it holds every event up to `seq` and every version up to `version`; the events after `seq`
-- are applied again when the ledger is opened. `issued` is the last version any commit gave
-- out, written at every commit. (A ledger without this table gets its row from what the
-- positions table holds: then it holds everything.)
CREATE TABLE IF NOT EXISTS snapshot (
    k       INTEGER PRIMARY KEY CHECK (k = 1),
    seq     INTEGER NOT NULL,
    version INTEGER NOT NULL,
    issued  INTEGER NOT NULL
);
INSERT OR IGNORE INTO snapshot (k, seq, version, issued) VALUES (
    1,
    (SELECT coalesce(max(seq), 0) FROM events),
    (SELECT coalesce(max(version), 0) FROM positions),
    (SELECT coalesce(max(version), 0) FROM positions)
);
"
);

/// The positions table is written by the first commit a while (`Store::save_every`) after the
/// last time, or by the first commit once this many positions wait to be written.
const SNAPSHOT_POSITIONS: usize = 50_000;

const EDGE_SCHEMA: &str = "
-- A position's unacknowledged events are kept in memory (`Unacked`), read once at a start:
-- no index of events by position is kept (one left in an older ledger is dropped).
DROP INDEX IF EXISTS events_position;
CREATE TABLE IF NOT EXISTS sync_state (
    k TEXT PRIMARY KEY,
    v INTEGER NOT NULL
);
INSERT OR IGNORE INTO sync_state (k, v) VALUES ('acked_seq', 0);
CREATE TABLE IF NOT EXISTS sync_rejections (
    seq     INTEGER PRIMARY KEY,   -- the event's place in this ledger
    id      TEXT NOT NULL,
    code    TEXT NOT NULL,
    message TEXT NOT NULL,
    at      INTEGER NOT NULL
);
";

/// The ledger entry a pickup leaves. Its id holds a space, which device event ids cannot, so it
/// never collides with one.
const FULFIL_TYPE: &str = "fulfil";

pub fn database_path(dir: &Path) -> PathBuf {
    dir.join("shelfcast.db")
}

pub struct Store {
    conn: Connection,
    unsaved: Unsaved,
    /// An edge node's events the hub has not acknowledged yet.
    unacked: Option<Unacked>,
}

/// An edge node's own events that its view of the hub does not rest on yet, by position, in
/// ledger order, with what the hub answered for each (`protocol::sync`), and the version of the
/// hub state each position's view rests on. A rebase onto the hub's counts reads them here:
/// reading them from the ledger at every rebase cost time in proportion to everything pending,
/// at every one of the many rebases while a long backlog drains. 32 bytes an event (32-64 MB
/// for a million, with the lists' spare room).
#[derive(Default)]
struct Unacked {
    by_key: hashbrown::HashMap<PositionKey, VecDeque<OwnEvent>>,
    adopted: hashbrown::HashMap<PositionKey, u64>,
    /// The transaction under way: the events it recorded, what the hub answered, and the hub
    /// states views were rebased on (position, version).
    added: hashbrown::HashMap<PositionKey, Vec<OwnEvent>>,
    answered: Vec<super::Answered>,
    settled: Vec<(PositionKey, u64)>,
    /// The hub started over: the versions learned from it before mean nothing.
    forget: bool,
}

impl Unacked {
    /// After the commit: the transaction's events join; answered ones learn from which version
    /// the hub counts them (refused ones leave: the hub never counts them); a position rebased
    /// on a hub state drops the events that state counts.
    fn committed(&mut self) {
        if std::mem::take(&mut self.forget) {
            self.adopted.clear();
            // What the old hub answered for is not sent again either way.
            self.by_key.values_mut().for_each(|events| events.retain(|e| e.counted_from.is_none()));
            self.by_key.retain(|_, events| !events.is_empty());
        }
        for (key, events) in self.added.drain() {
            self.by_key.entry(key).or_default().extend(events);
        }
        for a in self.answered.drain(..) {
            let Some(events) = self.by_key.get_mut(&a.key) else { continue };
            if let Ok(i) = events.binary_search_by_key(&a.seq, |e| e.seq) {
                match a.counted_from {
                    Some(v) => events[i].counted_from = Some(v),
                    None => drop(events.remove(i)),
                }
            }
        }
        for (key, version) in self.settled.drain(..) {
            if let Some(events) = self.by_key.get_mut(&key) {
                events.retain(|e| e.counted_from.is_none_or(|v| v > version));
                if events.is_empty() {
                    self.by_key.remove(&key);
                }
            }
            let adopted = self.adopted.entry(key).or_default();
            *adopted = (*adopted).max(version);
        }
    }

    fn roll_back(&mut self) {
        self.added.clear();
        self.answered.clear();
        self.settled.clear();
        self.forget = false;
    }

    /// A position's own events and the version its view rests on, as committed, with the
    /// events the transaction under way recorded (what it learned from the hub counts only
    /// once committed: until then its events look unanswered, which keeps the view as it is).
    fn of(&self, key: &PositionKey) -> (Vec<OwnEvent>, Option<u64>) {
        let committed = self.by_key.get(key).into_iter().flatten();
        let added = self.added.get(key).into_iter().flatten();
        (committed.chain(added).copied().collect(), self.adopted.get(key).copied())
    }
}

/// Positions changed since the positions table was last written. A position's key is copied
/// once, the first time; later commits only update its values.
struct Unsaved {
    positions: indexmap::IndexMap<PositionKey, Unwritten, hashbrown::DefaultHashBuilder>,
    /// The places in `positions` of the values the transaction under way set (`pending`); left
    /// non-empty by a transaction that never committed.
    touched: Vec<usize>,
    saved_at: Instant,
    every: Duration,
}

/// (on-hand, version) of one position: as committed, and as the transaction under way makes it.
#[derive(Default)]
struct Unwritten {
    committed: Option<(i64, u64)>,
    pending: Option<(i64, u64)>,
}

impl Unsaved {
    fn due(&self) -> bool {
        self.saved_at.elapsed() >= self.every || self.positions.len() >= SNAPSHOT_POSITIONS
    }

    /// Forgets what a transaction that did not commit left behind.
    fn roll_back(&mut self) {
        if !self.touched.is_empty() {
            for i in self.touched.drain(..) {
                self.positions[i].pending = None;
            }
            self.positions.retain(|_, u| u.committed.is_some());
        }
    }

    /// A transaction sets a position's values.
    fn set(&mut self, key: &PositionKey, values: (i64, u64)) {
        let i = match self.positions.get_index_of(key) {
            Some(i) => i,
            None => self.positions.insert_full(key.clone(), Unwritten::default()).0,
        };
        let u = &mut self.positions[i];
        if u.pending.replace(values).is_none() {
            self.touched.push(i);
        }
    }

    /// The transaction's values are committed: only the positions it touched are visited.
    fn committed(&mut self) {
        for i in self.touched.drain(..) {
            let u = &mut self.positions[i];
            if let Some(now) = u.pending.take() {
                u.committed = Some(now);
            }
        }
    }
}

/// Everything the hub holds in memory, as the database says after a restart.
pub struct Loaded {
    pub positions: Table,
    pub version: u64,
}

impl Store {
    pub fn open(dir: &Path) -> rusqlite::Result<Store> {
        std::fs::create_dir_all(dir)
            .map_err(|e| rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CANTOPEN), Some(e.to_string())))?;
        let conn = Connection::open(database_path(dir))?;
        // SQLite quietly opens a file it may not write read-only; a hub on such a ledger would
        // answer every write 503, so refuse to start and say why.
        if conn.is_readonly(rusqlite::MAIN_DB)? {
            return Err(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_READONLY),
                Some(format!("{} is read-only: the hub needs to write its ledger there", dir.display())),
            ));
        }
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // FULL: the WAL is fsynced at every commit, so an acknowledged write survives power loss.
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "busy_timeout", 5_000)?;
        conn.execute_batch(SCHEMA)?;
        let recorded: bool =
            conn.query_row("SELECT count(*) FROM pragma_table_info('reservations') WHERE name = 'issued'", [], |r| r.get(0))?;
        if !recorded {
            conn.execute_batch("ALTER TABLE reservations ADD COLUMN issued INTEGER")?;
        }
        let reasons: bool =
            conn.query_row("SELECT count(*) FROM pragma_table_info('reservations') WHERE name = 'release_reason'", [], |r| r.get(0))?;
        if !reasons {
            conn.execute_batch(
                "ALTER TABLE reservations ADD COLUMN release_reason TEXT; ALTER TABLE reservations ADD COLUMN release_note TEXT;",
            )?;
        }
        Ok(Store {
            conn,
            unsaved: Unsaved {
                positions: Default::default(),
                touched: Vec::new(),
                saved_at: Instant::now(),
                every: Duration::from_secs(1),
            },
            unacked: None,
        })
    }

    /// How often the positions table is brought up to date: at most this much of the ledger
    /// is applied again at a start after a crash.
    pub fn save_every(&mut self, every: Duration) {
        self.unsaved.every = every;
    }

    /// A connection for readers beside the writer.
    pub fn open_reader(dir: &Path) -> rusqlite::Result<Connection> {
        let conn = Connection::open_with_flags(database_path(dir), OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
        conn.pragma_update(None, "busy_timeout", 5_000)?;
        Ok(conn)
    }

    /// Everything the hub keeps in memory: the positions table, then the events committed after
    /// it was last written, applied again by the rules they were applied by when they came in,
    /// and the open holds. If any commit came after the positions table was written, the
    /// versions it gave out are lost: every position such a commit may have changed (those of
    /// the events applied again, and of the reservations written since, by their `issued`) gets
    /// a new version above all ever given out, written at once, so a stream resuming from any
    /// earlier version sends each of them again. The others are as the table has them.
    pub fn load(&mut self) -> rusqlite::Result<Loaded> {
        let mut positions = Table::default();
        // The table's key order (it has no rowid): each SKU's positions are appended together.
        let mut stmt = self.conn.prepare("SELECT sku, location, on_hand, version FROM positions ORDER BY sku, location")?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let (sku, location) = (r.get_ref(0)?.as_str()?, r.get_ref(1)?.as_str()?);
            positions.load(sku, location, r.get(2)?, r.get::<_, i64>(3)? as u64).map_err(unreadable)?;
        }
        positions.loaded();
        drop(rows);
        drop(stmt);
        let (seq, saved, issued): (i64, i64, i64) =
            self.conn.query_row("SELECT seq, version, issued FROM snapshot", [], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        let mut replayed = 0u64;
        let mut changed = Vec::new();
        let mut stmt = self.conn.prepare("SELECT sku, location, type, qty FROM events WHERE seq > ?1 ORDER BY seq")?;
        let mut rows = stmt.query([seq])?;
        while let Some(r) = rows.next()? {
            let key = key_of(r.get(0)?, r.get(1)?)?;
            let kind: String = r.get(2)?;
            // A pickup takes its units off the shelf as a sale does (`Stock::fulfil`).
            let kind = if kind == FULFIL_TYPE { Some(EventKind::Sale) } else { EventKind::parse(&kind) }.ok_or_else(|| {
                rusqlite::Error::FromSqlConversionFailure(2, rusqlite::types::Type::Text, format!("event type {kind}").into())
            })?;
            let qty = r.get(3)?;
            changed.push(positions.update(&key, |e| e.stock.apply(kind, qty)));
            replayed += 1;
        }
        drop(rows);
        drop(stmt);
        let mut stmt =
            self.conn.prepare(concat!("SELECT id, sku, location, qty, expires_at FROM reservations WHERE status IN ", open_statuses!()))?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let key = key_of(r.get(1)?, r.get(2)?)?;
            let hold = Hold { reservation: r.get(0)?, qty: r.get(3)?, expires_at: r.get(4)? };
            positions.update(&key, |e| e.stock.add_hold(hold));
        }
        drop(rows);
        drop(stmt);
        let mut version = positions.max_version().max(issued as u64);
        if replayed > 0 || issued > saved {
            // Read only when commits came after the positions table (no index serves it).
            let mut stmt = self.conn.prepare("SELECT DISTINCT sku, location FROM reservations WHERE issued IS NULL OR issued >= ?1")?;
            let mut rows = stmt.query([saved])?;
            while let Some(r) = rows.next()? {
                changed.extend(positions.handle(&key_of(r.get(0)?, r.get(1)?)?));
            }
            drop(rows);
            drop(stmt);
            let handles = positions.in_key_order(changed);
            let tx = self.conn.transaction()?;
            let versions = Versions::after(issued as u64, handles.len());
            for (i, handle) in handles.iter().enumerate() {
                positions.set_version(*handle, versions.nth(i));
            }
            version = versions.last();
            write_positions(&tx, handles.iter().filter_map(|h| positions.stored(*h)))?;
            tx.execute(
                "UPDATE snapshot SET seq = (SELECT coalesce(max(seq), 0) FROM events), version = ?1, issued = ?1",
                [version as i64],
            )?;
            tx.commit()?;
            tracing::info!(events = replayed, positions = handles.len(), version, "positions brought up to date from the ledger");
        }
        self.unsaved.saved_at = Instant::now();
        Ok(Loaded { positions, version })
    }

    /// An edge node's extra bookkeeping: how far the hub has acknowledged its ledger and what
    /// the hub refused; the events it has not acknowledged are read into memory.
    pub fn enable_edge(&mut self) -> rusqlite::Result<()> {
        self.conn.execute_batch(EDGE_SCHEMA)?;
        let acked: i64 = self.conn.query_row("SELECT v FROM sync_state WHERE k = 'acked_seq'", [], |r| r.get(0))?;
        let mut unacked = Unacked::default();
        let mut stmt = self.conn.prepare("SELECT seq, sku, location, type, qty FROM events WHERE seq > ?1 ORDER BY seq")?;
        let mut rows = stmt.query([acked])?;
        while let Some(r) = rows.next()? {
            // Only device events travel to the hub (an edge records no pickups).
            let Some(kind) = EventKind::parse(&r.get::<_, String>(3)?) else { continue };
            let key = key_of(r.get(1)?, r.get(2)?)?;
            unacked.by_key.entry(key).or_default().push_back(OwnEvent { seq: r.get(0)?, kind, qty: r.get(4)?, counted_from: None });
        }
        drop(rows);
        drop(stmt);
        self.unacked = Some(unacked);
        Ok(())
    }

    pub fn begin(&mut self) -> rusqlite::Result<Txn<'_>> {
        self.unsaved.roll_back();
        if let Some(u) = &mut self.unacked {
            u.roll_back();
        }
        Ok(Txn {
            tx: self.conn.transaction()?,
            unsaved: &mut self.unsaved,
            unacked: self.unacked.as_mut(),
            last: None,
            save: false,
            history: Vec::new(),
        })
    }
}

impl super::Backend for Store {
    fn begin(&mut self) -> super::DbResult<Box<dyn super::Ledger + '_>> {
        Ok(Box::new(Store::begin(self)?))
    }

    fn shared(&self) -> bool {
        false
    }

    fn save(&mut self) -> super::DbResult<()> {
        if self.unsaved.positions.is_empty() {
            return Ok(());
        }
        let mut txn = Store::begin(self)?;
        txn.save = true;
        Ok(txn.commit()?)
    }
}

impl super::Ledger for Txn<'_> {
    fn touch_health(&mut self, now: Millis) -> super::DbResult<()> {
        Ok(Txn::touch_health(self, now)?)
    }
    fn record_edge(&mut self, location: &str, report: &str, now: Millis) -> super::DbResult<()> {
        let mut stmt = self.tx.prepare_cached(
            "INSERT INTO edges (location, reported_at, report) VALUES (?1, ?2, ?3)
             ON CONFLICT (location) DO UPDATE SET reported_at = excluded.reported_at, report = excluded.report",
        )?;
        stmt.execute(params![location, now, report])?;
        Ok(())
    }
    fn set_store(&mut self, id: &str, store: Option<&str>) -> super::DbResult<()> {
        match store {
            Some(store) => self
                .tx
                .prepare_cached("INSERT INTO locations (id, store) VALUES (?1, ?2) ON CONFLICT (id) DO UPDATE SET store = excluded.store")?
                .execute(params![id, store])?,
            None => self.tx.prepare_cached("DELETE FROM locations WHERE id = ?1")?.execute(params![id])?,
        };
        Ok(())
    }
    fn insert_event(&mut self, e: &Event, now: Millis) -> super::DbResult<bool> {
        Ok(Txn::insert_event(self, e, now)?)
    }
    fn insert_events(&mut self, events: &[Event], now: Millis) -> super::DbResult<Vec<bool>> {
        Ok(Txn::insert_events(self, events, now)?)
    }
    fn insert_fulfilment(&mut self, reservation: &str, key: &PositionKey, qty: i64, now: Millis) -> super::DbResult<()> {
        Ok(Txn::insert_fulfilment(self, reservation, key, qty, now)?)
    }
    /// Alone on its ledger: the versions after `published` are this commit's.
    /// One partition: the versions after `published`, in order (`stamps` are all partition 0).
    fn version_and_save(
        &mut self,
        changed: &[(PositionKey, Stock)],
        _stamps: &shelfcast_protocol::partition::Stamps,
        published: u64,
    ) -> super::DbResult<Vec<(u32, u64)>> {
        let versions = Versions::after(published, changed.len());
        Txn::save_positions(self, changed.iter().map(|(k, s)| (k, s.on_hand)), versions);
        if !self.history.is_empty() {
            let history = std::mem::take(&mut self.history);
            let version = |c: &super::Change| {
                c.version.unwrap_or_else(|| changed.binary_search_by(|(k, _)| k.cmp(&c.key)).map_or(0, |i| versions.nth(i)))
            };
            let mut stmt = self.tx.prepare_cached(
                "INSERT INTO history (sku, location, kind, ref, from_status, to_status, qty, at, received_at, by_label, on_hand, reserved, version)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            )?;
            for (c, now) in &history {
                let (kind, id, from, to) = c.columns();
                stmt.execute(params![
                    c.key.sku.as_str(),
                    c.key.location.as_str(),
                    kind,
                    id,
                    from,
                    to,
                    c.qty,
                    c.at,
                    now,
                    c.by.as_deref(),
                    c.on_hand,
                    c.reserved,
                    version(c) as i64
                ])?;
            }
        }
        Ok(if changed.is_empty() { Vec::new() } else { vec![(0, versions.last())] })
    }
    fn reservation_by_key(&mut self, key_hash: &[u8]) -> super::DbResult<Option<ReservationRow>> {
        Ok(Txn::reservation_by_key(self, key_hash)?)
    }
    fn reservation(&mut self, id: &str) -> super::DbResult<Option<ReservationRow>> {
        Ok(Txn::reservation(self, id)?)
    }
    fn insert_reservation(&mut self, r: &ReservationRow, key_hash: &[u8], now: Millis) -> super::DbResult<()> {
        Ok(Txn::insert_reservation(self, r, key_hash, now)?)
    }
    fn set_reservation(
        &mut self,
        id: &str,
        status: ReservationStatus,
        expires_at: Option<Millis>,
        released: Option<&StaffRelease>,
        now: Millis,
    ) -> super::DbResult<()> {
        Ok(Txn::set_reservation(self, id, status, expires_at, released, now)?)
    }
    fn expire_reservation(&mut self, id: &str, now: Millis) -> super::DbResult<()> {
        Ok(Txn::expire_reservation(self, id, now)?)
    }
    fn record_history(&mut self, changes: Vec<super::Change>, now: Millis) -> super::DbResult<()> {
        self.history.extend(changes.into_iter().map(|c| (c, now)));
        Ok(())
    }
    fn insert_webhook(&mut self, w: &super::Webhook) -> super::DbResult<()> {
        let (events, locations) = w.columns();
        self.tx
            .prepare_cached("INSERT INTO webhooks (id, url, secret, events, locations, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)")?
            .execute(params![w.id, w.url, w.secret, events, locations, w.created_at])?;
        Ok(())
    }
    fn delete_webhook(&mut self, id: &str) -> super::DbResult<bool> {
        let gone = self.tx.prepare_cached("DELETE FROM webhooks WHERE id = ?1")?.execute([id])? > 0;
        self.tx
            .prepare_cached("UPDATE deliveries SET next_try = NULL, state = 'cancelled' WHERE webhook = ?1 AND next_try IS NOT NULL")?
            .execute([id])?;
        Ok(gone)
    }
    fn record_deliveries(&mut self, deliveries: &[super::NewDelivery], now: Millis) -> super::DbResult<()> {
        let mut stmt = self.tx.prepare_cached(
            "INSERT INTO deliveries (webhook, msg_id, lane, type, body, created_at, next_try) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
        )?;
        for d in deliveries {
            stmt.execute(params![d.webhook, d.msg_id, d.lane, d.topic, d.body, now])?;
        }
        Ok(())
    }
    fn record_tries(&mut self, tries: &[super::Tried]) -> super::DbResult<()> {
        let mut stmt = self.tx.prepare_cached(
            "UPDATE deliveries SET attempts = ?2, last_status = ?3, last_error = ?4, next_try = ?5, state = ?6
             WHERE id = ?1 AND next_try IS NOT NULL",
        )?;
        for t in tries {
            stmt.execute(params![t.id, t.attempts, t.status, t.error, t.next_try, t.state])?;
        }
        Ok(())
    }
    fn prune_deliveries(&mut self, before: Millis) -> super::DbResult<()> {
        self.tx.prepare_cached("DELETE FROM deliveries WHERE next_try IS NULL AND created_at < ?1")?.execute([before])?;
        self.tx.prepare_cached("DELETE FROM watches WHERE fired_at < ?1")?.execute([before])?;
        Ok(())
    }
    fn insert_watch(&mut self, w: &super::WatchRow) -> super::DbResult<()> {
        self.tx
            .prepare_cached("INSERT INTO watches (id, sku, location, subscriber, created_at) VALUES (?1, ?2, ?3, ?4, ?5)")?
            .execute(params![w.id, w.key.sku.as_str(), w.key.location.as_str(), w.subscriber, w.created_at])?;
        Ok(())
    }
    fn take_watches(&mut self, key: &PositionKey, now: Millis) -> super::DbResult<Vec<super::WatchRow>> {
        let mut stmt = self.tx.prepare_cached(
            "UPDATE watches SET fired_at = ?3 WHERE sku = ?1 AND location = ?2 AND fired_at IS NULL
             RETURNING id, subscriber, created_at",
        )?;
        let rows = stmt.query_map(params![key.sku.as_str(), key.location.as_str(), now], |r| {
            Ok(super::WatchRow { id: r.get(0)?, key: key.clone(), subscriber: r.get(1)?, created_at: r.get(2)? })
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }
    fn commit(self: Box<Self>) -> super::DbResult<()> {
        Ok(Txn::commit(*self)?)
    }
    fn as_edge(&mut self) -> Option<&mut dyn super::EdgeLedger> {
        if self.unacked.is_some() {
            Some(self)
        } else {
            None
        }
    }
}

impl super::EdgeLedger for Txn<'_> {
    fn save_positions_now(&mut self) {
        self.save = true;
    }
    fn own_events(&mut self, key: &PositionKey) -> (Vec<OwnEvent>, Option<u64>) {
        Txn::own_events(self, key)
    }
    fn settle(&mut self, key: &PositionKey, version: u64) {
        Txn::settle(self, key, version);
    }
    fn forget_versions(&mut self) {
        if let Some(u) = self.unacked.as_deref_mut() {
            u.forget = true;
        }
    }
    fn acknowledge(
        &mut self,
        last_seq: i64,
        answered: Vec<super::Answered>,
        rejected: &[super::Rejection],
        now: Millis,
    ) -> super::DbResult<()> {
        Ok(Txn::acknowledge(self, last_seq, answered, rejected, now)?)
    }
}

fn key_of(sku: String, location: String) -> rusqlite::Result<PositionKey> {
    super::stored_key(sku, location).map_err(unreadable)
}

/// A stored value that does not parse, as rusqlite's error for it.
fn unreadable(what: String) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, what.into())
}

/// The writes of one group commit.
pub struct Txn<'a> {
    tx: rusqlite::Transaction<'a>,
    unsaved: &'a mut Unsaved,
    unacked: Option<&'a mut Unacked>,
    /// The last version this commit gives out.
    last: Option<u64>,
    /// Write the positions table with this commit, due or not.
    save: bool,
    /// Changes to positions' histories, written once the commit's versions are known.
    history: Vec<(super::Change, Millis)>,
}

impl Txn<'_> {
    /// The smallest real write: proves the disk takes writes again.
    pub fn touch_health(&self, now: Millis) -> rusqlite::Result<()> {
        self.tx.execute("INSERT INTO health (k, at) VALUES (1, ?1) ON CONFLICT (k) DO UPDATE SET at = excluded.at", [now])?;
        Ok(())
    }

    /// Records events in order; for each, `false` if its id was recorded before (a duplicate).
    /// One statement lookup for the whole batch, not one per event.
    pub fn insert_events(&mut self, events: &[Event], now: Millis) -> rusqlite::Result<Vec<bool>> {
        let mut stmt = self.tx.prepare_cached(
            "INSERT INTO events (id, type, sku, location, qty, at, recorded_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (id) DO NOTHING",
        )?;
        events
            .iter()
            .map(|e| {
                let n =
                    stmt.execute(params![e.id.as_str(), e.kind.as_str(), e.key.sku.as_str(), e.key.location.as_str(), e.qty, e.at, now])?;
                if n == 1 {
                    if let Some(u) = self.unacked.as_deref_mut() {
                        let seq = self.tx.last_insert_rowid();
                        u.added.entry_ref(&e.key).or_default().push(OwnEvent { seq, kind: e.kind, qty: e.qty, counted_from: None });
                    }
                }
                Ok(n == 1)
            })
            .collect()
    }

    /// Records an event; `false` if its id was recorded before (a duplicate).
    pub fn insert_event(&mut self, e: &Event, now: Millis) -> rusqlite::Result<bool> {
        Ok(self.insert_events(std::slice::from_ref(e), now)?[0])
    }

    /// A pickup takes units off the shelf: it goes into the ledger beside device events, so the
    /// on-hand can always be recomputed from the ledger alone.
    pub fn insert_fulfilment(&self, reservation: &str, key: &PositionKey, qty: i64, now: Millis) -> rusqlite::Result<()> {
        let mut stmt = self
            .tx
            .prepare_cached("INSERT INTO events (id, type, sku, location, qty, at, recorded_at) VALUES (?1, ?2, ?3, ?4, ?5, NULL, ?6)")?;
        stmt.execute(params![format!("{FULFIL_TYPE} {reservation}"), FULFIL_TYPE, key.sku.as_str(), key.location.as_str(), qty, now])?;
        Ok(())
    }

    /// The changed positions of a commit, with `versions` in order. They reach the positions
    /// table with the first commit that is due to write it (`commit`).
    pub fn save_positions<'k>(&mut self, changed: impl IntoIterator<Item = (&'k PositionKey, i64)>, versions: Versions) {
        for (i, (key, on_hand)) in changed.into_iter().enumerate() {
            let version = versions.nth(i);
            self.unsaved.set(key, (on_hand, version));
            self.last = Some(version);
        }
    }

    pub fn reservation_by_key(&self, key_hash: &[u8]) -> rusqlite::Result<Option<ReservationRow>> {
        let mut stmt = self.tx.prepare_cached(&format!("{SELECT_RESERVATION} WHERE key_hash = ?1"))?;
        stmt.query_row([key_hash], row_of).optional()
    }

    pub fn reservation(&self, id: &str) -> rusqlite::Result<Option<ReservationRow>> {
        reservation(&self.tx, id)
    }

    pub fn insert_reservation(&self, r: &ReservationRow, key_hash: &[u8], now: Millis) -> rusqlite::Result<()> {
        let mut stmt = self.tx.prepare_cached(
            "INSERT INTO reservations (id, key_hash, token, sku, location, qty, status, expires_at, created_at, updated_at, issued)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9, (SELECT issued FROM snapshot))",
        )?;
        stmt.execute(params![
            r.id,
            key_hash,
            r.token,
            r.key.sku.as_str(),
            r.key.location.as_str(),
            r.qty,
            r.status.as_str(),
            r.expires_at,
            now
        ])?;
        Ok(())
    }

    pub fn set_reservation(
        &self,
        id: &str,
        status: ReservationStatus,
        expires_at: Option<Millis>,
        released: Option<&StaffRelease>,
        now: Millis,
    ) -> rusqlite::Result<()> {
        let mut stmt = self.tx.prepare_cached(
            "UPDATE reservations SET status = ?2, expires_at = ?3, updated_at = ?4, issued = (SELECT issued FROM snapshot),
                release_reason = ?5, release_note = ?6 WHERE id = ?1",
        )?;
        let (reason, note) = (released.map(|r| r.reason.as_str()), released.and_then(|r| r.note.as_deref()));
        stmt.execute(params![id, status.as_str(), expires_at, now, reason, note])?;
        Ok(())
    }

    /// An edge node's own events at one position that its view does not rest on yet, in
    /// order, and the version of the hub state the view rests on.
    pub fn own_events(&self, key: &PositionKey) -> (Vec<OwnEvent>, Option<u64>) {
        self.unacked.as_deref().map(|u| u.of(key)).unwrap_or_default()
    }

    /// An edge node: the view of `key` now rests on the hub's state at `version`.
    pub fn settle(&mut self, key: &PositionKey, version: u64) {
        if let Some(u) = self.unacked.as_deref_mut() {
            u.settled.push((key.clone(), version));
        }
    }

    /// An edge node: the hub has acknowledged the ledger up to `last_seq`. Written by the
    /// writer, in its own transaction, so a rebase's reading of the unacknowledged events and
    /// this bookkeeping never race for SQLite's write lock.
    pub fn acknowledge(
        &mut self,
        last_seq: i64,
        answered: Vec<super::Answered>,
        rejected: &[super::Rejection],
        now: Millis,
    ) -> rusqlite::Result<()> {
        let mut stmt =
            self.tx.prepare_cached("INSERT OR REPLACE INTO sync_rejections (seq, id, code, message, at) VALUES (?1, ?2, ?3, ?4, ?5)")?;
        for r in rejected {
            stmt.execute(params![r.seq, r.id, r.code, r.message, now])?;
        }
        self.tx.prepare_cached("UPDATE sync_state SET v = ?1 WHERE k = 'acked_seq'")?.execute([last_seq])?;
        if let Some(u) = self.unacked.as_deref_mut() {
            u.answered.extend(answered);
        }
        Ok(())
    }

    /// The sweeper's write: the hold lapsed. `expires_at` stays, as the record of when.
    pub fn expire_reservation(&self, id: &str, now: Millis) -> rusqlite::Result<()> {
        let mut stmt =
            self.tx.prepare_cached(
            "UPDATE reservations SET status = 'expired', updated_at = ?2, issued = (SELECT issued FROM snapshot) WHERE id = ?1 AND status = 'held'",
        )?;
        stmt.execute(params![id, now])?;
        Ok(())
    }

    /// Commits: the versions given out, and, once a second (or when asked), every position
    /// changed since the positions table was last written, with the place in the ledger it
    /// now holds up to. Only what is committed joins the positions waiting to be written.
    pub fn commit(self) -> rusqlite::Result<()> {
        let Txn { tx, unsaved, unacked, last, save, history } = self;
        debug_assert!(history.is_empty(), "history is written with the commit's versions");
        if let Some(last) = last {
            tx.prepare_cached("UPDATE snapshot SET issued = ?1")?.execute([last as i64])?;
        }
        let save = (save || unsaved.due()) && !unsaved.positions.is_empty();
        if save {
            let rows = unsaved
                .positions
                .iter()
                .filter_map(|(k, u)| u.pending.or(u.committed).map(|(on_hand, v)| (k.sku.as_str(), k.location.as_str(), on_hand, v)));
            write_positions(&tx, rows)?;
            tx.prepare_cached("UPDATE snapshot SET seq = (SELECT coalesce(max(seq), 0) FROM events), version = issued")?.execute([])?;
            tx.prepare_cached(
                "INSERT INTO history_by_position (sku, location, seq)
                 SELECT sku, location, seq FROM history WHERE seq > (SELECT upto FROM history_indexed)",
            )?
            .execute([])?;
            tx.prepare_cached("UPDATE history_indexed SET upto = (SELECT coalesce(max(seq), 0) FROM history)")?.execute([])?;
        }
        // Should this fail, `touched` stays set and the next transaction drops what it left.
        tx.commit()?;
        if let Some(u) = unacked {
            u.committed();
        }
        if save {
            unsaved.positions.clear();
            unsaved.touched.clear();
            unsaved.saved_at = Instant::now();
        } else {
            unsaved.committed();
        }
        Ok(())
    }
}

/// Brings rows of the positions table up to date: (key, on-hand, version).
fn write_positions<'k>(conn: &Connection, rows: impl IntoIterator<Item = (&'k str, &'k str, i64, u64)>) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare_cached(
        "INSERT INTO positions (sku, location, on_hand, version) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (sku, location) DO UPDATE SET on_hand = excluded.on_hand, version = excluded.version",
    )?;
    for (sku, location, on_hand, version) in rows {
        stmt.execute(params![sku, location, on_hand, version as i64])?;
    }
    Ok(())
}

fn row_of(r: &rusqlite::Row<'_>) -> rusqlite::Result<ReservationRow> {
    ReservationRow::from_columns(super::Columns {
        id: r.get(0)?,
        token: r.get(1)?,
        sku: r.get(2)?,
        location: r.get(3)?,
        qty: r.get(4)?,
        status: r.get(5)?,
        expires_at: r.get(6)?,
        release_reason: r.get(7)?,
        release_note: r.get(8)?,
        created_at: r.get(9)?,
    })
    .map_err(unreadable)
}

/// The open (held or confirmed) reservations at a location.
pub fn open_reservations(conn: &Connection, location: &str) -> rusqlite::Result<Vec<ReservationRow>> {
    let mut stmt = conn
        .prepare_cached(&format!("{SELECT_RESERVATION} WHERE location = ?1 AND status IN {} ORDER BY created_at, id", open_statuses!()))?;
    let rows = stmt.query_map([location], row_of)?;
    rows.collect()
}

/// A position's history, newest first: at most `limit` entries with `seq` below `before`: those
/// not indexed yet (all newer) from the table, then the indexed ones, in one read transaction.
pub fn history(conn: &Connection, key: &PositionKey, before: i64, limit: i64) -> rusqlite::Result<Vec<super::HistoryRow>> {
    let tx = conn.unchecked_transaction()?;
    let columns = super::SELECT_HISTORY;
    let mut out = history_in(
        &tx,
        &format!(
            "{columns} FROM history WHERE seq > (SELECT upto FROM history_indexed) AND seq < ?3 AND sku = ?1 AND location = ?2
             ORDER BY seq DESC LIMIT ?4"
        ),
        key,
        before,
        limit,
    )?;
    let left = limit - out.len() as i64;
    if left > 0 {
        let before = out.last().map_or(before, |r| r.seq);
        let indexed = format!(
            "{columns} FROM history WHERE seq IN (
                 SELECT seq FROM history_by_position WHERE sku = ?1 AND location = ?2 AND seq < ?3 ORDER BY seq DESC LIMIT ?4)
             ORDER BY seq DESC"
        );
        out.extend(history_in(&tx, &indexed, key, before, left)?);
    }
    tx.finish()?;
    Ok(out)
}

fn history_in(conn: &Connection, sql: &str, key: &PositionKey, before: i64, limit: i64) -> rusqlite::Result<Vec<super::HistoryRow>> {
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt.query_map(params![key.sku.as_str(), key.location.as_str(), before, limit], |r| {
        super::HistoryRow::from_columns(
            r.get(0)?,
            (r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?),
            r.get(5)?,
            r.get(6)?,
            r.get(7)?,
            r.get(8)?,
            (r.get(9)?, r.get(10)?, r.get(11)?),
        )
        .map_err(unreadable)
    })?;
    rows.collect()
}

/// Every edge node's latest report.
pub fn edges(conn: &Connection) -> rusqlite::Result<Vec<(String, Millis, String)>> {
    let mut stmt = conn.prepare_cached("SELECT location, reported_at, report FROM edges ORDER BY location")?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    rows.collect()
}

/// The store directory: (id, entry as JSON), by id.
pub fn stores(conn: &Connection) -> rusqlite::Result<Vec<(String, String)>> {
    let mut stmt = conn.prepare_cached("SELECT id, store FROM locations ORDER BY id")?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    rows.collect()
}

pub fn webhooks(conn: &Connection) -> rusqlite::Result<Vec<super::Webhook>> {
    let mut stmt = conn.prepare_cached("SELECT id, url, secret, events, locations, created_at FROM webhooks ORDER BY created_at, id")?;
    let rows = stmt.query_map([], |r| {
        Ok(super::Webhook::from_columns(r.get(0)?, r.get(1)?, r.get(2)?, &r.get::<_, String>(3)?, &r.get::<_, String>(4)?, r.get(5)?))
    })?;
    rows.collect()
}

pub fn deliveries(conn: &Connection, webhook: &str, limit: i64) -> rusqlite::Result<Vec<super::DeliveryRow>> {
    let mut stmt = conn.prepare_cached(
        "SELECT msg_id, type, attempts, last_status, last_error, next_try, state, created_at FROM deliveries
         WHERE webhook = ?1 ORDER BY id DESC LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![webhook, limit], |r| {
        Ok(super::DeliveryRow {
            msg_id: r.get(0)?,
            topic: r.get(1)?,
            attempts: r.get(2)?,
            last_status: r.get(3)?,
            last_error: r.get(4)?,
            next_try: r.get(5)?,
            state: r.get(6)?,
            created_at: r.get(7)?,
        })
    })?;
    rows.collect()
}

pub fn oldest_pending(conn: &Connection) -> rusqlite::Result<Option<Millis>> {
    conn.prepare_cached("SELECT min(created_at) FROM deliveries WHERE next_try IS NOT NULL")?.query_row([], |r| r.get(0))
}

pub fn due_deliveries(conn: &Connection, now: Millis, limit: i64, webhook: &str) -> rusqlite::Result<Vec<super::DueDelivery>> {
    let mut stmt = conn.prepare_cached(
        "SELECT d.id, d.msg_id, w.url, w.secret, d.body, d.attempts, d.created_at FROM deliveries d
         JOIN webhooks w ON w.id = d.webhook WHERE d.next_try IS NOT NULL AND d.next_try <= ?1
         AND NOT EXISTS (SELECT 1 FROM deliveries e WHERE e.webhook = d.webhook AND e.lane = d.lane AND e.next_try IS NOT NULL AND e.id < d.id)
         AND d.webhook = ?3
         ORDER BY d.next_try, d.id LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![now, limit, webhook], |r| {
        Ok(super::DueDelivery {
            id: r.get(0)?,
            msg_id: r.get(1)?,
            url: r.get(2)?,
            secret: r.get(3)?,
            body: r.get(4)?,
            attempts: r.get(5)?,
            created_at: r.get(6)?,
        })
    })?;
    rows.collect()
}

/// Reads one reservation, from the writer's transaction or a reader's connection.
pub fn reservation(conn: &Connection, id: &str) -> rusqlite::Result<Option<ReservationRow>> {
    let mut stmt = conn.prepare_cached(&format!("{SELECT_RESERVATION} WHERE id = ?1"))?;
    stmt.query_row([id], row_of).optional()
}

#[cfg(test)]
mod tests {
    use super::*;
    use shelfcast_protocol::{LocationId, Sku};

    fn key(sku: &str) -> PositionKey {
        PositionKey::new(Sku::try_from(sku.to_string()).unwrap(), LocationId::try_from("berlin".to_string()).unwrap())
    }

    fn unsaved() -> Unsaved {
        Unsaved { positions: Default::default(), touched: Vec::new(), saved_at: Instant::now(), every: Duration::from_secs(1) }
    }

    /// `(sku, committed (on-hand, version), pending (on-hand, version))` of each waiting position.
    type Waiting = Vec<(String, Option<(i64, u64)>, Option<(i64, u64)>)>;

    fn values(u: &Unsaved) -> Waiting {
        let mut out: Vec<_> = u.positions.iter().map(|(k, w)| (k.sku.as_str().to_string(), w.committed, w.pending)).collect();
        out.sort();
        out
    }

    /// What waits for the positions table is exactly what committed: a transaction that never
    /// committed leaves nothing behind, neither its values nor the positions it added.
    #[test]
    fn only_committed_values_wait_for_the_table() {
        let mut u = unsaved();
        u.set(&key("A"), (5, 1));
        u.set(&key("B"), (7, 2));
        u.set(&key("A"), (4, 3));
        u.committed();
        assert_eq!(values(&u), [("A".into(), Some((4, 3)), None), ("B".into(), Some((7, 2)), None)]);

        u.set(&key("A"), (1, 4));
        u.set(&key("C"), (9, 5));
        u.roll_back();
        assert_eq!(values(&u), [("A".into(), Some((4, 3)), None), ("B".into(), Some((7, 2)), None)]);
        assert!(u.touched.is_empty());

        u.set(&key("B"), (6, 4));
        u.set(&key("C"), (8, 5));
        u.committed();
        let expected = [("A".into(), Some((4, 3)), None), ("B".into(), Some((6, 4)), None), ("C".into(), Some((8, 5)), None)];
        assert_eq!(values(&u), expected);
        // A roll-back with nothing under way changes nothing.
        u.roll_back();
        assert_eq!(values(&u), expected);
    }
}
