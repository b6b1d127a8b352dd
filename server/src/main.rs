use std::io::{IsTerminal, Write};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use shelfcast_server::cli::{Cli, Command, LogFormat};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options: a background thread gives freed memory back to the system within its
/// decay time (10 s), also while the process is otherwise idle, so a replica that lets go of
/// partitions shrinks (docs/scale-out.md, "Memory").
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(non_upper_case_globals)]
#[export_name = "_rjem_malloc_conf"]
pub static malloc_conf: &[u8; 23] = b"background_thread:true\0";

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = EnvFilter::try_from_env("SHELFCAST_LOG").unwrap_or_else(|_| EnvFilter::new("info,tower_http=warn"));
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Json => logs.json().init(),
        // Colour codes only for a person at a terminal, never into a file, a pipe or a journal.
        LogFormat::Text => logs.with_ansi(std::io::stderr().is_terminal()).init(),
    }
    // A failed start says why in one line on stderr and nothing on stdout.
    match start(cli.command).await {
        Ok(Some(code)) => code,
        Ok(None) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("shelfcast: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the command; an exit code of its own, if it has one besides success.
async fn start(command: Command) -> anyhow::Result<Option<ExitCode>> {
    // Every stream is a socket: take all the file descriptors the system allows this process.
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => tracing::debug!(limit = n, "open file limit"),
        Err(error) => tracing::warn!(%error, "could not raise the open file limit"),
    }
    let config = match command {
        Command::Serve(args) => args.config(),
        Command::Edge(args) => args.config(),
        Command::Simulate(args) => return shelfcast_server::simulate::run(args).await.map(|_| None),
        Command::Fanout(args) => return shelfcast_server::fanout_load::run(args).await.map(|_| None),
        // Some lines rejected: the rest is in, and the caller hears of it.
        Command::Import(args) => {
            return shelfcast_server::transfer::import(args).await.map(|done| (!done.rejected.is_empty()).then_some(ExitCode::from(2)))
        }
        Command::Export(args) => return shelfcast_server::transfer::export(args).await.map(|_| None),
        Command::Healthcheck { url, mut listen, trust } => {
            if listen.ip().is_unspecified() {
                listen.set_ip(if listen.is_ipv4() { Ipv4Addr::LOCALHOST.into() } else { Ipv6Addr::LOCALHOST.into() });
            }
            let url = url.unwrap_or_else(|| format!("http://{listen}/readyz"));
            return shelfcast_server::client::healthcheck(&url, trust.hub_ca.as_deref()).await.map(|_| None);
        }
        Command::HashToken { token } => {
            println!("sha256:{}", hex::encode(shelfcast_server::auth::digest(&token)));
            return Ok(None);
        }
    }
    .map_err(anyhow::Error::msg)?;
    let listener = tokio::net::TcpListener::bind(config.listen).await.with_context(|| format!("listening on {}", config.listen))?;
    let url = format!("{}://{}", if config.tls.is_some() { "https" } else { "http" }, listener.local_addr()?);
    let shutdown = CancellationToken::new();
    tokio::spawn(stop_on_signal(shutdown.clone()));
    // `listening on` is said only once the process can serve: scripts wait for this line.
    shelfcast_server::run(config, listener, shutdown, move || {
        println!("listening on {url}");
        let _ = std::io::stdout().flush();
    })
    .await
    .map(|_| None)
}

async fn stop_on_signal(shutdown: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! { _ = ctrl_c => {}, _ = term.recv() => {} }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutting down: no new connections, closing streams, finishing commits");
    shutdown.cancel();
}
