//! The `shelfcast` command line. Every flag can also come from `SHELFCAST_<FLAG>`; repeated
//! flags are separated by `;` there (`SHELFCAST_DEVICE_TOKEN="t1=berlin,hamburg;t2=*"`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::config::{defaults, HubConfig};
use crate::load::duration;
use crate::simulate::SimulateArgs;

#[derive(Parser, Debug)]
#[command(name = "shelfcast", version, about = "Real-time retail availability: hub, edge node and traffic simulator.")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Logs on stderr as text (coloured only on a terminal) or as JSON lines for log shippers.
    #[arg(long, global = true, env = "SHELFCAST_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the hub: on embedded SQLite, or on PostgreSQL with `--database`.
    Serve(ServeArgs),
    /// Run an edge node in a store: tills keep selling while the hub is unreachable.
    Edge(EdgeArgs),
    /// Drive till, return and receipt traffic at a hub or edge node.
    Simulate(SimulateArgs),
    /// Send a CSV stock file (`sku,location,qty[,type]`) to a hub or edge node as events: the
    /// same file again applies nothing twice. Exits 2 when a line was rejected (each is listed
    /// with its line number), 1 when the import could not finish.
    Import(crate::transfer::ImportArgs),
    /// Write the positions of a hub or edge node as CSV (`sku,location,on_hand,…`), which
    /// `import` reads back as counts.
    Export(crate::transfer::ExportArgs),
    /// Measure change → stream latency over many SSE subscribers of a hub (or of Pushpin).
    Fanout(crate::fanout_load::FanoutArgs),
    /// Print the `sha256:<hex>` form of a device token, for a tokens file that holds no secrets.
    HashToken {
        /// The token as devices will send it.
        token: String,
    },
    /// Exit 0 when URL answers 2xx, else 1 with the reason on stderr: a container's health
    /// check that needs no shell and no curl.
    Healthcheck {
        /// What to ask; by default `/readyz` of the hub or edge node of this host or container,
        /// at `--listen` (an unspecified address asked on loopback).
        url: Option<String>,
        /// Where the process to check listens: the same setting as its own `--listen`.
        #[arg(long, env = "SHELFCAST_LISTEN", default_value = defaults::LISTEN)]
        listen: SocketAddr,
        #[command(flatten)]
        trust: crate::client::TrustArgs,
    },
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on; port 0 picks a free one (printed as the first line on stdout).
    #[arg(long, env = "SHELFCAST_LISTEN", default_value = defaults::LISTEN)]
    pub listen: SocketAddr,
    /// Directory of the SQLite ledger.
    #[arg(long, env = "SHELFCAST_DATA", default_value = "./shelfcast-data")]
    pub data: PathBuf,
    #[command(flatten)]
    pub access: Access,
    #[command(flatten)]
    pub tls: TlsArgs,
    #[command(flatten)]
    pub limits: LimitArgs,
    #[command(flatten)]
    pub storage: StorageArgs,
    /// How long a reservation holds stock unless confirmed.
    #[arg(long, env = "SHELFCAST_HOLD_TTL", default_value = defaults::HOLD_TTL, value_parser = duration)]
    pub hold_ttl: Duration,
    /// Serve the demo product page at `/`, seed stock and run simulated tills.
    #[arg(long, env = "SHELFCAST_DEMO")]
    pub demo: bool,
    /// `postgres://…`: keep the ledger in PostgreSQL, shared by several hub replicas, instead
    /// of SQLite in `--data`.
    #[arg(long, env = "SHELFCAST_DATABASE")]
    pub database: Option<String>,
    /// `nats://…`: replicas announce their commits here so every replica's streams follow at once.
    #[arg(long, env = "SHELFCAST_NATS", requires = "database")]
    pub nats: Option<String>,
    /// The store directory (`GET /v1/locations`) from this JSON file, an array of stores each
    /// with its `id`, instead of the ledger (where the admin token maintains it); re-read on
    /// SIGHUP and whenever it changes.
    #[arg(long, env = "SHELFCAST_LOCATIONS_FILE")]
    pub locations_file: Option<PathBuf>,
    /// With `--database`: how long a replica that stops renewing its partition leases (killed,
    /// cut off) keeps them before other replicas take them over. Writes to those partitions
    /// wait, or are answered 503 with `Retry-After`, until then.
    #[arg(long, env = "SHELFCAST_LEASE", default_value = defaults::LEASE, value_parser = duration)]
    pub lease: Duration,
    /// With `--database`: while writes come together (the last group commit carried several),
    /// how long the writer waits for more before committing, so that one commit (two round
    /// trips to PostgreSQL) carries more of them. `0s`: never waits.
    #[arg(long, env = "SHELFCAST_COMMIT_WAIT", default_value = defaults::COMMIT_WAIT, value_parser = duration)]
    pub commit_wait: Duration,
    /// With `--database`: how long a replica keeps in memory a partition of the catalogue that
    /// it does not own and that no stream watches and no request needed.
    #[arg(long, env = "SHELFCAST_FOLLOW_IDLE", default_value = defaults::FOLLOW_IDLE, value_parser = duration)]
    pub follow_idle: Duration,
    /// Let webhooks call loopback, private and link-local addresses (a receiver inside your own
    /// network). Without it only public http(s) URLs are accepted and called.
    #[arg(long, env = "SHELFCAST_ALLOW_PRIVATE_WEBHOOKS")]
    pub allow_private_webhooks: bool,
    /// The pause after a webhook delivery's first failed try; it doubles at each failure (at
    /// most an hour), for 72 hours after the change.
    #[arg(long, env = "SHELFCAST_WEBHOOK_BACKOFF", default_value = defaults::WEBHOOK_BACKOFF, value_parser = duration)]
    pub webhook_backoff: Duration,
}

/// Who may write, which shop pages may read, and what counts as low stock: the same for the
/// hub and an edge node.
#[derive(Args, Debug)]
pub struct Access {
    /// `TOKEN=LOC1,LOC2` or `TOKEN=*`: a device token and the locations it may write. Repeatable.
    /// On an edge node each token is narrowed to `--location`.
    #[arg(long = "device-token", env = "SHELFCAST_DEVICE_TOKEN", value_delimiter = ';')]
    pub device_tokens: Vec<String>,
    /// A file of device tokens, one `TOKEN=LOC1,LOC2` (or `sha256:<hex>=…`, see `hash-token`)
    /// a line; re-read on SIGHUP and whenever it changes, so tokens rotate without a restart.
    #[arg(long, env = "SHELFCAST_TOKENS_FILE")]
    pub tokens_file: Option<PathBuf>,
    /// The token that enables `/admin/*` and reads `/metrics` (without it `/admin/*` answers
    /// 404, and `/metrics` is open unless `--metrics-token` is set).
    #[arg(long, env = "SHELFCAST_ADMIN_TOKEN")]
    pub admin_token: Option<String>,
    /// A token that reads `/metrics` and nothing else: give it to the scraper, not the admin
    /// token. With either token set, `/metrics` answers 401 to a request with neither.
    #[arg(long, env = "SHELFCAST_METRICS_TOKEN")]
    pub metrics_token: Option<String>,
    /// Signs the console's session cookies. Give every replica the same one (a Kubernetes
    /// Secret); without it each process picks its own at start, and staff sign in again after
    /// a restart or on another replica.
    #[arg(long, env = "SHELFCAST_SESSION_SECRET", hide_env_values = true)]
    pub session_secret: Option<String>,
    /// A shop origin allowed to read, stream and reserve from a browser. Repeatable; `*` for any.
    #[arg(long = "allow-origin", env = "SHELFCAST_ALLOW_ORIGIN", value_delimiter = ';')]
    pub allow_origins: Vec<String>,
    /// `low_stock` applies while 0 < available <= this.
    #[arg(long, env = "SHELFCAST_LOW_STOCK", default_value_t = shelfcast_protocol::DEFAULT_LOW_STOCK)]
    pub low_stock: i64,
    /// How much of the stock readers without a token (shoppers) see, on reads, streams and the
    /// store directory: `exact` every number; `low` the numbers only while a position is
    /// `low_stock`, otherwise `null`; `status` no numbers, only in, low or out of stock.
    /// Device and admin tokens (and console sessions) always see the numbers.
    #[arg(long, env = "SHELFCAST_DISCLOSE", default_value = "exact", value_parser = disclose)]
    pub disclose: shelfcast_protocol::Disclose,
}

fn disclose(text: &str) -> Result<shelfcast_protocol::Disclose, String> {
    shelfcast_protocol::Disclose::parse(text).ok_or_else(|| format!("`{text}` is not one of exact, low, status"))
}

/// HTTPS served by this process itself (otherwise TLS ends at a proxy or ingress in front).
#[derive(Args, Debug)]
pub struct TlsArgs {
    /// PEM certificate chain to serve HTTPS with (HTTP/2 and HTTP/1.1); re-read on SIGHUP and
    /// whenever it changes, so a renewed certificate is served without a restart.
    #[arg(long, env = "SHELFCAST_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of `--tls-cert`.
    #[arg(long, env = "SHELFCAST_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

impl TlsArgs {
    fn files(&self) -> Result<Option<crate::tls::TlsFiles>, String> {
        crate::tls::TlsFiles::from_flags(self.tls_cert.clone(), self.tls_key.clone())
    }
}

/// How the SQLite ledger is kept.
#[derive(Args, Debug)]
pub struct StorageArgs {
    /// How often the positions table is brought up to date. Every change is durable in the
    /// ledger when it is acknowledged either way; after a crash, the changes since are applied
    /// again from the ledger at the start, so this bounds that work.
    #[arg(long, env = "SHELFCAST_POSITIONS_EVERY", default_value = defaults::POSITIONS_EVERY, value_parser = duration)]
    pub positions_every: Duration,
}

/// Overload protection, per client address and per hub.
#[derive(Args, Debug)]
pub struct LimitArgs {
    /// Reservation requests per second per client address (bursts of three times that); 0: no limit.
    #[arg(long, env = "SHELFCAST_RESERVATION_RATE", default_value_t = defaults::RESERVATION_RATE)]
    pub reservation_rate: u32,
    /// New streams per second per client address (bursts of ten times that); 0: no limit.
    #[arg(long, env = "SHELFCAST_STREAM_RATE", default_value_t = defaults::STREAM_RATE)]
    pub stream_rate: u32,
    /// Streams open at once on this process; 0: no cap.
    #[arg(long, env = "SHELFCAST_MAX_STREAMS", default_value_t = defaults::MAX_STREAMS)]
    pub max_streams: usize,
    /// Take the client's address from the last `X-Forwarded-For` entry (only behind a proxy
    /// that sets it).
    #[arg(long, env = "SHELFCAST_TRUST_FORWARDED_FOR")]
    pub trust_forwarded_for: bool,
    /// Kernel send buffer per connection, in bytes: the most a client that stops reading can
    /// hold of this machine's memory. 0 leaves it to the kernel (up to 4 MiB each on Linux).
    #[arg(long, env = "SHELFCAST_SEND_BUFFER", default_value_t = defaults::SEND_BUFFER)]
    pub send_buffer: usize,
}

impl LimitArgs {
    fn config(&self) -> crate::LimitsConfig {
        crate::LimitsConfig::from_rates(self.reservation_rate, self.stream_rate, self.max_streams, self.trust_forwarded_for)
    }
}

impl Access {
    /// Applies these flags to `c`; `fallback` is the token spec used when no `--device-token` is given.
    fn apply(&self, mut c: HubConfig, fallback: Option<String>) -> Result<HubConfig, String> {
        let mut specs: Vec<String> = self.device_tokens.iter().map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect();
        if specs.is_empty() && self.tokens_file.is_none() {
            specs.extend(fallback);
        }
        for spec in &specs {
            c = c.with_device_token(spec)?;
        }
        c.tokens_file = self.tokens_file.clone();
        c.admin_token = self.admin_token.clone().filter(|t| !t.is_empty());
        c.metrics_token = self.metrics_token.clone().filter(|t| !t.is_empty());
        c.session_secret = self.session_secret.clone().filter(|t| !t.is_empty());
        c.allow_origins = self.allow_origins.iter().map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect();
        if self.low_stock < 0 {
            return Err("--low-stock must be zero or more".into());
        }
        c.low_stock = self.low_stock;
        c.disclose = self.disclose;
        Ok(c)
    }
}

impl ServeArgs {
    pub fn config(&self) -> Result<HubConfig, String> {
        let mut c = HubConfig::new(self.data.clone());
        c.listen = self.listen;
        c = self.access.apply(c, None)?;
        c.tls = self.tls.files()?;
        c.limits = self.limits.config();
        c.send_buffer = self.limits.send_buffer;
        c.positions_every = self.storage.positions_every;
        if self.hold_ttl.is_zero() {
            return Err("--hold-ttl must be longer than zero".into());
        }
        c.hold_ttl = self.hold_ttl;
        c.demo = self.demo;
        c.locations_file = self.locations_file.clone();
        c.database = self.database.clone().filter(|d| !d.is_empty());
        c.nats = self.nats.clone().filter(|n| !n.is_empty());
        if self.lease < Duration::from_millis(800) {
            return Err("--lease must be at least 800ms".into());
        }
        c.lease = self.lease;
        if self.commit_wait > Duration::from_millis(100) {
            return Err("--commit-wait must be at most 100ms".into());
        }
        c.commit_wait = self.commit_wait;
        c.follow_idle = self.follow_idle;
        c.allow_private_webhooks = self.allow_private_webhooks;
        if self.webhook_backoff.is_zero() {
            return Err("--webhook-backoff must be longer than zero".into());
        }
        c.webhook_backoff = self.webhook_backoff;
        Ok(c)
    }
}

#[derive(Args, Debug)]
pub struct EdgeArgs {
    /// The store this node serves.
    #[arg(long, env = "SHELFCAST_LOCATION")]
    pub location: String,
    /// Base URL of the hub, `https://…` (or `http://…` on a trusted network).
    #[arg(long, env = "SHELFCAST_HUB")]
    pub hub: String,
    #[command(flatten)]
    pub trust: crate::client::TrustArgs,
    /// The store's device token at the hub (it must cover `--location`).
    #[arg(long, env = "SHELFCAST_TOKEN")]
    pub token: String,
    #[arg(long, env = "SHELFCAST_LISTEN", default_value = "127.0.0.1:7070")]
    pub listen: SocketAddr,
    /// Directory of the edge's own SQLite ledger.
    #[arg(long, env = "SHELFCAST_DATA", default_value = "./shelfcast-edge")]
    pub data: PathBuf,
    /// Local device tokens; without any `--device-token`, the store's hub token is accepted
    /// from the store's devices too.
    #[command(flatten)]
    pub access: Access,
    #[command(flatten)]
    pub tls: TlsArgs,
    #[command(flatten)]
    pub limits: LimitArgs,
    #[command(flatten)]
    pub storage: StorageArgs,
    /// The least time between two fetches of the hub's changes (each waits at the hub for the
    /// next change).
    #[arg(long, env = "SHELFCAST_FOLLOW_EVERY", default_value = "100ms", value_parser = duration)]
    pub follow_every: Duration,
    /// How often the edge reports its link (pending events, last sync, last error) to the hub,
    /// for the console's Stores page; the hub shows it offline after three reports missed.
    #[arg(long, env = "SHELFCAST_REPORT_EVERY", default_value = "5s", value_parser = duration)]
    pub report_every: Duration,
}

impl EdgeArgs {
    pub fn config(&self) -> Result<HubConfig, String> {
        let location = shelfcast_protocol::LocationId::parse(&self.location).map_err(|e| format!("--location {e}"))?;
        if self.report_every < Duration::from_millis(100) {
            return Err("--report-every is at least 100ms".into());
        }
        let mut c = HubConfig::new(self.data.clone());
        c.listen = self.listen;
        c = self.access.apply(c, Some(format!("{}={}", self.token, location)))?;
        c.tls = self.tls.files()?;
        c.limits = self.limits.config();
        c.send_buffer = self.limits.send_buffer;
        c.positions_every = self.storage.positions_every;
        c.edge = Some(crate::edge::EdgeLink {
            location,
            hub: self.hub.trim_end_matches('/').to_string(),
            token: self.token.clone(),
            ca: self.trust.hub_ca.clone(),
            follow_every: self.follow_every,
            report_every: self.report_every,
        });
        Ok(c)
    }
}
