//! What a reader sees of one position.

use serde::{Deserialize, Serialize};

use crate::ids::{LocationId, Sku};

/// `low_stock` applies while `0 < available <= threshold`; this is the threshold unless configured.
pub const DEFAULT_LOW_STOCK: i64 = 3;

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    InStock,
    LowStock,
    /// Also what a position never written has.
    #[default]
    OutOfStock,
}

impl Status {
    /// Oversold (negative available) is out of stock: shown, never hidden.
    pub fn of(available: i64, low_stock: i64) -> Status {
        if available <= 0 {
            Status::OutOfStock
        } else if available <= low_stock {
            Status::LowStock
        } else {
            Status::InStock
        }
    }

    /// The status of a wire spelling the hub sent, by its first letter (the three differ
    /// there); anything else is out of stock (nothing offered to reserve).
    pub fn of_wire(text: &str) -> Status {
        match text.as_bytes().first() {
            Some(b'i') => Status::InStock,
            Some(b'l') => Status::LowStock,
            _ => Status::OutOfStock,
        }
    }

    /// The status as the wire spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::InStock => "in_stock",
            Status::LowStock => "low_stock",
            Status::OutOfStock => "out_of_stock",
        }
    }
}

/// The stock of one SKU at one location, as served by `/v1/availability` and `/v1/stream`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    pub sku: Sku,
    pub location: LocationId,
    /// (Read with the `all-fields` feature only: the element shows `available`, and each field it
    /// does not read is code it does not download.)
    #[cfg_attr(not(feature = "all-fields"), serde(skip_deserializing))]
    pub on_hand: i64,
    pub reserved: i64,
    /// `on_hand - reserved`; negative when the location is oversold.
    pub available: i64,
    /// (Read with the `all-fields` feature only: the element decides the status with its own
    /// `low-stock` threshold.)
    #[cfg_attr(not(feature = "all-fields"), serde(skip_deserializing))]
    pub status: Status,
    /// The hub's change sequence at this position's last change; 0 if never written.
    pub version: u64,
}

/// How much of the stock the hub shows a reader without a token (`--disclose`): merchants may
/// keep exact counts from competitors and show shoppers a tier instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Disclose {
    /// Every number.
    #[default]
    Exact,
    /// The numbers only while the position is `low_stock` ("Only 2 left"); otherwise the status.
    Low,
    /// The status alone.
    Status,
}

impl Disclose {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "exact" => Some(Disclose::Exact),
            "low" => Some(Disclose::Low),
            "status" => Some(Disclose::Status),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Disclose::Exact => "exact",
            Disclose::Low => "low",
            Disclose::Status => "status",
        }
    }

    /// Whether a reader is shown the numbers of a position with `status`.
    pub fn shows(self, status: Status) -> bool {
        match self {
            Disclose::Exact => true,
            Disclose::Low => status == Status::LowStock,
            Disclose::Status => false,
        }
    }

    /// `p` as a reader without a token sees it under this mode.
    pub fn apply(self, p: Position) -> PublicPosition {
        let shown = self.shows(p.status);
        let number = |n: i64| shown.then_some(n);
        PublicPosition {
            on_hand: number(p.on_hand),
            reserved: number(p.reserved),
            available: number(p.available),
            sku: p.sku,
            location: p.location,
            status: p.status,
            version: p.version,
        }
    }
}

/// A position as served to readers (`/v1/availability`, `/v1/stream`, the store directory): the
/// numbers are `null` where the hub's disclosure withholds them; a request with a device or
/// admin token always gets them.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicPosition {
    pub sku: Sku,
    pub location: LocationId,
    /// (Read with the `all-fields` feature only, like [`Position::on_hand`].)
    #[cfg_attr(not(feature = "all-fields"), serde(skip_deserializing))]
    pub on_hand: Option<i64>,
    pub reserved: Option<i64>,
    /// `on_hand - reserved`, or `null` when withheld.
    pub available: Option<i64>,
    /// Always present: what an element shows when the numbers are withheld. (Without
    /// `all-fields` it is not read here: the element reads it off the hub's object only then,
    /// with [`Status::of_wire`], in less code than the enum's reader.)
    #[cfg_attr(not(feature = "all-fields"), serde(skip_deserializing))]
    pub status: Status,
    pub version: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disclosure_withholds_numbers() {
        let p = |available: i64| Position {
            sku: Sku::parse("S").unwrap(),
            location: LocationId::parse("L").unwrap(),
            on_hand: available + 1,
            reserved: 1,
            available,
            status: Status::of(available, 3),
            version: 9,
        };
        for a in [-1, 0, 2, 7] {
            let exact = Disclose::Exact.apply(p(a));
            assert_eq!((exact.on_hand, exact.reserved, exact.available), (Some(a + 1), Some(1), Some(a)));
            let status = Disclose::Status.apply(p(a));
            assert_eq!((status.on_hand, status.reserved, status.available), (None, None, None));
            assert_eq!((status.status, status.version), (p(a).status, 9));
            let low = Disclose::Low.apply(p(a));
            assert_eq!(low.available.is_some(), a == 2, "low mode at available {a}");
            assert_eq!(low.on_hand.is_some(), a == 2);
        }
        for mode in [Disclose::Exact, Disclose::Low, Disclose::Status] {
            assert_eq!(Disclose::parse(mode.as_str()), Some(mode));
        }
        assert_eq!(Disclose::parse("none"), None);
        for status in [Status::InStock, Status::LowStock, Status::OutOfStock] {
            assert_eq!(Status::of_wire(status.as_str()), status);
        }
        assert_eq!(Status::of_wire(""), Status::OutOfStock, "nothing is offered on a status it cannot read");
    }

    #[test]
    fn status_thresholds() {
        assert_eq!(Status::of(-2, 3), Status::OutOfStock);
        assert_eq!(Status::of(0, 3), Status::OutOfStock);
        assert_eq!(Status::of(1, 3), Status::LowStock);
        assert_eq!(Status::of(3, 3), Status::LowStock);
        assert_eq!(Status::of(4, 3), Status::InStock);
        assert_eq!(Status::of(1, 0), Status::InStock);
    }
}

/// The versions one commit gives out: the `n` positions it changes get the `n` versions after
/// `before`, one each, in the order of their keys. (A shared ledger does the same in SQL, in
/// the statement that takes them.)
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Versions {
    pub before: u64,
    pub n: usize,
}

impl Versions {
    /// A commit of `n` changed positions after version `before`.
    pub fn after(before: u64, n: usize) -> Self {
        Versions { before, n }
    }

    /// A commit of `n` changed positions whose last version is `last`.
    pub fn ending_at(last: u64, n: usize) -> Self {
        Versions { before: last - n as u64, n }
    }

    /// The version of the `i`-th changed position (in key order).
    pub fn nth(self, i: usize) -> u64 {
        self.before + 1 + i as u64
    }

    pub fn first(self) -> u64 {
        self.before + 1
    }

    pub fn last(self) -> u64 {
        self.before + self.n as u64
    }
}

#[cfg(test)]
mod spelling {
    use super::Status;

    #[test]
    fn as_str_is_the_wire_spelling() {
        for s in [Status::InStock, Status::LowStock, Status::OutOfStock] {
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
    }
}

#[cfg(test)]
mod versions {
    use super::Versions;

    #[test]
    fn one_version_each_after_the_last_given_out() {
        let v = Versions::after(10, 3);
        assert_eq!((v.first(), v.nth(1), v.last()), (11, 12, 13));
        assert_eq!(Versions::ending_at(13, 3), v);
        assert_eq!(Versions::after(7, 0).last(), 7, "nothing changed, nothing given out");
    }
}
