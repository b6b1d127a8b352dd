//! Overload protection for the public endpoints: a per-client rate limit on reservations and on
//! opening streams (429 with `Retry-After`), and a cap on the streams one hub holds open (503
//! with `Retry-After`). A browser's EventSource retries by itself after either, and so does the
//! element.
//!
//! A client is its IP address: the peer's, or, behind a proxy the operator trusts
//! (`--trust-forwarded-for`), the last address in `X-Forwarded-For`, the one that proxy added.
//! Without that flag the header is ignored, so a client cannot dodge its limit by inventing one.

use shelfcast_protocol::ErrorCode;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Response, StatusCode};
use axum::middleware::Next;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use tokio_util::sync::CancellationToken;

use crate::error::error_response;

/// Requests per second a client may make, and how many at once before that rate applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    pub per_second: u32,
    pub burst: u32,
}

impl Rate {
    /// `0` turns the limit off.
    pub const OFF: Rate = Rate { per_second: 0, burst: 0 };

    fn limiter(self) -> Option<DefaultKeyedRateLimiter<IpAddr>> {
        let per_second = NonZeroU32::new(self.per_second)?;
        let burst = NonZeroU32::new(self.burst.max(self.per_second)).unwrap_or(per_second);
        Some(RateLimiter::keyed(Quota::per_second(per_second).allow_burst(burst)))
    }
}

/// What the hub allows each client, and all clients together.
#[derive(Clone, Debug)]
pub struct LimitsConfig {
    pub reservations: Rate,
    pub streams: Rate,
    /// Streams open at once on this hub; `0` for no cap.
    pub max_streams: usize,
    pub trust_forwarded_for: bool,
}

impl LimitsConfig {
    /// Per-client rates with their bursts: three times the rate for reservations (a shopper's
    /// retries), ten times for new streams (a page opening many tabs).
    pub fn from_rates(reservation_rate: u32, stream_rate: u32, max_streams: usize, trust_forwarded_for: bool) -> Self {
        Self {
            reservations: Rate { per_second: reservation_rate, burst: reservation_rate.saturating_mul(3) },
            streams: Rate { per_second: stream_rate, burst: stream_rate.saturating_mul(10) },
            max_streams,
            trust_forwarded_for,
        }
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        use crate::config::defaults;
        Self::from_rates(defaults::RESERVATION_RATE, defaults::STREAM_RATE, defaults::MAX_STREAMS, false)
    }
}

pub struct Limits {
    reservations: Option<DefaultKeyedRateLimiter<IpAddr>>,
    streams: Option<DefaultKeyedRateLimiter<IpAddr>>,
    pub max_streams: usize,
    trust_forwarded_for: bool,
}

impl Limits {
    /// The limiters, and a task that forgets clients idle long enough to be back at full burst,
    /// so the memory they take is bounded by the clients of the last minute.
    pub fn start(config: &LimitsConfig, shutdown: CancellationToken) -> Arc<Limits> {
        let limits = Arc::new(Limits {
            reservations: config.reservations.limiter(),
            streams: config.streams.limiter(),
            max_streams: config.max_streams,
            trust_forwarded_for: config.trust_forwarded_for,
        });
        let l = limits.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(60)) => {}
                }
                for limiter in [&l.reservations, &l.streams].into_iter().flatten() {
                    limiter.retain_recent();
                    limiter.shrink_to_fit();
                }
            }
        });
        limits
    }

    fn client(&self, req: &Request) -> IpAddr {
        let peer = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
        let forwarded = self.trust_forwarded_for.then(|| forwarded_for(req.headers())).flatten();
        forwarded.or(peer).unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
    }
}

fn forwarded_for(headers: &HeaderMap) -> Option<IpAddr> {
    let last = headers.get_all("x-forwarded-for").iter().next_back()?.to_str().ok()?;
    last.rsplit(',').next()?.trim().parse().ok()
}

fn retry_after(status: StatusCode, code: ErrorCode, message: &str, seconds: u64) -> Response<Body> {
    let mut res = error_response(status, code, message.to_string(), None);
    res.headers_mut().insert("retry-after", HeaderValue::from(seconds.max(1)));
    res
}

/// `Some(429 answer)` when `client` is over its rate.
fn check(limiter: &Option<DefaultKeyedRateLimiter<IpAddr>>, client: IpAddr, what: &str) -> Option<Response<Body>> {
    let limiter = limiter.as_ref()?;
    limiter.check_key(&client).err().map(|not_until| {
        let wait = not_until.wait_time_from(DefaultClock::default().now());
        tracing::debug!(%client, what, "rate limited");
        retry_after(
            StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::RateLimited,
            &format!("Too many {what} from this address; wait the Retry-After seconds and try again."),
            wait.as_secs_f64().ceil() as u64,
        )
    })
}

/// Layered on the reservation routes.
pub async fn reservations(State(limits): State<Arc<Limits>>, req: Request, next: Next) -> Response<Body> {
    match check(&limits.reservations, limits.client(&req), "reservation requests") {
        None => next.run(req).await,
        Some(res) => res,
    }
}

/// Layered on `/v1/stream`: the per-client rate, then the cap on open streams.
pub async fn streams(State((limits, open)): State<(Arc<Limits>, Arc<crate::engine::State>)>, req: Request, next: Next) -> Response<Body> {
    if let Some(res) = check(&limits.streams, limits.client(&req), "new streams") {
        return res;
    }
    if limits.max_streams > 0 && open.fanout.open_streams() >= limits.max_streams {
        tracing::warn!(max = limits.max_streams, "stream refused: this hub holds its maximum of open streams");
        return retry_after(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::TooManyStreams,
            "This hub serves as many live streams as it is set to; retry shortly (or add a replica).",
            5,
        );
    }
    next.run(req).await
}
