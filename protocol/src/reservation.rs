//! The life of a click-and-collect reservation: held → confirmed → fulfilled; held or
//! confirmed → released; held → expired.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::clock::Millis;

/// Fewest and most units one reservation may hold.
pub const MIN_RESERVATION_QTY: i64 = 1;
pub const MAX_RESERVATION_QTY: i64 = 1_000;

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReservationStatus {
    Held,
    Confirmed,
    Fulfilled,
    Released,
    Expired,
}

impl ReservationStatus {
    pub const ALL: [ReservationStatus; 5] = [
        ReservationStatus::Held,
        ReservationStatus::Confirmed,
        ReservationStatus::Fulfilled,
        ReservationStatus::Released,
        ReservationStatus::Expired,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ReservationStatus::Held => "held",
            ReservationStatus::Confirmed => "confirmed",
            ReservationStatus::Fulfilled => "fulfilled",
            ReservationStatus::Released => "released",
            ReservationStatus::Expired => "expired",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Whether the reservation still claims stock.
    pub fn is_open(self) -> bool {
        matches!(self, ReservationStatus::Held | ReservationStatus::Confirmed)
    }
}

/// Why store staff released a reservation instead of handing it over: what the shopper's
/// element is told.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReleaseReason {
    NotFound,
    Damaged,
    CustomerCancelled,
    Other,
}

impl ReleaseReason {
    pub const ALL: [ReleaseReason; 4] =
        [ReleaseReason::NotFound, ReleaseReason::Damaged, ReleaseReason::CustomerCancelled, ReleaseReason::Other];

    pub fn as_str(self) -> &'static str {
        match self {
            ReleaseReason::NotFound => "not_found",
            ReleaseReason::Damaged => "damaged",
            ReleaseReason::CustomerCancelled => "customer_cancelled",
            ReleaseReason::Other => "other",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// Most characters of a staff member's note on a release.
pub const MAX_RELEASE_NOTE: usize = 500;

/// A release by the store: the reason, and the staff's note (at most [`MAX_RELEASE_NOTE`]
/// characters, kept for the merchant; the shopper sees the reason only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaffRelease {
    pub reason: ReleaseReason,
    pub note: Option<String>,
}

/// What a shopper or a device asks of a reservation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Action {
    Confirm,
    Release,
    Fulfil,
}

impl Action {
    fn as_str(self) -> &'static str {
        match self {
            Action::Confirm => "confirm",
            Action::Release => "release",
            Action::Fulfil => "fulfil",
        }
    }
}

/// The action does not apply to a reservation in this status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransitionError {
    pub status: ReservationStatus,
    pub action: Action,
}

impl fmt::Display for TransitionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a {} reservation cannot be asked to {}", self.status.as_str(), self.action.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reservation {
    pub status: ReservationStatus,
    pub qty: i64,
    /// Set while held; `None` once confirmed or closed.
    pub expires_at: Option<Millis>,
}

impl Reservation {
    pub fn held(qty: i64, expires_at: Millis) -> Self {
        Self { status: ReservationStatus::Held, qty, expires_at: Some(expires_at) }
    }

    /// The status at `now`: a hold whose time is up is expired, swept or not.
    pub fn status_at(&self, now: Millis) -> ReservationStatus {
        match (self.status, self.expires_at) {
            (ReservationStatus::Held, Some(t)) if now >= t => ReservationStatus::Expired,
            (s, _) => s,
        }
    }

    /// Decides `action` at `now`: `Ok(Some(next))` to move, `Ok(None)` when the reservation is
    /// already where the action leads (a retried request changes nothing and succeeds), or why not.
    pub fn decide(&self, action: Action, now: Millis) -> Result<Option<Reservation>, TransitionError> {
        use ReservationStatus::*;
        let status = self.status_at(now);
        let next = match (status, action) {
            (Held, Action::Confirm) => Confirmed,
            (Held | Confirmed, Action::Release) => Released,
            (Held | Confirmed, Action::Fulfil) => Fulfilled,
            // Already there: releasing a lapsed hold frees nothing more, and is no error.
            (Confirmed, Action::Confirm) | (Released | Expired, Action::Release) | (Fulfilled, Action::Fulfil) => return Ok(None),
            _ => return Err(TransitionError { status, action }),
        };
        Ok(Some(Reservation { status: next, qty: self.qty, expires_at: None }))
    }

    /// The sweeper's move: a held reservation past its time becomes expired.
    pub fn expire(&self, now: Millis) -> Option<Reservation> {
        (self.status == ReservationStatus::Held && self.status_at(now) == ReservationStatus::Expired).then_some(Reservation {
            status: ReservationStatus::Expired,
            qty: self.qty,
            expires_at: self.expires_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ReservationStatus::*;

    #[test]
    fn the_happy_path() {
        let r = Reservation::held(1, 1_000);
        let r = r.decide(Action::Confirm, 10).unwrap().unwrap();
        assert_eq!((r.status, r.expires_at), (Confirmed, None));
        assert_eq!(r.status_at(i64::MAX), Confirmed);
        assert_eq!(r.decide(Action::Confirm, 20), Ok(None), "confirming twice is a no-op");
        let done = r.decide(Action::Fulfil, 5_000).unwrap().unwrap();
        assert_eq!(done.status, Fulfilled);
        assert_eq!(done.decide(Action::Fulfil, 6_000), Ok(None));
    }

    #[test]
    fn an_expired_hold_cannot_be_confirmed() {
        let r = Reservation::held(1, 1_000);
        assert_eq!(r.status_at(999), Held);
        assert_eq!(r.status_at(1_000), Expired);
        assert_eq!(r.decide(Action::Confirm, 1_000), Err(TransitionError { status: Expired, action: Action::Confirm }));
        assert_eq!(r.expire(999), None);
        assert_eq!(r.expire(1_000).unwrap().status, Expired);
    }

    #[test]
    fn closed_reservations_stay_closed() {
        // (status, action) -> Ok(None) = already there, Err = refused; nothing closed ever moves.
        for (closed, action, noop) in [
            (Fulfilled, Action::Fulfil, true),
            (Fulfilled, Action::Confirm, false),
            (Released, Action::Release, true),
            (Released, Action::Confirm, false),
            (Released, Action::Fulfil, false),
            (Expired, Action::Release, true),
            (Expired, Action::Confirm, false),
            (Expired, Action::Fulfil, false),
        ] {
            let r = Reservation { status: closed, qty: 1, expires_at: None };
            assert_eq!(r.decide(action, 0).is_ok(), noop, "{closed:?} {action:?}");
            assert_eq!(r.decide(action, 0).ok().flatten(), None);
        }
        let fulfilled = Reservation { status: Fulfilled, qty: 1, expires_at: None };
        assert!(fulfilled.decide(Action::Release, 0).is_err(), "picked-up goods cannot be released");
        let confirmed = Reservation { status: Confirmed, qty: 1, expires_at: None };
        assert!(confirmed.expire(i64::MAX).is_none());
    }
}
