//! Stock events as tills, return terminals and scanners send them.

use crate::errors::ErrorCode;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::clock::{parse_rfc3339, Millis};
use crate::ids::{EventId, LocationId, PositionKey, Sku};

/// The largest quantity one event may carry, in either direction.
pub const MAX_EVENT_QTY: i64 = 1_000_000_000;

/// What happened to the stock.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// Sold at a till: on-hand drops by `qty`.
    Sale,
    /// Brought back by a shopper: on-hand rises by `qty`.
    Return,
    /// Delivered to the location: on-hand rises by `qty`.
    Receipt,
    /// A signed correction (damage, theft, found): on-hand moves by `qty`.
    Adjust,
    /// A stock count: on-hand becomes `qty`.
    Count,
}

impl EventKind {
    pub const ALL: [EventKind; 5] = [EventKind::Sale, EventKind::Return, EventKind::Receipt, EventKind::Adjust, EventKind::Count];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Sale => "sale",
            EventKind::Return => "return",
            EventKind::Receipt => "receipt",
            EventKind::Adjust => "adjust",
            EventKind::Count => "count",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Whether `qty` is a meaningful quantity for this kind of event.
    pub fn accepts_qty(self, qty: i64) -> bool {
        if qty.abs() > MAX_EVENT_QTY {
            return false;
        }
        match self {
            EventKind::Sale | EventKind::Return | EventKind::Receipt => qty > 0,
            EventKind::Adjust => qty != 0,
            EventKind::Count => qty >= 0,
        }
    }

    fn qty_rule(self) -> &'static str {
        match self {
            EventKind::Sale | EventKind::Return | EventKind::Receipt => "a whole number from 1 to 1000000000",
            EventKind::Adjust => "a non-zero whole number from -1000000000 to 1000000000",
            EventKind::Count => "a whole number from 0 to 1000000000 (the counted on-hand)",
        }
    }
}

/// A validated stock event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub id: EventId,
    pub kind: EventKind,
    pub key: PositionKey,
    pub qty: i64,
    /// When it happened at the source, if the device said.
    pub at: Option<Millis>,
}

/// One field of an event as it arrived, before validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field<T> {
    Missing,
    /// Present, but of the wrong JSON type (a string where a number belongs, say).
    WrongType,
    Value(T),
}

/// An event as it arrived, field by field; [`RawEvent::validate`] makes an [`Event`] of it.
#[derive(Debug, Clone, Copy)]
pub struct RawEvent<'a> {
    pub id: Field<&'a str>,
    pub kind: Field<&'a str>,
    pub sku: Field<&'a str>,
    pub location: Field<&'a str>,
    pub qty: Field<i64>,
    pub at: Field<&'a str>,
}

/// Why one event was rejected. `code` is the stable, machine-readable part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventError {
    pub code: ErrorCode,
    pub message: String,
}

impl fmt::Display for EventError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

fn required<'a>(field: Field<&'a str>, code: ErrorCode, name: &str) -> Result<&'a str, EventError> {
    match field {
        Field::Value(v) => Ok(v),
        Field::Missing => Err(EventError { code, message: format!("`{name}` is required") }),
        Field::WrongType => Err(EventError { code, message: format!("`{name}` must be a string") }),
    }
}

impl RawEvent<'_> {
    /// Checks every field against the contract; the first problem found is the answer.
    pub fn validate(&self) -> Result<Event, EventError> {
        let id = required(self.id, ErrorCode::InvalidId, "id")?;
        let id = EventId::parse(id).map_err(|e| EventError {
            code: ErrorCode::InvalidId,
            message: format!("`id` {e}: use 1 to 128 printable ASCII characters without spaces"),
        })?;
        let kind = required(self.kind, ErrorCode::InvalidType, "type")?;
        let kind = EventKind::parse(kind).ok_or_else(|| EventError {
            code: ErrorCode::InvalidType,
            message: "`type` must be one of sale, return, receipt, adjust, count".into(),
        })?;
        let sku = required(self.sku, ErrorCode::InvalidSku, "sku")?;
        let sku = Sku::parse(sku).map_err(|e| EventError {
            code: ErrorCode::InvalidSku,
            message: format!("`sku` {e}: use 1 to 64 characters of A-Z, a-z, 0-9, '.', '_', '-'"),
        })?;
        let location = required(self.location, ErrorCode::InvalidLocation, "location")?;
        let location = LocationId::parse(location).map_err(|e| EventError {
            code: ErrorCode::InvalidLocation,
            message: format!("`location` {e}: use 1 to 64 characters of A-Z, a-z, 0-9, '.', '_', '-'"),
        })?;
        let qty = match self.qty {
            Field::Value(q) if kind.accepts_qty(q) => q,
            _ => {
                return Err(EventError {
                    code: ErrorCode::InvalidQty,
                    message: format!("`qty` of a {} must be {}", kind.as_str(), kind.qty_rule()),
                })
            }
        };
        let at = match self.at {
            Field::Missing => None,
            Field::Value(s) => Some(parse_rfc3339(s).ok_or_else(|| EventError {
                code: ErrorCode::InvalidAt,
                message: "`at` must be an RFC 3339 time such as 2026-11-27T10:15:00Z".into(),
            })?),
            Field::WrongType => return Err(EventError { code: ErrorCode::InvalidAt, message: "`at` must be an RFC 3339 string".into() }),
        };
        Ok(Event { id, kind, key: PositionKey::new(sku, location), qty, at })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw<'a>(kind: &'a str, qty: Field<i64>) -> RawEvent<'a> {
        RawEvent {
            id: Field::Value("pos-1:1"),
            kind: Field::Value(kind),
            sku: Field::Value("SKU-1"),
            location: Field::Value("berlin-mitte"),
            qty,
            at: Field::Missing,
        }
    }

    #[test]
    fn quantities_follow_the_kind() {
        for (kind, qty, ok) in [
            ("sale", 1, true),
            ("sale", 0, false),
            ("sale", -1, false),
            ("return", 3, true),
            ("receipt", 1_000_000_000, true),
            ("receipt", 1_000_000_001, false),
            ("adjust", -5, true),
            ("adjust", 0, false),
            ("adjust", -1_000_000_001, false),
            ("count", 0, true),
            ("count", -1, false),
        ] {
            assert_eq!(raw(kind, Field::Value(qty)).validate().is_ok(), ok, "{kind} {qty}");
        }
    }

    #[test]
    fn each_bad_field_names_itself() {
        let mut r = raw("sale", Field::Value(1));
        r.id = Field::Missing;
        assert_eq!(r.validate().unwrap_err().code.as_str(), "invalid_id");
        let mut r = raw("steal", Field::Value(1));
        assert_eq!(r.validate().unwrap_err().code.as_str(), "invalid_type");
        r = raw("sale", Field::WrongType);
        assert_eq!(r.validate().unwrap_err().code.as_str(), "invalid_qty");
        r = raw("sale", Field::Value(1));
        r.sku = Field::Value("bad sku");
        assert_eq!(r.validate().unwrap_err().code.as_str(), "invalid_sku");
        r = raw("sale", Field::Value(1));
        r.location = Field::WrongType;
        assert_eq!(r.validate().unwrap_err().code.as_str(), "invalid_location");
        r = raw("sale", Field::Value(1));
        r.at = Field::Value("last tuesday");
        assert_eq!(r.validate().unwrap_err().code.as_str(), "invalid_at");
        r.at = Field::Value("2026-11-27T10:15:00+01:00");
        assert_eq!(r.validate().unwrap().at, Some(1_795_770_900_000));
    }
}
