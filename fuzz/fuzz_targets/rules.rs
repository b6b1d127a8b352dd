//! Arbitrary sequences of events, reservations, confirmations, releases, pickups, clock moves
//! and sweeps on the pure inventory rules, every invariant of `shelfcast_protocol::model`
//! checked after every step (no oversell, dedupe, one reservation per key, reserved ≥ 0 and
//! equal to the live holds). The same model the property tests run; here the fuzzer's
//! coverage feedback picks the sequences.
#![no_main]

use arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use shelfcast_protocol::model::{Cmd, Run};
use shelfcast_protocol::{Action, EventKind};

fn cmd(u: &mut Unstructured) -> Result<Cmd> {
    Ok(match u.int_in_range(0..=4u8)? {
        // Any quantity, also zero and negative: invalid events must be refused, not applied.
        0 => Cmd::Event { id: u.arbitrary()?, kind: *u.choose(&EventKind::ALL)?, pos: u.arbitrary()?, qty: u.arbitrary::<i16>()?.into() },
        1 => Cmd::Reserve { key: u.arbitrary()?, pos: u.arbitrary()?, qty: (u.arbitrary::<u8>()? % 5 + 1).into() },
        2 => Cmd::Act { nth: u.arbitrary::<u8>()?.into(), action: *u.choose(&[Action::Confirm, Action::Release, Action::Fulfil])? },
        3 => Cmd::Tick(u.arbitrary::<u16>()?.into()),
        _ => Cmd::Sweep,
    })
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let mut run = Run::default();
    for _ in 0..500 {
        let Ok(c) = cmd(&mut u) else { break };
        run.step(c);
    }
});
