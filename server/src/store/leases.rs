//! Partition leases and membership in PostgreSQL: who owns which partition, and which replicas
//! are alive. Built from rows and `UPDATE … RETURNING` alone. Each replica has one lease (its
//! `members` row): a partition is its owner's while that lease runs, so renewing is one row
//! that no commit locks. `FOR UPDATE SKIP LOCKED` lets replicas take free partitions together
//! without waiting on each other or on a commit in flight, and the epoch a take-over raises is
//! what the owner's commits are fenced with (`SharedLedger::fence`).

use std::time::Duration;

use deadpool_postgres::Pool;

use super::postgres::{connection, pg};
use super::DbResult;

#[derive(Clone)]
pub struct Leases {
    pool: Pool,
    /// This replica's member id.
    pub me: String,
}

/// A partition and the epoch it is held at.
pub type Held = (u32, i64);

fn held(rows: Vec<tokio_postgres::Row>) -> Vec<Held> {
    rows.iter().map(|r| (r.get::<_, i32>(0) as u32, r.get(1))).collect()
}

impl Leases {
    pub fn new(pool: Pool, me: String) -> Leases {
        Leases { pool, me }
    }

    /// The partitions the database was created with.
    pub async fn count(&self) -> DbResult<u32> {
        let c = connection(&self.pool).await?;
        Ok(c.query_one("SELECT count(*) FROM partitions", &[]).await.map_err(pg)?.get::<_, i64>(0) as u32)
    }

    /// Says this replica is alive; returns the members seen within `lease`, sorted (this one
    /// included). Rows silent for ten times as long are removed.
    pub async fn heartbeat(&self, lease: Duration) -> DbResult<Vec<String>> {
        let c = connection(&self.pool).await?;
        let secs = lease.as_secs_f64();
        c.execute(
            "INSERT INTO members (id, seen_at) VALUES ($1, clock_timestamp()) ON CONFLICT (id) DO UPDATE SET seen_at = excluded.seen_at",
            &[&self.me],
        )
        .await
        .map_err(pg)?;
        c.execute("DELETE FROM members WHERE seen_at < clock_timestamp() - make_interval(secs => $1::float8 * 10)", &[&secs])
            .await
            .map_err(pg)?;
        let rows = c
            .query("SELECT id FROM members WHERE seen_at > clock_timestamp() - make_interval(secs => $1::float8) ORDER BY id", &[&secs])
            .await
            .map_err(pg)?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    /// Extends this replica's lease by `hold`; returns the partitions it still holds. A
    /// partition missing from the answer was taken over.
    pub async fn renew(&self, hold: Duration) -> DbResult<Vec<Held>> {
        let c = connection(&self.pool).await?;
        self.extend(&c, hold).await?;
        let rows = c.query("SELECT id, epoch FROM partitions WHERE owner = $1", &[&self.me]).await.map_err(pg)?;
        Ok(held(rows))
    }

    async fn extend(&self, c: &tokio_postgres::Client, hold: Duration) -> DbResult<()> {
        c.execute(
            "INSERT INTO members (id, seen_at, lease_until) VALUES ($1, clock_timestamp(), clock_timestamp() + make_interval(secs => $2::float8))
             ON CONFLICT (id) DO UPDATE SET seen_at = excluded.seen_at, lease_until = excluded.lease_until",
            &[&self.me, &hold.as_secs_f64()],
        )
        .await
        .map_err(pg)?;
        Ok(())
    }

    /// Takes up to `n` partitions that nobody holds (released, or their owner's lease passed),
    /// each at a new epoch, and extends this replica's lease by `hold`. A partition whose owner
    /// is committing right now is skipped, not waited for.
    pub async fn acquire(&self, n: usize, hold: Duration) -> DbResult<Vec<Held>> {
        if n == 0 {
            return Ok(Vec::new());
        }
        let c = connection(&self.pool).await?;
        self.extend(&c, hold).await?;
        let rows = c
            .query(
                "UPDATE partitions p SET owner = $1, epoch = p.epoch + 1
                  WHERE p.id IN (SELECT id FROM partitions
                                  WHERE owner IS NULL OR owner NOT IN (SELECT id FROM members WHERE lease_until > clock_timestamp())
                                  ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED)
                 RETURNING p.id, p.epoch",
                &[&self.me, &(n as i64)],
            )
            .await
            .map_err(pg)?;
        Ok(held(rows))
    }

    /// Whether some partition is free to take (released, or its owner's lease passed).
    pub async fn any_free(&self) -> DbResult<bool> {
        let c = connection(&self.pool).await?;
        let row = c
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM partitions
                                 WHERE owner IS NULL OR owner NOT IN (SELECT id FROM members WHERE lease_until > clock_timestamp()))",
                &[],
            )
            .await
            .map_err(pg)?;
        Ok(row.get(0))
    }

    /// Gives partitions up at once (a hand-over), rather than letting their leases run out.
    pub async fn release(&self, partitions: &[u32]) -> DbResult<()> {
        let c = connection(&self.pool).await?;
        let ids: Vec<i32> = partitions.iter().map(|p| *p as i32).collect();
        c.execute("UPDATE partitions SET owner = NULL WHERE owner = $1 AND id = ANY($2)", &[&self.me, &ids]).await.map_err(pg)?;
        Ok(())
    }

    /// Leaves: every partition given up, the member row gone.
    pub async fn leave(&self) -> DbResult<()> {
        let c = connection(&self.pool).await?;
        c.execute("UPDATE partitions SET owner = NULL WHERE owner = $1", &[&self.me]).await.map_err(pg)?;
        c.execute("DELETE FROM members WHERE id = $1", &[&self.me]).await.map_err(pg)?;
        Ok(())
    }

    /// The owner of each partition (`None`: nobody holds it), by partition number.
    pub async fn owners(&self) -> DbResult<Vec<Option<String>>> {
        let c = connection(&self.pool).await?;
        let rows = c
            .query(
                "SELECT p.id, CASE WHEN m.lease_until > clock_timestamp() THEN p.owner END
                   FROM partitions p LEFT JOIN members m ON m.id = p.owner ORDER BY p.id",
                &[],
            )
            .await
            .map_err(pg)?;
        let mut out = Vec::new();
        for r in rows {
            let id = r.get::<_, i32>(0) as usize;
            out.resize(out.len().max(id + 1), None);
            out[id] = r.get(1);
        }
        Ok(out)
    }

    /// The last version each of `partitions` handed out: a new owner's view of a partition is
    /// complete once every change up to it is published.
    pub async fn versions(&self, partitions: &[u32]) -> DbResult<Vec<(u32, u64)>> {
        let c = connection(&self.pool).await?;
        let ids: Vec<i32> = partitions.iter().map(|p| *p as i32).collect();
        let rows = c.query("SELECT id, version FROM partitions WHERE id = ANY($1)", &[&ids]).await.map_err(pg)?;
        Ok(rows.iter().map(|r| (r.get::<_, i32>(0) as u32, r.get::<_, i64>(1) as u64)).collect())
    }

    /// The reservation's position, for routing an action on it to its partition's owner.
    pub async fn reservation_position(&self, id: &str) -> DbResult<Option<shelfcast_protocol::PositionKey>> {
        Ok(super::postgres::reservation(&self.pool, id).await?.map(|r| r.key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::postgres::{self, PgBackend};
    use crate::store::{Backend, StoreError};
    use shelfcast_protocol::{Event, EventId, EventKind, PositionKey};

    /// A new database on the PostgreSQL that the replica tests use.
    async fn fresh_database() -> String {
        let base = std::env::var("SHELFCAST_REPLICAS_POSTGRES")
            .expect("set SHELFCAST_REPLICAS_POSTGRES=postgres://user:password@host:port (scripts/test.sh does)");
        let base = base.trim_end_matches('/').to_string();
        let mut name = [0u8; 8];
        getrandom::fill(&mut name).unwrap();
        let name = format!("shelfcast_test_{}", hex::encode(name));
        let (client, conn) = tokio_postgres::connect(&format!("{base}/postgres"), tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(conn);
        client.batch_execute(&format!("CREATE DATABASE {name}")).await.unwrap();
        format!("{base}/{name}")
    }

    fn event(id: &str) -> Event {
        let key = PositionKey::new("SKU".to_string().try_into().unwrap(), "berlin".to_string().try_into().unwrap());
        Event { id: EventId::try_from(id.to_string()).unwrap(), kind: EventKind::Receipt, key, qty: 1, at: None }
    }

    /// Writes `event` in one transaction fenced as `member` holding `held`; the commit's outcome.
    fn commit(backend: &mut PgBackend, member: &str, held: &[Held], event: &Event) -> Result<(), StoreError> {
        let mut txn = backend.begin()?;
        txn.insert_event(event, 0)?;
        txn.as_shared().expect("a shared ledger").fence(member, held)?;
        txn.commit()
    }

    async fn stored(pool: &Pool, id: &str) -> bool {
        let c = connection(pool).await.unwrap();
        c.query_opt("SELECT 1 FROM events WHERE id = $1", &[&id]).await.unwrap().is_some()
    }

    /// The owner's commits are fenced by the epoch: once another replica has taken a partition
    /// whose lease passed, the old owner's commit fails inside its own transaction and nothing
    /// of it is kept. A take-over never overtakes a commit in flight: it skips the partition
    /// until that commit ends.
    #[tokio::test(flavor = "multi_thread")]
    async fn a_deposed_owner_cannot_commit_and_a_take_over_waits_for_a_commit_in_flight() {
        let url = fresh_database().await;
        let u = url.clone();
        let mut backend = tokio::task::spawn_blocking(move || PgBackend::open(&u)).await.unwrap().unwrap();
        let pool = postgres::pool(&url, 4).unwrap();
        let (a, b) = (Leases::new(pool.clone(), "a".into()), Leases::new(pool.clone(), "b".into()));
        let short = Duration::from_millis(300);
        let mine = a.acquire(1, short).await.unwrap();
        assert_eq!(mine, vec![(0, 1)], "the first partition, at epoch 1");

        // Within the lease, a commits; its commit's lock on the partition keeps b out until it ends.
        let (backend, ok) = tokio::task::spawn_blocking(move || {
            let ok = commit(&mut backend, "a", &mine, &event("within"));
            (backend, ok)
        })
        .await
        .unwrap();
        ok.unwrap();
        assert!(stored(&pool, "within").await);
        let held = vec![(0u32, 1i64)];
        let (fenced_tx, fenced_rx) = tokio::sync::oneshot::channel();
        let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
        let h = held.clone();
        let in_flight = std::thread::spawn(move || {
            let mut backend = backend;
            let outcome = (|| {
                let mut txn = backend.begin()?;
                txn.insert_event(&event("in-flight"), 0)?;
                txn.as_shared().expect("a shared ledger").fence("a", &h)?;
                // The fence is checked (and its row locked) with the versions.
                txn.version_and_save(&[], &shelfcast_protocol::partition::Stamps::default(), 0)?;
                let _ = fenced_tx.send(());
                go_rx.recv().expect("go");
                txn.commit()
            })();
            (backend, outcome)
        });
        fenced_rx.await.expect("the commit got as far as its fence");
        tokio::time::sleep(short * 2).await;
        let taken = b.acquire(1_000, Duration::from_secs(10)).await.unwrap();
        assert_eq!(taken.len(), 255, "every other partition is free");
        assert!(!taken.iter().any(|(p, _)| *p == 0), "a take-over skips a partition mid-commit");
        go_tx.send(()).unwrap();
        let (mut backend, outcome) = tokio::task::spawn_blocking(move || in_flight.join().unwrap()).await.unwrap();
        outcome.unwrap();
        assert!(stored(&pool, "in-flight").await, "nobody else could write the partition meanwhile");

        // The lease has passed: b takes the partition at a new epoch; a's next commit fails.
        assert_eq!(b.acquire(1, Duration::from_secs(10)).await.unwrap(), vec![(0, 2)]);
        let fenced = tokio::task::spawn_blocking(move || commit(&mut backend, "a", &held, &event("deposed"))).await.unwrap();
        assert!(matches!(fenced, Err(StoreError::Fenced)), "{fenced:?}");
        assert!(!stored(&pool, "deposed").await, "nothing of a fenced commit is kept");
        assert!(a.renew(short).await.unwrap().is_empty(), "a learns it holds nothing");
        assert!(b.renew(short).await.unwrap().contains(&(0, 2)));
    }
}
