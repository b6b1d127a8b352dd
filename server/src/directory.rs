//! The store directory the hub answers `GET /v1/locations` from: kept in the ledger (set with
//! the admin token), or, with `--locations-file`, the file's (re-read on change and SIGHUP).
//!
//! Either way it is held in memory, so a shopper's "nearest stores" costs no storage read. On
//! a hub that writes alone every change goes through this process and refreshes it at once; on
//! replicas sharing PostgreSQL another replica may change it, so it is read again once it is
//! older than [`SHARED_FRESH`].

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use shelfcast_protocol::directory::{check, Store};
use shelfcast_protocol::LocationId;

use crate::store::{DbResult, Reader};

/// How long a replica on a shared ledger answers from what it read before reading again: a
/// change made on another replica is seen everywhere within this.
pub const SHARED_FRESH: Duration = Duration::from_secs(1);

/// The stores, by id.
pub type Stores = Arc<Vec<(LocationId, Store)>>;

pub struct Directory {
    file: Option<PathBuf>,
    shared: bool,
    /// The stores, and when they were read (`None`: to be read from the ledger).
    cache: RwLock<Option<(Stores, Instant)>>,
    /// Rises at each change this process makes: a read that began before one is not kept.
    generation: AtomicU64,
}

impl Directory {
    /// The directory kept in the ledger (`shared`: other replicas write it too).
    pub fn in_ledger(shared: bool) -> Directory {
        Directory { file: None, shared, cache: RwLock::new(None), generation: AtomicU64::new(0) }
    }

    /// The directory of `--locations-file`, read now: a file that cannot be read or holds a bad
    /// entry stops the start.
    pub fn from_file(path: &Path) -> Result<Directory, String> {
        let directory =
            Directory { file: Some(path.to_path_buf()), shared: false, cache: RwLock::new(None), generation: AtomicU64::new(0) };
        directory.reload()?;
        Ok(directory)
    }

    /// The `--locations-file` the directory comes from, if it does.
    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    /// Reads `--locations-file` again; how many stores it holds. A file that cannot be read or
    /// holds a bad entry changes nothing.
    pub fn reload(&self) -> Result<usize, String> {
        let Some(path) = &self.file else { return Err("the directory is not from a file".into()) };
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let stores = parse_file(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        let n = stores.len();
        *self.cache.write().expect("directory lock") = Some((Arc::new(stores), Instant::now()));
        Ok(n)
    }

    /// The stores, by id.
    pub async fn stores(&self, reader: &Reader) -> DbResult<Stores> {
        if let Some((stores, read_at)) = &*self.cache.read().expect("directory lock") {
            if self.file.is_some() || !self.shared || read_at.elapsed() < SHARED_FRESH {
                return Ok(stores.clone());
            }
        }
        let (read_at, generation) = (Instant::now(), self.generation.load(Ordering::Acquire));
        let mut stores = Vec::new();
        for (id, json) in reader.stores().await? {
            match (LocationId::parse(&id), serde_json::from_str::<Store>(&json)) {
                (Ok(id), Ok(store)) => stores.push((id, store)),
                _ => tracing::warn!(%id, "a stored directory entry cannot be read; it is left out"),
            }
        }
        let stores = Arc::new(stores);
        let mut cache = self.cache.write().expect("directory lock");
        if self.generation.load(Ordering::Acquire) == generation {
            *cache = Some((stores.clone(), read_at));
        }
        Ok(stores)
    }

    /// After this process changed the ledger's directory: read it again at the next request.
    pub fn changed(&self) {
        if self.file.is_none() {
            let mut cache = self.cache.write().expect("directory lock");
            self.generation.fetch_add(1, Ordering::AcqRel);
            *cache = None;
        }
    }
}

/// A `--locations-file`: a JSON array of stores, each with its `id`. Every entry is checked
/// as `PUT /v1/locations/{id}` checks it, and an id may appear once.
pub fn parse_file(text: &str) -> Result<Vec<(LocationId, Store)>, String> {
    let entries: Vec<serde_json::Map<String, serde_json::Value>> =
        serde_json::from_str(text).map_err(|e| format!("not a JSON array of stores ({e})"))?;
    let mut stores = Vec::with_capacity(entries.len());
    for (i, mut entry) in entries.into_iter().enumerate() {
        let at = |e: String| format!("store {} of the file: {e}", i + 1);
        let id = match entry.remove("id") {
            Some(serde_json::Value::String(id)) => LocationId::parse(&id).map_err(|e| at(format!("`id` {e}")))?,
            _ => return Err(at("no `id`".into())),
        };
        let store: Store = serde_json::from_value(serde_json::Value::Object(entry)).map_err(|e| at(format!("`{id}`: {e}")))?;
        check(&store).map_err(|e| at(format!("`{id}`: {e}")))?;
        stores.push((id, store));
    }
    stores.sort_by(|a, b| a.0.cmp(&b.0));
    if let Some(w) = stores.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(format!("`{}` appears twice", w[0].0));
    }
    Ok(stores)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ONE: &str = r#"{"id":"berlin-mitte","name":"Berlin Mitte","address":"Rosenthaler Str. 1, 10119 Berlin",
        "lat":52.5265,"lng":13.4019,"pickup":{"enabled":true,"ready_in_minutes":60,"sla":"same_day"},"timezone":"Europe/Berlin"}"#;

    #[test]
    fn a_locations_file_is_read_and_checked_entry_by_entry() {
        let stores = parse_file(&format!("[{ONE}]")).unwrap();
        assert_eq!(stores.len(), 1);
        assert_eq!((stores[0].0.as_str(), stores[0].1.name.as_str()), ("berlin-mitte", "Berlin Mitte"));
        assert!(parse_file("[]").unwrap().is_empty());
        for (bad, why) in [
            ("{}", "not a JSON array"),
            (&format!("[{ONE},{ONE}]"), "appears twice"),
            (&format!("[{}]", ONE.replace("\"id\":\"berlin-mitte\",", "")), "no `id`"),
            (&format!("[{}]", ONE.replace("berlin-mitte", "berlin mitte")), "`id`"),
            (&format!("[{}]", ONE.replace("52.5265", "95")), "lat"),
            (&format!("[{}]", ONE.replace("same_day", "today")), "unknown variant"),
            (&format!("[{}]", ONE.replace("\"timezone\"", "\"tz\"")), "unknown field"),
        ] {
            let e = parse_file(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }
}
