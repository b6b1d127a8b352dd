//! Partition leases and membership in PostgreSQL: who owns which partition, and which replicas
//! are alive. Built from rows and `UPDATE … RETURNING` alone; `FOR UPDATE SKIP LOCKED` lets
//! replicas take free partitions together without waiting on each other, and the epoch a
//! take-over raises is what the owner's commits are fenced with (`SharedLedger::fence`).

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
    /// included). Rows silent for ten leases are removed.
    pub async fn heartbeat(&self, lease: Duration) -> DbResult<Vec<String>> {
        let c = connection(&self.pool).await?;
        let secs = lease.as_secs_f64();
        c.execute(
            "INSERT INTO members (id, seen_at) VALUES ($1, clock_timestamp()) ON CONFLICT (id) DO UPDATE SET seen_at = excluded.seen_at",
            &[&self.me],
        )
        .await
        .map_err(pg)?;
        c.execute("DELETE FROM members WHERE seen_at < clock_timestamp() - make_interval(secs => $1::float8 * 10)", &[&secs]).await.map_err(pg)?;
        let rows = c
            .query("SELECT id FROM members WHERE seen_at > clock_timestamp() - make_interval(secs => $1::float8) ORDER BY id", &[&secs])
            .await
            .map_err(pg)?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    /// Extends the leases this replica still holds by `hold`; returns them. A partition missing
    /// from the answer was taken over.
    pub async fn renew(&self, hold: Duration) -> DbResult<Vec<Held>> {
        let c = connection(&self.pool).await?;
        let rows = c
            .query(
                "UPDATE partitions SET lease_until = clock_timestamp() + make_interval(secs => $2::float8)
                  WHERE owner = $1 RETURNING id, epoch",
                &[&self.me, &hold.as_secs_f64()],
            )
            .await
            .map_err(pg)?;
        Ok(held(rows))
    }

    /// Takes up to `n` partitions that nobody holds (released, or their lease passed), each at
    /// a new epoch. A partition whose owner is committing right now is skipped, not waited for.
    pub async fn acquire(&self, n: usize, hold: Duration) -> DbResult<Vec<Held>> {
        if n == 0 {
            return Ok(Vec::new());
        }
        let c = connection(&self.pool).await?;
        let rows = c
            .query(
                "UPDATE partitions p SET owner = $1, epoch = p.epoch + 1, lease_until = clock_timestamp() + make_interval(secs => $3::float8)
                  WHERE p.id IN (SELECT id FROM partitions WHERE owner IS NULL OR lease_until < clock_timestamp()
                                  ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED)
                 RETURNING p.id, p.epoch",
                &[&self.me, &(n as i64), &hold.as_secs_f64()],
            )
            .await
            .map_err(pg)?;
        Ok(held(rows))
    }

    /// Gives partitions up at once (a hand-over), rather than letting their leases run out.
    pub async fn release(&self, partitions: &[u32]) -> DbResult<()> {
        let c = connection(&self.pool).await?;
        let ids: Vec<i32> = partitions.iter().map(|p| *p as i32).collect();
        c.execute("UPDATE partitions SET owner = NULL, lease_until = '-infinity' WHERE owner = $1 AND id = ANY($2)", &[&self.me, &ids])
            .await
            .map_err(pg)?;
        Ok(())
    }

    /// Leaves: every partition given up, the member row gone.
    pub async fn leave(&self) -> DbResult<()> {
        let c = connection(&self.pool).await?;
        c.execute("UPDATE partitions SET owner = NULL, lease_until = '-infinity' WHERE owner = $1", &[&self.me]).await.map_err(pg)?;
        c.execute("DELETE FROM members WHERE id = $1", &[&self.me]).await.map_err(pg)?;
        Ok(())
    }

    /// The owner of each partition (`None`: nobody holds it), by partition number.
    pub async fn owners(&self) -> DbResult<Vec<Option<String>>> {
        let c = connection(&self.pool).await?;
        let rows = c
            .query("SELECT id, CASE WHEN lease_until > clock_timestamp() THEN owner END FROM partitions ORDER BY id", &[])
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

    /// The last version handed out: a new owner's view of a partition is complete once every
    /// change up to it is published.
    pub async fn version(&self) -> DbResult<u64> {
        let c = connection(&self.pool).await?;
        Ok(c.query_one("SELECT v FROM hub_version WHERE k = 1", &[]).await.map_err(pg)?.get::<_, i64>(0) as u64)
    }

    /// The reservation's position, for routing an action on it to its partition's owner.
    pub async fn reservation_position(&self, id: &str) -> DbResult<Option<shelfcast_protocol::PositionKey>> {
        Ok(super::postgres::reservation(&self.pool, id).await?.map(|r| r.key))
    }
}
