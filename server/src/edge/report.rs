//! Tells the hub how the store's link is doing, every `--report-every` while the hub can be
//! reached: events pending here, the last sync, the last error. The hub keeps the latest
//! report per location for the console's Stores page and counts the edge offline once three
//! reports are missed (an edge that cannot reach its hub cannot say so itself).

use std::sync::Arc;

use shelfcast_protocol::wire::EdgeReport;
use tokio_util::sync::CancellationToken;

use super::Edge;

pub async fn run(edge: Arc<Edge>, shutdown: CancellationToken) {
    let url = format!("{}/v1/locations/{}/edge", edge.link.hub, edge.link.location);
    let every = edge.link.report_every;
    loop {
        let e = edge.clone();
        if let Ok(Ok(status)) = tokio::task::spawn_blocking(move || super::routes::status(&e)).await {
            let report = EdgeReport {
                pending: status.pending,
                last_sync_at: status.last_sync_at,
                last_error: status.last_error,
                rejected_total: status.rejected_total,
                every_ms: every.as_millis() as u64,
            };
            let sent = edge
                .client
                .put(&url)
                .bearer_auth(&edge.link.token)
                .json(&report)
                .timeout(every.max(std::time::Duration::from_secs(1)))
                .send()
                .await;
            match sent {
                Ok(r) if r.status().is_success() => {}
                Ok(r) => tracing::debug!(status = %r.status(), "the hub did not take the edge's report"),
                Err(e) => tracing::debug!(error = %crate::client::explain(&e), "cannot report to the hub"),
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.cancelled() => return,
        }
    }
}
