//! Which positions a read or a stream asks for: `?sku=S&location=L1,L2` or
//! `?positions=SKU1@L1,SKU2@L2`, at most 50, in the order asked.

use shelfcast_protocol::ErrorCode;
use shelfcast_protocol::{LocationId, PositionKey, Sku};

use crate::error::ApiError;

pub use shelfcast_protocol::wire::MAX_POSITIONS;

pub struct Query {
    pub positions: Vec<PositionKey>,
    pub last_event_id: Option<String>,
}

pub fn parse(raw: Option<&str>) -> Result<Query, ApiError> {
    let (mut sku, mut locations, mut pairs, mut last_event_id) = (None, None, None, None);
    for (k, v) in form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
        let slot = match k.as_ref() {
            "sku" => &mut sku,
            "location" | "locations" => &mut locations,
            "positions" => &mut pairs,
            "last_event_id" => &mut last_event_id,
            _ => continue,
        };
        if slot.is_some() {
            return Err(ApiError::bad(
                ErrorCode::InvalidQuery,
                format!("`{k}` is given twice: give it once, with values separated by commas"),
            ));
        }
        *slot = Some(v.into_owned());
    }
    let positions = match (sku, locations, pairs) {
        (None, None, Some(pairs)) => list(&pairs)
            .map(|p| {
                PositionKey::parse_pair(p)
                    .map_err(|e| ApiError::bad(ErrorCode::InvalidPosition, format!("position `{p}` is not SKU@location ({e})")))
            })
            .collect::<Result<Vec<_>, _>>()?,
        (Some(sku), Some(locations), None) => {
            let sku = Sku::parse(&sku).map_err(|e| {
                ApiError::bad(ErrorCode::InvalidSku, format!("`sku` {e}: use 1 to 64 characters of A-Z, a-z, 0-9, '.', '_', '-'"))
            })?;
            list(&locations)
                .map(|l| {
                    LocationId::parse(l)
                        .map(|l| PositionKey::new(sku.clone(), l))
                        .map_err(|e| ApiError::bad(ErrorCode::InvalidLocation, format!("location `{l}` {e}")))
                })
                .collect::<Result<Vec<_>, _>>()?
        }
        (_, _, Some(_)) => return Err(ApiError::bad(ErrorCode::InvalidQuery, "give either `positions` or `sku` and `location`, not both")),
        _ => {
            return Err(ApiError::bad(
                ErrorCode::InvalidQuery,
                "say which positions: `?sku=SKU&location=L1,L2` or `?positions=SKU1@L1,SKU2@L2`",
            ))
        }
    };
    if positions.is_empty() {
        return Err(ApiError::bad(ErrorCode::InvalidQuery, "ask for at least one position"));
    }
    if positions.len() > MAX_POSITIONS {
        return Err(ApiError::bad(
            ErrorCode::TooManyPositions,
            format!("ask for at most {MAX_POSITIONS} positions per request ({} given)", positions.len()),
        ));
    }
    Ok(Query { positions, last_event_id })
}

fn list(s: &str) -> impl Iterator<Item = &str> {
    s.split(',')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_forms() {
        let q = parse(Some("sku=SKU-1&location=a,b")).unwrap();
        assert_eq!(q.positions.len(), 2);
        assert_eq!(q.positions[1].to_string(), "SKU-1@b");
        let q = parse(Some("positions=S1%40a,S2@b&last_event_id=7")).unwrap();
        assert_eq!(q.positions[0].to_string(), "S1@a");
        assert_eq!(q.last_event_id.as_deref(), Some("7"));
    }

    #[test]
    fn refusals() {
        for (q, code) in [
            ("", "invalid_query"),
            ("sku=S", "invalid_query"),
            ("sku=S&location=", "invalid_location"),
            ("sku=S%20x&location=a", "invalid_sku"),
            ("sku=S&location=a,,b", "invalid_location"),
            ("positions=S", "invalid_position"),
            ("positions=S@a&sku=S&location=a", "invalid_query"),
            ("sku=S&sku=T&location=a", "invalid_query"),
        ] {
            match parse(Some(q)) {
                Err(ApiError::BadRequest { code: c, .. }) => assert_eq!(c.as_str(), code, "{q}"),
                Err(e) => panic!("{q}: {e:?}"),
                Ok(_) => panic!("{q} was accepted"),
            }
        }
        let many = (0..51).map(|i| format!("l{i}")).collect::<Vec<_>>().join(",");
        assert!(matches!(
            parse(Some(&format!("sku=S&location={many}"))),
            Err(ApiError::BadRequest { code: ErrorCode::TooManyPositions, .. })
        ));
    }
}
