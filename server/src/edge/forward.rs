//! Sends the edge's ledger to the hub: every event, in ledger order (so in order per device),
//! with its original id, in batches of up to 10,000. Only after the hub's answer is the
//! acknowledged position moved; a crash in between resends, and the hub's dedupe makes the
//! resend harmless. Events the hub rejects are kept, with the reason, for `GET /v1/sync`.

use std::sync::Arc;
use std::time::Duration;

use std::sync::atomic::Ordering;

use serde_json::{json, Value};
use shelfcast_protocol::wire::{IngestResponse, ResultStatus};
use shelfcast_protocol::{LocationId, PositionKey, Sku};
use tokio_util::sync::CancellationToken;

use super::{backoff, Edge};
use crate::engine::{State, Writer};
use crate::store::{sync, Answered, Rejection};

const BATCH: usize = 10_000;

struct Pending {
    last_seq: i64,
    seqs: Vec<i64>,
    body: Vec<Value>,
    /// Each event's position (`None`: not a valid position here; the hub will say why).
    keys: Vec<Option<PositionKey>>,
}

fn next_batch(edge: &Edge) -> rusqlite::Result<Pending> {
    let events = sync::unacknowledged(&edge.db.lock().expect("sync db lock"), BATCH)?;
    let mut p = Pending { last_seq: 0, seqs: Vec::new(), body: Vec::new(), keys: Vec::new() };
    for e in events {
        let mut body = json!({"id": e.id, "type": e.kind, "sku": e.sku, "location": e.location, "qty": e.qty});
        if let Some(at) = e.at {
            body["at"] = json!(shelfcast_protocol::clock::format_rfc3339(at));
        }
        let key = match (Sku::try_from(e.sku), LocationId::try_from(e.location)) {
            (Ok(sku), Ok(location)) => Some(PositionKey::new(sku, location)),
            _ => None,
        };
        p.keys.push(key);
        p.last_seq = e.seq;
        p.seqs.push(e.seq);
        p.body.push(body);
    }
    Ok(p)
}

/// What the hub answered for each event of `p`: from which version of its position the hub
/// counts it, or that it refused it. An answer without versions (an older hub) counts from any.
fn answered(p: &Pending, answer: &IngestResponse) -> Vec<Answered> {
    p.seqs
        .iter()
        .zip(&p.keys)
        .zip(&answer.results)
        .filter_map(|((&seq, key), r)| {
            let counted_from = match r.status {
                ResultStatus::Rejected => None,
                ResultStatus::Applied | ResultStatus::Duplicate => Some(r.version.unwrap_or(0)),
            };
            Some(Answered { key: key.clone()?, seq, counted_from })
        })
        .collect()
}

/// What the hub refused in its answer to `p`, by ledger position.
fn rejections(p: &Pending, answer: &IngestResponse) -> Vec<Rejection> {
    p.seqs
        .iter()
        .zip(&answer.results)
        .filter(|(_, r)| r.status == ResultStatus::Rejected)
        .map(|(&seq, r)| {
            let (code, message) = r.error.as_ref().map(|e| (e.code.as_str(), e.message.as_str())).unwrap_or(("rejected", ""));
            Rejection { seq, id: r.id.clone().unwrap_or_default(), code: code.into(), message: message.into() }
        })
        .collect()
}

pub async fn run(edge: Arc<Edge>, client: reqwest::Client, state: Arc<State>, writer: Writer, shutdown: CancellationToken) {
    let url = format!("{}/v1/events", edge.link.hub);
    let mut failures = 0u32;
    // The last seq of any upload whose outcome is unknown (no answer: it may have been applied),
    // since the start; at the start, everything not acknowledged (`Edge::sent_through`).
    let mut unknown_through = edge.sent_through.load(Ordering::SeqCst);
    loop {
        let e = edge.clone();
        let batch = match tokio::task::spawn_blocking(move || next_batch(&e)).await {
            Ok(Ok(b)) => b,
            other => {
                let error = other.err().map(|e| e.to_string()).unwrap_or_else(|| "a storage error".into());
                tracing::error!(%error, "cannot read the edge ledger");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if batch.body.is_empty() {
            // Nothing to send: look again soon (a new event or a shutdown ends the wait).
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(100)) => continue,
                _ = shutdown.cancelled() => return,
            }
        }
        let n = batch.body.len();
        // Before the request leaves: from now on a hub state may count these events.
        edge.sent_through.fetch_max(batch.last_seq, Ordering::SeqCst);
        let sent = client.post(&url).bearer_auth(&edge.link.token).json(&batch.body).send().await;
        // Whether a failed upload surely applied nothing: the hub's own refusal, or a
        // connection that never opened. Otherwise (no answer, a gateway's error) it may have.
        let (outcome, refused) = match sent {
            Ok(r) if r.status().is_success() => (r.json::<IngestResponse>().await.map_err(|e| e.to_string()), false),
            Ok(r) => {
                let status = r.status().as_u16();
                (Err(format!("the hub answered {}", r.status())), !matches!(status, 500 | 502 | 504))
            }
            Err(e) => (Err(crate::client::explain(&e)), e.is_connect()),
        };
        if outcome.is_err() {
            if refused {
                // Nothing of this upload is counted at the hub: a hub state may count no
                // event beyond those of uploads whose outcome is still unknown.
                edge.sent_through.store(unknown_through, Ordering::SeqCst);
            } else {
                unknown_through = unknown_through.max(batch.last_seq);
            }
        }
        match outcome {
            Ok(answer) if answer.results.len() == n => {
                let now = state.clock.now();
                // The writer records it, in its own transaction: one connection writes the ledger.
                match writer.acknowledge(batch.last_seq, answered(&batch, &answer), rejections(&batch, &answer)).await {
                    Ok(()) => {
                        edge.resync.lock().expect("resync lock").extend(batch.keys.into_iter().flatten());
                        edge.resync_wake.notify_one();
                        failures = 0;
                        {
                            let mut info = edge.info.lock().expect("sync info");
                            info.online = true;
                            info.last_sync_at = Some(now);
                            info.last_error = None;
                        }
                        tracing::info!(
                            sent = n,
                            applied = answer.applied,
                            duplicates = answer.duplicates,
                            rejected = answer.rejected,
                            "synced to the hub"
                        );
                    }
                    Err(error) => tracing::error!(%error, "cannot record the hub's answer; the batch will be sent again"),
                }
            }
            result => {
                let error = match result {
                    Err(e) => e,
                    Ok(_) => "the hub's answer did not match the batch".into(),
                };
                failures += 1;
                {
                    let mut info = edge.info.lock().expect("sync info");
                    info.online = false;
                    info.last_error = Some(error.clone());
                }
                let wait = backoff(failures);
                tracing::warn!(%error, retry_in_ms = wait.as_millis() as u64, pending = n, "sync failed");
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = shutdown.cancelled() => return,
                }
            }
        }
        if shutdown.is_cancelled() {
            return;
        }
    }
}
