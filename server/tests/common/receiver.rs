//! A webhook receiver on loopback for the tests.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, StatusCode};
use serde_json::Value;

use super::until;

#[derive(Clone, Debug)]
pub struct Received {
    pub id: String,
    pub timestamp: String,
    pub signature: String,
    pub body: String,
}

impl Received {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap()
    }
}

/// An HTTP receiver on loopback that records every request and answers `status` (and the
/// next `fail` requests with 500 first); after [`Receiver::hold`] it records requests but
/// answers none until [`Receiver::release`].
#[derive(Clone)]
pub struct Receiver {
    pub url: String,
    got: Arc<Mutex<Vec<Received>>>,
    pub status: Arc<AtomicU16>,
    pub fail: Arc<AtomicU16>,
    open: Arc<tokio::sync::watch::Sender<bool>>,
}

impl Receiver {
    pub async fn start() -> Receiver {
        Self::on("127.0.0.1:0").await
    }

    pub async fn on(addr: &str) -> Receiver {
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let url = format!("http://{}/hooks", listener.local_addr().unwrap());
        let r = Receiver {
            url,
            got: Arc::default(),
            status: Arc::new(AtomicU16::new(200)),
            fail: Arc::default(),
            open: Arc::new(tokio::sync::watch::Sender::new(true)),
        };
        let me = r.clone();
        let app = axum::Router::new().route(
            "/hooks",
            axum::routing::post(move |headers: HeaderMap, body: String| {
                let me = me.clone();
                async move {
                    let h = |n: &str| headers.get(n).map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
                    me.got.lock().unwrap().push(Received {
                        id: h("webhook-id"),
                        timestamp: h("webhook-timestamp"),
                        signature: h("webhook-signature"),
                        body,
                    });
                    let _ = me.open.subscribe().wait_for(|open| *open).await;
                    if me.fail.load(Ordering::SeqCst) > 0 {
                        me.fail.fetch_sub(1, Ordering::SeqCst);
                        return StatusCode::INTERNAL_SERVER_ERROR;
                    }
                    StatusCode::from_u16(me.status.load(Ordering::SeqCst)).unwrap()
                }
            }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        r
    }

    /// From now on, requests wait for [`Receiver::release`] before they are answered.
    pub fn hold(&self) {
        self.open.send_replace(false);
    }

    pub fn release(&self) {
        self.open.send_replace(true);
    }

    pub fn all(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    /// The `type`s received, once per `webhook-id`, in order of first arrival.
    pub fn types(&self) -> Vec<String> {
        let mut seen = HashSet::new();
        self.all().into_iter().filter(|r| seen.insert(r.id.clone())).map(|r| r.json()["type"].as_str().unwrap().to_owned()).collect()
    }

    pub async fn until_types(&self, n: usize) -> Vec<String> {
        until(&format!("{n} deliveries"), 20, || async { self.types().len() >= n }).await;
        self.types()
    }
}
