//! Durable storage of the ledger. The embedded default is one SQLite file.

pub mod sqlite;

pub use sqlite::{ReservationRow, Store, Txn};
