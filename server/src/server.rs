//! Wiring: open the ledger, load the positions, start the writer and the sweeper, serve HTTP
//! until told to stop, then drain: streams close, in-flight commits finish, the writer exits.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::Context;
use axum::Router;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use utoipa_axum::router::OpenApiRouter;

use crate::auth::{Credentials, Operators};
use crate::config::HubConfig;
use crate::demo;
use crate::directory::Directory;
use crate::engine::ownership::{self, Lessee, Ownership};
use crate::engine::replicas;
use crate::engine::route::{self, Route};
use crate::engine::{sweeper, State, Writer};
use crate::http::{self, Shared};
use crate::metrics::Metrics;
use crate::store::leases::Leases;
use crate::store::postgres::{self, PgBackend};
use crate::store::{Changes, Reader, Store};
use crate::tls::Tls;

/// A hub running in this process: what tests and `main` hold on to.
pub struct Hub {
    pub addr: SocketAddr,
    tls: bool,
    shutdown: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Hub {
    /// Binds `config.listen` and starts serving in the background.
    pub async fn start(config: HubConfig) -> anyhow::Result<Hub> {
        let listener = TcpListener::bind(config.listen).await.with_context(|| format!("binding {}", config.listen))?;
        let addr = listener.local_addr()?;
        let shutdown = CancellationToken::new();
        let ready = prepare(config, shutdown.clone()).await?;
        let tls = ready.tls.is_some();
        let task = tokio::spawn(ready.serve(listener));
        Ok(Hub { addr, tls, shutdown, task })
    }

    pub fn url(&self) -> String {
        format!("{}://{}", if self.tls { "https" } else { "http" }, self.addr)
    }

    /// Graceful stop: stop accepting, close streams, finish in-flight commits.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        self.task.await?
    }
}

/// Runs a hub on `listener` until `shutdown` is cancelled. `ready` is called once it can serve:
/// the ledger open, the database reached, the tokens and certificate read.
pub async fn run(config: HubConfig, listener: TcpListener, shutdown: CancellationToken, ready: impl FnOnce()) -> anyhow::Result<()> {
    let prepared = prepare(config, shutdown).await?;
    ready();
    if let Some(token) = &prepared.demo_token {
        println!("demo device token: {token}");
    }
    prepared.serve(listener).await
}

struct Prepared {
    router: Router,
    /// `--demo`: the device token the demo's tills use, for the person running it.
    demo_token: Option<String>,
    tls: Option<Tls>,
    send_buffer: usize,
    writer: Writer,
    writer_thread: std::thread::JoinHandle<()>,
    shutdown: CancellationToken,
}

async fn prepare(config: HubConfig, shutdown: CancellationToken) -> anyhow::Result<Prepared> {
    let metrics = Arc::new(Metrics::new());
    let hold_ttl = config.hold_ttl.as_millis() as i64;
    // A partitioned hub: what loads the partitions its readers need.
    let mut follower = None;
    let mut owners = None;
    let (state, writer, writer_thread, reader) = match &config.database {
        None => {
            let mut store = Store::open(&config.data).with_context(|| format!("opening the ledger in {}", config.data.display()))?;
            store.save_every(config.positions_every);
            if config.edge.is_some() {
                store.enable_edge().context("preparing the edge ledger")?;
            }
            let loaded = store.load().context("loading positions")?;
            tracing::info!(positions = loaded.positions.len(), version = loaded.version, data = %config.data.display(), "ledger loaded");
            let state = Arc::new(State::new(loaded.positions, vec![loaded.version], config.clock.clone(), config.low_stock));
            let (writer, thread) =
                Writer::spawn(Box::new(store), state.clone(), metrics.clone(), hold_ttl, std::time::Duration::ZERO, None, None);
            let reader = Store::open_reader(&config.data).context("opening a reader")?;
            (state, writer, thread, Reader::Sqlite(Arc::new(Mutex::new(reader))))
        }
        Some(url) => {
            anyhow::ensure!(config.edge.is_none(), "an edge node keeps its ledger in SQLite (--data), not in PostgreSQL");
            let u = url.clone();
            let backend = tokio::task::spawn_blocking(move || PgBackend::open(&u))
                .await?
                .context("connecting to PostgreSQL and migrating the schema")?;
            let pool = postgres::pool(url, 16).context("PostgreSQL pool")?;
            let leases = Leases::new(pool.clone(), member_id());
            let partitions = leases.count().await.context("reading the partitions")?;
            // Nothing in memory yet: a replica follows the partitions it takes (below) and
            // those its readers need, each loaded when first needed.
            let state = Arc::new(State::partitioned(partitions, config.clock.clone(), config.low_stock));
            let (sequencer, nats) =
                replicas::start(state.clone(), Changes::new(pool.clone()), config.nats.clone(), config.resync_every, shutdown.clone())
                    .await;
            let ownership = Arc::new(Ownership::new(leases.me.clone(), partitions, config.lease));
            let (writer, thread) = Writer::spawn(
                Box::new(backend),
                state.clone(),
                metrics.clone(),
                hold_ttl,
                config.commit_wait,
                Some(sequencer.clone()),
                Some(ownership.clone()),
            );
            let lessee = Lessee {
                ownership: ownership.clone(),
                leases: leases.clone(),
                writer: writer.clone(),
                state: state.clone(),
                sequencer: sequencer.clone(),
                nats: nats.clone(),
                metrics: metrics.clone(),
            };
            lessee.settle().await.context("taking partition leases")?;
            tracing::info!(
                member = %ownership.me,
                partitions,
                owned = ownership.owned().len(),
                positions = state.len(),
                nats = config.nats.as_deref().unwrap_or("none"),
                "replica joined"
            );
            tokio::spawn(replicas::let_go(sequencer.clone(), ownership.clone(), config.follow_idle, shutdown.clone()));
            follower = Some(sequencer);
            owners = Some(ownership.clone());
            tokio::spawn(lessee.run(shutdown.clone()));
            if let Some(nats) = &nats {
                tokio::spawn(route::serve(nats.clone(), ownership.me.clone(), writer.clone(), shutdown.clone()));
                tokio::spawn(ownership::listen(nats.clone(), ownership.clone(), shutdown.clone()));
            }
            let writer = writer.routed(Arc::new(Route::new(ownership, leases, nats, metrics.clone())));
            (state, writer, thread, Reader::Postgres(pool))
        }
    };

    sweeper::spawn(state.clone(), writer.clone(), config.sweep_interval, shutdown.clone());
    if config.edge.is_none() {
        // The hub sends webhooks; an edge node's changes reach them through the hub.
        state.hooks.set_backoff(config.webhook_backoff);
        state.hooks.refresh(&reader).await.context("reading the webhook subscriptions")?;
        let (r, w, h, m, clock) = (reader.clone(), writer.clone(), state.hooks.clone(), metrics.clone(), config.clock.clone());
        tokio::spawn(crate::webhooks::run(r, w, h, m, clock, config.allow_private_webhooks, shutdown.clone()));
        if reader.shared() {
            // Other replicas add and remove subscriptions too.
            let (reader, hooks, stop) = (reader.clone(), state.hooks.clone(), shutdown.clone());
            tokio::spawn(async move {
                while !stop.is_cancelled() {
                    tokio::select! {
                        _ = tokio::time::sleep(crate::webhooks::SHARED_FRESH) => {}
                        _ = stop.cancelled() => return,
                    }
                    if let Err(error) = hooks.refresh(&reader).await {
                        tracing::warn!(%error, "webhook subscriptions not read; the ones known stay in force");
                    }
                }
            });
        }
    }
    let mut tokens = config.tokens.clone();
    let mut extra = OpenApiRouter::new();
    let mut edge = None;
    let mut demo = None;
    if let Some(link) = config.edge.clone() {
        let db = Store::open_reader(&config.data).context("opening the sync bookkeeping")?;
        let client = crate::client::for_hub(link.ca.as_deref()).context("the client for the hub")?;
        crate::edge::check(&link, &client).await?;
        tracing::info!(location = %link.location, hub = %link.hub, "edge node: forwarding to and following the hub");
        edge =
            Some(crate::edge::start(link, client, db, state.clone(), writer.clone(), shutdown.clone()).context("starting the edge node")?);
        extra = crate::edge::routes::routes();
    }
    if config.demo {
        let demo_token = demo::start(&state, &writer, &mut tokens, shutdown.clone());
        tracing::info!("demo mode: simulated tills running; device token for /v1/events printed on stdout");
        demo = Some(demo_token);
        extra = demo::routes().into();
    }
    let tls = match config.tls.clone() {
        Some(files) => {
            let tls = Tls::load(files).context("loading the TLS certificate")?;
            let reloading = tls.clone();
            let paths = tls.files().paths().map(Path::to_path_buf).to_vec();
            tokio::spawn(watch_files(paths, config.tokens_poll, shutdown.clone(), move |why| match reloading.reload() {
                Ok(()) => tracing::info!(why, "TLS certificate reloaded"),
                Err(error) => {
                    tracing::error!(%error, why, "TLS certificate NOT reloaded; the previous one stays in force")
                }
            }));
            Some(tls)
        }
        None => None,
    };
    let restrict = config.edge.as_ref().map(|l| l.location.clone());
    let operators = Operators {
        admin: config.admin_token.as_deref(),
        metrics: config.metrics_token.as_deref(),
        session_secret: config.session_secret.as_deref(),
    };
    let tokens = Credentials::new(tokens, config.tokens_file.clone(), restrict, operators)
        .map_err(anyhow::Error::msg)
        .context("loading device tokens")?;
    if let Some(path) = tokens.file().cloned() {
        let reloading = tokens.clone();
        tokio::spawn(watch_files(vec![path.clone()], config.tokens_poll, shutdown.clone(), move |why| match reloading.reload() {
            Ok(n) => {
                tracing::info!(tokens = n, file = %path.display(), why, "device tokens reloaded")
            }
            Err(error) => {
                tracing::error!(%error, why, "device tokens NOT reloaded; the previous tokens stay in force")
            }
        }));
    }
    if tokens.is_empty() {
        tracing::warn!("no device token given: every ingest request will be answered 401");
    }
    let directory = match &config.locations_file {
        Some(path) => {
            let directory = Arc::new(Directory::from_file(path).map_err(anyhow::Error::msg).context("--locations-file")?);
            let reloading = directory.clone();
            let path = path.clone();
            tokio::spawn(watch_files(vec![path.clone()], config.tokens_poll, shutdown.clone(), move |why| match reloading.reload() {
                Ok(n) => tracing::info!(stores = n, file = %path.display(), why, "store directory reloaded"),
                Err(error) => tracing::error!(%error, why, "store directory NOT reloaded; the previous one stays in force"),
            }));
            directory
        }
        None => Arc::new(Directory::in_ledger(reader.shared())),
    };
    if config.demo && directory.file().is_none() {
        for (id, store) in demo::directory() {
            writer.set_store(id.into(), Some(serde_json::to_string(&store)?)).await.context("entering the demo stores")?;
        }
    }
    let app = Arc::new(Shared {
        state,
        writer: writer.clone(),
        tokens,
        metrics,
        reader,
        heartbeat: config.heartbeat,
        shutdown: shutdown.clone(),
        edge,
        limits: http::limits::Limits::start(&config.limits, shutdown.clone()),
        follower,
        owners,
        secure_cookies: tls.is_some(),
        directory,
        disclose: config.disclose,
        allow_private_webhooks: config.allow_private_webhooks,
    });
    let router = http::app(app, &config.allow_origins, extra, config.edge.is_none());
    Ok(Prepared { router, demo_token: demo, tls, writer, writer_thread, shutdown, send_buffer: config.send_buffer })
}

impl Prepared {
    async fn serve(self, listener: TcpListener) -> anyhow::Result<()> {
        let Prepared { router, tls, writer, writer_thread, shutdown, send_buffer, .. } = self;
        serve_http(listener, router, tls, send_buffer, shutdown.clone()).await;
        // The router (and its writer handles) is gone; the sweeper and tills stop on the token.
        shutdown.cancel();
        drop(writer);
        tokio::task::spawn_blocking(move || writer_thread.join()).await?.map_err(|_| anyhow::anyhow!("the writer thread panicked"))?;
        tracing::info!("hub stopped");
        Ok(())
    }
}

/// Serves `listener` until `stop`, then lets every connection finish what it is answering.
/// Plain TCP is HTTP/1.1 through hyper's HTTP/1 connection directly, rather than `axum::serve`'s
/// protocol-sniffing one: an idle stream costs 11.8 KB of resident memory instead of 20.4
/// (BENCHMARKS.md, row 3). With TLS, the protocol ALPN chose: HTTP/2 or HTTP/1.1.
async fn serve_http(listener: TcpListener, router: Router, tls: Option<Tls>, send_buffer: usize, stop: CancellationToken) {
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use tower::ServiceExt;

    let http1 = hyper::server::conn::http1::Builder::new();
    let mut http2 = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
    // Streams are long-lived: pings find dead connections that TCP alone would keep for hours.
    http2.timer(hyper_util::rt::TokioTimer::new()).keep_alive_interval(Some(std::time::Duration::from_secs(30)));
    let connections = tokio_util::task::TaskTracker::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.cancelled() => break,
        };
        let (mut tcp, remote) = match accepted {
            Ok(accepted) => accepted,
            // The client gave up before we took the connection: nothing to do.
            Err(e) if matches!(e.kind(), std::io::ErrorKind::ConnectionAborted | std::io::ErrorKind::ConnectionReset) => continue,
            // Out of file descriptors, for one: wait for some to close rather than spin.
            Err(error) => {
                tracing::error!(%error, "accepting a connection failed");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                continue;
            }
        };
        tune(&mut tcp, send_buffer);
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut request: axum::http::Request<hyper::body::Incoming>| {
            request.extensions_mut().insert(axum::extract::ConnectInfo(remote));
            router.clone().oneshot(request.map(axum::body::Body::new))
        });
        let Some(tls) = tls.as_ref() else {
            connections.spawn(until_closed(http1.serve_connection(TokioIo::new(tcp), service), stop.clone()));
            continue;
        };
        // The handshake runs in the connection's own task, so a slow client holds up no other.
        let (acceptor, http1, http2, stop) = (tls.acceptor.clone(), http1.clone(), http2.clone(), stop.clone());
        connections.spawn(async move {
            let handshake = tokio::time::timeout(std::time::Duration::from_secs(10), acceptor.accept(tcp));
            let stream = tokio::select! {
                done = handshake => match done {
                    Ok(Ok(stream)) => stream,
                    Ok(Err(error)) => return tracing::debug!(%error, %remote, "TLS handshake failed"),
                    Err(_) => return tracing::debug!(%remote, "TLS handshake timed out"),
                },
                _ = stop.cancelled() => return,
            };
            let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
            let io = TokioIo::new(stream);
            if h2 {
                until_closed(http2.serve_connection(io, service), stop).await
            } else {
                until_closed(http1.serve_connection(io, service), stop).await
            }
        });
    }
    // Each connection finishes what it is answering (streams close on the same token), then the hub stops.
    connections.close();
    connections.wait().await;
}

/// Serves `connection` to its end; once `stop` is cancelled it finishes what it is answering
/// and closes (HTTP/2: GOAWAY).
async fn until_closed<C>(connection: C, stop: CancellationToken)
where
    C: hyper_util::server::graceful::GracefulConnection,
    C::Error: std::fmt::Display,
{
    let mut connection = std::pin::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        _ = stop.cancelled() => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(error) = result {
        tracing::trace!(%error, "connection ended with an error");
    }
}

/// Calls `reload` on SIGHUP and whenever the modification time or size of one of `paths`
/// changes (looked at every `every`): the tokens file and the TLS certificate rotate this way.
async fn watch_files(
    paths: Vec<PathBuf>,
    every: std::time::Duration,
    shutdown: CancellationToken,
    reload: impl Fn(&'static str) + Send + 'static,
) {
    let stamp = |ps: &[PathBuf]| -> Vec<_> { ps.iter().map(|p| std::fs::metadata(p).ok().map(|m| (m.modified().ok(), m.len()))).collect() };
    let mut seen = stamp(&paths);
    #[cfg(unix)]
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    loop {
        #[cfg(unix)]
        let hangup = async {
            match hup.as_mut() {
                Some(h) => h.recv().await,
                None => std::future::pending().await,
            }
        };
        #[cfg(not(unix))]
        let hangup = std::future::pending::<Option<()>>();
        let why = tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = hangup => "SIGHUP",
            _ = tokio::time::sleep(every) => {
                if stamp(&paths) == seen { continue; }
                "the file changed"
            }
        };
        seen = stamp(&paths);
        reload(why);
    }
}

/// This replica's name among the others: the host's (a pod's name on Kubernetes) and a random
/// part, so a restarted replica is a new member, never mistaken for the one it replaces.
fn member_id() -> String {
    let host = std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()).unwrap_or_else(|| "shelfcast".into());
    let mut random = [0u8; 4];
    getrandom::fill(&mut random).expect("the OS random number generator");
    let host: String = host.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-').take(48).collect();
    format!("{host}-{}", hex::encode(random))
}

/// Every connection: no Nagle delay (a stream's events are small and must leave at once), and a
/// fixed kernel send buffer, so a client that stops reading holds at most that much of the
/// kernel's memory before the hub stops writing to it (and coalesces what it would have sent).
fn tune(tcp: &mut tokio::net::TcpStream, send_buffer: usize) {
    if let Err(error) = tcp.set_nodelay(true) {
        tracing::debug!(%error, "TCP_NODELAY not set");
    }
    if send_buffer > 0 {
        if let Err(error) = socket2::SockRef::from(&*tcp).set_send_buffer_size(send_buffer) {
            tracing::debug!(%error, "SO_SNDBUF not set");
        }
    }
}
