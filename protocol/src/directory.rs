//! The store directory: where each location is, whether it hands out pickups and how soon, and
//! which stores are nearest a shopper. The hub keeps the entries; these are their rules.

use serde::{Deserialize, Serialize};

use crate::ids::LocationId;
use crate::position::PublicPosition;

/// The most stores one `near` answer lists, and how many unless asked.
pub const MAX_NEAR: usize = 50;
pub const DEFAULT_NEAR: usize = 10;
/// Longest name, address and time zone kept.
pub const MAX_NAME: usize = 200;
pub const MAX_ADDRESS: usize = 500;
pub const MAX_TIMEZONE: usize = 64;
/// Longest promised time to get a pickup ready: 60 days.
pub const MAX_READY_IN_MINUTES: u32 = 60 * 24 * 60;
/// The mean radius of the Earth (IUGG), in metres.
const EARTH_RADIUS_M: f64 = 6_371_008.8;

/// How soon a pickup is ready, in the vocabulary of Google's local inventory (`pickup_SLA`).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Sla {
    #[serde(rename = "same_day")]
    SameDay,
    #[serde(rename = "next_day")]
    NextDay,
    #[serde(rename = "2-day")]
    TwoDay,
    #[serde(rename = "3-day")]
    ThreeDay,
    #[serde(rename = "4-day")]
    FourDay,
    #[serde(rename = "5-day")]
    FiveDay,
    #[serde(rename = "6-day")]
    SixDay,
    #[serde(rename = "multi-week")]
    MultiWeek,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pickup {
    pub enabled: bool,
    /// Minutes from a reservation until it can be collected.
    pub ready_in_minutes: u32,
    pub sla: Sla,
}

/// A store as the directory keeps it (the body of `PUT /v1/locations/{id}`: no `id`).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Store {
    pub name: String,
    pub address: String,
    pub lat: f64,
    pub lng: f64,
    pub pickup: Pickup,
    /// An IANA time zone (`Europe/Berlin`): the store's opening hours and "ready tomorrow"
    /// are in its local time.
    pub timezone: String,
}

/// One store of an answer of `GET /v1/locations`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Listed {
    pub id: LocationId,
    #[serde(flatten)]
    pub store: Store,
    /// Metres from `near`, when asked with `near`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub distance_m: Option<u64>,
    /// The position of `sku` at this store, when asked with `sku`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub position: Option<PublicPosition>,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Directory {
    pub locations: Vec<Listed>,
}

/// Why a store's entry is refused, as a sentence naming the field.
pub fn check(store: &Store) -> Result<(), String> {
    let text = |what: &str, s: &str, max: usize| {
        if s.trim().is_empty() || s.chars().count() > max || s.chars().any(char::is_control) {
            Err(format!("`{what}` is 1 to {max} characters of text without control characters"))
        } else {
            Ok(())
        }
    };
    text("name", &store.name, MAX_NAME)?;
    text("address", &store.address, MAX_ADDRESS)?;
    if !valid_timezone(&store.timezone) {
        return Err(format!("`timezone` is an IANA time zone such as `Europe/Berlin` (at most {MAX_TIMEZONE} characters)"));
    }
    Point::new(store.lat, store.lng)?;
    if store.pickup.ready_in_minutes > MAX_READY_IN_MINUTES {
        return Err(format!("`pickup.ready_in_minutes` is from 0 to {MAX_READY_IN_MINUTES} (60 days)"));
    }
    Ok(())
}

/// The form of an IANA zone name (`UTC`, `Europe/Berlin`, `America/Argentina/Buenos_Aires`,
/// `Etc/GMT+1`); whether the zone exists is for the reader's time zone database to say.
fn valid_timezone(tz: &str) -> bool {
    !tz.is_empty()
        && tz.len() <= MAX_TIMEZONE
        && tz.split('/').all(|part| !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric() || "_+-".contains(c)))
}

/// A place on Earth in degrees.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub lat: f64,
    pub lng: f64,
}

impl Point {
    pub fn new(lat: f64, lng: f64) -> Result<Point, String> {
        if !(lat.is_finite() && (-90.0..=90.0).contains(&lat)) {
            return Err("`lat` is a latitude in degrees, from -90 to 90".into());
        }
        if !(lng.is_finite() && (-180.0..=180.0).contains(&lng)) {
            return Err("`lng` is a longitude in degrees, from -180 to 180".into());
        }
        Ok(Point { lat, lng })
    }

    /// `LAT,LNG` in degrees, as `?near=` and the element's `near` attribute give it.
    pub fn parse(s: &str) -> Result<Point, String> {
        let bad = || format!("`near` is `LAT,LNG` in degrees (`52.52,13.405`), not `{s}`");
        let (lat, lng) = s.split_once(',').ok_or_else(bad)?;
        let lat = lat.trim().parse::<f64>().map_err(|_| bad())?;
        let lng = lng.trim().parse::<f64>().map_err(|_| bad())?;
        Point::new(lat, lng)
    }

    /// Great-circle distance in metres (haversine, on a sphere of the Earth's mean radius:
    /// within 0.5% of the ellipsoid, which is closer than a shopper's driving distance).
    pub fn distance_m(self, to: Point) -> f64 {
        let (p1, p2) = (self.lat.to_radians(), to.lat.to_radians());
        let dp = p2 - p1;
        let dl = (to.lng - self.lng).to_radians();
        let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
        2.0 * EARTH_RADIUS_M * a.sqrt().min(1.0).asin()
    }
}

/// The stores by distance from `from`, nearest first (equal distances by id), each with its
/// distance in whole metres.
pub fn nearest(stores: impl IntoIterator<Item = (LocationId, Store)>, from: Point) -> Vec<Listed> {
    let mut out: Vec<(f64, Listed)> = stores
        .into_iter()
        .map(|(id, store)| {
            let d = from.distance_m(Point { lat: store.lat, lng: store.lng });
            (d, Listed { id, store, distance_m: Some(d.round() as u64), position: None })
        })
        .collect();
    out.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.1.id.cmp(&b.1.id)));
    out.into_iter().map(|(_, l)| l).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const BERLIN: Point = Point { lat: 52.5200, lng: 13.4050 };
    const HAMBURG: Point = Point { lat: 53.5511, lng: 9.9937 };
    const MUNICH: Point = Point { lat: 48.1351, lng: 11.5820 };

    fn store(p: Point) -> Store {
        Store {
            name: "A store".into(),
            address: "Somewhere 1".into(),
            lat: p.lat,
            lng: p.lng,
            pickup: Pickup { enabled: true, ready_in_minutes: 60, sla: Sla::SameDay },
            timezone: "Europe/Berlin".into(),
        }
    }

    #[test]
    fn distances_match_known_ones() {
        let km = |a: Point, b: Point| a.distance_m(b) / 1000.0;
        assert!((km(BERLIN, HAMBURG) - 255.0).abs() < 3.0, "{}", km(BERLIN, HAMBURG));
        assert!((km(BERLIN, MUNICH) - 504.0).abs() < 5.0, "{}", km(BERLIN, MUNICH));
        assert_eq!(km(BERLIN, BERLIN), 0.0);
        // Across the antimeridian and to the antipode.
        let a = Point::new(0.0, 179.5).unwrap();
        let b = Point::new(0.0, -179.5).unwrap();
        assert!((km(a, b) - 111.2).abs() < 1.0);
        assert!((km(Point::new(0.0, 0.0).unwrap(), Point::new(0.0, 180.0).unwrap()) - 20_015.1).abs() < 1.0);
    }

    #[test]
    fn nearest_sorts_by_distance() {
        let id = |s: &str| LocationId::parse(s).unwrap();
        let stores = vec![(id("munich"), store(MUNICH)), (id("hamburg"), store(HAMBURG)), (id("berlin"), store(BERLIN))];
        let near_hamburg = nearest(stores.clone(), Point::new(53.0, 10.0).unwrap());
        let ids: Vec<&str> = near_hamburg.iter().map(|l| l.id.as_str()).collect();
        assert_eq!(ids, ["hamburg", "berlin", "munich"]);
        assert!(near_hamburg[0].distance_m.unwrap() < near_hamburg[1].distance_m.unwrap());
        assert_eq!(nearest(stores, BERLIN)[0].distance_m, Some(0));
    }

    #[test]
    fn coordinates_and_entries_are_checked() {
        for bad in ["", "52.5", "52.5;13.4", "91,0", "0,181", "NaN,0", "inf,0", "a,b", "52.5,13.4,1"] {
            assert!(Point::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Point::parse(" 52.52 , 13.405").unwrap(), BERLIN);
        assert!(check(&store(BERLIN)).is_ok());
        let with = |f: fn(&mut Store)| {
            let mut s = store(BERLIN);
            f(&mut s);
            check(&s)
        };
        assert!(with(|s| s.name = " ".into()).is_err());
        assert!(with(|s| s.name = "x".repeat(201)).is_err());
        assert!(with(|s| s.address = "a\nb".into()).is_err());
        assert!(with(|s| s.lat = 90.5).is_err());
        assert!(with(|s| s.lng = f64::NAN).is_err());
        assert!(with(|s| s.timezone = "Europe//Berlin".into()).is_err());
        assert!(with(|s| s.timezone = "Berlin time".into()).is_err());
        assert!(with(|s| s.timezone = "America/Argentina/Buenos_Aires".into()).is_ok());
        assert!(with(|s| s.pickup.ready_in_minutes = MAX_READY_IN_MINUTES + 1).is_err());
    }

    #[test]
    fn the_sla_is_googles_vocabulary_on_the_wire() {
        let all = [Sla::SameDay, Sla::NextDay, Sla::TwoDay, Sla::ThreeDay, Sla::FourDay, Sla::FiveDay, Sla::SixDay, Sla::MultiWeek];
        let words: Vec<String> = all.iter().map(|s| serde_json::to_string(s).unwrap()).collect();
        assert_eq!(
            words,
            ["\"same_day\"", "\"next_day\"", "\"2-day\"", "\"3-day\"", "\"4-day\"", "\"5-day\"", "\"6-day\"", "\"multi-week\""]
        );
    }
}
