//! Webhooks and back-in-stock watches: which changes a merchant's endpoint hears of, which
//! endpoints a hub may call, and how long a failing one is retried.

use std::net::IpAddr;

use crate::clock::Millis;
use crate::position::Status;
use crate::reservation::ReservationStatus;

/// What a webhook delivery is about (`type` in its body).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Topic {
    OutOfStock,
    LowStock,
    BackInStock,
    Oversold,
    ReservationCreated,
    ReservationConfirmed,
    ReservationReleased,
    ReservationExpired,
    ReservationFulfilled,
    WatchTriggered,
}

impl Topic {
    pub const ALL: [Topic; 10] = [
        Topic::OutOfStock,
        Topic::LowStock,
        Topic::BackInStock,
        Topic::Oversold,
        Topic::ReservationCreated,
        Topic::ReservationConfirmed,
        Topic::ReservationReleased,
        Topic::ReservationExpired,
        Topic::ReservationFulfilled,
        Topic::WatchTriggered,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Topic::OutOfStock => "position.out_of_stock",
            Topic::LowStock => "position.low_stock",
            Topic::BackInStock => "position.back_in_stock",
            Topic::Oversold => "position.oversold",
            Topic::ReservationCreated => "reservation.created",
            Topic::ReservationConfirmed => "reservation.confirmed",
            Topic::ReservationReleased => "reservation.released",
            Topic::ReservationExpired => "reservation.expired",
            Topic::ReservationFulfilled => "reservation.fulfilled",
            Topic::WatchTriggered => "watch.triggered",
        }
    }

    pub fn parse(text: &str) -> Option<Topic> {
        Topic::ALL.into_iter().find(|t| t.as_str() == text)
    }
}

/// The position topics of one change of `available` from `before` to `after`: a status entered
/// (out of stock, low stock), stock back (from `<= 0` to `> 0`), or oversold (below zero from
/// zero or more). A change within one status says nothing.
pub fn position_topics(before: i64, after: i64, low_stock: i64) -> Vec<Topic> {
    let (was, is) = (Status::of(before, low_stock), Status::of(after, low_stock));
    let mut topics = Vec::new();
    if was != is {
        match is {
            Status::OutOfStock => topics.push(Topic::OutOfStock),
            Status::LowStock => topics.push(Topic::LowStock),
            Status::InStock => {}
        }
    }
    if before <= 0 && after > 0 {
        topics.push(Topic::BackInStock);
    }
    if before >= 0 && after < 0 {
        topics.push(Topic::Oversold);
    }
    topics
}

/// The topic of a reservation's change to `to` (`from` is `None` when it was just made).
pub fn reservation_topic(from: Option<ReservationStatus>, to: ReservationStatus) -> Option<Topic> {
    match (from, to) {
        (None, _) => Some(Topic::ReservationCreated),
        (Some(_), ReservationStatus::Confirmed) => Some(Topic::ReservationConfirmed),
        (Some(_), ReservationStatus::Released) => Some(Topic::ReservationReleased),
        (Some(_), ReservationStatus::Expired) => Some(Topic::ReservationExpired),
        (Some(_), ReservationStatus::Fulfilled) => Some(Topic::ReservationFulfilled),
        (Some(_), ReservationStatus::Held) => None,
    }
}

/// A failing delivery is tried again for this long after its change (at least a day, so a
/// receiver down over a night or a weekend's Saturday still gets everything).
pub const RETRY_FOR: Millis = 72 * 3_600_000;
/// The longest pause between two tries.
pub const MAX_RETRY_DELAY: Millis = 3_600_000;
/// How long a receiver has to answer.
pub const TIMEOUT_MS: u64 = 10_000;

/// The pause after the `attempts`-th failed try: `base`, doubling each time, at most an hour,
/// then spread by `jitter` (0 to 1) over 80% to 120% of that, so that deliveries that failed
/// together (a receiver down) do not all come back at the same instant.
pub fn retry_delay(attempts: u32, base: Millis, jitter: f64) -> Millis {
    let delay = base.saturating_mul(1i64 << attempts.saturating_sub(1).min(30)).min(MAX_RETRY_DELAY);
    delay - delay / 5 + ((delay / 5) as f64 * 2.0 * jitter.clamp(0.0, 1.0)) as Millis
}

/// A subscription's filter: which topics, at which locations (`*`: all).
pub fn wanted(topics: &[Topic], locations: &[String], topic: Topic, location: &str) -> bool {
    topics.contains(&topic) && locations.iter().any(|l| l == "*" || l == location)
}

/// An address a hub may call without `--allow-private-webhooks`: none of loopback, private,
/// link-local (cloud metadata), carrier-grade NAT, unique-local, multicast, unspecified or
/// reserved ranges, so a webhook cannot reach into the hub's own network.
pub fn public_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || (a == 192 && b == 0)
                || a >= 240)
        }
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => public_ip(IpAddr::V4(v4)),
            None => {
                let first = v6.segments()[0];
                !(v6.is_loopback()
                    || v6.is_unspecified()
                    || v6.is_multicast()
                    || (first & 0xfe00) == 0xfc00
                    || (first & 0xffc0) == 0xfe80
                    || first == 0x2001 && v6.segments()[1] == 0x0db8
                    || first == 0x0064 && v6.segments()[1] == 0xff9b)
            }
        },
    }
}

/// Longest webhook URL and watch subscriber kept.
pub const MAX_URL: usize = 2048;
pub const MAX_SUBSCRIBER: usize = 128;

/// A watch's subscriber: the shop's own opaque id for the shopper (1 to 128 printable ASCII
/// characters), never an e-mail address the hub would have to protect.
pub fn check_subscriber(s: &str) -> Result<(), String> {
    if s.is_empty() || s.len() > MAX_SUBSCRIBER || !s.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!("`subscriber` is 1 to {MAX_SUBSCRIBER} printable ASCII characters: the shop's own id for the shopper"));
    }
    if s.contains('@') {
        return Err("`subscriber` is the shop's opaque id for the shopper, not an e-mail address: the hub keeps no personal data".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_of_status_says_which() {
        assert_eq!(position_topics(5, 2, 3), [Topic::LowStock]);
        assert_eq!(position_topics(2, 1, 3), []);
        assert_eq!(position_topics(1, 0, 3), [Topic::OutOfStock]);
        assert_eq!(position_topics(0, 7, 3), [Topic::BackInStock]);
        assert_eq!(position_topics(-2, 2, 3), [Topic::LowStock, Topic::BackInStock]);
        assert_eq!(position_topics(1, -1, 3), [Topic::OutOfStock, Topic::Oversold]);
        assert_eq!(position_topics(0, -1, 3), [Topic::Oversold]);
        assert_eq!(position_topics(-1, -3, 3), []);
        assert_eq!(position_topics(9, 9, 3), []);
    }

    #[test]
    fn reservations_say_what_they_became() {
        use ReservationStatus::*;
        assert_eq!(reservation_topic(None, Held), Some(Topic::ReservationCreated));
        assert_eq!(reservation_topic(Some(Held), Confirmed), Some(Topic::ReservationConfirmed));
        assert_eq!(reservation_topic(Some(Confirmed), Fulfilled), Some(Topic::ReservationFulfilled));
        assert_eq!(reservation_topic(Some(Held), Expired), Some(Topic::ReservationExpired));
        assert_eq!(reservation_topic(Some(Held), Released), Some(Topic::ReservationReleased));
    }

    #[test]
    fn retries_double_up_to_an_hour() {
        assert_eq!(retry_delay(1, 5_000, 0.5), 5_000);
        assert_eq!(retry_delay(2, 5_000, 0.5), 10_000);
        assert_eq!(retry_delay(5, 5_000, 0.5), 80_000);
        assert_eq!(retry_delay(40, 5_000, 0.5), MAX_RETRY_DELAY);
        assert_eq!((retry_delay(2, 5_000, 0.0), retry_delay(2, 5_000, 1.0)), (8_000, 12_000), "80% to 120%");
        // Tried until RETRY_FOR even at the longest pauses: far more than a day's worth of tries.
        let (mut at, mut n) = (0, 0);
        while at < RETRY_FOR {
            n += 1;
            at += retry_delay(n, 5_000, 1.0);
        }
        assert!(n > 50, "{n} tries");
    }

    #[test]
    fn only_public_addresses() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:10.0.0.1",
        ] {
            assert!(!public_ip(private.parse().unwrap()), "{private}");
        }
        for public in ["93.184.216.34", "8.8.8.8", "2606:4700::1111"] {
            assert!(public_ip(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn topics_parse_and_filters_match() {
        for t in Topic::ALL {
            assert_eq!(Topic::parse(t.as_str()), Some(t));
        }
        assert_eq!(Topic::parse("position.sold"), None);
        let all = vec!["*".to_string()];
        assert!(wanted(&[Topic::LowStock], &all, Topic::LowStock, "berlin"));
        assert!(!wanted(&[Topic::LowStock], &all, Topic::OutOfStock, "berlin"));
        assert!(!wanted(&[Topic::LowStock], &["hamburg".into()], Topic::LowStock, "berlin"));
        assert!(check_subscriber("cust-42").is_ok());
        assert!(check_subscriber("a@b.example").is_err() && check_subscriber("").is_err() && check_subscriber("a b").is_err());
    }
}
