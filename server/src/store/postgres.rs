//! The ledger in PostgreSQL, shared by several hub replicas, each partition of the SKUs written
//! by its owner alone (`store::leases`, `engine::ownership`).
//!
//! Correctness across replicas rests on three things, all inside each group commit's
//! transaction:
//! - **Fenced, per-partition versions, taken last.** One statement (`VERSION_AND_SAVE`) raises
//!   the version of each partition the commit touches, only while this replica owns it at the
//!   epoch it holds it at and its lease runs, and saves the positions with those versions. The
//!   partition rows stay locked until the commit: a partition's versions are handed out in
//!   commit order (once a version is visible every lower one of that partition is too), a
//!   take-over skips a partition mid-commit, and a deposed owner's commit is rolled back. Commits
//!   of different partitions never meet on one row.
//! - **Reservation keys locked in one order.** Advisory locks on the keys' hashes, sorted: a key
//!   is granted once, whichever partitions two requests with the same key reach.
//! - **Idempotency by unique keys.** Event ids and reservation key hashes are unique; a
//!   duplicate sent to two replicas at once is applied once (the second insert waits for the
//!   first transaction and then finds the row).

use std::collections::HashMap;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use postgres::{Client, NoTls, Statement};
use shelfcast_protocol::clock::Millis;
use shelfcast_protocol::partition::Stamps;
use shelfcast_protocol::{Event, Hold, PositionKey, ReservationStatus, StaffRelease, Stock};

use super::{Backend, DbResult, Ledger, ReservationRow, SharedLedger, StoreError, SELECT_RESERVATION};
use crate::positions::Table;
use futures_util::TryStreamExt;
use tokio_postgres::error::SqlState;

/// Schema versions, applied in order, once, under an advisory lock (replicas may start together).
const MIGRATIONS: &[&str] = &[
    concat!(
        r"
CREATE TABLE events (
    seq         BIGSERIAL PRIMARY KEY,
    id          TEXT NOT NULL UNIQUE,
    type        TEXT NOT NULL,
    sku         TEXT NOT NULL,
    location    TEXT NOT NULL,
    qty         BIGINT NOT NULL,
    at          BIGINT,
    recorded_at BIGINT NOT NULL
);
CREATE TABLE positions (
    sku      TEXT NOT NULL,
    location TEXT NOT NULL,
    on_hand  BIGINT NOT NULL,
    version  BIGINT NOT NULL,
    PRIMARY KEY (sku, location)
);
CREATE INDEX positions_by_version ON positions (version);
CREATE TABLE reservations (
    id         TEXT PRIMARY KEY,
    key_hash   BYTEA NOT NULL UNIQUE,
    token      TEXT NOT NULL,
    sku        TEXT NOT NULL,
    location   TEXT NOT NULL,
    qty        BIGINT NOT NULL,
    status     TEXT NOT NULL,
    expires_at BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX reservations_open ON reservations (sku, location) WHERE status IN ",
        open_statuses!(),
        r";
CREATE INDEX reservations_open_by_location ON reservations (location) WHERE status IN ",
        open_statuses!(),
        r";
CREATE INDEX reservations_due ON reservations (expires_at) WHERE status = 'held';
CREATE TABLE hub_version (k INT PRIMARY KEY CHECK (k = 1), v BIGINT NOT NULL);
INSERT INTO hub_version (k, v) VALUES (1, 0);
CREATE TABLE health (k INT PRIMARY KEY CHECK (k = 1), at BIGINT NOT NULL);
"
    ),
    r"
-- The version of the commit that last wrote each reservation (its position's new version), so
-- a replica that knows a position at version v reads only the holds changed after v, not all
-- of a hot position's open holds. No default: a replica of an earlier release, which would
-- not record it, cannot grant a hold any more (its grants fail closed, 503) once this is applied.
ALTER TABLE reservations ADD COLUMN version BIGINT NOT NULL DEFAULT 0;
ALTER TABLE reservations ALTER COLUMN version DROP DEFAULT;
CREATE INDEX reservations_by_position_version ON reservations (sku, location, version);
",
    r"
-- Partitions of the SKUs (`protocol::partition`), each written by one replica at a time: the
-- one whose lease it is. `epoch` rises with every new owner; the owner's commits check it
-- (and the lease) in their own transaction, so a deposed owner can never commit again. The
-- rows themselves are created once, by `migrate`, in the number the database starts with.
CREATE TABLE partitions (
    id          INT PRIMARY KEY,
    owner       TEXT,
    epoch       BIGINT NOT NULL DEFAULT 0,
    lease_until TIMESTAMPTZ NOT NULL DEFAULT '-infinity'
);
-- The replicas alive: each writes its row at every lease renewal.
CREATE TABLE members (id TEXT PRIMARY KEY, seen_at TIMESTAMPTZ NOT NULL);
",
    r"
-- Versions per partition: each partition row counts its own, taken by its owner's commit in
-- the statement that fences it, so commits of different partitions never meet on one row.
-- They start where the single version left off, so every position's version keeps rising.
ALTER TABLE partitions ADD COLUMN version BIGINT NOT NULL DEFAULT 0;
UPDATE partitions SET version = (SELECT v FROM hub_version WHERE k = 1);
-- Each position's partition (`protocol::partition`), set by the writer; filled in for the
-- positions already stored by `migrate`.
ALTER TABLE positions ADD COLUMN part INT;
CREATE INDEX positions_by_part_version ON positions (part, version);
DROP INDEX positions_by_version;
-- A lease per replica rather than per partition: renewing it is one row, and a commit reads
-- it without locking anything that a renewal writes. A partition is its owner's while the
-- owner's lease runs.
ALTER TABLE members ADD COLUMN lease_until TIMESTAMPTZ NOT NULL DEFAULT '-infinity';
ALTER TABLE partitions DROP COLUMN lease_until;
",
    r"
-- The fence as an error: a commit that took fewer partitions than it asked for fails in the
-- statement itself, so its COMMIT (sent with it, in the same round trip) rolls it back.
CREATE FUNCTION shelfcast_fence(taken BIGINT, asked BIGINT) RETURNS BOOLEAN LANGUAGE plpgsql AS $$
BEGIN
    IF taken <> asked THEN
        RAISE EXCEPTION 'a partition of this commit has moved to another replica' USING ERRCODE = 'SF001';
    END IF;
    RETURN TRUE;
END $$;
",
    // 6: a release by the store keeps its reason and the staff's note.
    "ALTER TABLE reservations ADD COLUMN release_reason TEXT, ADD COLUMN release_note TEXT;",
    // 7: each edge node's latest report of its link (`wire::EdgeReport` as JSON).
    "CREATE TABLE edges (location TEXT PRIMARY KEY, reported_at BIGINT NOT NULL, report TEXT NOT NULL);",
    // 8: every change to a position with the position after it (as `sqlite::SCHEMA` explains).
    "CREATE TABLE history (
        seq BIGSERIAL PRIMARY KEY, sku TEXT NOT NULL, location TEXT NOT NULL, kind TEXT NOT NULL, ref TEXT NOT NULL,
        from_status TEXT, to_status TEXT, qty BIGINT NOT NULL, at BIGINT, received_at BIGINT NOT NULL, by_label TEXT,
        on_hand BIGINT NOT NULL, reserved BIGINT NOT NULL, version BIGINT NOT NULL
    );
    CREATE INDEX history_position ON history (sku, location, seq);",
    // 9: the store directory: each location's entry (`protocol::directory::Store` as JSON).
    "CREATE TABLE locations (id TEXT PRIMARY KEY, store TEXT NOT NULL);",
    // 10: webhooks, their deliveries (the outbox) and back-in-stock watches (as `sqlite::SCHEMA`).
    "CREATE TABLE webhooks (
        id TEXT PRIMARY KEY, url TEXT NOT NULL, secret TEXT NOT NULL, events TEXT NOT NULL, locations TEXT NOT NULL,
        created_at BIGINT NOT NULL
    );
    CREATE TABLE deliveries (
        id BIGSERIAL PRIMARY KEY, webhook TEXT NOT NULL, msg_id TEXT NOT NULL, lane TEXT NOT NULL, type TEXT NOT NULL, body TEXT NOT NULL,
        created_at BIGINT NOT NULL, attempts BIGINT NOT NULL DEFAULT 0, last_status BIGINT, last_error TEXT,
        next_try BIGINT, state TEXT NOT NULL DEFAULT 'pending'
    );
    CREATE INDEX deliveries_due ON deliveries (next_try) WHERE next_try IS NOT NULL;
    CREATE INDEX deliveries_of ON deliveries (webhook, id);
    CREATE INDEX deliveries_lane ON deliveries (webhook, lane, id) WHERE next_try IS NOT NULL;
    CREATE TABLE watches (
        id TEXT PRIMARY KEY, sku TEXT NOT NULL, location TEXT NOT NULL, subscriber TEXT NOT NULL,
        created_at BIGINT NOT NULL, fired_at BIGINT
    );
    CREATE INDEX watches_open ON watches (sku, location) WHERE fired_at IS NULL;",
    // 11: each subscription's sender reads its own due deliveries, oldest first.
    "CREATE INDEX deliveries_due_of ON deliveries (webhook, next_try, id) WHERE next_try IS NOT NULL;",
];

const MIGRATION_LOCK: i64 = 0x5348_454c_4643_4153; // "SHELFCAS"

/// Creates the schema, or brings it up to date.
pub fn migrate(client: &mut Client) -> DbResult<()> {
    client.execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])?;
    let result = (|| -> DbResult<()> {
        client.batch_execute(
            "CREATE TABLE IF NOT EXISTS shelfcast_migrations (version INT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
        )?;
        let done: i32 = client.query_one("SELECT coalesce(max(version), 0) FROM shelfcast_migrations", &[])?.get(0);
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(done as usize) {
            let mut t = client.transaction()?;
            t.batch_execute(sql)?;
            t.execute("INSERT INTO shelfcast_migrations (version) VALUES ($1)", &[&(i as i32 + 1)])?;
            t.commit()?;
            tracing::info!(version = i + 1, "database schema migrated");
        }
        // The partitions are numbered once, when the database is new; never renumbered.
        client.execute(
            "INSERT INTO partitions (id) SELECT generate_series(0, $1 - 1) WHERE NOT EXISTS (SELECT 1 FROM partitions)",
            &[&(shelfcast_protocol::partition::DEFAULT_PARTITIONS as i32)],
        )?;
        number_positions(client)
    })();
    client.execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])?;
    result
}

/// Gives the positions stored before partitions counted their own versions their partition.
fn number_positions(client: &mut Client) -> DbResult<()> {
    let partitions: i64 = client.query_one("SELECT count(*) FROM partitions", &[])?.get(0);
    let skus: Vec<String> = client.query("SELECT DISTINCT sku FROM positions WHERE part IS NULL", &[])?.iter().map(|r| r.get(0)).collect();
    for chunk in skus.chunks(10_000) {
        let parts: Vec<i32> = chunk.iter().map(|s| shelfcast_protocol::partition::partition_of(s, partitions as u32) as i32).collect();
        client.execute(
            "UPDATE positions p SET part = t.part FROM unnest($1::text[], $2::int[]) AS t(sku, part) WHERE p.sku = t.sku",
            &[&chunk, &parts],
        )?;
    }
    if !skus.is_empty() {
        tracing::info!(skus = skus.len(), "stored positions numbered by partition");
    }
    Ok(())
}

/// A connection for the schema's migration.
pub fn connect(url: &str) -> DbResult<Client> {
    let mut config: postgres::Config = url.parse()?;
    config.connect_timeout(Duration::from_secs(5));
    Ok(config.connect(NoTls)?)
}

/// The writer's connection, its I/O run on the current (the writer's own) runtime. A
/// transaction it leaves open (its replica paused, or cut off mid-commit) is ended by the
/// server after 5 s, so the partition locks it holds (`SharedLedger::fence`) cannot keep
/// another replica from taking its partitions over.
///
/// Every statement of the writer finds its rows by a key, and each is prepared once, its plan
/// kept. A plan made while a table was nearly empty (a new database, the first minute of a
/// cluster) would scan the whole table, and keep scanning it as it grows, until PostgreSQL
/// analyses the table again: with sequential scans off, the kept plans use the keys' indexes
/// whatever the table's size was (BENCHMARKS.md, "Plans that stay keyed").
async fn connect_writer(url: &str) -> DbResult<(tokio_postgres::Client, Stmts)> {
    let mut config: tokio_postgres::Config = url.parse()?;
    config.connect_timeout(Duration::from_secs(5));
    config.options("-c idle_in_transaction_session_timeout=5000 -c enable_seqscan=off");
    let (client, connection) = config.connect(NoTls).await?;
    tokio::spawn(connection);
    let stmts = Stmts::prepare(&client).await?;
    Ok((client, stmts))
}

/// A pool for the readers beside the writer (reservation lookups, readiness, resync). Their
/// statements are planned for the parameters of each call: a kept plan made while a table was
/// nearly empty would go on scanning it whole (see `connect_writer`), and some reads here
/// (a partition's load) do want a scan.
pub fn pool(url: &str, size: usize) -> DbResult<Pool> {
    let mut config: tokio_postgres::Config = url.parse()?;
    config.connect_timeout(Duration::from_secs(5));
    config.options("-c plan_cache_mode=force_custom_plan");
    let manager = Manager::from_config(config, NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
    Pool::builder(manager)
        .max_size(size)
        .wait_timeout(Some(Duration::from_secs(5)))
        .create_timeout(Some(Duration::from_secs(5)))
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .build()
        .map_err(|e| StoreError::Data(format!("database pool: {e}")))
}

/// The writer's side: one connection, re-opened after it is lost. The writer is a thread of
/// its own that waits for each answer; the connection's I/O runs on a runtime of its own
/// while it does, so that statements that do not wait for each other's answers go out
/// together (pipelined): a group commit is two round trips, `BEGIN` with its first statements
/// and the versions with the `COMMIT`, or one for holds whose keys are claimed unread
/// (`claim_keys`).
pub struct PgBackend {
    url: String,
    rt: Option<tokio::runtime::Runtime>,
    conn: Option<(tokio_postgres::Client, Stmts)>,
}

struct Stmts {
    insert_event: Statement,
    insert_events: Statement,
    touch_health: Statement,
    lock_keys: Statement,
    reservations_by_keys: Statement,
    version_reservations: Statement,
    version_and_save: Statement,
    version_and_save_holds: Statement,
    /// `version_and_save` and `version_and_save_holds` with the commit's history (`SaveArgs::statement`).
    version_and_save_history: Statement,
    version_and_save_holds_history: Statement,
    insert_reservations: Statement,
    reservation_by_key: Statement,
    reservation: Statement,
    set_reservation: Statement,
    expire_reservation: Statement,
    insert_history: Statement,
}

impl Stmts {
    async fn prepare(c: &tokio_postgres::Client) -> DbResult<Stmts> {
        Ok(Stmts {
            insert_event: c
                .prepare(
                    "INSERT INTO events (id, type, sku, location, qty, at, recorded_at) VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (id) DO NOTHING",
                )
                .await?,
            // A request's events in one statement: the ids that were new come back.
            insert_events: c
                .prepare(
                    "INSERT INTO events (id, type, sku, location, qty, at, recorded_at)
                     SELECT id, type, sku, location, qty, at, $7
                       FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::bigint[])
                            WITH ORDINALITY AS t(id, type, sku, location, qty, at, n)
                      ORDER BY n
                     ON CONFLICT (id) DO NOTHING RETURNING id",
                )
                .await?,
            touch_health: c.prepare("INSERT INTO health (k, at) VALUES (1, $1) ON CONFLICT (k) DO UPDATE SET at = excluded.at").await?,
            // One statement for all the batch's keys, taken in sorted order (as every replica does).
            lock_keys: c.prepare("SELECT pg_advisory_xact_lock(k) FROM (SELECT unnest($1::bigint[]) AS k ORDER BY 1) AS t").await?,
            reservations_by_keys: c.prepare(&format!("{SELECT_RESERVATION_KEYED} WHERE key_hash = ANY($1::bytea[])")).await?,
            version_reservations: c.prepare(
                "UPDATE reservations r SET version = p.version FROM positions p
                  WHERE r.id = ANY($1::text[]) AND p.sku = r.sku AND p.location = r.location",
            ).await?,
            version_and_save: c.prepare(&format!("{VERSION_AND_SAVE} {VERSIONS_TAKEN}")).await?,
            // The same, with the reservations this commit granted (each with its position's
            // new version; a grant always changes its position).
            version_and_save_holds: c.prepare(&format!("{VERSION_AND_SAVE}, {SAVE_HOLDS} {VERSIONS_TAKEN}")).await?,
            // The same, with the commit's history, each change without a version taking its
            // position's new one from `t`.
            version_and_save_history: c.prepare(&format!("{VERSION_AND_SAVE}, h AS ({}) {VERSIONS_TAKEN}", history_insert(11, true))).await?,
            version_and_save_holds_history: c
                .prepare(&format!("{VERSION_AND_SAVE}, {SAVE_HOLDS}, h AS ({}) {VERSIONS_TAKEN}", history_insert(20, true)))
                .await?,
            // Versioned at the commit (`touched`), when the commit's versions are known.
            insert_reservations: c.prepare(
                "INSERT INTO reservations (id, key_hash, token, sku, location, qty, status, expires_at, created_at, updated_at, version)
                 SELECT *, $9, $9, 0
                   FROM unnest($1::text[], $2::bytea[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::text[], $8::bigint[])",
            ).await?,
            reservation_by_key: c.prepare(&format!("{SELECT_RESERVATION} WHERE key_hash = $1")).await?,
            reservation: c.prepare(&format!("{SELECT_RESERVATION} WHERE id = $1")).await?,
            set_reservation: c
                .prepare("UPDATE reservations SET status = $2, expires_at = $3, updated_at = $4, release_reason = $5, release_note = $6 WHERE id = $1")
                .await?,
            expire_reservation: c
                .prepare("UPDATE reservations SET status = 'expired', updated_at = $2 WHERE id = $1 AND status = 'held'").await?,
            // A commit's history when its positions were saved before (`version_and_save`) or
            // none were: each change without a version takes its position's.
            insert_history: c.prepare(&history_insert(1, false)).await?,
        })
    }
}

impl PgBackend {
    /// Connects, migrates, and keeps the URL to reconnect later.
    pub fn open(url: &str) -> DbResult<PgBackend> {
        migrate(&mut connect(url)?)?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| StoreError::Data(format!("the writer's runtime: {e}")))?;
        let conn = rt.block_on(connect_writer(url))?;
        Ok(PgBackend { url: url.to_string(), rt: Some(rt), conn: Some(conn) })
    }

    fn connection(&mut self) -> DbResult<(&tokio::runtime::Runtime, &tokio_postgres::Client, &Stmts)> {
        let rt = self.rt.as_ref().expect("a runtime until dropped");
        if self.conn.as_ref().is_none_or(|(c, _)| c.is_closed()) {
            self.conn = None;
            self.conn = Some(rt.block_on(connect_writer(&self.url))?);
            tracing::info!("database connection re-established");
        }
        let (client, stmts) = self.conn.as_ref().expect("connected above");
        Ok((rt, client, stmts))
    }
}

impl Drop for PgBackend {
    /// The runtime goes without waiting for anything (the backend may be dropped on an async
    /// thread, where a runtime cannot block).
    fn drop(&mut self) {
        self.conn = None;
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

impl Backend for PgBackend {
    fn begin(&mut self) -> DbResult<Box<dyn Ledger + '_>> {
        let (rt, client, stmts) = self.connection()?;
        Ok(Box::new(PgTxn {
            rt,
            client,
            stmts,
            begun: false,
            ended: false,
            keyed: HashMap::new(),
            inserts: Vec::new(),
            now: 0,
            touched: Vec::new(),
            fence: None,
            history: Vec::new(),
            history_at: 0,
            claimed: Vec::new(),
        }))
    }

    fn shared(&self) -> bool {
        true
    }
}

/// A transaction on the writer's connection. `BEGIN` is sent with its first statement; one
/// dropped before its commit is rolled back.
struct PgTxn<'a> {
    rt: &'a tokio::runtime::Runtime,
    client: &'a tokio_postgres::Client,
    stmts: &'a Stmts,
    begun: bool,
    ended: bool,
    /// The reservation of each idempotency key this transaction locked (`None`: not granted
    /// yet), read in one statement with the locks: no other replica can grant them meanwhile.
    keyed: HashMap<[u8; 32], Option<ReservationRow>>,
    /// Reservations granted in this transaction, inserted in one statement before anything
    /// else reads the table, or with the positions (`version_and_save`).
    inserts: Vec<([u8; 32], ReservationRow)>,
    now: Millis,
    /// Reservations written before the commit knew its versions: they get them at the commit.
    touched: Vec<String>,
    /// The member and the partitions (with epochs) this commit is fenced with, checked in the
    /// statement that takes the versions (`VERSION_AND_SAVE`), or at the commit.
    fence: Option<(String, Vec<(u32, i64)>)>,
    /// Changes to positions' histories, inserted at the commit, after the positions (received
    /// at `history_at`).
    history: Vec<super::Change>,
    history_at: Millis,
    /// The locks of the keys claimed unread (`claim_keys`), taken at the commit.
    claimed: Vec<i64>,
}

impl Drop for PgTxn<'_> {
    fn drop(&mut self) {
        if self.begun && !self.ended {
            let client = self.client;
            let _ = self.rt.block_on(client.batch_execute("ROLLBACK"));
        }
    }
}

/// The unique index of reservation keys: a claimed key (`claim_keys`) granted before.
const KEY_INDEX: &str = "reservations_key_hash_key";

/// A database error, the fence's as [`StoreError::Fenced`], a claimed key's as
/// [`StoreError::KeyTaken`].
fn store_error(e: tokio_postgres::Error) -> StoreError {
    match e.as_db_error() {
        Some(db) if db.code().code() == FENCED => StoreError::Fenced,
        Some(db) if *db.code() == SqlState::UNIQUE_VIOLATION && db.constraint() == Some(KEY_INDEX) => StoreError::KeyTaken,
        _ => StoreError::Postgres(e),
    }
}

/// Waits for `work` on the writer's runtime; the transaction's `BEGIN` goes out with it when it
/// is the transaction's first (`begun`), in the same round trip.
fn run<T>(
    rt: &tokio::runtime::Runtime,
    client: &tokio_postgres::Client,
    begun: &mut bool,
    work: impl std::future::Future<Output = Result<T, tokio_postgres::Error>>,
) -> DbResult<T> {
    let begin = !std::mem::replace(begun, true);
    rt.block_on(async {
        if begin {
            let (began, done) = futures_util::join!(client.batch_execute("BEGIN"), work);
            began?;
            done
        } else {
            work.await
        }
    })
    .map_err(store_error)
}

/// Fences the commit and takes its versions, and saves the positions with them, in one
/// statement. `f`: the partitions the commit touched, each with the epoch this replica holds it
/// at and the count of versions it takes (0 for one only read); each row is updated (and stays
/// locked until the commit, so a take-over skips it and later ones wait for it) only while
/// `$8` owns it at that epoch and `$8`'s lease runs. `g`: a deposed owner's commit takes fewer
/// rows than the `$10` it asked for, and the statement fails (`shelfcast_fence`, SQLSTATE
/// SF001), so the COMMIT sent after it rolls the transaction back. `t`: each changed position
/// with its partition and its place among that partition's positions
/// (`protocol::partition::Stamps`).
const VERSION_AND_SAVE: &str = "WITH f AS (SELECT * FROM unnest($5::int[], $6::bigint[], $7::bigint[]) AS f(id, e, n)),
      v AS (UPDATE partitions p SET version = p.version + f.n FROM f
             WHERE p.id = f.id AND p.owner = $8 AND p.epoch = f.e
               AND EXISTS (SELECT 1 FROM members m WHERE m.id = $8 AND m.lease_until > clock_timestamp())
            RETURNING p.id, p.version, f.n),
      g AS (SELECT shelfcast_fence((SELECT count(*) FROM v), $10::bigint) AS held),
      t AS (SELECT v.version - v.n + t.k AS ver, t.s, t.l, t.o, t.part, t.i
              FROM unnest($1::text[], $2::text[], $3::bigint[], $4::int[], $9::bigint[]) WITH ORDINALITY AS t(s, l, o, part, k, i)
              JOIN v ON v.id = t.part),
      p AS (INSERT INTO positions (sku, location, on_hand, version, part)
            SELECT t.s, t.l, t.o, t.ver, t.part FROM t
            ON CONFLICT (sku, location) DO UPDATE SET on_hand = excluded.on_hand, version = excluded.version)";

/// What `VERSION_AND_SAVE` answers: each partition taken, its version and the versions it gave
/// out, once the fence held.
const VERSIONS_TAKEN: &str = "SELECT v.id, v.version, v.n FROM g LEFT JOIN v ON g.held";

/// The reservations granted in the commit, each with its position's new version from
/// `VERSION_AND_SAVE`'s `t` (a grant always changes its position).
const SAVE_HOLDS: &str =
    "r AS (INSERT INTO reservations (id, key_hash, token, sku, location, qty, status, expires_at, created_at, updated_at, version)
        SELECT x.id, x.h, x.tok, x.s, x.l, x.q, x.st, x.e, $19, $19, coalesce(t.ver, 0)
          FROM unnest($11::text[], $12::bytea[], $13::text[], $14::text[], $15::text[], $16::bigint[], $17::text[], $18::bigint[])
               AS x(id, h, tok, s, l, q, st, e)
          LEFT JOIN t ON t.s = x.s AND t.l = x.l)";

/// Inserts the changes of `HistoryColumns` (parameters from `$first`, `received_at` the 13th)
/// into the history in their order. A change without a version takes its position's:
/// - `by_place`: in `VERSION_AND_SAVE`'s statement, the one its position got in `t`, by its
///   place among the saved positions (parameter 14, from 1) in one array built once (a join
///   on (sku, location) would be planned as a loop over both lists);
/// - else, a statement after the positions are saved: the position's, by its index.
fn history_insert(first: usize, by_place: bool) -> String {
    const TYPES: [&str; 12] = ["text", "text", "text", "text", "text", "text", "bigint", "bigint", "text", "bigint", "bigint", "bigint"];
    let mut columns: Vec<String> = TYPES.iter().enumerate().map(|(i, t)| format!("${}::{t}[]", first + i)).collect();
    let (place, version, join) = match by_place {
        true => {
            columns.push(format!("${}::int[]", first + 13));
            (", pi", "((SELECT array_agg(t.ver ORDER BY t.i) FROM t))[x.pi]", "")
        }
        false => ("", "p.version", "LEFT JOIN positions p ON p.sku = x.s AND p.location = x.l"),
    };
    format!(
        "INSERT INTO history (sku, location, kind, ref, from_status, to_status, qty, at, received_at, by_label, on_hand, reserved, version)
         SELECT x.s, x.l, x.k, x.r, x.fs, x.ts, x.q, x.a, ${}, x.b, x.oh, x.rs, coalesce(x.v, {version}, 0)
           FROM unnest({}) WITH ORDINALITY AS x(s, l, k, r, fs, ts, q, a, b, oh, rs, v{place}, n)
           {join}
          ORDER BY x.n",
        first + 12,
        columns.join(", ")
    )
}

/// SQLSTATE of `shelfcast_fence`'s error.
const FENCED: &str = "SF001";

/// The reservations of each position (sku, location) written after version v (all of its open
/// ones when v is -1: a position this replica does not know yet), with their status.
const HOLDS_SINCE: &str = concat!(
    "SELECT r.id, r.sku, r.location, r.qty, r.expires_at, r.status FROM reservations r
   JOIN unnest($1::text[], $2::text[], $3::bigint[]) AS t(s, l, v) ON r.sku = t.s AND r.location = t.l AND r.version > t.v
 WHERE t.v >= 0 OR r.status IN ",
    open_statuses!(),
    " ORDER BY r.version, r.created_at, r.id"
);

const SELECT_RESERVATION_KEYED: &str =
    "SELECT id, token, sku, location, qty, status, expires_at, release_reason, release_note, created_at, key_hash FROM reservations";

fn key_of(sku: String, location: String) -> DbResult<PositionKey> {
    super::stored_key(sku, location).map_err(StoreError::Data)
}

fn row_of(r: &tokio_postgres::Row) -> DbResult<ReservationRow> {
    ReservationRow::from_columns(super::Columns {
        id: r.get(0),
        token: r.get(1),
        sku: r.get(2),
        location: r.get(3),
        qty: r.get(4),
        status: r.get(5),
        expires_at: r.get(6),
        release_reason: r.get(7),
        release_note: r.get(8),
        created_at: r.get(9),
    })
    .map_err(StoreError::Data)
}

/// The first 8 bytes of a key's SHA-256, as an advisory lock id.
fn lock_id(hash: &[u8; 32]) -> i64 {
    i64::from_be_bytes(hash[..8].try_into().expect("8 bytes"))
}

/// Positions as the (sku, location) columns of an `unnest`.
fn columns<'k>(keys: impl IntoIterator<Item = &'k PositionKey>) -> (Vec<&'k str>, Vec<&'k str>) {
    keys.into_iter().map(|k| (k.sku.as_str(), k.location.as_str())).unzip()
}

/// Brings each position's holds up to date with reservation rows of `HOLDS_SINCE`, in the
/// order they were written: an open one is held (added or replaced), any other is not.
fn apply_holds(stocks: &mut HashMap<PositionKey, Stock>, rows: &[tokio_postgres::Row]) -> DbResult<()> {
    for r in rows {
        let key = key_of(r.get(1), r.get(2))?;
        let Some(stock) = stocks.get_mut(&key) else { continue };
        let status: String = r.get(5);
        let open = ReservationStatus::parse(&status).ok_or_else(|| StoreError::Data(format!("stored status {status}")))?;
        if open.is_open() {
            stock.add_hold(Hold { reservation: r.get(0), qty: r.get(3), expires_at: r.get(4) });
        } else {
            stock.release(&r.get::<_, String>(0));
        }
    }
    Ok(())
}

/// Where each position's holds must be read from: the version this replica knows it at (its
/// stock as known, with the stored on-hand), or -1 and nothing.
fn bases(
    stored: impl IntoIterator<Item = (PositionKey, i64, i64)>,
    known: &dyn Fn(&PositionKey) -> Option<(u64, Stock)>,
) -> (HashMap<PositionKey, Stock>, Vec<(PositionKey, i64)>) {
    let mut stocks = HashMap::new();
    let mut since = Vec::new();
    for (key, on_hand, version) in stored {
        let (from, mut stock) = match known(&key) {
            Some((v, stock)) if (v as i64) <= version => (v as i64, stock),
            _ => (-1, Stock::default()),
        };
        stock.on_hand = on_hand;
        if from < version {
            since.push((key.clone(), from));
        }
        stocks.insert(key, stock);
    }
    (stocks, since)
}

fn since_columns(since: &[(PositionKey, i64)]) -> (Vec<&str>, Vec<&str>, Vec<i64>) {
    let mut out = (Vec::with_capacity(since.len()), Vec::with_capacity(since.len()), Vec::with_capacity(since.len()));
    for (k, v) in since {
        out.0.push(k.sku.as_str());
        out.1.push(k.location.as_str());
        out.2.push(*v);
    }
    out
}

impl SharedLedger for PgTxn<'_> {
    /// Two statements, however many keys, in one round trip: the keys' locks (sorted, as every
    /// replica takes them, so two never wait on each other in a cycle), then their
    /// reservations, read once the locks are held.
    fn lock_keys(&mut self, keys: &[[u8; 32]]) -> DbResult<()> {
        let mut keys = keys.to_vec();
        keys.sort();
        keys.dedup();
        if keys.is_empty() {
            return Ok(());
        }
        let ids: Vec<i64> = keys.iter().map(lock_id).collect();
        let hashes: Vec<&[u8]> = keys.iter().map(|k| &k[..]).collect();
        let (client, stmts) = (self.client, self.stmts);
        let (lock_params, read_params): ([&(dyn postgres::types::ToSql + Sync); 1], [&(dyn postgres::types::ToSql + Sync); 1]) =
            ([&ids], [&hashes]);
        let rows = run(self.rt, client, &mut self.begun, async {
            let (locked, rows) = futures_util::join!(
                client.execute(&stmts.lock_keys, &lock_params),
                client.query(&stmts.reservations_by_keys, &read_params)
            );
            locked?;
            rows
        })?;
        self.keyed = keys.iter().map(|k| (*k, None)).collect();
        for r in rows {
            let hash: Vec<u8> = r.get(10);
            if let Ok(hash) = <[u8; 32]>::try_from(hash.as_slice()) {
                self.keyed.insert(hash, Some(row_of(&r)?));
            }
        }
        Ok(())
    }

    /// The locks go out with the commit (`finish`), in the order `lock_keys` takes them (its
    /// statement sorts them).
    fn claim_keys(&mut self, keys: &[[u8; 32]]) {
        for k in keys {
            self.keyed.insert(*k, None);
        }
        self.claimed.extend(keys.iter().map(lock_id));
    }

    fn fence(&mut self, member: &str, partitions: &[(u32, i64)]) -> DbResult<()> {
        self.fence = Some((member.to_string(), partitions.to_vec()));
        Ok(())
    }
}

/// The parameters of `VERSION_AND_SAVE`: the fence, the changed positions, and the holds
/// granted in the commit (inserted by the same statement).
struct SaveArgs<'c> {
    skus: Vec<&'c str>,
    locations: Vec<&'c str>,
    on_hand: Vec<i64>,
    parts: Vec<i32>,
    ids: Vec<i32>,
    epochs: Vec<i64>,
    counts: Vec<i64>,
    member: String,
    places: Vec<i64>,
    asked: i64,
    holds: Vec<([u8; 32], ReservationRow)>,
    now: Millis,
}

impl<'c> SaveArgs<'c> {
    fn params<'s>(&'s self, holds: &'s Holds<'s>) -> Vec<&'s (dyn postgres::types::ToSql + Sync)> {
        let mut out: Vec<&(dyn postgres::types::ToSql + Sync)> = vec![
            &self.skus,
            &self.locations,
            &self.on_hand,
            &self.parts,
            &self.ids,
            &self.epochs,
            &self.counts,
            &self.member,
            &self.places,
            &self.asked,
        ];
        if !self.holds.is_empty() {
            out.extend([
                &holds.ids as &(dyn postgres::types::ToSql + Sync),
                &holds.hashes,
                &holds.tokens,
                &holds.skus,
                &holds.locations,
                &holds.qtys,
                &holds.statuses,
                &holds.expiries,
                &self.now,
            ]);
        }
        out
    }

    /// The statement for these parameters, and `history` after them when there is any.
    fn statement<'t>(&self, stmts: &'t Stmts, history: bool) -> &'t Statement {
        match (self.holds.is_empty(), history) {
            (true, false) => &stmts.version_and_save,
            (false, false) => &stmts.version_and_save_holds,
            (true, true) => &stmts.version_and_save_history,
            (false, true) => &stmts.version_and_save_holds_history,
        }
    }
}

/// Each partition's last version, from `VERSION_AND_SAVE`'s rows (those that gave out any).
fn versions_taken(rows: &[tokio_postgres::Row]) -> Vec<(u32, u64)> {
    let mut last: Vec<(u32, u64)> = rows
        .iter()
        .filter_map(|r| Some((r.get::<_, Option<i32>>(0)?, r.get::<_, Option<i64>>(1)?, r.get::<_, Option<i64>>(2)?)))
        .filter(|(_, _, n)| *n > 0)
        .map(|(p, v, _)| (p as u32, v as u64))
        .collect();
    last.sort_unstable();
    last
}

impl PgTxn<'_> {
    /// What the versions' statement needs, or `None` when the commit neither writes positions
    /// nor was fenced. Takes the fence and the holds not inserted yet.
    fn save_args<'c>(&mut self, changed: &'c [(PositionKey, Stock)], stamps: &Stamps) -> DbResult<Option<SaveArgs<'c>>> {
        let Some((member, fence)) = self.fence.take().filter(|(_, f)| !f.is_empty() || !changed.is_empty()) else {
            return match changed.is_empty() {
                true => Ok(None),
                false => Err(StoreError::Data("a commit to the shared ledger names the partitions it writes (`fence`)".into())),
            };
        };
        // Every partition written must be fenced: a position of another would not be saved.
        let counts: HashMap<u32, u64> = stamps.counts().collect();
        if let Some(p) = counts.keys().find(|p| !fence.iter().any(|(q, _)| q == *p)) {
            return Err(StoreError::Data(format!("partition {p} written without its fence")));
        }
        let (skus, locations) = columns(changed.iter().map(|(k, _)| k));
        let (parts, places): (Vec<i32>, Vec<i64>) = (0..stamps.len()).map(|i| stamps.at(i)).map(|(p, k)| (p as i32, k as i64)).unzip();
        Ok(Some(SaveArgs {
            skus,
            locations,
            on_hand: changed.iter().map(|(_, s)| s.on_hand).collect(),
            parts,
            ids: fence.iter().map(|(p, _)| *p as i32).collect(),
            epochs: fence.iter().map(|(_, e)| *e).collect(),
            counts: fence.iter().map(|(p, _)| counts.get(p).copied().unwrap_or(0) as i64).collect(),
            member,
            places,
            asked: fence.len() as i64,
            holds: std::mem::take(&mut self.inserts),
            now: self.now,
        }))
    }

    /// Takes the claimed keys' locks, saves (with `save`: the versions' statement, which records
    /// the history too), versions the reservations written before, and commits: all in one
    /// round trip. A fenced commit, or one whose claimed key was granted before, fails in its
    /// statement, and its `COMMIT` then rolls it back.
    fn finish(mut self, changed: &[(PositionKey, Stock)], stamps: &Stamps) -> DbResult<Vec<(u32, u64)>> {
        let args = self.save_args(changed, stamps)?;
        if args.is_none() {
            // Holds granted with nothing fenced (never on a partitioned hub) go in on their own.
            self.flush_inserts()?;
        }
        let touched = std::mem::take(&mut self.touched);
        let history = std::mem::take(&mut self.history);
        if !self.begun && args.is_none() && touched.is_empty() && history.is_empty() {
            self.ended = true;
            return Ok(Vec::new());
        }
        let empty = Holds::of(&[]);
        let holds = args.as_ref().map(|a| Holds::of(&a.holds));
        let columns = HistoryColumns::of(&history);
        let history_params = columns.params(&self.history_at);
        // The history goes into the versions' statement when there is one, on its own otherwise.
        let (with_history, alone) = (args.is_some() && !history.is_empty(), args.is_none() && !history.is_empty());
        // Each change's place (from 1) among the changed positions, for those without a version
        // (the writer gives one to every change of a position the commit leaves as it was).
        let place = |c: &super::Change| match c.version {
            Some(_) => Ok(None),
            None => match changed.binary_search_by(|(k, _)| k.cmp(&c.key)) {
                Ok(i) => Ok(Some(i as i32 + 1)),
                Err(_) => Err(StoreError::Data(format!("a change of {} without a version, its position unchanged", c.key))),
            },
        };
        let places: Vec<Option<i32>> = match with_history {
            true => history.iter().map(place).collect::<DbResult<_>>()?,
            false => Vec::new(),
        };
        let params = args.as_ref().map(|a| {
            let mut p = a.params(holds.as_ref().unwrap_or(&empty));
            if with_history {
                p.extend(history_params);
                p.push(&places);
            }
            p
        });
        let claimed = std::mem::take(&mut self.claimed);
        let (client, stmts) = (self.client, self.stmts);
        let outcome = run(self.rt, client, &mut self.begun, async {
            // The claimed keys' locks first: a key granted before fails the holds' insert.
            let lock = async {
                match claimed.is_empty() {
                    true => Ok(0),
                    false => client.execute(&stmts.lock_keys, &[&claimed]).await,
                }
            };
            let save = async {
                match (&args, &params) {
                    (Some(a), Some(p)) => client.query(a.statement(stmts, with_history), p).await,
                    _ => Ok(Vec::new()),
                }
            };
            let version = async {
                match touched.is_empty() {
                    true => Ok(0),
                    false => client.execute(&stmts.version_reservations, &[&touched]).await,
                }
            };
            let record = async {
                match alone {
                    true => client.execute(&stmts.insert_history, &history_params).await,
                    false => Ok(0),
                }
            };
            let (locked, saved, versioned, recorded, committed) =
                futures_util::join!(lock, save, version, record, client.batch_execute("COMMIT"));
            locked?;
            let saved = saved?;
            versioned?;
            recorded?;
            committed?;
            Ok(saved)
        });
        self.ended = true;
        Ok(versions_taken(&outcome?))
    }
}

impl Ledger for PgTxn<'_> {
    fn as_shared(&mut self) -> Option<&mut dyn SharedLedger> {
        Some(self)
    }

    fn version_and_save(&mut self, changed: &[(PositionKey, Stock)], stamps: &Stamps, _published: u64) -> DbResult<Vec<(u32, u64)>> {
        let Some(args) = self.save_args(changed, stamps)? else { return Ok(Vec::new()) };
        let holds = Holds::of(&args.holds);
        let params = args.params(&holds);
        let (client, stmts) = (self.client, self.stmts);
        let rows = run(self.rt, client, &mut self.begun, client.query(args.statement(stmts, false), &params))?;
        Ok(versions_taken(&rows))
    }

    fn save_and_commit(self: Box<Self>, changed: &[(PositionKey, Stock)], stamps: &Stamps, _published: u64) -> DbResult<Vec<(u32, u64)>> {
        (*self).finish(changed, stamps)
    }

    fn touch_health(&mut self, now: Millis) -> DbResult<()> {
        let (client, stmts) = (self.client, self.stmts);
        run(self.rt, client, &mut self.begun, client.execute(&stmts.touch_health, &[&now]))?;
        Ok(())
    }

    fn record_edge(&mut self, location: &str, report: &str, now: Millis) -> DbResult<()> {
        let client = self.client;
        let upsert = "INSERT INTO edges (location, reported_at, report) VALUES ($1, $2, $3)
             ON CONFLICT (location) DO UPDATE SET reported_at = excluded.reported_at, report = excluded.report";
        run(self.rt, client, &mut self.begun, client.execute(upsert, &[&location, &now, &report]))?;
        Ok(())
    }

    fn set_store(&mut self, id: &str, store: Option<&str>) -> DbResult<()> {
        let client = self.client;
        match store {
            Some(store) => {
                let upsert = "INSERT INTO locations (id, store) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET store = excluded.store";
                run(self.rt, client, &mut self.begun, client.execute(upsert, &[&id, &store]))?
            }
            None => run(self.rt, client, &mut self.begun, client.execute("DELETE FROM locations WHERE id = $1", &[&id]))?,
        };
        Ok(())
    }

    fn insert_event(&mut self, e: &Event, now: Millis) -> DbResult<bool> {
        Ok(self.insert_events(std::slice::from_ref(e), now)?[0])
    }

    /// One statement for the whole request: the ids that were new come back.
    fn insert_events(&mut self, events: &[Event], now: Millis) -> DbResult<Vec<bool>> {
        let ids: Vec<&str> = events.iter().map(|e| e.id.as_str()).collect();
        let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
        let (skus, locations): (Vec<&str>, Vec<&str>) = events.iter().map(|e| (e.key.sku.as_str(), e.key.location.as_str())).unzip();
        let qtys: Vec<i64> = events.iter().map(|e| e.qty).collect();
        let ats: Vec<Option<i64>> = events.iter().map(|e| e.at).collect();
        let (client, stmts) = (self.client, self.stmts);
        let rows = run(
            self.rt,
            client,
            &mut self.begun,
            client.query(&stmts.insert_events, &[&ids, &kinds, &skus, &locations, &qtys, &ats, &now]),
        )?;
        let mut new: std::collections::HashSet<String> = rows.iter().map(|r| r.get::<_, String>(0)).collect();
        // An id sent twice in one request is new only the first time.
        Ok(ids.iter().map(|id| new.remove(*id)).collect())
    }

    fn insert_fulfilment(&mut self, reservation: &str, key: &PositionKey, qty: i64, now: Millis) -> DbResult<()> {
        let id = format!("fulfil {reservation}");
        let (client, stmts) = (self.client, self.stmts);
        let params: [&(dyn postgres::types::ToSql + Sync); 7] =
            [&id, &"fulfil", &key.sku.as_str(), &key.location.as_str(), &qty, &None::<i64>, &now];
        run(self.rt, client, &mut self.begun, client.execute(&stmts.insert_event, &params))?;
        Ok(())
    }

    fn reservation_by_key(&mut self, key_hash: &[u8]) -> DbResult<Option<ReservationRow>> {
        if let Some(known) = <[u8; 32]>::try_from(key_hash).ok().and_then(|k| self.keyed.get(&k)) {
            return Ok(known.clone());
        }
        self.flush_inserts()?;
        let (client, stmts) = (self.client, self.stmts);
        run(self.rt, client, &mut self.begun, client.query_opt(&stmts.reservation_by_key, &[&key_hash]))?.map(|r| row_of(&r)).transpose()
    }

    fn reservation(&mut self, id: &str) -> DbResult<Option<ReservationRow>> {
        self.flush_inserts()?;
        let (client, stmts) = (self.client, self.stmts);
        run(self.rt, client, &mut self.begun, client.query_opt(&stmts.reservation, &[&id]))?.map(|r| row_of(&r)).transpose()
    }

    fn insert_reservation(&mut self, r: &ReservationRow, key_hash: &[u8], now: Millis) -> DbResult<()> {
        let hash = <[u8; 32]>::try_from(key_hash).map_err(|_| StoreError::Data("a key hash of 32 bytes".into()))?;
        if let Some(known) = self.keyed.get_mut(&hash) {
            *known = Some(r.clone());
        }
        self.inserts.push((hash, r.clone()));
        self.now = now;
        Ok(())
    }

    fn set_reservation(
        &mut self,
        id: &str,
        status: ReservationStatus,
        expires_at: Option<Millis>,
        released: Option<&StaffRelease>,
        now: Millis,
    ) -> DbResult<()> {
        self.flush_inserts()?;
        self.touched.push(id.to_string());
        let (client, stmts) = (self.client, self.stmts);
        let (reason, note) = (released.map(|r| r.reason.as_str()), released.and_then(|r| r.note.as_deref()));
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 6] = [&id, &status.as_str(), &expires_at, &now, &reason, &note];
        run(self.rt, client, &mut self.begun, client.execute(&stmts.set_reservation, &params))?;
        Ok(())
    }

    fn expire_reservation(&mut self, id: &str, now: Millis) -> DbResult<()> {
        self.flush_inserts()?;
        self.touched.push(id.to_string());
        let (client, stmts) = (self.client, self.stmts);
        run(self.rt, client, &mut self.begun, client.execute(&stmts.expire_reservation, &[&id, &now]))?;
        Ok(())
    }

    /// Fenced but nothing versioned (a commit of reservations only): the fence is checked with
    /// the commit.
    fn record_history(&mut self, changes: Vec<super::Change>, now: Millis) -> DbResult<()> {
        self.history.extend(changes);
        self.history_at = now;
        Ok(())
    }

    fn insert_webhook(&mut self, w: &super::Webhook) -> DbResult<()> {
        let (events, locations) = w.columns();
        let client = self.client;
        let sql = "INSERT INTO webhooks (id, url, secret, events, locations, created_at) VALUES ($1, $2, $3, $4, $5, $6)";
        run(self.rt, client, &mut self.begun, client.execute(sql, &[&w.id, &w.url, &w.secret, &events, &locations, &w.created_at]))?;
        Ok(())
    }

    fn delete_webhook(&mut self, id: &str) -> DbResult<bool> {
        let client = self.client;
        let gone = run(self.rt, client, &mut self.begun, client.execute("DELETE FROM webhooks WHERE id = $1", &[&id]))? > 0;
        let end = "UPDATE deliveries SET next_try = NULL, state = 'cancelled' WHERE webhook = $1 AND next_try IS NOT NULL";
        run(self.rt, client, &mut self.begun, client.execute(end, &[&id]))?;
        Ok(gone)
    }

    fn record_deliveries(&mut self, deliveries: &[super::NewDelivery], now: Millis) -> DbResult<()> {
        if deliveries.is_empty() {
            return Ok(());
        }
        let client = self.client;
        let webhooks: Vec<&str> = deliveries.iter().map(|d| d.webhook.as_str()).collect();
        let ids: Vec<&str> = deliveries.iter().map(|d| d.msg_id.as_str()).collect();
        let lanes: Vec<&str> = deliveries.iter().map(|d| d.lane.as_str()).collect();
        let types: Vec<&str> = deliveries.iter().map(|d| d.topic).collect();
        let bodies: Vec<&str> = deliveries.iter().map(|d| d.body.as_str()).collect();
        // In the order given, so a lane's ids rise in the order of its changes.
        let sql = "INSERT INTO deliveries (webhook, msg_id, lane, type, body, created_at, next_try)
                   SELECT w, m, l, t, b, $6, $6
                   FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[]) WITH ORDINALITY AS u(w, m, l, t, b, n)
                   ORDER BY n";
        run(self.rt, client, &mut self.begun, client.execute(sql, &[&webhooks, &ids, &lanes, &types, &bodies, &now]))?;
        Ok(())
    }

    fn record_tries(&mut self, tries: &[super::Tried]) -> DbResult<()> {
        // One statement for a round's outcomes: the writer waits for no round trip per try.
        let client = self.client;
        let ids: Vec<i64> = tries.iter().map(|t| t.id).collect();
        let attempts: Vec<i64> = tries.iter().map(|t| t.attempts).collect();
        let statuses: Vec<Option<i64>> = tries.iter().map(|t| t.status).collect();
        let errors: Vec<Option<&str>> = tries.iter().map(|t| t.error.as_deref()).collect();
        let next: Vec<Option<i64>> = tries.iter().map(|t| t.next_try).collect();
        let states: Vec<&str> = tries.iter().map(|t| t.state).collect();
        let sql = "UPDATE deliveries d SET attempts = u.a, last_status = u.s, last_error = u.e, next_try = u.n, state = u.st
                   FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::text[], $5::bigint[], $6::text[]) AS u(id, a, s, e, n, st)
                   WHERE d.id = u.id AND d.next_try IS NOT NULL";
        run(self.rt, client, &mut self.begun, client.execute(sql, &[&ids, &attempts, &statuses, &errors, &next, &states]))?;
        Ok(())
    }

    fn prune_deliveries(&mut self, before: Millis) -> DbResult<()> {
        let client = self.client;
        let sql = "DELETE FROM deliveries WHERE next_try IS NULL AND created_at < $1";
        run(self.rt, client, &mut self.begun, client.execute(sql, &[&before]))?;
        run(self.rt, client, &mut self.begun, client.execute("DELETE FROM watches WHERE fired_at < $1", &[&before]))?;
        Ok(())
    }

    fn insert_watch(&mut self, w: &super::WatchRow) -> DbResult<()> {
        let client = self.client;
        let sql = "INSERT INTO watches (id, sku, location, subscriber, created_at) VALUES ($1, $2, $3, $4, $5)";
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 5] =
            [&w.id, &w.key.sku.as_str(), &w.key.location.as_str(), &w.subscriber, &w.created_at];
        run(self.rt, client, &mut self.begun, client.execute(sql, &params))?;
        Ok(())
    }

    fn take_watches(&mut self, key: &PositionKey, now: Millis) -> DbResult<Vec<super::WatchRow>> {
        let client = self.client;
        let sql = "UPDATE watches SET fired_at = $3 WHERE sku = $1 AND location = $2 AND fired_at IS NULL
                   RETURNING id, subscriber, created_at";
        let rows = run(self.rt, client, &mut self.begun, client.query(sql, &[&key.sku.as_str(), &key.location.as_str(), &now]))?;
        Ok(rows.iter().map(|r| super::WatchRow { id: r.get(0), key: key.clone(), subscriber: r.get(1), created_at: r.get(2) }).collect())
    }

    fn commit(self: Box<Self>) -> DbResult<()> {
        (*self).finish(&[], &Stamps::default()).map(|_| ())
    }
}

/// Changes to positions' histories as the columns of an `unnest`.
struct HistoryColumns<'c> {
    skus: Vec<&'c str>,
    locations: Vec<&'c str>,
    kinds: Vec<&'static str>,
    refs: Vec<&'c str>,
    from: Vec<Option<&'static str>>,
    to: Vec<Option<&'static str>>,
    qtys: Vec<i64>,
    ats: Vec<Option<i64>>,
    by: Vec<Option<&'c str>>,
    on_hand: Vec<i64>,
    reserved: Vec<i64>,
    versions: Vec<Option<i64>>,
}

impl<'c> HistoryColumns<'c> {
    fn of(changes: &'c [super::Change]) -> HistoryColumns<'c> {
        let mut c = HistoryColumns {
            skus: Vec::with_capacity(changes.len()),
            locations: Vec::with_capacity(changes.len()),
            kinds: Vec::with_capacity(changes.len()),
            refs: Vec::with_capacity(changes.len()),
            from: Vec::with_capacity(changes.len()),
            to: Vec::with_capacity(changes.len()),
            qtys: changes.iter().map(|x| x.qty).collect(),
            ats: changes.iter().map(|x| x.at).collect(),
            by: changes.iter().map(|x| x.by.as_deref()).collect(),
            on_hand: changes.iter().map(|x| x.on_hand).collect(),
            reserved: changes.iter().map(|x| x.reserved).collect(),
            versions: changes.iter().map(|x| x.version.map(|v| v as i64)).collect(),
        };
        for x in changes {
            let (kind, id, from, to) = x.columns();
            c.skus.push(x.key.sku.as_str());
            c.locations.push(x.key.location.as_str());
            c.kinds.push(kind);
            c.refs.push(id);
            c.from.push(from);
            c.to.push(to);
        }
        c
    }

    fn params<'s>(&'s self, received_at: &'s Millis) -> [&'s (dyn postgres::types::ToSql + Sync); 13] {
        [
            &self.skus,
            &self.locations,
            &self.kinds,
            &self.refs,
            &self.from,
            &self.to,
            &self.qtys,
            &self.ats,
            &self.by,
            &self.on_hand,
            &self.reserved,
            &self.versions,
            received_at,
        ]
    }
}

/// Granted reservations as the columns of an `unnest`.
struct Holds<'r> {
    ids: Vec<&'r str>,
    hashes: Vec<&'r [u8]>,
    tokens: Vec<&'r str>,
    skus: Vec<&'r str>,
    locations: Vec<&'r str>,
    qtys: Vec<i64>,
    statuses: Vec<&'r str>,
    expiries: Vec<Option<i64>>,
}

impl<'r> Holds<'r> {
    fn of(rows: &'r [([u8; 32], ReservationRow)]) -> Holds<'r> {
        Holds {
            ids: rows.iter().map(|(_, r)| r.id.as_str()).collect(),
            hashes: rows.iter().map(|(h, _)| &h[..]).collect(),
            tokens: rows.iter().map(|(_, r)| r.token.as_str()).collect(),
            skus: rows.iter().map(|(_, r)| r.key.sku.as_str()).collect(),
            locations: rows.iter().map(|(_, r)| r.key.location.as_str()).collect(),
            qtys: rows.iter().map(|(_, r)| r.qty).collect(),
            statuses: rows.iter().map(|(_, r)| r.status.as_str()).collect(),
            expiries: rows.iter().map(|(_, r)| r.expires_at).collect(),
        }
    }
}

impl PgTxn<'_> {
    /// The reservations granted so far in this transaction, in one statement, before anything
    /// reads the table: their positions' versions are not known yet, so they are versioned at
    /// the commit.
    fn flush_inserts(&mut self) -> DbResult<()> {
        if self.inserts.is_empty() {
            return Ok(());
        }
        let rows = std::mem::take(&mut self.inserts);
        self.touched.extend(rows.iter().map(|(_, r)| r.id.clone()));
        let h = Holds::of(&rows);
        let (client, stmts) = (self.client, self.stmts);
        let params: [&(dyn postgres::types::ToSql + Sync); 9] =
            [&h.ids, &h.hashes, &h.tokens, &h.skus, &h.locations, &h.qtys, &h.statuses, &h.expiries, &self.now];
        run(self.rt, client, &mut self.begun, client.execute(&stmts.insert_reservations, &params))?;
        Ok(())
    }
}

pub(super) async fn connection(pool: &Pool) -> DbResult<deadpool_postgres::Object> {
    pool.get().await.map_err(|e| StoreError::Data(format!("database pool: {e}")))
}

/// A read-only transaction that sees one snapshot of the ledger throughout.
async fn snapshot(client: &mut deadpool_postgres::Object) -> DbResult<deadpool_postgres::Transaction<'_>> {
    client.build_transaction().isolation_level(tokio_postgres::IsolationLevel::RepeatableRead).read_only(true).start().await.map_err(pg)
}

/// The versions of `partitions`, by partition, in one snapshot.
async fn versions(tx: &deadpool_postgres::Transaction<'_>, partitions: &[i32]) -> DbResult<Vec<(u32, u64)>> {
    let stmt = tx.prepare_cached("SELECT id, version FROM partitions WHERE id = ANY($1) ORDER BY id").await.map_err(pg)?;
    let rows = tx.query(&stmt, &[&partitions]).await.map_err(pg)?;
    Ok(rows.iter().map(|r| (r.get::<_, i32>(0) as u32, r.get::<_, i64>(1) as u64)).collect())
}

/// The positions of `partitions` and their open holds, read in one snapshot into a compact
/// table, and the version of each partition they are complete up to. The rows stream in, a
/// SKU's positions one after another: no list of them all is built. A partition's positions
/// are read together, so they sit together in memory, and letting one go frees whole pages.
pub async fn load(pool: &Pool, partitions: &[u32]) -> DbResult<(Table, Vec<(u32, u64)>)> {
    let parts: Vec<i32> = partitions.iter().map(|p| *p as i32).collect();
    let mut client = connection(pool).await?;
    let tx = snapshot(&mut client).await?;
    let upto = versions(&tx, &parts).await?;
    let mut table = Table::default();
    let rows = tx
        .query_raw("SELECT sku, location, on_hand, version FROM positions WHERE part = ANY($1) ORDER BY part, sku", [&parts])
        .await
        .map_err(pg)?;
    futures_util::pin_mut!(rows);
    while let Some(r) = rows.try_next().await.map_err(pg)? {
        table.load(r.get(0), r.get(1), r.get(2), r.get::<_, i64>(3) as u64).map_err(StoreError::Data)?;
    }
    table.loaded();
    let holds = tx
        .query_raw(
            concat!(
                "SELECT r.id, r.sku, r.location, r.qty, r.expires_at FROM reservations r
                   JOIN positions p ON p.sku = r.sku AND p.location = r.location
                  WHERE p.part = ANY($1) AND r.status IN ",
                open_statuses!()
            ),
            [&parts],
        )
        .await
        .map_err(pg)?;
    futures_util::pin_mut!(holds);
    while let Some(r) = holds.try_next().await.map_err(pg)? {
        let key = key_of(r.get(1), r.get(2))?;
        if table.version(&key).is_some() {
            let hold = Hold { reservation: r.get(0), qty: r.get(3), expires_at: r.get(4) };
            table.update(&key, |e| e.stock.add_hold(hold));
        }
    }
    tx.commit().await.map_err(pg)?;
    Ok((table, upto))
}

/// Positions changed after version v of their partition p, for each (p, v) of `since` (with
/// their holds), and the version of each of those partitions the answer is complete up to: all
/// read in one snapshot, so nothing at or below those versions is missing. `known`: this
/// replica's (version, stock) of a position; only the holds written after that version are
/// read (all open ones of a position it does not know).
pub async fn changes_since(
    pool: &Pool,
    since: &[(u32, u64)],
    known: &(dyn Fn(&PositionKey) -> Option<(u64, Stock)> + Sync),
) -> DbResult<(Vec<(PositionKey, Stock, u64)>, Vec<(u32, u64)>)> {
    let mut client = connection(pool).await?;
    let tx = snapshot(&mut client).await?;
    let parts: Vec<i32> = since.iter().map(|(p, _)| *p as i32).collect();
    // Prepared once per pooled connection: a replica runs these at every change it hears of.
    let upto = versions(&tx, &parts).await?;
    let mut ranges = (Vec::new(), Vec::new(), Vec::new());
    for (p, hi) in &upto {
        let lo = since.iter().find(|(q, _)| q == p).map_or(0, |(_, v)| *v);
        if *hi > lo {
            ranges.0.push(*p as i32);
            ranges.1.push(lo as i64);
            ranges.2.push(*hi as i64);
        }
    }
    if ranges.0.is_empty() {
        tx.commit().await.map_err(pg)?;
        return Ok((Vec::new(), upto));
    }
    let changed = tx
        .prepare_cached(
            "SELECT p.sku, p.location, p.on_hand, p.version FROM unnest($1::int[], $2::bigint[], $3::bigint[]) AS t(part, lo, hi)
               JOIN positions p ON p.part = t.part AND p.version > t.lo AND p.version <= t.hi",
        )
        .await
        .map_err(pg)?;
    let rows = tx.query(&changed, &[&ranges.0, &ranges.1, &ranges.2]).await.map_err(pg)?;
    let stored = rows.iter().map(|r| Ok((key_of(r.get(0), r.get(1))?, r.get::<_, i64>(2), r.get::<_, i64>(3))));
    let stored = stored.collect::<DbResult<Vec<_>>>()?;
    let versions: HashMap<PositionKey, u64> = stored.iter().map(|(k, _, v)| (k.clone(), *v as u64)).collect();
    let (mut stocks, from) = bases(stored, known);
    if !from.is_empty() {
        let (skus, locations, versions) = since_columns(&from);
        let holds_since = tx.prepare_cached(HOLDS_SINCE).await.map_err(pg)?;
        let holds = tx.query(&holds_since, &[&skus, &locations, &versions]).await.map_err(pg)?;
        apply_holds(&mut stocks, &holds)?;
    }
    tx.commit().await.map_err(pg)?;
    let out = stocks.into_iter().map(|(k, s)| (k.clone(), s, versions[&k])).collect();
    Ok((out, upto))
}

pub(super) fn pg(e: tokio_postgres::Error) -> StoreError {
    StoreError::Postgres(e)
}

pub async fn reservation(pool: &Pool, id: &str) -> DbResult<Option<ReservationRow>> {
    let client = connection(pool).await?;
    let row = client.query_opt(&format!("{SELECT_RESERVATION} WHERE id = $1"), &[&id]).await.map_err(pg)?;
    row.map(|r| row_of(&r)).transpose()
}

pub async fn open_reservations(pool: &Pool, location: &str) -> DbResult<Vec<ReservationRow>> {
    let client = connection(pool).await?;
    let rows = client
        .query(
            &format!("{SELECT_RESERVATION} WHERE location = $1 AND status IN {} ORDER BY created_at, id", open_statuses!()),
            &[&location],
        )
        .await
        .map_err(pg)?;
    rows.iter().map(row_of).collect()
}

/// Every edge node's latest report.
pub async fn edges(pool: &Pool) -> DbResult<Vec<(String, Millis, String)>> {
    let client = connection(pool).await?;
    let rows = client.query("SELECT location, reported_at, report FROM edges ORDER BY location", &[]).await.map_err(pg)?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect())
}

/// The store directory: (id, entry as JSON), by id.
pub async fn stores(pool: &Pool) -> DbResult<Vec<(String, String)>> {
    let client = connection(pool).await?;
    let rows = client.query("SELECT id, store FROM locations ORDER BY id", &[]).await.map_err(pg)?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

pub async fn webhooks(pool: &Pool) -> DbResult<Vec<super::Webhook>> {
    let client = connection(pool).await?;
    let rows = client
        .query("SELECT id, url, secret, events, locations, created_at FROM webhooks ORDER BY created_at, id", &[])
        .await
        .map_err(pg)?;
    Ok(rows
        .iter()
        .map(|r| super::Webhook::from_columns(r.get(0), r.get(1), r.get(2), r.get::<_, &str>(3), r.get::<_, &str>(4), r.get(5)))
        .collect())
}

pub async fn deliveries(pool: &Pool, webhook: &str, limit: i64) -> DbResult<Vec<super::DeliveryRow>> {
    let client = connection(pool).await?;
    let sql = "SELECT msg_id, type, attempts, last_status, last_error, next_try, state, created_at FROM deliveries
               WHERE webhook = $1 ORDER BY id DESC LIMIT $2";
    let rows = client.query(sql, &[&webhook, &limit]).await.map_err(pg)?;
    Ok(rows
        .iter()
        .map(|r| super::DeliveryRow {
            msg_id: r.get(0),
            topic: r.get(1),
            attempts: r.get(2),
            last_status: r.get(3),
            last_error: r.get(4),
            next_try: r.get(5),
            state: r.get(6),
            created_at: r.get(7),
        })
        .collect())
}

pub async fn oldest_pending(pool: &Pool) -> DbResult<Option<Millis>> {
    let client = connection(pool).await?;
    let row = client.query_one("SELECT min(created_at) FROM deliveries WHERE next_try IS NOT NULL", &[]).await.map_err(pg)?;
    Ok(row.get(0))
}

/// Claims subscription `webhook`'s due deliveries for `claim` ms (`SKIP LOCKED`: replicas
/// claim different ones).
pub async fn due_deliveries(pool: &Pool, now: Millis, limit: i64, claim: Millis, webhook: &str) -> DbResult<Vec<super::DueDelivery>> {
    let client = connection(pool).await?;
    let sql = "WITH due AS (
                   SELECT id FROM deliveries d WHERE next_try IS NOT NULL AND next_try <= $1 AND webhook = $4
                   AND NOT EXISTS (SELECT 1 FROM deliveries e WHERE e.webhook = d.webhook AND e.lane = d.lane
                                   AND e.next_try IS NOT NULL AND e.id < d.id)
                   ORDER BY next_try, id LIMIT $2 FOR UPDATE SKIP LOCKED
               )
               UPDATE deliveries d SET next_try = $1 + $3 FROM due, webhooks w
               WHERE d.id = due.id AND w.id = d.webhook
               RETURNING d.id, d.msg_id, w.url, w.secret, d.body, d.attempts, d.created_at";
    let rows = client.query(sql, &[&now, &limit, &claim, &webhook]).await.map_err(pg)?;
    let mut due: Vec<super::DueDelivery> = rows
        .iter()
        .map(|r| super::DueDelivery {
            id: r.get(0),
            msg_id: r.get(1),
            url: r.get(2),
            secret: r.get(3),
            body: r.get(4),
            attempts: r.get(5),
            created_at: r.get(6),
        })
        .collect();
    due.sort_by_key(|d| d.id);
    Ok(due)
}

/// A position's history, newest first: at most `limit` entries with `seq` below `before`.
pub async fn history(pool: &Pool, key: &PositionKey, before: i64, limit: i64) -> DbResult<Vec<super::HistoryRow>> {
    let client = connection(pool).await?;
    let stmt = client
        .prepare_cached(&format!(
            "{} FROM history WHERE sku = $1 AND location = $2 AND seq < $3 ORDER BY seq DESC LIMIT $4",
            super::SELECT_HISTORY
        ))
        .await
        .map_err(pg)?;
    let rows = client.query(&stmt, &[&key.sku.as_str(), &key.location.as_str(), &before, &limit]).await.map_err(pg)?;
    rows.iter()
        .map(|r| {
            super::HistoryRow::from_columns(
                r.get(0),
                (r.get(1), r.get(2), r.get(3), r.get(4)),
                r.get(5),
                r.get(6),
                r.get(7),
                r.get(8),
                (r.get(9), r.get(10), r.get(11)),
            )
            .map_err(StoreError::Data)
        })
        .collect()
}

pub async fn ping(pool: &Pool) -> bool {
    match pool.get().await {
        Ok(c) => c.query_one("SELECT 1", &[]).await.is_ok(),
        Err(_) => false,
    }
}
