//! `shelfcast import` and `shelfcast export`: stock files in and out of a hub or edge node.
//!
//! Import turns each line of a CSV file into an event whose id is made of the file's content
//! and the line's number, so running the same file again applies nothing twice: every line
//! comes back a duplicate. Lines of one position go in file order (one lane per position's
//! hash, a lane's requests one after another); the lanes run at once.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use serde::Serialize;
use sha2::{Digest, Sha256};
use shelfcast_protocol::event::EventKind;
use shelfcast_protocol::wire::{ErrorBody, IngestResponse, ResultStatus};

#[derive(Args, Debug, Clone)]
pub struct ImportArgs {
    /// Base URL of the hub or edge node.
    #[arg(long, env = "SHELFCAST_TARGET")]
    pub target: String,
    /// Device token allowed to write the file's locations.
    #[arg(long, env = "SHELFCAST_TOKEN", hide_env_values = true)]
    pub token: String,
    /// The CSV file: a header line naming `sku`, `location` and `qty` (or `on_hand`, as
    /// `export` writes it), and optionally `type` (`count` unless given).
    pub file: PathBuf,
    /// Events per request (the hub takes at most 10,000).
    #[arg(long, env = "SHELFCAST_BATCH", default_value_t = 5_000)]
    pub batch: usize,
    /// Requests in flight at once, each for other positions.
    #[arg(long, env = "SHELFCAST_CONCURRENCY", default_value_t = 4)]
    pub concurrency: usize,
    #[command(flatten)]
    pub trust: crate::client::TrustArgs,
}

#[derive(Args, Debug, Clone)]
pub struct ExportArgs {
    /// Base URL of the hub or edge node.
    #[arg(long, env = "SHELFCAST_TARGET")]
    pub target: String,
    /// A device token (its locations are exported) or the admin token (all of them).
    #[arg(long, env = "SHELFCAST_TOKEN", hide_env_values = true)]
    pub token: String,
    /// Only these locations, comma-separated.
    #[arg(long, env = "SHELFCAST_LOCATION")]
    pub location: Option<String>,
    /// Write to this file (complete or not at all) instead of standard output.
    #[arg(long, short = 'o', env = "SHELFCAST_OUTPUT")]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub trust: crate::client::TrustArgs,
}

/// What an import did: every line of the file is in exactly one of the three counts.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Imported {
    pub applied: u64,
    pub duplicates: u64,
    /// (line, why), in line order.
    pub rejected: Vec<(u64, String)>,
}

/// Columns the file may have besides those an event needs: what `export` writes.
const SKIPPED: [&str; 4] = ["reserved", "available", "status", "version"];
/// How long one request is retried while the target cannot be reached or answers 5xx/429.
const GIVE_UP_AFTER: Duration = Duration::from_secs(300);

#[derive(Serialize)]
struct Event {
    id: String,
    #[serde(rename = "type")]
    kind: &'static str,
    sku: String,
    location: String,
    qty: i64,
}

/// Where each column the events need is.
struct Columns {
    sku: usize,
    location: usize,
    qty: usize,
    kind: Option<usize>,
}

impl Columns {
    fn of(header: &csv::StringRecord) -> anyhow::Result<Columns> {
        // A file saved by a spreadsheet may start with a byte order mark.
        let header: Vec<&str> = header.iter().enumerate().map(|(i, h)| if i == 0 { h.trim_start_matches('\u{feff}') } else { h }).collect();
        let (mut sku, mut location, mut qty, mut on_hand, mut kind) = (None, None, None, None, None);
        for (i, name) in header.into_iter().enumerate() {
            let name = name.trim().to_ascii_lowercase();
            let slot = match name.as_str() {
                "sku" => &mut sku,
                "location" => &mut location,
                "qty" => &mut qty,
                "on_hand" => &mut on_hand,
                "type" => &mut kind,
                n if SKIPPED.contains(&n) => continue,
                other => anyhow::bail!(
                    "line 1: column `{other}` is not one Shelfcast reads (sku, location, qty or on_hand, type; {} are skipped)",
                    SKIPPED.join(", ")
                ),
            };
            anyhow::ensure!(slot.replace(i).is_none(), "line 1: column `{name}` appears twice");
        }
        anyhow::ensure!(!(qty.is_some() && on_hand.is_some()), "line 1: give `qty` or `on_hand`, not both");
        let missing = |what: &str| anyhow::anyhow!("line 1: the header has no `{what}` column (it needs sku, location and qty)");
        Ok(Columns {
            sku: sku.ok_or_else(|| missing("sku"))?,
            location: location.ok_or_else(|| missing("location"))?,
            qty: qty.or(on_hand).ok_or_else(|| missing("qty"))?,
            kind,
        })
    }

    /// The line's event, or why it is not one. A field the line does not have is empty.
    fn event(&self, record: &csv::ByteRecord, id: String) -> Result<Event, String> {
        let field = |i: usize, name: &str| match std::str::from_utf8(record.get(i).unwrap_or(b"")) {
            Ok(f) => Ok(f.trim()),
            Err(_) => Err(format!("invalid_line: the {name} is not UTF-8 text")),
        };
        let kind = match self.kind.map(|k| field(k, "type")).transpose()? {
            None | Some("") => EventKind::Count,
            Some(k) => EventKind::parse(k).ok_or_else(|| format!("invalid_type: `{k}` is not sale, return, receipt, adjust or count"))?,
        };
        let qty = field(self.qty, "qty")?;
        let qty = qty.parse::<i64>().map_err(|_| format!("invalid_qty: `{qty}` is not a whole number"))?;
        Ok(Event {
            id,
            kind: kind.as_str(),
            sku: field(self.sku, "sku")?.to_owned(),
            location: field(self.location, "location")?.to_owned(),
            qty,
        })
    }
}

/// Line numbers as a person counts them in the file. The CSV reader skips blank lines and
/// places a record after them at their start; where it ends is exact, so a record's first
/// line is counted back from its end: less the line breaks inside its quoted fields, less its
/// own line break if the reader has counted it. It has not in a file of `\r\n` breaks (the
/// `\n` is taken with the next record), nor for a last line without a break.
struct Lines {
    size: u64,
    crlf: bool,
    last_has_break: bool,
}

impl Lines {
    fn new(path: &Path, size: u64) -> anyhow::Result<Lines> {
        let mut file = std::fs::File::open(path)?;
        let mut head = vec![0u8; 1 << 16];
        let n = file.read(&mut head)?;
        let crlf = head[..n].iter().position(|b| *b == b'\n').is_some_and(|i| i > 0 && head[i - 1] == b'\r');
        let mut last = [b'\n'];
        if size > 0 {
            use std::io::{Seek, SeekFrom};
            file.seek(SeekFrom::End(-1))?;
            file.read_exact(&mut last)?;
        }
        Ok(Lines { size, crlf, last_has_break: matches!(last[0], b'\n' | b'\r') })
    }

    fn start_of(&self, record: &csv::ByteRecord, end: &csv::Position) -> u64 {
        let inside = record.iter().map(|f| f.iter().filter(|b| **b == b'\n').count() as u64).sum::<u64>();
        let own_break = u64::from(!self.crlf && (end.byte() < self.size || self.last_has_break));
        end.line().saturating_sub(inside + own_break).max(1)
    }
}

/// The first 16 hex digits of the file's SHA-256: the part of every event id that names the
/// file, so the same content gives the same ids wherever and whenever it is imported.
fn fingerprint(path: &Path) -> anyhow::Result<String> {
    let mut file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).with_context(|| format!("reading {}", path.display()))?;
        if n == 0 {
            break;
        }
        hash.update(&buf[..n]);
    }
    Ok(hex::encode(&hash.finalize()[..8]))
}

/// A lane's batch: each event with its line.
type Batch = Vec<(u64, Event)>;

struct Progress {
    bytes: AtomicU64,
    lines: AtomicU64,
    applied: AtomicU64,
    duplicates: AtomicU64,
    rejected: Mutex<Vec<(u64, String)>>,
}

pub async fn import(args: ImportArgs) -> anyhow::Result<Imported> {
    anyhow::ensure!((1..=10_000).contains(&args.batch), "--batch must be from 1 to 10000");
    anyhow::ensure!(args.concurrency >= 1, "--concurrency must be at least 1");
    let size = std::fs::metadata(&args.file).with_context(|| format!("reading {}", args.file.display()))?.len();
    let file_id = fingerprint(&args.file)?;
    let url = format!("{}/v1/events", args.target.trim_end_matches('/'));
    let client = crate::client::builder(args.trust.hub_ca.as_deref())?
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(120))
        .build()?;
    let progress = Arc::new(Progress {
        bytes: AtomicU64::new(0),
        lines: AtomicU64::new(0),
        applied: AtomicU64::new(0),
        duplicates: AtomicU64::new(0),
        rejected: Mutex::new(Vec::new()),
    });
    let started = Instant::now();
    let name = args.file.display().to_string();
    let shown = show_progress(progress.clone(), size, format!("importing {name}"));

    // Lanes: each sends its batches one after another; a full lane holds the reader back.
    let mut lanes = Vec::new();
    let mut senders = Vec::new();
    for _ in 0..args.concurrency {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Batch>(2);
        let (client, url, token, progress) = (client.clone(), url.clone(), args.token.clone(), progress.clone());
        lanes.push(tokio::spawn(async move {
            while let Some(batch) = rx.recv().await {
                send(&client, &url, &token, batch, &progress).await?;
            }
            anyhow::Ok(())
        }));
        senders.push(tx);
    }

    // The reader: CSV parsing on a blocking thread, batches handed to the lanes.
    let (path, batch_size) = (args.file.clone(), args.batch);
    let reader_progress = progress.clone();
    let reader = tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        let file = std::fs::File::open(&path).with_context(|| format!("opening {}", path.display()))?;
        let lines = Lines::new(&path, size)?;
        let mut csv =
            csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(std::io::BufReader::with_capacity(1 << 20, file));
        let mut record = csv::ByteRecord::new();
        anyhow::ensure!(csv.read_byte_record(&mut record)?, "line 1: the file is empty (it needs a header line: sku,location,qty)");
        let header = csv::StringRecord::from_byte_record(record.clone()).map_err(|_| anyhow::anyhow!("line 1: the header is not UTF-8"))?;
        let columns = Columns::of(&header)?;
        let width = header.len();
        let mut batches: Vec<Batch> = (0..senders.len()).map(|_| Vec::with_capacity(batch_size)).collect();
        while csv.read_byte_record(&mut record)? {
            let line = lines.start_of(&record, csv.position());
            reader_progress.lines.fetch_add(1, Ordering::Relaxed);
            reader_progress.bytes.store(csv.position().byte(), Ordering::Relaxed);
            let event = if record.len() > width {
                Err(format!("invalid_line: {} fields where the header has {width}", record.len()))
            } else {
                columns.event(&record, format!("import-{file_id}:{line}"))
            };
            match event {
                Ok(event) => {
                    let lane = lane_of(&event, senders.len());
                    batches[lane].push((line, event));
                    if batches[lane].len() >= batch_size {
                        let full = std::mem::replace(&mut batches[lane], Vec::with_capacity(batch_size));
                        // A lane that stopped has failed: its error is reported below.
                        if senders[lane].blocking_send(full).is_err() {
                            return Ok(());
                        }
                    }
                }
                Err(why) => reader_progress.rejected.lock().expect("lock").push((line, why)),
            }
        }
        for (lane, batch) in batches.into_iter().enumerate() {
            if !batch.is_empty() && senders[lane].blocking_send(batch).is_err() {
                return Ok(());
            }
        }
        Ok(())
    });
    let read = reader.await?;
    let mut failed = None;
    for lane in lanes {
        if let Err(e) = lane.await? {
            failed.get_or_insert(e);
        }
    }
    shown.abort();
    let _ = shown.await;
    read?;
    if let Some(e) = failed {
        return Err(e);
    }
    let mut rejected = std::mem::take(&mut *progress.rejected.lock().expect("lock"));
    rejected.sort_by_key(|(line, _)| *line);
    let done =
        Imported { applied: progress.applied.load(Ordering::Relaxed), duplicates: progress.duplicates.load(Ordering::Relaxed), rejected };
    let lines = progress.lines.load(Ordering::Relaxed);
    let seconds = started.elapsed().as_secs_f64();
    let mut out = std::io::stdout().lock();
    for (line, why) in &done.rejected {
        writeln!(out, "line {line}: {why}")?;
    }
    writeln!(
        out,
        "imported {name}: {lines} lines, {} applied, {} duplicates, {} rejected in {seconds:.1} s ({:.0} lines/s)",
        done.applied,
        done.duplicates,
        done.rejected.len(),
        lines as f64 / seconds.max(1e-9)
    )?;
    Ok(done)
}

fn lane_of(event: &Event, lanes: usize) -> usize {
    let mut h = DefaultHasher::new();
    (&event.sku, &event.location).hash(&mut h);
    (h.finish() % lanes as u64) as usize
}

/// Sends one batch until the target answers it: a request that fails on the way, or is
/// answered 5xx or 429, is sent again (the ids make that safe) with a growing pause. Any
/// other refusal of the whole request ends the import.
async fn send(client: &reqwest::Client, url: &str, token: &str, batch: Batch, progress: &Progress) -> anyhow::Result<()> {
    let body = serde_json::to_vec(&batch.iter().map(|(_, e)| e).collect::<Vec<_>>())?;
    let first = Instant::now();
    let mut pause = Duration::from_millis(250);
    let answer: IngestResponse = loop {
        let why = match client
            .post(url)
            .bearer_auth(token)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.clone())
            .send()
            .await
        {
            Ok(r) if r.status().is_success() => break r.json().await.context("reading the target's answer")?,
            Ok(r) if r.status().is_server_error() || r.status().as_u16() == 429 => format!("the target answered {}", r.status()),
            Ok(r) => {
                let status = r.status();
                let message = r.json::<ErrorBody>().await.map(|b| b.error.message).unwrap_or_default();
                anyhow::bail!("the target refused the events ({status}): {message}");
            }
            Err(e) => crate::client::explain(&e),
        };
        anyhow::ensure!(first.elapsed() < GIVE_UP_AFTER, "gave up after {GIVE_UP_AFTER:?}: {why}");
        tracing::warn!(%why, retry_in = ?pause, "sending again");
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(10));
    };
    anyhow::ensure!(answer.results.len() == batch.len(), "the target answered {} results for {} events", answer.results.len(), batch.len());
    let mut rejected = Vec::new();
    for ((line, _), result) in batch.iter().zip(&answer.results) {
        match result.status {
            ResultStatus::Applied => progress.applied.fetch_add(1, Ordering::Relaxed),
            ResultStatus::Duplicate => progress.duplicates.fetch_add(1, Ordering::Relaxed),
            ResultStatus::Rejected => {
                let why = result.error.as_ref().map_or_else(|| "rejected".to_owned(), |e| format!("{}: {}", e.code, e.message));
                rejected.push((*line, why));
                0
            }
        };
    }
    progress.rejected.lock().expect("lock").extend(rejected);
    Ok(())
}

/// A progress bar on a terminal; elsewhere (a log, CI) a line every second.
fn show_progress(progress: Arc<Progress>, size: u64, what: String) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let started = Instant::now();
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new(size);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{msg} [{bar:30}] {percent:>3}% {binary_bytes}/{binary_total_bytes}, {elapsed} (eta {eta})",
                )
                .expect("template")
                .progress_chars("=> "),
            );
            bar.set_message(what.clone());
            bar
        });
        let mut tick = tokio::time::interval(Duration::from_millis(if bar.is_some() { 100 } else { 1000 }));
        tick.tick().await;
        loop {
            tick.tick().await;
            let (bytes, lines) = (progress.bytes.load(Ordering::Relaxed), progress.lines.load(Ordering::Relaxed));
            let acked = progress.applied.load(Ordering::Relaxed) + progress.duplicates.load(Ordering::Relaxed);
            match &bar {
                Some(bar) => bar.set_position(bytes),
                None => eprintln!(
                    "[{:>4.0}s] {what}: {:.0}% read, {lines} lines, {acked} acknowledged, {} rejected",
                    started.elapsed().as_secs_f64(),
                    100.0 * bytes as f64 / size.max(1) as f64,
                    progress.rejected.lock().expect("lock").len()
                ),
            }
        }
    })
}

/// Writes the target's positions as CSV to `--output` or standard output; how many.
pub async fn export(args: ExportArgs) -> anyhow::Result<u64> {
    let mut url = reqwest::Url::parse(&format!("{}/v1/positions", args.target.trim_end_matches('/'))).context("--target")?;
    if let Some(l) = &args.location {
        url.query_pairs_mut().append_pair("location", l);
    }
    let client = crate::client::builder(args.trust.hub_ca.as_deref())?.connect_timeout(Duration::from_secs(5)).build()?;
    let mut answer =
        client.get(url).bearer_auth(&args.token).send().await.map_err(|e| anyhow::anyhow!("{}", crate::client::explain(&e)))?;
    if !answer.status().is_success() {
        let status = answer.status();
        let message = answer.json::<ErrorBody>().await.map(|b| b.error.message).unwrap_or_default();
        anyhow::bail!("the target refused the export ({status}): {message}");
    }
    // To a file: written beside it and renamed when whole, so a cut export leaves no file
    // that looks complete.
    let part = args.output.as_ref().map(|o| {
        let mut p = o.clone().into_os_string();
        p.push(".part");
        PathBuf::from(p)
    });
    let sink: Box<dyn Write + Send> = match &part {
        Some(p) => Box::new(std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?),
        None => Box::new(std::io::stdout()),
    };
    let mut sink = std::io::BufWriter::with_capacity(1 << 20, sink);
    let started = Instant::now();
    let (mut lines, mut shown) = (0u64, Instant::now());
    while let Some(chunk) = answer.chunk().await.map_err(|e| anyhow::anyhow!("the export was cut off: {}", crate::client::explain(&e)))? {
        lines += chunk.iter().filter(|b| **b == b'\n').count() as u64;
        sink.write_all(&chunk)?;
        if shown.elapsed() >= Duration::from_secs(1) {
            eprintln!("[{:>4.0}s] exporting: {} positions", started.elapsed().as_secs_f64(), lines.saturating_sub(1));
            shown = Instant::now();
        }
    }
    sink.flush()?;
    drop(sink);
    if let (Some(part), Some(output)) = (&part, &args.output) {
        std::fs::rename(part, output).with_context(|| format!("renaming {} to {}", part.display(), output.display()))?;
    }
    let positions = lines.saturating_sub(1);
    eprintln!("exported {positions} positions in {:.1} s", started.elapsed().as_secs_f64());
    Ok(positions)
}
