//! Any `Last-Event-ID` header and `?last_event_id=`: never a panic; the resume point names only
//! partitions the stream reads, never beyond what the hub has published of them; the header
//! wins over the query.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use shelfcast_protocol::partition::Cursor;
use shelfcast_server::untrusted::resume_point;

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    header: Option<&'a [u8]>,
    query: Option<&'a str>,
    partitions: Vec<u8>,
    published: u64,
}

fuzz_target!(|input: Input<'_>| {
    let mut partitions: Vec<u32> = input.partitions.iter().map(|p| u32::from(*p)).collect();
    partitions.sort_unstable();
    partitions.dedup();
    let published = |p: u32| input.published.wrapping_add(u64::from(p));
    let got = resume_point(input.header, input.query, &partitions, &published);
    for (p, v) in got.iter() {
        assert!(partitions.contains(&p) && v <= published(p));
    }
    let sent = match input.header {
        Some(h) => std::str::from_utf8(h).ok(),
        None => input.query,
    };
    let mut expected = sent.map(|s| Cursor::parse(s, &partitions)).unwrap_or_default();
    for (p, v) in expected.clone().iter() {
        if v > published(p) {
            expected.forget(p);
        }
    }
    assert_eq!(got, expected);
});
