//! Shelfcast's shared language: the wire types every party exchanges and the pure inventory
//! rules that decide what an event or a reservation does to stock.
//!
//! Nothing here performs I/O or reads a clock: time comes in as an argument (milliseconds since
//! the Unix epoch), so the hub, the edge node and the browser element all compute the same answer
//! from the same inputs, and the rules are tested without waiting for anything.
//!
//! # Layout
//! - [`ids`]: parsed identifiers (`Sku`, `LocationId`, `EventId`, `PositionKey`, `ReservationKey`).
//! - [`event`]: stock events as devices send them, and their validation.
//! - [`stock`]: the stock of one position, and how events and holds change it.
//! - [`reservation`]: the life of a click-and-collect reservation.
//! - [`position`]: the `Position` a reader sees, and its in/low/out-of-stock status.
//! - [`decide`]: what a reservation request and an action on a reservation decide, the one
//!   place those rules are written (the hub's writer and the model both call it).
//! - [`directory`]: the store directory's entries, their checks, and nearest-store order.
//! - [`ledger`]: a complete in-memory model (dedupe + positions + reservations), the reference the
//!   stores are tested against.
//! - `model` (feature `model`, and in tests): the rules driven by command sequences with every
//!   invariant checked after each step, for the property tests and the fuzzer.
//! - [`partition`]: which partition (owner) a SKU's positions belong to on a partitioned hub.
//! - [`sync`]: when an edge node's view of a position may rest on a hub state (its own events
//!   counted exactly once, whatever order answers and follow reads arrive in).
//! - [`errors`]: every error code of the API, in one list.
//! - [`wire`]: request and response bodies of the HTTP API, and the error body.
//! - [`clock`]: RFC 3339 formatting and parsing of millisecond timestamps.

pub mod clock;
pub mod decide;
pub mod directory;
pub mod errors;
pub mod event;
pub mod ids;
pub mod ledger;
#[cfg(any(test, feature = "model"))]
pub mod model;
pub mod partition;
pub mod position;
pub mod reservation;
pub mod stock;
pub mod sync;
pub mod webhook;
pub mod wire;

pub use errors::ErrorCode;
pub use event::{Event, EventError, EventKind};
pub use ids::{EventId, IdError, LocationId, PositionKey, ReservationKey, Sku};
pub use position::{Disclose, Position, PublicPosition, Status, Versions, DEFAULT_LOW_STOCK};
pub use reservation::{Action, ReleaseReason, Reservation, ReservationStatus, StaffRelease, TransitionError};
pub use stock::{Hold, Insufficient, Stock};
