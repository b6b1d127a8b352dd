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
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let hash = sku.bytes().fold(OFFSET, |h, b| (h ^ u64::from(b)).wrapping_mul(PRIME));
    (hash % u64::from(partitions.max(1))) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

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
