//! Which partition a SKU's positions belong to when the hub's writes are split between
//! replicas. All locations of one SKU share a partition, so a product page's stream (one SKU at
//! up to 50 stores) and a reservation's position are decided by one owner.
//!
//! The rule must give every replica of every release the same answer for as long as a
//! database lives: it is FNV-1a (64 bits) of the SKU's bytes, reduced modulo the count of
//! partitions the database was created with. Never change it for an existing database.

/// The partitions a database is created with: enough to spread evenly over dozens of replicas,
/// few enough that each replica's leases are renewed in one statement.
pub const DEFAULT_PARTITIONS: u32 = 256;

/// The partition of `sku` among `partitions` (at least 1).
pub fn partition_of(sku: &str, partitions: u32) -> u32 {
    if partitions <= 1 {
        return 0;
    }
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let hash = sku.bytes().fold(OFFSET, |h, b| (h ^ u64::from(b)).wrapping_mul(PRIME));
    (hash % u64::from(partitions.max(1))) as u32
}

/// The longest cursor a stream sends as its `id:` (v1.1 of the contract).
pub const MAX_CURSOR: usize = 256;

/// Where a reader stands in each partition: it has seen every change of partition `p` up to
/// version `cursor[p]` (versions of different partitions are not comparable). A reader of one
/// partition (a one-SKU stream, or any reader of a hub that writes alone) sends and takes the
/// plain integer version; a reader of several sends `c` and `partition.version` pairs in hex,
/// joined by `_` (`c3.1f4_a0.9`). A partition missing from a cursor is read from the start:
/// cutting a cursor short costs positions sent again, never a change missed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cursor(std::collections::BTreeMap<u32, u64>);

/// The versions seen, by partition.
impl FromIterator<(u32, u64)> for Cursor {
    fn from_iter<I: IntoIterator<Item = (u32, u64)>>(versions: I) -> Cursor {
        Cursor(versions.into_iter().collect())
    }
}

impl Cursor {
    /// The version seen in `partition`, if any.
    pub fn get(&self, partition: u32) -> Option<u64> {
        self.0.get(&partition).copied()
    }

    /// Records that every change of `partition` up to `version` is seen (never goes back).
    pub fn advance(&mut self, partition: u32, version: u64) {
        let at = self.0.entry(partition).or_insert(version);
        *at = (*at).max(version);
    }

    /// `version` seen in each of `partitions` (a reader that sent a plain version where it
    /// reads several).
    pub fn everywhere(version: u64, partitions: impl IntoIterator<Item = u32>) -> Cursor {
        partitions.into_iter().map(|p| (p, version)).collect()
    }

    /// Forgets a partition (a version this hub never reached: read it from the start).
    pub fn forget(&mut self, partition: u32) {
        self.0.remove(&partition);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (u32, u64)> + '_ {
        self.0.iter().map(|(p, v)| (*p, *v))
    }

    /// Whether this cursor is behind `other` in some partition: a hub that answers with it
    /// lost changes the reader had seen (it started over).
    pub fn behind(&self, other: &Cursor) -> bool {
        other.iter().any(|(p, v)| self.get(p).is_none_or(|mine| mine < v))
    }

    /// The cursor a reader of `partitions` sent (an id or a `since`): anything that does not
    /// parse, or names a partition it does not read, is an empty cursor (read everything).
    /// Never panics: it comes from the network.
    pub fn parse(text: &str, partitions: &[u32]) -> Cursor {
        let text = text.trim();
        let mut out = Cursor::default();
        if let Ok(v) = text.parse::<u64>() {
            if let [only] = partitions {
                out.advance(*only, v);
            }
            return out;
        }
        match Cursor::pairs(text) {
            Some(c) if c.iter().all(|(p, _)| partitions.contains(&p)) => c,
            _ => out,
        }
    }

    /// The cursor of several partitions that `text` spells, if it spells one.
    pub fn pairs(text: &str) -> Option<Cursor> {
        let mut out = Cursor::default();
        for pair in text.strip_prefix('c')?.split('_') {
            let (p, v) = pair.split_once('.')?;
            out.advance(u32::from_str_radix(p, 16).ok()?, u64::from_str_radix(v, 16).ok()?);
        }
        Some(out)
    }

    /// Whether a hub answered with a cursor (or version) behind the one it was asked with, in
    /// some partition: it lost changes the reader had seen, and the reader starts over.
    pub fn went_back(answered: &str, asked: &str) -> bool {
        match (answered.trim().parse::<u64>(), asked.trim().parse::<u64>()) {
            (Ok(a), Ok(b)) => a < b,
            // Asked from the start: nothing to go back from.
            (_, Ok(0)) => false,
            _ => match (Cursor::pairs(answered.trim()), Cursor::pairs(asked.trim())) {
                (Some(a), Some(b)) => a.behind(&b),
                // A version against a cursor: the hub changed how it counts; start over.
                _ => true,
            },
        }
    }

    /// As a reader of `partitions` sends it: the integer for one partition (0 when nothing is
    /// seen yet), else the pairs, at most `limit` characters (pairs that do not fit are left
    /// out: read from the start on resume).
    pub fn encode(&self, partitions: &[u32], limit: usize) -> String {
        if let [only] = partitions {
            return self.get(*only).unwrap_or(0).to_string();
        }
        let mut out = String::from("c");
        for (p, v) in self.iter() {
            let pair = format!("{p:x}.{v:x}");
            if out.len() + pair.len() + usize::from(out.len() > 1) > limit {
                break;
            }
            if out.len() > 1 {
                out.push('_');
            }
            out.push_str(&pair);
        }
        out
    }
}

/// The versions one commit gives out when each partition counts its own: the positions it
/// changes, in the order given, get the next versions of their partition, one each. (A hub
/// that writes alone has one partition, and this is `Versions`.)
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stamps {
    parts: Vec<u32>,
    /// Each position's place among its partition's positions in the commit, from 1.
    ordinals: Vec<u64>,
    counts: std::collections::BTreeMap<u32, u64>,
}

impl Stamps {
    /// A commit changing positions of these partitions, in this order.
    pub fn new(parts: Vec<u32>) -> Stamps {
        let mut counts = std::collections::BTreeMap::new();
        let ordinals = parts
            .iter()
            .map(|p| {
                let n = counts.entry(*p).or_insert(0u64);
                *n += 1;
                *n
            })
            .collect();
        Stamps { parts, ordinals, counts }
    }

    pub fn len(&self) -> usize {
        self.parts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }

    /// The partition of the `i`-th position and its place among that partition's positions.
    pub fn at(&self, i: usize) -> (u32, u64) {
        (self.parts[i], self.ordinals[i])
    }

    /// How many versions each partition gives out, by partition.
    pub fn counts(&self) -> impl Iterator<Item = (u32, u64)> + '_ {
        self.counts.iter().map(|(p, n)| (*p, *n))
    }

    /// The version of the `i`-th position, given the last version each partition gave out
    /// (`last`, sorted by partition, as the ledger answers).
    pub fn version(&self, i: usize, last: &[(u32, u64)]) -> u64 {
        let (p, k) = self.at(i);
        let at = last.binary_search_by_key(&p, |(q, _)| *q).map(|j| last[j].1).expect("every partition written has a last version");
        at - self.counts[&p] + k
    }

    /// The first version each partition gave out, by partition.
    pub fn first(&self, last: &[(u32, u64)]) -> Vec<(u32, u64)> {
        last.iter().map(|(p, v)| (*p, v + 1 - self.counts.get(p).copied().unwrap_or(1))).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_partition_numbers_its_own_positions_in_the_order_given() {
        let stamps = Stamps::new(vec![4, 1, 4, 4, 1]);
        assert_eq!(stamps.counts().collect::<Vec<_>>(), vec![(1, 2), (4, 3)]);
        let last = [(1, 20), (4, 7)];
        let versions: Vec<u64> = (0..stamps.len()).map(|i| stamps.version(i, &last)).collect();
        assert_eq!(versions, vec![5, 19, 6, 7, 20]);
        assert_eq!(stamps.first(&last), vec![(1, 19), (4, 5)]);
    }

    #[test]
    fn a_cursor_of_one_partition_is_the_integer_version() {
        let mut c = Cursor::default();
        assert_eq!(c.encode(&[7], MAX_CURSOR), "0");
        c.advance(7, 41);
        c.advance(7, 40);
        assert_eq!(c.encode(&[7], MAX_CURSOR), "41", "never goes back");
        assert_eq!(Cursor::parse("41", &[7]), c);
        assert!(Cursor::parse("41", &[7, 9]).is_empty(), "an integer does not say which of several partitions");
    }

    #[test]
    fn a_cursor_of_several_partitions_round_trips_and_rejects_what_it_does_not_know() {
        let mut c = Cursor::default();
        c.advance(3, 500);
        c.advance(160, 9);
        let text = c.encode(&[3, 160], MAX_CURSOR);
        assert_eq!(text, "c3.1f4_a0.9");
        assert_eq!(Cursor::parse(&text, &[3, 160]), c);
        assert!(Cursor::parse(&text, &[3]).is_empty(), "a partition the reader does not read");
        for junk in ["", "c", "cz.1", "c3.", "c3.1_", "c3.1f4_a0", "x3.1", "-1", "c3.ffffffffffffffffff"] {
            assert!(Cursor::parse(junk, &[3, 160]).is_empty(), "{junk:?}");
        }
    }

    #[test]
    fn a_long_cursor_is_cut_to_the_limit_and_keeps_only_whole_pairs() {
        let mut c = Cursor::default();
        let parts: Vec<u32> = (0..50).collect();
        for p in &parts {
            c.advance(*p, u64::from(u32::MAX) + u64::from(*p));
        }
        let text = c.encode(&parts, MAX_CURSOR);
        assert!(text.len() <= MAX_CURSOR && text.bytes().all(|b| (0x21..=0x7e).contains(&b)), "{text}");
        let back = Cursor::parse(&text, &parts);
        assert!(!back.is_empty() && back.iter().count() < 50);
        assert!(back.iter().all(|(p, v)| c.get(p) == Some(v)), "what is kept is exact");
    }

    #[test]
    fn behind_means_lower_or_missing_in_a_partition_the_other_saw() {
        let mut seen = Cursor::default();
        seen.advance(1, 10);
        let mut answer = seen.clone();
        assert!(!answer.behind(&seen));
        answer.advance(2, 3);
        assert!(!answer.behind(&seen));
        assert!(Cursor::default().behind(&seen));
        let mut lower = Cursor::default();
        lower.advance(1, 9);
        assert!(lower.behind(&seen));
        assert!(Cursor::went_back("4", "5") && !Cursor::went_back("5", "5"));
        assert!(Cursor::went_back("c1.9", "c1.a_2.1") && !Cursor::went_back("c1.a_2.1", "c1.a"));
        assert!(!Cursor::went_back("c1.a", "0"), "asked from the start");
        assert!(Cursor::went_back("c1.a", "7"), "a version against a cursor: start over");
    }

    #[test]
    fn the_rule_is_fixed() {
        // FNV-1a 64 of "" and "a" are published constants; a changed rule would move every
        // SKU of an existing database to another owner's memory without its ledger.
        assert_eq!(partition_of("", u32::MAX), (0xcbf2_9ce4_8422_2325u64 % u64::from(u32::MAX)) as u32);
        assert_eq!(partition_of("a", u32::MAX), (0xaf63_dc4c_8601_ec8cu64 % u64::from(u32::MAX)) as u32);
        assert_eq!(partition_of("anything", 1), 0);
        assert_eq!(partition_of("anything", 0), 0, "no partitions is taken as one");
    }

    #[test]
    fn skus_spread_over_the_partitions() {
        let mut counts = vec![0u32; DEFAULT_PARTITIONS as usize];
        for i in 0..25_600 {
            counts[partition_of(&format!("SKU-{i}"), DEFAULT_PARTITIONS) as usize] += 1;
        }
        // 100 expected in each; a fair hash stays well inside 50..150.
        assert!(counts.iter().all(|c| (50..150).contains(c)), "{counts:?}");
    }
}
