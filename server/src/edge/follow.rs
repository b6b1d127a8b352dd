//! Follows the hub's view of the edge's location: positions changed since the last answer and
//! the open reservations. Each changed position is rebased (hub on-hand + this edge's
//! unacknowledged events, with the hub's holds), so in-store screens converge with the hub.

use std::collections::HashMap;
use std::sync::Arc;

use shelfcast_protocol::clock::parse_rfc3339;
use shelfcast_protocol::wire::LocationChanges;
use shelfcast_protocol::{Hold, PositionKey};
use tokio_util::sync::CancellationToken;

use super::{backoff, Edge};
use crate::engine::Writer;

pub async fn run(edge: Arc<Edge>, client: reqwest::Client, writer: Writer, shutdown: CancellationToken) {
    let url = format!("{}/v1/locations/{}/changes", edge.link.hub, edge.link.location);
    let mut since = 0u64;
    let mut failures = 0u32;
    loop {
        let answer = client.get(&url).query(&[("since", since)]).bearer_auth(&edge.link.token).send().await;
        let wait = match answer {
            Ok(r) if r.status().is_success() => match r.json::<LocationChanges>().await {
                Ok(changes) => {
                    failures = 0;
                    // A hub that lost its data starts over below our mark: follow it from scratch.
                    let from_scratch = changes.version < since;
                    adopt(&writer, &changes).await;
                    *edge.reservations.write().expect("reservations lock") = changes.reservations;
                    since = if from_scratch { 0 } else { changes.version };
                    edge.link.follow_every
                }
                Err(e) => {
                    failures += 1;
                    tracing::warn!(error = %e, "unreadable answer from the hub");
                    backoff(failures)
                }
            },
            Ok(r) => {
                failures += 1;
                tracing::warn!(status = %r.status(), "the hub refused to share the location's changes");
                backoff(failures)
            }
            Err(_) => {
                failures += 1;
                backoff(failures)
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = edge.synced.notified() => {}
            _ = shutdown.cancelled() => return,
        }
    }
}

async fn adopt(writer: &Writer, changes: &LocationChanges) {
    let mut holds: HashMap<PositionKey, Vec<Hold>> = HashMap::new();
    for r in &changes.reservations {
        let (Ok(sku), Ok(location)) = (r.sku.parse(), r.location.parse()) else { continue };
        holds.entry(PositionKey::new(sku, location)).or_default().push(Hold {
            reservation: r.id.clone(),
            qty: r.qty,
            expires_at: r.expires_at.as_deref().and_then(parse_rfc3339),
        });
    }
    let positions = changes
        .positions
        .iter()
        .map(|p| {
            let key = PositionKey::new(p.sku.clone(), p.location.clone());
            let h = holds.remove(&key).unwrap_or_default();
            (key, p.on_hand, h)
        })
        .collect();
    writer.rebase(positions).await;
}
