//! Any bytes as an ingest body, read as a JSON array and as NDJSON: never a panic; the same
//! bytes always decode the same way; every event that decodes as valid keeps the contract's
//! rules (id of 1 to 128 printable ASCII characters, quantities in range and of the right sign).
#![no_main]

use libfuzzer_sys::fuzz_target;
use shelfcast_protocol::EventKind;
use shelfcast_server::untrusted::{decode_events, MAX_EVENTS};

fuzz_target!(|data: &[u8]| {
    for ndjson in [false, true] {
        match (decode_events(data, ndjson), decode_events(data, ndjson)) {
            (Ok(first), Ok(again)) => {
                assert!(first.len() <= MAX_EVENTS);
                assert_eq!(first.len(), again.len());
                for ((id, event), (id2, event2)) in first.iter().zip(&again) {
                    assert_eq!(id, id2);
                    assert_eq!(event.is_ok(), event2.is_ok());
                    let Ok(e) = event else { continue };
                    let eid = e.id.as_str();
                    assert_eq!(id.as_deref(), Some(eid));
                    assert!((1..=128).contains(&eid.len()));
                    assert!(eid.bytes().all(|b| (0x21..=0x7e).contains(&b)), "{eid:?}");
                    assert!(e.qty.abs() <= 1_000_000_000);
                    match e.kind {
                        EventKind::Sale | EventKind::Return | EventKind::Receipt => assert!(e.qty > 0),
                        EventKind::Adjust => assert!(e.qty != 0),
                        EventKind::Count => assert!(e.qty >= 0),
                    }
                }
            }
            (Err(_), Err(_)) => {}
            _ => panic!("the same body decoded two ways"),
        }
    }
});
