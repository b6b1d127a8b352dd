//! Any `Last-Event-ID` header and `?last_event_id=`: never a panic; the resume point is never
//! beyond what the hub has published; the header wins over the query.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use shelfcast_server::untrusted::resume_point;

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    header: Option<&'a [u8]>,
    query: Option<&'a str>,
    published: u64,
}

fuzz_target!(|input: Input<'_>| {
    let got = resume_point(input.header, input.query, input.published);
    if let Some(v) = got {
        assert!(v <= input.published);
    }
    let from_header = input.header.and_then(|h| std::str::from_utf8(h).ok()?.trim().parse::<u64>().ok());
    match input.header {
        Some(_) => assert_eq!(got, from_header.filter(|v| *v <= input.published)),
        None => assert_eq!(got, input.query.and_then(|q| q.trim().parse::<u64>().ok()).filter(|v| *v <= input.published)),
    }
});
