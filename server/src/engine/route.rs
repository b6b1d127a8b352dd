//! Writes on a partitioned hub reach the one replica that decides them: the owner of their
//! partition. A replica writes what it owns itself and sends the rest, grouped by owner (one
//! message for all of a request's events that one replica owns), by NATS request-reply to
//! `shelfcast.member.<owner>`; the owner's writer answers, and the client sees one answer.
//!
//! While a partition moves (released, or its owner gone until the lease passes) its writes are
//! retried, with the owners read again, for up to `PATIENCE`; then they are answered "moving"
//! (503, `Retry-After`). Nothing is applied twice: events and reservation keys are idempotent,
//! and a refused write changed nothing.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use shelfcast_protocol::ledger::Outcome;
use shelfcast_protocol::{Action, Event, PositionKey, ReservationKey};
use tokio_util::sync::CancellationToken;

use super::ownership::Ownership;
use super::writer::{ActAuth, Label, Reserved, WriteError, Writer};
use crate::metrics::Metrics;
use crate::store::leases::Leases;
use crate::store::ReservationRow;

/// How long a write waits for its partition to have an owner again before it is answered 503.
const PATIENCE: Duration = Duration::from_secs(5);
/// How long an owner has to answer a forwarded write (its commit included). One that does not
/// may be gone (killed while answering): the write is sent again, to whoever owns it by then.
const ANSWER_WITHIN: Duration = Duration::from_secs(2);

/// A write sent to its partition's owner.
#[derive(Serialize, Deserialize)]
enum Forward {
    Ingest(Vec<Event>, Label),
    Reserve { key: ReservationKey, position: PositionKey, qty: i64 },
    Act { id: String, auth: ActAuth, action: Action },
}

fn subject(member: &str) -> String {
    format!("shelfcast.member.{member}")
}

pub struct Route {
    ownership: Arc<Ownership>,
    leases: Leases,
    nats: Option<async_nats::Client>,
    metrics: Arc<Metrics>,
}

/// Where a group of writes goes.
enum Target {
    Here,
    Replica(String),
    Nobody,
}

impl Route {
    pub fn new(ownership: Arc<Ownership>, leases: Leases, nats: Option<async_nats::Client>, metrics: Arc<Metrics>) -> Route {
        Route { ownership, leases, nats, metrics }
    }

    fn target(&self, sku: &str) -> Target {
        let p = self.ownership.partition(sku);
        if self.ownership.writes(p) {
            return Target::Here;
        }
        match self.ownership.owner(p) {
            Some(m) if m == self.ownership.me => Target::Here,
            Some(m) => Target::Replica(m),
            None => Target::Nobody,
        }
    }

    /// Sends `forward` to `member` and decodes its answer.
    async fn send<T: for<'de> Deserialize<'de>>(&self, member: &str, forward: &Forward) -> Result<T, WriteError> {
        let Some(nats) = &self.nats else { return Err(WriteError::Moved) };
        if nats.connection_state() != async_nats::connection::State::Connected {
            // Not queued for a NATS that may be away for long: the caller waits and retries.
            self.metrics.forwarded.with_label_values(&["moved"]).inc();
            return Err(WriteError::Moved);
        }
        let payload = serde_json::to_vec(forward).expect("a write serialises");
        let request = async_nats::Request::new().payload(payload.into()).timeout(Some(ANSWER_WITHIN));
        let (answer, outcome) = match nats.send_request(subject(member), request).await {
            Ok(msg) => {
                let answer = serde_json::from_slice::<Result<T, WriteError>>(&msg.payload)
                    .unwrap_or_else(|e| Err(WriteError::Internal(format!("an unreadable answer from replica {member}: {e}"))));
                let outcome = match &answer {
                    Ok(_) => "answered",
                    Err(WriteError::Moved) => "moved",
                    Err(_) => "failed",
                };
                (answer, outcome)
            }
            // The owner is gone (killed, or just stopped): its partitions pass to another.
            Err(e) if e.kind() == async_nats::RequestErrorKind::NoResponders => (Err(WriteError::Moved), "moved"),
            // It may have committed: sent again, idempotency answers "duplicate" (or the same hold).
            Err(error) => {
                tracing::warn!(%error, member, "a forwarded write went unanswered; sending it again");
                (Err(WriteError::Moved), "unanswered")
            }
        };
        self.metrics.forwarded.with_label_values(&[outcome]).inc();
        answer
    }

    /// Waits a little for a moving partition, reading the owners again; `false` once out of patience.
    async fn wait(&self, since: Instant, tries: &mut u32) -> bool {
        if since.elapsed() >= PATIENCE {
            return false;
        }
        *tries += 1;
        tokio::time::sleep(Duration::from_millis((10u64 << (*tries).min(5)).min(250))).await;
        if let Err(error) = self.ownership.refresh(&self.leases).await {
            tracing::debug!(%error, "partition owners not read");
        }
        true
    }

    /// Each event to its partition's owner, grouped by owner; the answers in the request's order.
    pub async fn ingest(&self, writer: &Writer, events: Vec<Event>, by: Label) -> Result<Vec<(Outcome, u64)>, WriteError> {
        let mut answers: Vec<Option<(Outcome, u64)>> = vec![None; events.len()];
        let mut todo: Vec<usize> = (0..events.len()).collect();
        let (since, mut tries) = (Instant::now(), 0);
        loop {
            let mut groups: HashMap<Option<String>, Vec<usize>> = HashMap::new();
            for i in todo.drain(..) {
                let to = match self.target(events[i].key.sku.as_str()) {
                    Target::Here => Some(self.ownership.me.clone()),
                    Target::Replica(m) => Some(m),
                    Target::Nobody => None,
                };
                groups.entry(to).or_default().push(i);
            }
            let sends = groups.into_iter().map(|(to, idx)| {
                let batch: Vec<Event> = idx.iter().map(|i| events[*i].clone()).collect();
                let by = by.clone();
                async move {
                    let answer = match to {
                        None => Err(WriteError::Moved),
                        Some(m) if m == self.ownership.me => writer.ingest_here(batch, by).await,
                        Some(m) => self.send(&m, &Forward::Ingest(batch, by)).await,
                    };
                    (idx, answer)
                }
            });
            for (idx, answer) in futures_util::future::join_all(sends).await {
                match answer {
                    Ok(outcomes) if outcomes.len() == idx.len() => {
                        for (i, o) in idx.into_iter().zip(outcomes) {
                            answers[i] = Some(o);
                        }
                    }
                    Ok(_) => return Err(WriteError::Internal("a forwarded ingest answered another count of events".into())),
                    Err(WriteError::Moved) => todo.extend(idx),
                    Err(e) => return Err(e),
                }
            }
            if todo.is_empty() {
                return Ok(answers.into_iter().map(|a| a.expect("every event answered")).collect());
            }
            todo.sort_unstable();
            if !self.wait(since, &mut tries).await {
                return Err(WriteError::Moved);
            }
        }
    }

    /// One write to the owner of `sku`'s partition (`here` when that is this replica), sent
    /// again while the partition is moving.
    async fn to_owner<T, F>(&self, sku: &str, here: impl Fn() -> F, forward: impl Fn() -> Forward) -> Result<T, WriteError>
    where
        T: for<'de> Deserialize<'de>,
        F: std::future::Future<Output = Result<T, WriteError>>,
    {
        let (since, mut tries) = (Instant::now(), 0);
        loop {
            let answer = match self.target(sku) {
                Target::Here => here().await,
                Target::Replica(m) => self.send(&m, &forward()).await,
                Target::Nobody => Err(WriteError::Moved),
            };
            if !matches!(answer, Err(WriteError::Moved)) || !self.wait(since, &mut tries).await {
                return answer;
            }
        }
    }

    pub async fn reserve(&self, writer: &Writer, key: ReservationKey, position: PositionKey, qty: i64) -> Result<Reserved, WriteError> {
        self.to_owner(
            position.sku.as_str(),
            || writer.reserve_here(key.clone(), position.clone(), qty),
            || Forward::Reserve { key: key.clone(), position: position.clone(), qty },
        )
        .await
    }

    /// An action goes to the owner of the reservation's position (read from the ledger).
    pub async fn act(&self, writer: &Writer, id: String, auth: ActAuth, action: Action) -> Result<ReservationRow, WriteError> {
        let position = match self.leases.reservation_position(&id).await {
            Ok(Some(p)) => p,
            Ok(None) => return Err(WriteError::NotFound),
            Err(_) => return Err(WriteError::Unavailable),
        };
        self.to_owner(
            position.sku.as_str(),
            || writer.act_here(id.clone(), auth.clone(), action),
            || Forward::Act { id: id.clone(), auth: auth.clone(), action },
        )
        .await
    }
}

/// Answers the writes other replicas send for the partitions this one owns, until `shutdown`.
/// Then it drains its subscription: NATS sends no more writes here (their senders hear "no
/// responders" and go to the partitions' next owner at once), and the writes already on their
/// way or taken are still answered, for up to `ANSWER_WITHIN` (after which their senders send
/// them again). The writes wait for their answers together in this one task (they share group
/// commits): no task per write, and one wake-up answers all the writes of a commit.
pub async fn serve(nats: async_nats::Client, me: String, writer: Writer, shutdown: CancellationToken) {
    let mut sub = match nats.subscribe(subject(&me)).await {
        Ok(s) => s,
        Err(error) => return tracing::error!(%error, "NATS: cannot take forwarded writes"),
    };
    let mut answering = futures_util::stream::FuturesUnordered::new();
    loop {
        let msg = tokio::select! {
            _ = shutdown.cancelled() => break,
            Some(()) = answering.next(), if !answering.is_empty() => continue,
            msg = sub.next() => match msg { Some(m) => m, None => break },
        };
        answering.extend(answer(&nats, &writer, msg));
    }
    if let Err(error) = sub.drain().await {
        tracing::warn!(%error, "NATS: forwarded writes not drained");
    }
    let last = async {
        loop {
            let msg = tokio::select! {
                Some(()) = answering.next(), if !answering.is_empty() => continue,
                msg = sub.next() => match msg { Some(m) => m, None => break },
            };
            answering.extend(answer(&nats, &writer, msg));
        }
        while answering.next().await.is_some() {}
    };
    let _ = tokio::time::timeout(ANSWER_WITHIN, last).await;
}

/// The answer to one forwarded write, published to its sender once the writer has decided it
/// (`None`: a message without a reply subject, which nobody waits for).
fn answer<'a>(
    nats: &'a async_nats::Client,
    writer: &'a Writer,
    msg: async_nats::Message,
) -> Option<impl std::future::Future<Output = ()> + 'a> {
    let reply = msg.reply?;
    Some(async move {
        let answer = match serde_json::from_slice::<Forward>(&msg.payload) {
            Ok(Forward::Ingest(events, by)) => serde_json::to_vec(&writer.ingest_here(events, by).await),
            Ok(Forward::Reserve { key, position, qty }) => serde_json::to_vec(&writer.reserve_here(key, position, qty).await),
            Ok(Forward::Act { id, auth, action }) => serde_json::to_vec(&writer.act_here(id, auth, action).await),
            Err(e) => serde_json::to_vec(&Err::<(), _>(WriteError::Internal(format!("an unreadable forwarded write: {e}")))),
        };
        let _ = nats.publish(reply, answer.expect("an answer serialises").into()).await;
    })
}
