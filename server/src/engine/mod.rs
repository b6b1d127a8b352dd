//! The hub's core: one writer thread that owns the database and decides every change, and the
//! in-memory state it publishes to readers and streams after each commit.

pub mod fanout;
pub mod ownership;
pub mod replicas;
pub mod route;
pub mod state;
pub mod sweeper;
pub mod writer;

pub use state::State;
pub use writer::{ActAuth, HubPosition, WriteError, Writer};
