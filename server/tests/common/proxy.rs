//! A TCP proxy between a client and a server, for the edge's link to its hub: it can be cut
//! (listener closed, open connections dropped) and restored on the same port, and it can
//! delay what it carries like a real link. It carries bytes, so HTTPS passes through it
//! untouched.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use std::sync::atomic::{AtomicBool, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// A TCP proxy to the hub that can be cut (listener closed, open connections dropped) and
/// restored on the same port.
pub struct Proxy {
    pub addr: SocketAddr,
    target: Arc<Mutex<SocketAddr>>,
    link: Link,
    task: Option<JoinHandle<()>>,
}

/// How the proxy delays what it carries: every byte by `delay` in each direction (order kept
/// within a connection), and answers to `GET` requests (the edge's follow and re-reads) by
/// `hold_reads` more, so that they arrive after answers to uploads sent later.
#[derive(Clone, Copy, Default, Debug)]
pub struct Link {
    pub delay: Duration,
    pub hold_reads: Duration,
}

impl Proxy {
    pub async fn start(target: SocketAddr) -> Proxy {
        Self::start_with(target, Link::default()).await
    }

    pub async fn start_with(target: SocketAddr, link: Link) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let target = Arc::new(Mutex::new(target));
        let task = Some(Self::serve(listener, target.clone(), link));
        Proxy { addr, target, link, task }
    }

    fn serve(listener: TcpListener, target: Arc<Mutex<SocketAddr>>, link: Link) -> JoinHandle<()> {
        tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    return;
                };
                let to = *target.lock().unwrap();
                conns.spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(to).await else { return };
                    if link.delay.is_zero() && link.hold_reads.is_zero() {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                        return;
                    }
                    let (from_client, to_client) = inbound.into_split();
                    let (from_server, to_server) = outbound.into_split();
                    // Whether the request the server answers now is a read (a `GET`).
                    let reading = Arc::new(AtomicBool::new(false));
                    let up = pump(from_client, to_server, link.delay, Duration::ZERO, reading.clone(), true);
                    let down = pump(from_server, to_client, link.delay, link.hold_reads, reading, false);
                    tokio::join!(up, down);
                });
            }
            // Dropping the JoinSet (when this task is aborted) drops every open connection.
        })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn cut(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }

    pub async fn restore(&mut self) {
        let mut tries = 0;
        let listener = loop {
            match TcpListener::bind(self.addr).await {
                Ok(l) => break l,
                Err(e) if tries < 50 => {
                    tries += 1;
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("cannot listen on {} again: {e}", self.addr),
            }
        };
        self.task = Some(Self::serve(listener, self.target.clone(), self.link));
    }

    pub fn retarget(&self, to: SocketAddr) {
        *self.target.lock().unwrap() = to;
    }
}

/// Carries one direction of a connection, each chunk written `delay` (plus `hold` while the
/// request being answered is a read) after it was read, in order. `requests`: this is the
/// client's direction, whose request lines say what is being asked.
async fn pump(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, delay: Duration, hold: Duration, reading: Arc<AtomicBool>, requests: bool) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    let writer = async move {
        while let Some((due, chunk)) = rx.recv().await {
            tokio::time::sleep_until(due).await;
            if to.write_all(&chunk).await.is_err() {
                return;
            }
        }
        let _ = to.shutdown().await;
    };
    let reader = async move {
        let mut buf = vec![0u8; 64 * 1024];
        let mut last = Instant::now();
        loop {
            let n = match from.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            if requests {
                if buf[..n].starts_with(b"GET ") {
                    reading.store(true, Ordering::SeqCst);
                } else if buf[..n].starts_with(b"POST ") || buf[..n].starts_with(b"DELETE ") {
                    reading.store(false, Ordering::SeqCst);
                }
            }
            let extra = if reading.load(Ordering::SeqCst) { hold } else { Duration::ZERO };
            last = last.max(Instant::now() + delay + extra);
            if tx.send((last, buf[..n].to_vec())).is_err() {
                return;
            }
        }
    };
    tokio::join!(reader, writer);
}
