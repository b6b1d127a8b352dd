//! The `shelfcast` command line. Every flag can also come from `SHELFCAST_<FLAG>`; repeated
//! flags are separated by `;` there (`SHELFCAST_DEVICE_TOKEN="t1=berlin,hamburg;t2=*"`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::config::HubConfig;
use crate::simulate::SimulateArgs;

#[derive(Parser, Debug)]
#[command(name = "shelfcast", version, about = "Real-time retail availability: hub, edge node and traffic simulator.")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the hub on embedded SQLite.
    Serve(ServeArgs),
    /// Drive till, return and receipt traffic at a hub or edge node.
    Simulate(SimulateArgs),
}

pub(crate) fn duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("`{s}` is not a duration like 15m or 90s ({e})"))
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on; port 0 picks a free one (printed as the first line on stdout).
    #[arg(long, env = "SHELFCAST_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Directory of the SQLite ledger.
    #[arg(long, env = "SHELFCAST_DATA", default_value = "./shelfcast-data")]
    pub data: PathBuf,
    /// `TOKEN=LOC1,LOC2` or `TOKEN=*`: a device token and the locations it may write. Repeatable.
    #[arg(long = "device-token", env = "SHELFCAST_DEVICE_TOKEN", value_delimiter = ';')]
    pub device_tokens: Vec<String>,
    /// A shop origin allowed to read, stream and reserve from a browser. Repeatable; `*` for any.
    #[arg(long = "allow-origin", env = "SHELFCAST_ALLOW_ORIGIN", value_delimiter = ';')]
    pub allow_origins: Vec<String>,
    /// How long a reservation holds stock unless confirmed.
    #[arg(long, env = "SHELFCAST_HOLD_TTL", default_value = "15m", value_parser = duration)]
    pub hold_ttl: Duration,
    /// `low_stock` applies while 0 < available <= this.
    #[arg(long, env = "SHELFCAST_LOW_STOCK", default_value_t = shelfcast_protocol::DEFAULT_LOW_STOCK)]
    pub low_stock: i64,
    /// Serve the demo product page at `/`, seed stock and run simulated tills.
    #[arg(long, env = "SHELFCAST_DEMO")]
    pub demo: bool,
}

impl ServeArgs {
    pub fn config(&self) -> Result<HubConfig, String> {
        let mut c = HubConfig::new(self.data.clone());
        c.listen = self.listen;
        for spec in self.device_tokens.iter().filter(|s| !s.trim().is_empty()) {
            c = c.with_device_token(spec.trim())?;
        }
        c.allow_origins = self.allow_origins.iter().map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect();
        if self.hold_ttl.is_zero() {
            return Err("--hold-ttl must be longer than zero".into());
        }
        c.hold_ttl = self.hold_ttl;
        if self.low_stock < 0 {
            return Err("--low-stock must be zero or more".into());
        }
        c.low_stock = self.low_stock;
        c.demo = self.demo;
        Ok(c)
    }
}
