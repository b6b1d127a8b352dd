//! The positions in memory, compact: what every read, stream and decision starts from, so
//! that a hub holds tens of millions of them.
//!
//! - SKU and location ids are interned, each distinct id stored once: a chain has few stores,
//!   and every SKU repeats across them. A position is named by the pair of handles (8 bytes).
//! - A SKU's positions are one sorted array of slots (location handle, on-hand, version: 32
//!   bytes); only a position with open holds keeps its whole `Stock` out of line.
//! - Side indexes (the expiry order in `engine::state`) key by the handle, not the strings.
//!
//! The wire and the decisions still speak `PositionKey` and `Stock`: the table turns a key into
//! its handle on the way in and back on the way out.

use std::borrow::Borrow;

use hashbrown::DefaultHashBuilder;
use indexmap::IndexSet;
use shelfcast_protocol::clock::Millis;
use shelfcast_protocol::{LocationId, PositionKey, Sku, Stock};

/// A position's stock and the version of its last change.
#[derive(Clone, Debug, Default)]
pub struct Entry {
    pub stock: Stock,
    pub version: u64,
}

/// A position's key as its SKU's and its location's handles.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Handle(u64);

impl Handle {
    fn new(sku: usize, location: usize) -> Handle {
        let (sku, location) =
            (u32::try_from(sku).expect("fewer than 2^32 SKUs"), u32::try_from(location).expect("fewer than 2^32 locations"));
        Handle((sku as u64) << 32 | location as u64)
    }

    fn sku(self) -> usize {
        (self.0 >> 32) as usize
    }

    fn location(self) -> usize {
        self.0 as u32 as usize
    }
}

struct Slot {
    on_hand: i64,
    version: u64,
    /// The whole stock, for a position with open holds only.
    holds: Option<Box<Stock>>,
}

impl Slot {
    fn of(entry: &Entry) -> Slot {
        let holds = (entry.stock.hold_count() > 0).then(|| Box::new(entry.stock.clone()));
        Slot { on_hand: entry.stock.on_hand, version: entry.version, holds }
    }

    fn stock(&self) -> Stock {
        match &self.holds {
            Some(stock) => (**stock).clone(),
            None => Stock::new(self.on_hand),
        }
    }

    fn available_at(&self, now: Millis) -> i64 {
        match &self.holds {
            Some(stock) => stock.available_at(now),
            None => self.on_hand,
        }
    }
}

/// One SKU's slots, by location handle.
type Row = Vec<(u32, Slot)>;

/// The slots by SKU, each SKU's sorted by location handle: a lookup is an index and a binary
/// search among one SKU's stores, and a SKU's positions sit together in memory (one stream's
/// positions are one SKU's).
#[derive(Default)]
struct Slots {
    by_sku: Vec<Row>,
    len: usize,
}

impl Slots {
    fn row(&self, handle: Handle) -> Option<(&Row, Result<usize, usize>)> {
        let row = self.by_sku.get(handle.sku())?;
        Some((row, row.binary_search_by_key(&(handle.location() as u32), |(l, _)| *l)))
    }

    fn get(&self, handle: &Handle) -> Option<&Slot> {
        let (row, at) = self.row(*handle)?;
        at.ok().map(|i| &row[i].1)
    }

    fn get_mut(&mut self, handle: &Handle) -> Option<&mut Slot> {
        let (_, at) = self.row(*handle)?;
        let i = at.ok()?;
        Some(&mut self.by_sku[handle.sku()][i].1)
    }

    fn insert(&mut self, handle: Handle, slot: Slot) {
        if handle.sku() >= self.by_sku.len() {
            self.by_sku.resize_with(handle.sku() + 1, Vec::new);
        }
        let row = &mut self.by_sku[handle.sku()];
        let location = handle.location() as u32;
        match row.binary_search_by_key(&location, |(l, _)| *l) {
            Ok(i) => row[i].1 = slot,
            Err(i) => {
                row.insert(i, (location, slot));
                self.len += 1;
            }
        }
    }

    fn iter(&self) -> impl Iterator<Item = (Handle, &Slot)> + '_ {
        self.by_sku.iter().enumerate().flat_map(|(sku, row)| row.iter().map(move |(l, slot)| (Handle::new(sku, *l as usize), slot)))
    }
}

#[derive(Default)]
pub struct Table {
    skus: IndexSet<Sku, DefaultHashBuilder>,
    locations: IndexSet<LocationId, DefaultHashBuilder>,
    slots: Slots,
    /// During a bulk load: the SKU being read and its slots so far, given their exact room
    /// when the next SKU starts (growing each SKU's array a push at a time would leave freed
    /// room behind that the process keeps).
    filling: Option<(usize, Row)>,
    scratch: Row,
}

/// Interns an id: its handle. `make` builds the id to keep (a copy, or a checked parse of
/// what storage holds) only the first time it is seen: a known id costs one lookup by `&str`.
fn intern<T: Eq + std::hash::Hash + Borrow<str>, E>(
    set: &mut IndexSet<T, DefaultHashBuilder>,
    id: &str,
    make: impl FnOnce(&str) -> Result<T, E>,
) -> Result<usize, E> {
    match set.get_index_of(id) {
        Some(i) => Ok(i),
        None => Ok(set.insert_full(make(id)?).0),
    }
}

/// Interns an id already checked: copied only the first time it is seen.
fn copied<T: Clone + Eq + std::hash::Hash + Borrow<str>>(set: &mut IndexSet<T, DefaultHashBuilder>, id: &T) -> usize {
    let Ok(handle) = intern(set, id.borrow(), |_| Ok::<_, std::convert::Infallible>(id.clone()));
    handle
}

/// An id read from storage, checked as one from the wire would be.
fn stored<T>(parse: fn(&str) -> Result<T, shelfcast_protocol::IdError>) -> impl Fn(&str) -> Result<T, String> {
    move |id| parse(id).map_err(|e| format!("stored id `{id}` {e}"))
}

impl Table {
    /// Adds a position as storage holds it, with no open holds (a bulk load: no allocation
    /// per position once its SKU and location are known). A bulk load ends with `loaded`,
    /// before the table is read or changed otherwise.
    pub fn load(&mut self, sku: &str, location: &str, on_hand: i64, version: u64) -> Result<(), String> {
        // Rows come in key order: a SKU's stores follow one another, so the last SKU is the
        // likely one and its handle is found without hashing.
        let sku = match self.skus.last() {
            Some(last) if last.as_str() == sku => self.skus.len() - 1,
            _ => intern(&mut self.skus, sku, stored(Sku::parse))?,
        };
        let location = intern(&mut self.locations, location, stored(LocationId::parse))? as u32;
        let slot = Slot { on_hand, version, holds: None };
        match &mut self.filling {
            Some((filling, slots)) if *filling == sku => slots.push((location, slot)),
            _ => {
                self.fill();
                let mut slots = std::mem::take(&mut self.scratch);
                slots.push((location, slot));
                self.filling = Some((sku, slots));
            }
        }
        Ok(())
    }

    /// Places the slots of the SKU a bulk load was filling.
    fn fill(&mut self) {
        let Some((sku, mut slots)) = self.filling.take() else { return };
        if self.slots.by_sku.get(sku).is_none_or(Vec::is_empty) {
            slots.sort_unstable_by_key(|(l, _)| *l);
            if sku >= self.slots.by_sku.len() {
                self.slots.by_sku.resize_with(sku + 1, Vec::new);
            }
            self.slots.len += slots.len();
            // Exactly as long as it is (the scratch array keeps its room for the next SKU).
            let mut exact = Row::with_capacity(slots.len());
            exact.append(&mut slots);
            self.slots.by_sku[sku] = exact;
        } else {
            for (location, slot) in slots.drain(..) {
                self.slots.insert(Handle::new(sku, location as usize), slot);
            }
        }
        self.scratch = slots;
    }

    /// Ends a bulk load (`load`): the table is whole and ready for use.
    pub fn loaded(&mut self) {
        self.fill();
        self.scratch = Vec::new();
        self.slots.by_sku.shrink_to_fit();
    }

    /// These positions in key order (SKU, then location), each once.
    pub fn in_key_order(&self, mut handles: Vec<Handle>) -> Vec<Handle> {
        handles.sort_unstable();
        handles.dedup();
        handles.sort_unstable_by(|a, b| {
            (self.skus[a.sku()].as_str(), self.locations[a.location()].as_str())
                .cmp(&(self.skus[b.sku()].as_str(), self.locations[b.location()].as_str()))
        });
        handles
    }

    /// The SKU and location of a handle, and its on-hand: what storage keeps of a position.
    pub fn stored(&self, handle: Handle) -> Option<(&str, &str, i64, u64)> {
        let slot = self.slots.get(&handle)?;
        Some((self.skus[handle.sku()].as_str(), self.locations[handle.location()].as_str(), slot.on_hand, slot.version))
    }

    pub fn len(&self) -> usize {
        self.slots.len
    }

    pub fn handle(&self, key: &PositionKey) -> Option<Handle> {
        let sku = self.skus.get_index_of(key.sku.as_str())?;
        let location = self.locations.get_index_of(key.location.as_str())?;
        Some(Handle::new(sku, location))
    }

    /// The handle of a location, to compare positions' locations without their strings.
    pub fn location(&self, location: &LocationId) -> Option<usize> {
        self.locations.get_index_of(location.as_str())
    }

    pub fn key(&self, handle: Handle) -> PositionKey {
        PositionKey::new(self.skus[handle.sku()].clone(), self.locations[handle.location()].clone())
    }

    pub fn get(&self, key: &PositionKey) -> Option<Entry> {
        let slot = self.slots.get(&self.handle(key)?)?;
        Some(Entry { stock: slot.stock(), version: slot.version })
    }

    /// A position's version, without its stock.
    pub fn version(&self, key: &PositionKey) -> Option<u64> {
        self.version_at(self.handle(key)?)
    }

    pub fn version_at(&self, handle: Handle) -> Option<u64> {
        Some(self.slots.get(&handle)?.version)
    }

    /// Sets a position (adding it if new); its handle.
    pub fn set(&mut self, key: &PositionKey, entry: &Entry) -> Handle {
        let handle = Handle::new(copied(&mut self.skus, &key.sku), copied(&mut self.locations, &key.location));
        self.slots.insert(handle, Slot::of(entry));
        handle
    }

    /// Changes a position's stock in place (from nothing, at version 0, if it has none); its
    /// handle.
    pub fn update(&mut self, key: &PositionKey, change: impl FnOnce(&mut Entry)) -> Handle {
        let mut entry = self.get(key).unwrap_or_default();
        change(&mut entry);
        self.set(key, &entry)
    }

    /// Every position's handle.
    #[cfg(test)]
    fn handles(&self) -> impl Iterator<Item = Handle> + '_ {
        self.slots.iter().map(|(h, _)| h)
    }

    /// Gives a position a new version, keeping its stock.
    pub fn set_version(&mut self, handle: Handle, version: u64) {
        if let Some(slot) = self.slots.get_mut(&handle) {
            slot.version = version;
        }
    }

    /// The stock and version of the position at `handle`.
    pub fn at(&self, handle: Handle) -> Option<Entry> {
        self.slots.get(&handle).map(|s| Entry { stock: s.stock(), version: s.version })
    }

    /// The positions at the location with handle `location` whose version is above
    /// `since(sku)` (`None`: every position of that SKU).
    pub fn changed_at<'t>(&'t self, location: usize, since: impl Fn(&str) -> Option<u64> + 't) -> impl Iterator<Item = Handle> + 't {
        self.slots
            .iter()
            .filter(move |(h, s)| h.location() == location && since(self.skus[h.sku()].as_str()).is_none_or(|v| s.version > v))
            .map(|(h, _)| h)
    }

    /// The positions of the SKUs whose handles are in `skus`, a SKU's in location-handle
    /// order; and where the SKUs after them start (`None`: there are no more). A SKU's handle
    /// never changes while the process runs, so a long read goes through the table a part at
    /// a time, letting go of it in between, and sees every position once.
    pub fn of_skus(&self, skus: std::ops::Range<usize>) -> (Vec<Handle>, Option<usize>) {
        let end = skus.end.min(self.slots.by_sku.len());
        let start = skus.start.min(end);
        let handles = self.slots.by_sku[start..end]
            .iter()
            .enumerate()
            .flat_map(|(i, row)| row.iter().map(move |(l, _)| Handle::new(start + i, *l as usize)))
            .collect();
        (handles, (end < self.slots.by_sku.len()).then_some(end))
    }

    /// The positions whose holds exceed their on-hand at `now`.
    pub fn short(&self, now: Millis) -> impl Iterator<Item = Handle> + '_ {
        self.slots.iter().filter(move |(_, s)| s.available_at(now) < 0).map(|(h, _)| h)
    }

    /// Every position with open holds, with the earliest expiry among them.
    pub fn with_holds(&self) -> impl Iterator<Item = (Handle, Option<Millis>)> + '_ {
        self.slots.iter().filter_map(|(h, s)| s.holds.as_ref().map(|stock| (h, stock.next_expiry())))
    }

    /// The highest version of any position.
    pub fn max_version(&self) -> u64 {
        self.slots.iter().map(|(_, s)| s.version).max().unwrap_or(0)
    }

    /// Takes every position of `other` (a table of SKUs this one does not hold, loaded on its
    /// own), keeping each SKU's slots exactly as long as they are; the handles of those with
    /// open holds, with their earliest expiry.
    pub fn absorb(&mut self, mut other: Table) -> Vec<(Handle, Option<Millis>)> {
        other.loaded();
        let locations: Vec<u32> = other.locations.iter().map(|l| copied(&mut self.locations, l) as u32).collect();
        let mut held = Vec::new();
        for (i, row) in std::mem::take(&mut other.slots.by_sku).into_iter().enumerate() {
            if row.is_empty() {
                continue;
            }
            let sku = copied(&mut self.skus, &other.skus[i]);
            let mut row: Row = row.into_iter().map(|(l, slot)| (locations[l as usize], slot)).collect();
            row.sort_unstable_by_key(|(l, _)| *l);
            for (l, slot) in &row {
                if let Some(stock) = &slot.holds {
                    held.push((Handle::new(sku, *l as usize), stock.next_expiry()));
                }
            }
            match self.slots.by_sku.get(sku) {
                Some(mine) if !mine.is_empty() => {
                    for (l, slot) in row {
                        self.slots.insert(Handle::new(sku, l as usize), slot);
                    }
                }
                _ => {
                    if sku >= self.slots.by_sku.len() {
                        self.slots.by_sku.resize_with(sku + 1, Vec::new);
                    }
                    self.slots.len += row.len();
                    self.slots.by_sku[sku] = row;
                }
            }
        }
        held
    }

    /// Drops every position of the SKUs `drop` names (their memory is freed; the ids stay
    /// interned); the handles dropped.
    pub fn remove_skus(&mut self, drop: impl Fn(&str) -> bool) -> Vec<Handle> {
        let mut gone = Vec::new();
        for (sku, row) in self.slots.by_sku.iter_mut().enumerate() {
            if !row.is_empty() && drop(self.skus[sku].as_str()) {
                gone.extend(row.iter().map(|(l, _)| Handle::new(sku, *l as usize)));
                self.slots.len -= row.len();
                *row = Vec::new();
            }
        }
        gone
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shelfcast_protocol::Hold;

    #[test]
    fn a_table_takes_another_tables_skus_and_drops_them_again() {
        let mut mine = Table::default();
        mine.set(&key("A", "s1"), &Entry { stock: Stock::new(1), version: 1 });
        let mut loaded = Table::default();
        loaded.load("B", "s2", 5, 7).unwrap();
        loaded.load("B", "s1", 4, 6).unwrap();
        loaded.load("C", "s3", 2, 9).unwrap();
        loaded.loaded();
        loaded.update(&key("C", "s3"), |e| e.stock.add_hold(Hold { reservation: "r".into(), qty: 1, expires_at: Some(50) }));
        let held = mine.absorb(loaded);
        assert_eq!(mine.len(), 4);
        assert_eq!(held, vec![(mine.handle(&key("C", "s3")).unwrap(), Some(50))]);
        assert_eq!(mine.get(&key("B", "s1")).map(|e| (e.stock.on_hand, e.version)), Some((4, 6)));
        assert_eq!(mine.get(&key("C", "s3")).map(|e| e.stock.available_at(0)), Some(1));
        let gone = mine.remove_skus(|sku| sku != "A");
        assert_eq!(gone.len(), 3);
        assert_eq!(mine.len(), 1);
        assert!(mine.get(&key("B", "s2")).is_none());
        assert_eq!(mine.get(&key("A", "s1")).map(|e| e.version), Some(1));
    }

    fn key(sku: &str, location: &str) -> PositionKey {
        PositionKey::new(Sku::parse(sku).unwrap(), LocationId::parse(location).unwrap())
    }

    #[test]
    fn a_position_reads_back_as_set_with_or_without_holds() {
        let mut table = Table::default();
        let plain = Entry { stock: Stock::new(7), version: 3 };
        let held = Entry { stock: Stock::with_holds(5, [Hold { reservation: "r1".into(), qty: 2, expires_at: Some(1_000) }]), version: 4 };
        table.set(&key("A", "s1"), &plain);
        table.set(&key("A", "s2"), &held);
        table.set(&key("B", "s1"), &plain);
        assert_eq!(table.len(), 3);
        let back = table.get(&key("A", "s2")).unwrap();
        assert_eq!((back.stock.on_hand, back.stock.available_at(0), back.version), (5, 3, 4));
        assert_eq!(back.stock.hold("r1").map(|h| h.qty), Some(2));
        let back = table.get(&key("B", "s1")).unwrap();
        assert_eq!((back.stock.on_hand, back.stock.hold_count(), back.version), (7, 0, 3));
        assert!(table.get(&key("B", "s2")).is_none(), "both ids known, the pair never set");
        assert!(table.get(&key("C", "s1")).is_none());
        let h = table.handle(&key("A", "s2")).unwrap();
        assert_eq!(table.key(h), key("A", "s2"));
        assert_eq!(table.with_holds().collect::<Vec<_>>(), vec![(h, Some(1_000))]);
        assert_eq!(table.max_version(), 4);
    }

    #[test]
    fn a_position_whose_last_hold_ends_keeps_no_stock_out_of_line() {
        let mut table = Table::default();
        let k = key("A", "s1");
        table
            .set(&k, &Entry { stock: Stock::with_holds(5, [Hold { reservation: "r1".into(), qty: 2, expires_at: Some(10) }]), version: 1 });
        assert_eq!(table.with_holds().count(), 1);
        table.update(&k, |e| {
            e.stock.release("r1");
            e.version = 2;
        });
        assert_eq!(table.with_holds().count(), 0);
        let back = table.get(&k).unwrap();
        assert_eq!((back.stock.on_hand, back.stock.available_at(0), back.version), (5, 5, 2));
    }

    #[test]
    fn a_bulk_load_in_any_order_reads_back_every_position() {
        let mut table = Table::default();
        let rows = [("B", "s2", 1), ("B", "s1", 2), ("A", "s3", 3), ("A", "s1", 4), ("B", "s3", 5), ("C", "s1", 6)];
        for (i, (sku, location, on_hand)) in rows.iter().enumerate() {
            table.load(sku, location, *on_hand, i as u64 + 1).unwrap();
        }
        table.loaded();
        assert_eq!(table.len(), rows.len());
        for (i, (sku, location, on_hand)) in rows.iter().enumerate() {
            let e = table.get(&key(sku, location)).unwrap_or_else(|| panic!("{sku}@{location}"));
            assert_eq!((e.stock.on_hand, e.version), (*on_hand, i as u64 + 1));
        }
        let all: Vec<Handle> = table.handles().chain(table.handles()).collect();
        let sorted: Vec<PositionKey> = table.in_key_order(all).into_iter().map(|h| table.key(h)).collect();
        let mut expected: Vec<PositionKey> = rows.iter().map(|(s, l, _)| key(s, l)).collect();
        expected.sort();
        assert_eq!(sorted, expected);
        assert!(table.load("not a sku!", "s1", 1, 9).is_err(), "a stored id that does not parse is an error");
    }

    #[test]
    fn scans_find_by_location_and_version_and_by_shortfall() {
        let mut table = Table::default();
        for (i, loc) in ["s1", "s2", "s1"].iter().enumerate() {
            table.set(&key(&format!("K{i}"), loc), &Entry { stock: Stock::new(1), version: i as u64 + 1 });
        }
        let s1 = table.location(&LocationId::parse("s1").unwrap()).unwrap();
        let mut changed: Vec<PositionKey> = table.changed_at(s1, |_| Some(1)).map(|h| table.key(h)).collect();
        changed.sort();
        assert_eq!(changed, vec![key("K2", "s1")]);
        table.set(
            &key("K9", "s2"),
            &Entry { stock: Stock::with_holds(1, [Hold { reservation: "r".into(), qty: 3, expires_at: None }]), version: 9 },
        );
        table.set(&key("K8", "s2"), &Entry { stock: Stock::new(-2), version: 10 });
        let mut short: Vec<PositionKey> = table.short(0).map(|h| table.key(h)).collect();
        short.sort();
        assert_eq!(short, vec![key("K8", "s2"), key("K9", "s2")]);
    }
}
