//! What the hub is told at start.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use shelfcast_protocol::DEFAULT_LOW_STOCK;

use crate::auth::DeviceTokens;
use crate::clock::Clock;

/// The defaults of the flags, set here only: the command line shows them, [`HubConfig::new`]
/// and `LimitsConfig::default` start from them.
pub mod defaults {
    pub const LISTEN: &str = "127.0.0.1:8080";
    pub const HOLD_TTL: &str = "15m";
    pub const POSITIONS_EVERY: &str = "1s";
    pub const LEASE: &str = "10s";
    pub const COMMIT_WAIT: &str = "2ms";
    pub const FOLLOW_IDLE: &str = "60s";
    pub const WEBHOOK_BACKOFF: &str = "5s";
    pub const SEND_BUFFER: usize = 256 * 1024;
    pub const RESERVATION_RATE: u32 = 20;
    pub const STREAM_RATE: u32 = 5;
    pub const MAX_STREAMS: usize = 50_000;
}

#[derive(Clone, Debug)]
pub struct HubConfig {
    pub listen: SocketAddr,
    pub data: PathBuf,
    /// Device tokens from the command line: always in force.
    pub tokens: DeviceTokens,
    /// More device tokens, re-read on SIGHUP and when the file changes.
    pub tokens_file: Option<PathBuf>,
    /// The store directory from this JSON file (re-read on SIGHUP and when it changes) instead
    /// of the ledger.
    pub locations_file: Option<PathBuf>,
    /// Enables and guards `/admin/*`, and guards `/metrics`, when set.
    pub admin_token: Option<String>,
    /// Reads `/metrics` and nothing else (for a scraper); guards `/metrics` when set.
    pub metrics_token: Option<String>,
    /// Signs the console's session cookies (the same on every replica).
    pub session_secret: Option<String>,
    pub allow_origins: Vec<String>,
    pub hold_ttl: Duration,
    pub low_stock: i64,
    /// How much of the stock readers without a token see.
    pub disclose: shelfcast_protocol::Disclose,
    pub demo: bool,
    pub clock: Clock,
    /// How often the sweeper looks for lapsed holds.
    pub sweep_interval: Duration,
    /// How often an idle stream sends a comment line so proxies keep it open.
    pub heartbeat: Duration,
    /// Per-client rate limits and the cap on open streams.
    pub limits: crate::http::limits::LimitsConfig,
    /// The kernel send buffer of each connection, in bytes (0: the kernel's own tuning).
    pub send_buffer: usize,
    /// How often the tokens file is checked for changes.
    pub tokens_poll: Duration,
    /// PostgreSQL URL: the ledger is shared with other replicas there instead of in `data`.
    pub database: Option<String>,
    /// NATS URL: replicas announce their commits there, so each one's streams follow at once.
    pub nats: Option<String>,
    /// With a shared ledger: how often a replica reads changes from the database even without news.
    pub resync_every: Duration,
    /// With a shared ledger: how long partitions stay with a replica that stopped renewing them.
    pub lease: Duration,
    /// With a shared ledger: how long the writer waits for more writes before a group commit
    /// while writes come together (zero: never).
    pub commit_wait: Duration,
    /// With a shared ledger: how long a partition nobody needs stays in a replica's memory.
    pub follow_idle: Duration,
    /// Webhooks may call loopback and private addresses (a receiver inside the network).
    pub allow_private_webhooks: bool,
    /// The first pause after a failed webhook delivery; doubled at each failure, at most an hour.
    pub webhook_backoff: Duration,
    /// SQLite: how often the positions table is brought up to date (`Store::save_every`).
    pub positions_every: Duration,
    /// Set when this process is an edge node rather than the hub.
    pub edge: Option<crate::edge::EdgeLink>,
    /// Serve HTTPS (HTTP/2 and HTTP/1.1) with this certificate instead of plain HTTP/1.1.
    pub tls: Option<crate::tls::TlsFiles>,
}

impl HubConfig {
    pub fn new(data: PathBuf) -> Self {
        Self {
            listen: defaults::LISTEN.parse().expect("a valid address"),
            data,
            tokens: DeviceTokens::default(),
            tokens_file: None,
            locations_file: None,
            admin_token: None,
            metrics_token: None,
            session_secret: None,
            allow_origins: Vec::new(),
            hold_ttl: crate::load::duration(defaults::HOLD_TTL).expect("a valid duration"),
            low_stock: DEFAULT_LOW_STOCK,
            disclose: shelfcast_protocol::Disclose::Exact,
            demo: false,
            clock: Clock::System,
            sweep_interval: Duration::from_millis(250),
            heartbeat: Duration::from_secs(10),
            tokens_poll: Duration::from_secs(1),
            database: None,
            nats: None,
            resync_every: Duration::from_millis(500),
            lease: crate::load::duration(defaults::LEASE).expect("a valid duration"),
            commit_wait: crate::load::duration(defaults::COMMIT_WAIT).expect("a valid duration"),
            follow_idle: crate::load::duration(defaults::FOLLOW_IDLE).expect("a valid duration"),
            allow_private_webhooks: false,
            webhook_backoff: crate::load::duration(defaults::WEBHOOK_BACKOFF).expect("a valid duration"),
            limits: Default::default(),
            send_buffer: defaults::SEND_BUFFER,
            positions_every: crate::load::duration(defaults::POSITIONS_EVERY).expect("a valid duration"),
            edge: None,
            tls: None,
        }
    }

    pub fn with_device_token(mut self, spec: &str) -> Result<Self, String> {
        self.tokens.add_spec(spec)?;
        Ok(self)
    }
}
