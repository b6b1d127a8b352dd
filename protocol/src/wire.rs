//! Bodies of the HTTP API, exactly as `CONTRACT.md` spells them.

use serde::{Deserialize, Serialize};

use crate::position::Position;

/// The most positions one read or one stream may ask for (`?positions=`, `?locations=`): the
/// hub refuses more, and the element splits a page's positions into streams of this many.
pub const MAX_POSITIONS: usize = 50;
use crate::reservation::ReservationStatus;

/// `{"error":{"code":…,"message":…, …details}}`: the body of every 4xx and 5xx answer.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorDetail {
    pub code: String,
    pub message: String,
    /// Set on `insufficient_stock`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub available: Option<i64>,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResultStatus {
    Applied,
    Duplicate,
    Rejected,
}

/// One event's outcome in an ingest response.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EventResult {
    /// The event's `id` as sent; `null` when it had none usable.
    pub id: Option<String>,
    pub status: ResultStatus,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error: Option<ErrorDetail>,
    /// Applied or duplicate: the position's version from which the hub counts this event. The
    /// position as read at this version or any later one includes it. (The version this
    /// event's commit gave the position; for a duplicate, the position's version when answered.)
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub version: Option<u64>,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct IngestResponse {
    pub applied: usize,
    pub duplicates: usize,
    pub rejected: usize,
    pub results: Vec<EventResult>,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PositionsResponse {
    pub positions: Vec<Position>,
}

/// `GET /v1/availability`: the positions as the reader may see them (see `--disclose`).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PublicPositions {
    pub positions: Vec<crate::PublicPosition>,
}

/// `POST /v1/reservations`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReserveRequest {
    pub sku: String,
    pub location: String,
    pub qty: i64,
    pub key: String,
}

/// A reservation as its holder sees it. Fields marked so are always written and
/// read only with the `all-fields` feature: the element knows what it reserved where, and each field
/// it does not read is code it does not download.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReservationView {
    pub id: String,
    /// (Read with the `all-fields` feature only.)
    #[cfg_attr(not(feature = "all-fields"), serde(skip_deserializing))]
    pub sku: String,
    /// (Read with the `all-fields` feature only.)
    #[cfg_attr(not(feature = "all-fields"), serde(skip_deserializing))]
    pub location: String,
    pub qty: i64,
    pub status: ReservationStatus,
    /// RFC 3339 while held; `null` once confirmed or closed.
    pub expires_at: Option<String>,
    /// While held: the milliseconds left on the hub's clock when it answered. A client counts
    /// down from this with its own monotonic clock, so a device whose wall clock is off still
    /// shows the hub's time left (`expires_at` is the same instant, for showing "until HH:MM").
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub expires_in_ms: Option<u64>,
    /// The holder's secret; present only in answers to the holder.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub token: Option<String>,
    /// Once released: [`RELEASED_BY_STORE`] (staff could not hand it over; `reason` says why) or
    /// [`RELEASED_BY_SHOPPER`]. A string rather than an enum: the element reads it, and a
    /// string costs its download less.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub released_by: Option<String>,
    /// Why the store released it (read with the `all-fields` feature only).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    #[cfg_attr(not(feature = "all-fields"), serde(skip_deserializing))]
    pub reason: Option<crate::ReleaseReason>,
    /// When it was made (RFC 3339): the pickup desk lists the oldest first (read with the
    /// `all-fields` feature only).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    #[cfg_attr(not(feature = "all-fields"), serde(skip_deserializing))]
    pub created_at: Option<String>,
}

/// `PUT /v1/locations/{location}/edge`: an edge node's report of its link to the hub, sent
/// every `every_ms` while it can reach the hub.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EdgeReport {
    /// Events taken at the store that the hub has not acknowledged yet.
    pub pending: u64,
    /// When the edge last synced events to the hub (RFC 3339).
    pub last_sync_at: Option<String>,
    /// The last sync failure, if the last attempt failed.
    pub last_error: Option<String>,
    /// Events the hub refused, in all.
    pub rejected_total: u64,
    /// How often the edge reports: the hub counts it offline after three reports missed.
    pub every_ms: u64,
}

/// `GET /v1/edges`: each edge node's state as the hub knows it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EdgeState {
    pub location: String,
    /// A report arrived within three of its intervals.
    pub online: bool,
    /// When the hub last heard from the edge (RFC 3339).
    pub reported_at: String,
    #[serde(flatten)]
    pub report: EdgeReport,
}

/// `released_by` of a reservation the store released (staff could not set it aside).
pub const RELEASED_BY_STORE: &str = "store";
/// `released_by` of a reservation its shopper released.
pub const RELEASED_BY_SHOPPER: &str = "shopper";

/// `GET /v1/locations/{location}/changes?since=V`: what an edge node needs to follow the hub.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LocationChanges {
    /// The hub's version (on a partitioned hub, the changes published over all partitions):
    /// ask with `since` = this next time when there is no `cursor`.
    pub version: u64,
    /// Ask with `since` = this next time: every change up to it is in this answer (the
    /// version itself on a hub of one partition; the version of each partition otherwise).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub cursor: Option<String>,
    /// The location's positions changed after `since`, in ascending version order.
    pub positions: Vec<Position>,
    /// The location's open reservations (held or confirmed), without tokens.
    pub reservations: Vec<ReservationView>,
}

/// `GET /v1/sync` on an edge node.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SyncStatus {
    pub online: bool,
    /// Events accepted here and not yet acknowledged by the hub.
    pub pending: u64,
    pub last_sync_at: Option<String>,
    pub last_error: Option<String>,
    /// Events the hub refused (kept here, never dropped silently), most recent first.
    pub rejected: Vec<EventResult>,
    pub rejected_total: u64,
}

/// What an entry of a position's history is.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HistoryKind {
    /// A stock event (a till's sale, a count, …); `type` says which.
    Event,
    /// A reservation changed status (`from` → `to`).
    Reservation,
}

/// One entry of a position's history: an event or a reservation's change, with the position
/// as the change left it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryItem {
    pub kind: HistoryKind,
    /// The event's id, or the reservation's.
    pub id: String,
    /// An event's type.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none", default)]
    pub event_type: Option<crate::EventKind>,
    /// A reservation's status before (`null` when this change made it) and after.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub from: Option<ReservationStatus>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub to: Option<ReservationStatus>,
    /// The event's quantity, or the reservation's.
    pub qty: i64,
    /// When the event happened at its source, as the device said (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub at: Option<String>,
    /// When the hub committed the change (RFC 3339).
    pub received_at: String,
    /// Who made the change: the device token's label (never the token), `admin`, `shopper`,
    /// or `null` for the hub itself (a hold that expired).
    pub by: Option<String>,
    /// The position after the change.
    pub on_hand: i64,
    pub reserved: i64,
    pub version: u64,
}

/// `GET /v1/positions/{sku}/{location}/history`: a page of the history, newest first.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryPage {
    pub items: Vec<HistoryItem>,
    /// `before` for the page of older entries; `null` on the oldest page.
    pub next: Option<String>,
}

/// `POST /admin/webhooks`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WebhookRequest {
    /// An `https://` (or `http://`) URL; a public address unless the hub allows private ones.
    pub url: String,
    /// The topics to send, e.g. `position.out_of_stock`, `reservation.created`, `watch.triggered`.
    pub events: Vec<String>,
    /// Location ids, or `["*"]` (the default) for all.
    #[serde(default)]
    pub locations: Option<Vec<String>>,
}

/// A webhook subscription; `secret` only in the answer that creates it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WebhookView {
    pub id: String,
    pub url: String,
    pub events: Vec<String>,
    pub locations: Vec<String>,
    /// RFC 3339.
    pub created_at: String,
    /// `whsec_…`: signs every delivery (Standard Webhooks). Shown once.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub secret: Option<String>,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WebhookList {
    pub webhooks: Vec<WebhookView>,
}

/// One delivery of a webhook, as its subscriber's operator checks it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeliveryView {
    /// The `webhook-id` header: the same on every try.
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// `pending`, `delivered`, `failed` (retried for the full period) or `cancelled` (its webhook deleted).
    pub state: String,
    pub attempts: i64,
    /// The receiver's last HTTP status, if it answered.
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    /// RFC 3339, while pending.
    pub next_try: Option<String>,
    pub created_at: String,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeliveryList {
    pub deliveries: Vec<DeliveryView>,
}

/// `POST /v1/watches`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WatchRequest {
    pub sku: String,
    pub location: String,
    /// The shop's own opaque id for the shopper (1 to 128 printable ASCII characters, no `@`).
    pub subscriber: String,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WatchView {
    pub id: String,
    pub sku: String,
    pub location: String,
    pub subscriber: String,
    pub created_at: String,
}
