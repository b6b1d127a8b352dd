//! Identifiers that parse, never raw strings: once a value of these types exists, it is valid.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

/// Why a text is not a valid identifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdError {
    Empty,
    TooLong { max: usize },
    TooShort { min: usize },
    BadCharacter,
}

impl fmt::Display for IdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IdError::Empty => write!(f, "must not be empty"),
            IdError::TooLong { max } => write!(f, "must be at most {max} characters"),
            IdError::TooShort { min } => write!(f, "must be at least {min} characters"),
            IdError::BadCharacter => write!(f, "contains a character that is not allowed"),
        }
    }
}

fn is_name_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')
}

fn is_printable(b: u8) -> bool {
    (0x21..=0x7e).contains(&b)
}

fn check(s: &str, min: usize, max: usize, allowed: fn(u8) -> bool) -> Result<(), IdError> {
    if s.is_empty() {
        return Err(IdError::Empty);
    }
    if s.len() > max {
        return Err(IdError::TooLong { max });
    }
    if s.len() < min {
        return Err(IdError::TooShort { min });
    }
    if !s.bytes().all(allowed) {
        return Err(IdError::BadCharacter);
    }
    Ok(())
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $min:expr, $max:expr, $allowed:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(value_type = String))]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub const MAX_LEN: usize = $max;

            pub fn parse(s: &str) -> Result<Self, IdError> {
                check(s, $min, $max, $allowed)?;
                Ok(Self(s.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, IdError> {
                check(&s, $min, $max, $allowed)?;
                Ok(Self(s))
            }
        }

        impl std::str::FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                Self::parse(s)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        /// Hashes and compares as its string, so a set of ids is searched with a `&str`.
        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::try_from(s).map_err(serde::de::Error::custom)
            }
        }
    };
}

id_type!(
    /// A sellable item: 1 to 64 characters of `[A-Za-z0-9._-]`.
    Sku, 1, 64, is_name_char
);
id_type!(
    /// A store or warehouse: 1 to 64 characters of `[A-Za-z0-9._-]`.
    LocationId, 1, 64, is_name_char
);
id_type!(
    /// An event's idempotency key, unique forever: 1 to 128 printable ASCII characters.
    EventId, 1, 128, is_printable
);
id_type!(
    /// A shopper's reservation idempotency key: 16 to 128 printable ASCII characters.
    ReservationKey, 16, 128, is_printable
);

/// The stock of one SKU at one location is addressed by this pair.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PositionKey {
    pub sku: Sku,
    pub location: LocationId,
}

/// Lets a map look a position up by reference and copy the key only when it adds it.
impl From<&PositionKey> for PositionKey {
    fn from(key: &PositionKey) -> Self {
        key.clone()
    }
}

impl PositionKey {
    pub fn new(sku: Sku, location: LocationId) -> Self {
        Self { sku, location }
    }

    /// Parses the `SKU@location` form used by `?positions=`.
    pub fn parse_pair(s: &str) -> Result<Self, IdError> {
        let (sku, location) = s.rsplit_once('@').ok_or(IdError::BadCharacter)?;
        Ok(Self::new(Sku::parse(sku)?, LocationId::parse(location)?))
    }
}

impl fmt::Display for PositionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.sku, self.location)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn sku_rules() {
        assert!(Sku::parse("SKU-1.a_b").is_ok());
        assert_eq!(Sku::parse(""), Err(IdError::Empty));
        assert_eq!(Sku::parse("a b"), Err(IdError::BadCharacter));
        assert_eq!(Sku::parse("ä"), Err(IdError::BadCharacter));
        assert!(Sku::parse(&"x".repeat(64)).is_ok());
        assert_eq!(Sku::parse(&"x".repeat(65)), Err(IdError::TooLong { max: 64 }));
    }

    #[test]
    fn event_ids_are_printable_ascii() {
        assert!(EventId::parse("pos-0042:000123").is_ok());
        assert!(EventId::parse("a/b?c#d@e").is_ok());
        assert_eq!(EventId::parse("a b"), Err(IdError::BadCharacter));
        assert_eq!(EventId::parse("tab\t"), Err(IdError::BadCharacter));
        assert!(EventId::parse(&"x".repeat(128)).is_ok());
        assert!(EventId::parse(&"x".repeat(129)).is_err());
    }

    #[test]
    fn reservation_keys_need_sixteen_characters() {
        assert_eq!(ReservationKey::parse("short"), Err(IdError::TooShort { min: 16 }));
        assert!(ReservationKey::parse("0123456789abcdef").is_ok());
    }

    #[test]
    fn position_pairs() {
        let k = PositionKey::parse_pair("SKU-1@berlin-mitte").unwrap();
        assert_eq!(k.sku.as_str(), "SKU-1");
        assert_eq!(k.location.as_str(), "berlin-mitte");
        assert!(PositionKey::parse_pair("SKU-1").is_err());
        assert!(PositionKey::parse_pair("@x").is_err());
        assert!(PositionKey::parse_pair("a@b@c").is_err());
    }

    proptest! {
        #[test]
        fn sku_accepts_exactly_its_alphabet(s in "\\PC{0,80}") {
            let ok = !s.is_empty() && s.len() <= 64
                && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-');
            prop_assert_eq!(Sku::parse(&s).is_ok(), ok);
        }

        #[test]
        fn event_id_accepts_exactly_printable_ascii(s in "[\\x00-\\x7f]{0,140}") {
            let ok = !s.is_empty() && s.len() <= 128 && s.bytes().all(|b| (0x21..=0x7e).contains(&b));
            prop_assert_eq!(EventId::parse(&s).is_ok(), ok);
        }

        #[test]
        fn parsed_ids_round_trip_through_json(s in "[A-Za-z0-9._-]{1,64}") {
            let sku = Sku::parse(&s).unwrap();
            let json = serde_json::to_string(&sku).unwrap();
            prop_assert_eq!(serde_json::from_str::<Sku>(&json).unwrap(), sku);
        }
    }
}
