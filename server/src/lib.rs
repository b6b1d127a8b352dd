//! The Shelfcast hub: idempotent event ingest into a durable ledger, reservations that never
//! oversell, and live Server-Sent-Events streams of every position a page watches.
//!
//! # Layout
//! - [`config`]: what `shelfcast serve` is told (listen address, data directory, tokens, CORS).
//! - [`cli`]: the command line, every flag also read from `SHELFCAST_<FLAG>`.
//! - `clock`: wall time, or a hand-moved clock in tests.
//! - `auth`: device tokens (kept hashed) and the locations each may write.
//! - `error`: the one error type of the HTTP API and its JSON body.
//! - `engine`: the single writer with group commit (`engine::writer`; it decides with
//!   `protocol::decide`), the in-memory positions readers and streams see (`engine::state`), who
//!   watches which position (`engine::fanout`), the sweeper that expires holds
//!   (`engine::sweeper`) and the replicas' ordering of commits (`engine::replicas`).
//! - `store`: all SQL: the SQLite ledger (`store::sqlite`), the shared PostgreSQL one
//!   (`store::postgres`), an edge node's sync reads (`store::sync`), and the row types both
//!   ledgers share, and the replicas' read of what the others committed (`store::Changes`).
//! - `positions`: the positions in memory, compact (interned ids, stock inline, holds out of
//!   line), what reads, streams and the writer start from.
//! - `http`: the axum routes, one file per part of the API, each added with its OpenAPI entry
//!   (`http::app`), so `/openapi.json` is the list of routes a node serves.
//! - `metrics`: Prometheus counters and histograms.
//! - [`simulate`]: the `shelfcast simulate` traffic generator; [`fanout_load`]: `shelfcast fanout`;
//!   `load`: what they and the command line share (durations, percentiles, CPU used).
//! - `demo`: seeded catalogue and simulated tills for `serve --demo`.
//! - [`edge`]: the edge node: the same engine in a store, forwarding to and following the hub.
//! - [`server`]: wiring: open storage, start the writer, serve until shutdown.
//! - [`tls`]: HTTPS served by the process itself (HTTP/2 and HTTP/1.1), certificates reloaded.
//! - [`client`]: the one outbound HTTP client (HTTPS, trusted CAs) and its error sentences, and
//!   `shelfcast healthcheck`.

mod activity;
pub mod auth;
pub mod cli;
pub mod client;
mod clock;
pub mod config;
mod demo;
mod directory;
pub mod edge;
mod engine;
mod error;
pub mod fanout_load;
mod http;
mod load;
pub use http::limits::{LimitsConfig, Rate};

/// The parsers of untrusted input, public so that they can be fuzzed (see `fuzz/`).
pub mod untrusted {
    pub use crate::http::ingest::{decode as decode_events, Decoded, MAX_EVENTS};
    pub use crate::http::selection::{parse as parse_selection, MAX_POSITIONS};
    pub use crate::http::stream::resume_point;
}
mod metrics;
mod positions;
pub mod server;
pub mod simulate;
mod store;
pub mod tls;
pub mod transfer;
mod webhooks;

pub use clock::Clock;
pub use config::HubConfig;
pub use server::{run, Hub};
