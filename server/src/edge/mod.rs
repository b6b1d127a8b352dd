//! The edge node: the hub's engine running in a store, for that store's location.
//!
//! Tills post to the edge exactly as they would to the hub; the edge commits each event to its
//! own SQLite ledger (fsynced) before answering, so the store keeps selling while the internet
//! is down. Two tasks connect it to the hub:
//! - `forward`: sends the ledger to the hub in order, in batches, with the original ids, and
//!   records how far the hub has acknowledged it. A resend after a crash is harmless: the hub
//!   answers `duplicate`.
//! - `follow`: long-polls the hub's changes for the location, and rebases the local positions on
//!   them: the hub's on-hand plus the events the hub has not acknowledged yet, with the hub's
//!   reservation holds, so staff see what to set aside.

mod follow;
mod forward;
mod report;
pub mod routes;

use std::collections::HashSet;
use std::sync::atomic::AtomicI64;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use shelfcast_protocol::wire::ReservationView;
use shelfcast_protocol::{LocationId, PositionKey};
use tokio_util::sync::CancellationToken;

use crate::engine::{State, Writer};

/// Where an edge node's hub is and how to talk to it.
#[derive(Clone, Debug)]
pub struct EdgeLink {
    pub location: LocationId,
    pub hub: String,
    pub token: String,
    /// A PEM file of CA certificates trusted for the hub besides the platform's.
    pub ca: Option<std::path::PathBuf>,
    /// The least time between two fetches of the hub's changes (each one waits at the hub
    /// for the next change, so this only spaces out bursts).
    pub follow_every: Duration,
    /// How often the edge reports its link to the hub (`PUT /v1/locations/{location}/edge`).
    pub report_every: Duration,
}

/// What the edge knows about its link, for `GET /v1/sync`.
#[derive(Default)]
pub struct SyncInfo {
    pub online: bool,
    pub last_sync_at: Option<i64>,
    pub last_error: Option<String>,
}

/// Shared between the edge's tasks and its routes.
pub struct Edge {
    pub link: EdgeLink,
    pub info: Mutex<SyncInfo>,
    pub reservations: RwLock<Vec<ReservationView>>,
    /// A reading connection for the sync (what to send next, what is pending); the writer
    /// records what the hub acknowledged.
    pub db: Mutex<rusqlite::Connection>,
    /// Positions whose events the hub just answered for: the follower reads them again, so
    /// that the view rests on a hub state that counts those events (`protocol::sync`).
    pub resync: Mutex<HashSet<PositionKey>>,
    pub resync_wake: tokio::sync::Notify,
    /// Every event of the edge's ledger up to this seq may have been sent to the hub: set
    /// before each upload, and at a start to everything not acknowledged (an upload before a
    /// crash may have arrived). A hub state read while such an event has no answer yet may or
    /// may not count it.
    pub sent_through: AtomicI64,
    /// Talks to the hub: staff actions on reservations are passed on with the edge's token.
    pub client: reqwest::Client,
}

/// How long the start waits for the hub's answer to the token check; past it the hub counts as
/// unreachable and the edge starts (a store must open while the internet is down).
const START_CHECK: Duration = Duration::from_secs(5);

/// Asks the hub once, at start, whether it lets this edge's token follow the location. A hub
/// that refuses (401/403) stops the start with the reason: the store would otherwise look
/// healthy while learning nothing. An unreachable hub, or any other answer, lets it start; the
/// follower then reports what it meets in `/v1/sync`.
pub async fn check(link: &EdgeLink, client: &reqwest::Client) -> anyhow::Result<()> {
    // `since` past any version: the answer carries no positions, only what says the token works.
    let url = format!("{}/v1/locations/{}/changes", link.hub, link.location);
    let request = client.get(&url).query(&[("since", u64::MAX), ("wait", 0)]).bearer_auth(&link.token).timeout(START_CHECK);
    match request.send().await {
        Ok(answer) => match refusal(link, answer.status()) {
            Some(why) if matches!(answer.status().as_u16(), 401 | 403) => anyhow::bail!("{why}: check --token and the hub's device tokens"),
            Some(why) => tracing::warn!(error = %why, "the hub's answer to the token check"),
            None => {}
        },
        Err(e) => tracing::warn!(error = %crate::client::explain(&e), "the hub is unreachable: starting offline"),
    }
    Ok(())
}

/// What an answer of the hub to following the location means, if it is not a success.
fn refusal(link: &EdgeLink, status: reqwest::StatusCode) -> Option<String> {
    match status.as_u16() {
        200..=299 => None,
        401 => Some(format!("the hub refused this edge's token ({status})")),
        403 => Some(format!("the hub refused this token for location {} ({status})", link.location)),
        _ => Some(format!("the hub answered {status} to following location {}", link.location)),
    }
}

pub fn start(
    link: EdgeLink,
    client: reqwest::Client,
    db: rusqlite::Connection,
    state: Arc<State>,
    writer: Writer,
    shutdown: CancellationToken,
) -> anyhow::Result<Arc<Edge>> {
    let last_seq = crate::store::sync::last_seq(&db)?;
    let edge = Arc::new(Edge {
        link,
        info: Mutex::default(),
        reservations: RwLock::default(),
        db: Mutex::new(db),
        resync: Mutex::default(),
        resync_wake: tokio::sync::Notify::new(),
        sent_through: AtomicI64::new(last_seq),
        client: client.clone(),
    });
    tokio::spawn(forward::run(edge.clone(), client.clone(), state, writer.clone(), shutdown.clone()));
    tokio::spawn(report::run(edge.clone(), shutdown.clone()));
    tokio::spawn(follow::run(edge.clone(), client, writer, shutdown));
    Ok(edge)
}

/// Exponential backoff with jitter: from about 100 ms up to 5 s. A store's link is one client,
/// so a short cap costs the hub little and brings the store back quickly after an outage;
/// the jitter keeps many stores from retrying in step after a hub restart.
pub(crate) fn backoff(attempt: u32) -> Duration {
    use rand::Rng;
    let cap = 100u64.saturating_mul(1 << attempt.min(9)).min(5_000);
    Duration::from_millis(rand::rng().random_range(cap / 2..=cap))
}
