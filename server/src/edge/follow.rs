//! Follows the hub's view of the edge's location by long polling: positions changed since the
//! last answer and the open reservations, as soon as the hub has them. Each changed position is rebased (hub on-hand + this edge's
//! unacknowledged events, with the hub's holds), so in-store screens converge with the hub.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use shelfcast_protocol::clock::parse_rfc3339;
use shelfcast_protocol::partition::Cursor;
use shelfcast_protocol::wire::{LocationChanges, PositionsResponse, ReservationView};
use shelfcast_protocol::{Hold, PositionKey};
use tokio_util::sync::CancellationToken;

use super::{backoff, Edge};
use crate::engine::{HubPosition, Writer};

pub async fn run(edge: Arc<Edge>, client: reqwest::Client, writer: Writer, shutdown: CancellationToken) {
    let url = format!("{}/v1/locations/{}/changes", edge.link.hub, edge.link.location);
    // The hub's cursor of its last answer (its version, from a hub that sends none).
    let mut since = String::from("0");
    let mut failures = 0u32;
    loop {
        let keys: Vec<PositionKey> = edge.resync.lock().expect("resync lock").drain().collect();
        if !keys.is_empty() && resync(&edge, &client, &writer, &keys).await.is_err() {
            edge.resync.lock().expect("resync lock").extend(keys);
        }
        // Long poll: the hub answers at once when something changed, else at the next change.
        let request = client.get(&url).query(&[("since", since.as_str()), ("wait", "25")]).bearer_auth(&edge.link.token).send();
        let answer = tokio::select! {
            a = request => a,
            // Events were just acknowledged: rebase their positions first, then ask again.
            _ = edge.resync_wake.notified() => continue,
            _ = shutdown.cancelled() => return,
        };
        let wait = match answer {
            Ok(r) if r.status().is_success() => match r.json::<LocationChanges>().await {
                Ok(changes) => {
                    failures = 0;
                    {
                        let mut info = edge.info.lock().expect("sync info");
                        info.online = true;
                        info.last_error = None;
                    }
                    // A hub that lost its data starts over below our mark: follow it from scratch.
                    let answered = changes.cursor.clone().unwrap_or_else(|| changes.version.to_string());
                    let from_scratch = Cursor::went_back(&answered, &since);
                    // Time left was the hub's when it answered: stale once relayed, so not kept.
                    let reservations = changes.reservations.iter().map(|r| ReservationView { expires_in_ms: None, ..r.clone() });
                    *edge.reservations.write().expect("reservations lock") = reservations.collect();
                    let positions =
                        changes.positions.iter().map(|p| (PositionKey::new(p.sku.clone(), p.location.clone()), p.on_hand, p.version));
                    adopt(&edge, &writer, positions.collect(), from_scratch).await;
                    since = if from_scratch { String::from("0") } else { answered };
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
                let status = r.status();
                let why = super::refusal(&edge.link, status).unwrap_or_default();
                tracing::warn!(%status, error = %why, "the hub refused to share the location's changes");
                offline(&edge, why);
                backoff(failures)
            }
            Err(e) => {
                failures += 1;
                let why = crate::client::explain(&e);
                tracing::warn!(error = %why, "cannot follow the hub");
                offline(&edge, why);
                backoff(failures)
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = edge.resync_wake.notified() => {}
            _ = shutdown.cancelled() => return,
        }
    }
}

fn offline(edge: &Edge, why: String) {
    let mut info = edge.info.lock().expect("sync info");
    info.online = false;
    info.last_error = Some(why);
}

/// The hub's current state of `keys`, rebased here.
async fn resync(edge: &Edge, client: &reqwest::Client, writer: &Writer, keys: &[PositionKey]) -> Result<(), reqwest::Error> {
    let mut positions = Vec::with_capacity(keys.len());
    for chunk in keys.chunks(50) {
        let list = chunk.iter().map(|k| k.to_string()).collect::<Vec<_>>().join(",");
        let answer: PositionsResponse = client
            .get(format!("{}/v1/availability", edge.link.hub))
            .query(&[("positions", list)])
            .bearer_auth(&edge.link.token)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        positions.extend(answer.positions.into_iter().map(|p| (PositionKey::new(p.sku, p.location), p.on_hand, p.version)));
    }
    adopt(edge, writer, positions, false).await;
    Ok(())
}

/// Rebases `positions` (hub on-hand and version each) with the hub's holds as last learned.
async fn adopt(edge: &Edge, writer: &Writer, positions: Vec<(PositionKey, i64, u64)>, from_scratch: bool) {
    // Read before the rebase is asked for: every event sent by now may be counted by these
    // states, and none sent later can be (the states were read before this).
    let sent_through = edge.sent_through.load(Ordering::SeqCst);
    let mut holds: HashMap<PositionKey, Vec<Hold>> = HashMap::new();
    for r in edge.reservations.read().expect("reservations lock").iter() {
        let (Ok(sku), Ok(location)) = (r.sku.parse(), r.location.parse()) else { continue };
        holds.entry(PositionKey::new(sku, location)).or_default().push(Hold {
            reservation: r.id.clone(),
            qty: r.qty,
            expires_at: r.expires_at.as_deref().and_then(parse_rfc3339),
        });
    }
    let positions = positions
        .into_iter()
        .map(|(key, on_hand, version)| {
            let holds = holds.remove(&key).unwrap_or_default();
            HubPosition { key, on_hand, version, holds }
        })
        .collect();
    writer.rebase(positions, sent_through, from_scratch).await;
}
