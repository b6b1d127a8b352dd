//! What the shopper sees, decided from the latest position, the shopper's own hold and the
//! state of the connection. Pure, so the browser tests can pin every case.

use shelfcast_protocol::{PublicPosition, Status};

/// The state of the page's stream to the hub.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Link {
    #[default]
    Connecting,
    Live,
    /// It was live and dropped; the browser is reconnecting with `Last-Event-ID`.
    Reconnecting,
    /// It never connected: the hub cannot be reached.
    Unreachable,
}

/// The shopper's own reservation at one position, as far as this page knows.
#[derive(Clone, Debug, PartialEq, Default)]
pub enum Hold {
    #[default]
    None,
    /// Asked for, answer pending: shown at once as held.
    Pending { qty: i64, seen_version: u64 },
    /// Granted by the hub. `seen_version` is the position's version when it was asked for: until
    /// the stream shows a newer one, the hold is not yet in `available` and is subtracted here.
    /// `expires_at`: the hub's instant (ms since the epoch), shown as "until HH:MM"; `lapses`:
    /// when it lapses on this page's monotonic clock (`dom::now`), from the hub's time left
    /// (infinite until the hub has said, after a reload).
    Held { id: String, token: String, qty: i64, expires_at: f64, lapses: f64, seen_version: u64 },
    /// Rolled back, with the reason shown to the shopper.
    Failed { reason: Failure },
}

#[derive(Clone, Debug, PartialEq)]
pub enum Failure {
    SoldOut,
    Expired,
    /// Ended elsewhere: released through the API or on another page.
    Released,
    /// Released by the store: staff could not set the item aside.
    ReleasedByStore,
    Other(String),
}

impl Hold {
    /// Units this hold takes off the displayed count that the hub's position does not yet show.
    pub fn unreflected(&self, position_version: u64) -> i64 {
        match self {
            Hold::Pending { qty, .. } => *qty,
            Hold::Held { qty, seen_version, .. } if position_version <= *seen_version => *qty,
            _ => 0,
        }
    }

    pub fn is_active(&self) -> bool {
        matches!(self, Hold::Pending { .. } | Hold::Held { .. })
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Shown {
    Loading,
    /// `available` as the shopper should read it (never below zero: oversold is out of stock),
    /// or `None` where the hub withholds the count (`--disclose`): then the hub's status.
    Stock {
        status: Status,
        available: Option<i64>,
        stale: bool,
    },
}

pub fn shown(position: Option<&PublicPosition>, hold: &Hold, link: Link, low_stock: i64) -> Shown {
    let Some(p) = position else { return Shown::Loading };
    let stale = link != Link::Live;
    match p.available {
        Some(available) => {
            let available = available - hold.unreflected(p.version);
            Shown::Stock { status: Status::of(available, low_stock), available: Some(available.max(0)), stale }
        }
        // Without the count, the shopper's own pending units cannot be taken off it.
        None => Shown::Stock { status: p.status, available: None, stale },
    }
}

impl Shown {
    /// Nothing there to reserve (or not known yet).
    pub fn sold_out(&self) -> bool {
        match self {
            Shown::Loading => true,
            Shown::Stock { available: Some(a), .. } => *a <= 0,
            Shown::Stock { status, .. } => *status == Status::OutOfStock,
        }
    }
}
