//! What a reservation request and an action on a reservation decide, given the state they
//! touch: the one place these rules are written. Pure (state in, decision and new state out);
//! the hub's writer over SQLite or PostgreSQL and the model in [`crate::ledger`] call these and
//! only persist what they decide. Events change stock by [`Stock::apply`]; lapsed holds go by
//! [`Stock::expire`] and [`Reservation::expire`].

use crate::clock::Millis;
use crate::ids::PositionKey;
use crate::reservation::{Action, Reservation, TransitionError};
use crate::stock::{Insufficient, Stock};

/// How a reservation request relates to its key's earlier use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyUse {
    /// The key is new: decide the request.
    Fresh,
    /// The same request again (position and quantity): answer with the reservation it got.
    Repeat,
    /// The key was used for another request: refuse, change nothing.
    Reused,
}

/// A key names one request: `earlier` is the position and quantity its reservation was made for.
pub fn key_use(earlier: Option<(&PositionKey, i64)>, position: &PositionKey, qty: i64) -> KeyUse {
    match earlier {
        None => KeyUse::Fresh,
        Some((p, q)) if p == position && q == qty => KeyUse::Repeat,
        Some(_) => KeyUse::Reused,
    }
}

/// A fresh request for `qty` at `now`, as reservation `id`: held on `stock` until `now + ttl`
/// if that much is available then, else refused with what was.
pub fn hold(stock: &mut Stock, id: &str, qty: i64, now: Millis, ttl: Millis) -> Result<Reservation, Insufficient> {
    stock.try_hold(id, qty, now + ttl, now)?;
    Ok(Reservation::held(qty, now + ttl))
}

/// Confirms, releases or fulfils reservation `id` at `now`, with its hold on `stock` changed to
/// match: the reservation's next state, or `Ok(None)` for a retried action that changes
/// nothing. A move the life cycle does not allow changes nothing either.
pub fn act(
    reservation: &Reservation,
    id: &str,
    action: Action,
    now: Millis,
    stock: &mut Stock,
) -> Result<Option<Reservation>, TransitionError> {
    let Some(next) = reservation.decide(action, now)? else { return Ok(None) };
    match action {
        Action::Confirm => {
            stock.confirm(id);
        }
        Action::Release => {
            stock.release(id);
        }
        Action::Fulfil => {
            stock.fulfil(id);
        }
    }
    Ok(Some(next))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reservation::ReservationStatus;

    fn p(s: &str) -> PositionKey {
        PositionKey::parse_pair(s).unwrap()
    }

    #[test]
    fn a_key_names_one_request() {
        let (a, b) = (p("S@berlin"), p("S@hamburg"));
        assert_eq!(key_use(None, &a, 1), KeyUse::Fresh);
        assert_eq!(key_use(Some((&a, 1)), &a, 1), KeyUse::Repeat);
        assert_eq!(key_use(Some((&a, 1)), &a, 2), KeyUse::Reused);
        assert_eq!(key_use(Some((&a, 1)), &b, 1), KeyUse::Reused);
    }

    #[test]
    fn a_hold_takes_only_what_is_available_and_actions_move_it() {
        let mut stock = Stock::new(3);
        assert_eq!(hold(&mut stock, "r1", 4, 0, 100), Err(Insufficient { available: 3 }));
        assert_eq!(stock.available_at(0), 3, "a refused hold changes nothing");
        let r1 = hold(&mut stock, "r1", 2, 0, 100).unwrap();
        assert_eq!((r1.status, r1.expires_at, stock.available_at(0)), (ReservationStatus::Held, Some(100), 1));
        let confirmed = act(&r1, "r1", Action::Confirm, 10, &mut stock).unwrap().unwrap();
        assert_eq!(act(&confirmed, "r1", Action::Confirm, 11, &mut stock), Ok(None), "a retried confirm");
        assert_eq!(stock.available_at(500), 1, "a confirmed hold does not lapse");
        act(&confirmed, "r1", Action::Fulfil, 20, &mut stock).unwrap().unwrap();
        assert_eq!((stock.on_hand, stock.reserved_at(20)), (1, 0), "picked up: off the shelf and no longer held");
        let r2 = hold(&mut stock, "r2", 1, 30, 100).unwrap();
        act(&r2, "r2", Action::Release, 40, &mut stock).unwrap().unwrap();
        assert_eq!(stock.available_at(40), 1, "released: back on sale");
        assert!(act(&r2, "r2", Action::Fulfil, 200, &mut stock).is_err(), "a lapsed hold cannot be picked up");
    }
}
