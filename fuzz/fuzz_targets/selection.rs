//! Any query string of `/v1/availability` or `/v1/stream`: never a panic; an accepted query
//! names 1 to 50 positions, each of which reads back as itself from its `SKU@location` form.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shelfcast_protocol::PositionKey;
use shelfcast_server::untrusted::{parse_selection, MAX_POSITIONS};

fuzz_target!(|data: &[u8]| {
    let Ok(query) = std::str::from_utf8(data) else { return };
    if let Ok(q) = parse_selection(Some(query)) {
        assert!((1..=MAX_POSITIONS).contains(&q.positions.len()), "{} positions", q.positions.len());
        for p in &q.positions {
            let text = format!("{}@{}", p.sku, p.location);
            assert_eq!(PositionKey::parse_pair(&text).as_ref(), Ok(p));
        }
    }
});
