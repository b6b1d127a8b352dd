//! What a reader sees of one position.

use serde::{Deserialize, Serialize};

use crate::ids::{LocationId, Sku};

/// `low_stock` applies while `0 < available <= threshold`; this is the threshold unless configured.
pub const DEFAULT_LOW_STOCK: i64 = 3;

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    InStock,
    LowStock,
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
}

/// The stock of one SKU at one location, as served by `/v1/availability` and `/v1/stream`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    pub sku: Sku,
    pub location: LocationId,
    pub on_hand: i64,
    pub reserved: i64,
    /// `on_hand - reserved`; negative when the location is oversold.
    pub available: i64,
    pub status: Status,
    /// The hub's change sequence at this position's last change; 0 if never written.
    pub version: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

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
