//! An edge node's reads of its own SQLite ledger for the sync with the hub: what to send next,
//! how much is pending, what the hub refused. (The writer records what the hub acknowledged,
//! in `sqlite.rs`.)

use rusqlite::Connection;

use super::Rejection;

/// An event of the edge's ledger, as stored.
pub struct StoredEvent {
    pub seq: i64,
    pub id: String,
    pub kind: String,
    pub sku: String,
    pub location: String,
    pub qty: i64,
    pub at: Option<i64>,
}

const UNACKNOWLEDGED: &str = "seq > (SELECT v FROM sync_state WHERE k = 'acked_seq')";

/// The first `limit` events the hub has not acknowledged yet, in ledger order.
pub fn unacknowledged(db: &Connection, limit: usize) -> rusqlite::Result<Vec<StoredEvent>> {
    let mut stmt = db.prepare_cached(&format!(
        "SELECT seq, id, type, sku, location, qty, at FROM events WHERE {UNACKNOWLEDGED} ORDER BY seq LIMIT ?1"
    ))?;
    let rows = stmt.query_map([limit as i64], |r| {
        Ok(StoredEvent {
            seq: r.get(0)?,
            id: r.get(1)?,
            kind: r.get(2)?,
            sku: r.get(3)?,
            location: r.get(4)?,
            qty: r.get(5)?,
            at: r.get(6)?,
        })
    })?;
    rows.collect()
}

/// The last event recorded (0: none).
pub fn last_seq(db: &Connection) -> rusqlite::Result<i64> {
    db.query_row("SELECT coalesce(max(seq), 0) FROM events", [], |r| r.get(0))
}

/// How many events the hub has not acknowledged yet.
pub fn pending(db: &Connection) -> rusqlite::Result<i64> {
    db.query_row(&format!("SELECT count(*) FROM events WHERE {UNACKNOWLEDGED}"), [], |r| r.get(0))
}

/// Every event the hub refused, counted, and the `limit` latest with the hub's code and message.
pub fn rejections(db: &Connection, limit: usize) -> rusqlite::Result<(i64, Vec<Rejection>)> {
    let total: i64 = db.query_row("SELECT count(*) FROM sync_rejections", [], |r| r.get(0))?;
    let mut stmt = db.prepare_cached("SELECT seq, id, code, message FROM sync_rejections ORDER BY seq DESC LIMIT ?1")?;
    let latest = stmt
        .query_map([limit as i64], |r| Ok(Rejection { seq: r.get(0)?, id: r.get(1)?, code: r.get(2)?, message: r.get(3)? }))?
        .collect::<rusqlite::Result<_>>()?;
    Ok((total, latest))
}
