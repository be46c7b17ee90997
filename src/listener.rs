//! The accept loop of `rappel serve`: HTTP/1.1 connections (WebSocket upgrades included) with
//! a deadline for each request's headers (which also ends idle keep-alive connections), a cap
//! on connections per client IP and in total, the client's address for the handlers
//! (`ConnectInfo`), and graceful shutdown. A connection over a cap is answered at once and
//! closed, so it holds no descriptor. No routing and no business rule here.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tower::ServiceExt as _;

use crate::config::HttpConfig;

/// Open connections, in total and per client IP.
#[derive(Debug)]
pub struct ConnectionLimits {
    total: Arc<Semaphore>,
    max_total: usize,
    max_per_ip: usize,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
}

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    TooManyInTotal,
    TooManyFromThisIp,
}

impl Refusal {
    /// What is written to the refused socket before it is closed.
    fn answer(self) -> &'static [u8] {
        match self {
            Refusal::TooManyInTotal => {
                b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Type: text/plain\r\n\
                  Content-Length: 48\r\nConnection: close\r\n\r\n\
                  too many open connections (http.max_connections)"
            }
            Refusal::TooManyFromThisIp => {
                b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 1\r\nContent-Type: text/plain\r\n\
                  Content-Length: 68\r\nConnection: close\r\n\r\n\
                  too many open connections from this IP (http.max_connections_per_ip)"
            }
        }
    }
}

/// One admitted connection; gives its places back when dropped (for a WebSocket, when the
/// socket closes).
#[derive(Debug)]
pub struct ConnectionSlot {
    _total: OwnedSemaphorePermit,
    ip: IpAddr,
    limits: Arc<ConnectionLimits>,
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut per_ip = self
            .limits
            .per_ip
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        if let Some(count) = per_ip.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                per_ip.remove(&self.ip);
            }
        }
    }
}

impl ConnectionLimits {
    pub fn new(max_total: usize, max_per_ip: usize) -> Arc<Self> {
        Arc::new(Self {
            total: Arc::new(Semaphore::new(max_total)),
            max_total,
            max_per_ip,
            per_ip: Mutex::new(HashMap::new()),
        })
    }

    /// A place for one more connection from `ip`, or why not.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<ConnectionSlot, Refusal> {
        let mut per_ip = self
            .per_ip
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        let count = per_ip.entry(ip).or_insert(0);
        if *count >= self.max_per_ip {
            return Err(Refusal::TooManyFromThisIp);
        }
        let permit = self
            .total
            .clone()
            .try_acquire_owned()
            .map_err(|_| Refusal::TooManyInTotal)?;
        *count += 1;
        Ok(ConnectionSlot {
            _total: permit,
            ip,
            limits: self.clone(),
        })
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.max_total - self.total.available_permits()
    }
}

/// A TCP stream that keeps its connection's slot as long as it lives.
struct CountedStream {
    stream: TcpStream,
    _slot: ConnectionSlot,
}

impl AsyncRead for CountedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for CountedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// Serves `router` on `listener` until `shutdown` completes, then lets open requests finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    config: &HttpConfig,
    shutdown: impl Future<Output = ()>,
) {
    let limits = ConnectionLimits::new(config.max_connections, config.max_connections_per_ip);
    let header_read_timeout = Duration::from_secs(config.header_read_timeout_seconds);
    let (stop_sender, stop) = watch::channel(false);
    let (done_sender, done) = watch::channel(());
    tokio::pin!(shutdown);
    loop {
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of descriptors or a connection reset before accept: wait a little
                    // rather than spin.
                    tracing::warn!(%error, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let slot = match limits.admit(remote.ip()) {
            Ok(slot) => slot,
            Err(refusal) => {
                tracing::warn!(client_ip = %remote.ip(), ?refusal, open = limits.open(), "connection refused");
                // Best effort: the answer fits an empty socket buffer; then the socket closes.
                let _ = stream.try_write(refusal.answer());
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let io = TokioIo::new(CountedStream {
            stream,
            _slot: slot,
        });
        let service = TowerToHyperService::new(router.clone().map_request(
            move |mut request: axum::http::Request<Incoming>| {
                request
                    .extensions_mut()
                    .insert(ConnectInfo::<SocketAddr>(remote));
                request
            },
        ));
        let mut stop = stop.clone();
        let done = done.clone();
        tokio::spawn(async move {
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(header_read_timeout)
                .keep_alive(true);
            let connection = builder.serve_connection(io, service).with_upgrades();
            tokio::pin!(connection);
            let stopping = async move {
                let _ = stop.wait_for(|stopping| *stopping).await.map(drop);
            };
            let finished = tokio::select! {
                result = connection.as_mut() => Some(result),
                () = stopping => None,
            };
            let result = match finished {
                Some(result) => result,
                None => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(error) = result {
                tracing::debug!(%error, "connection ended with an error");
            }
            drop(done);
        });
    }
    drop(listener);
    let _ = stop_sender.send(true);
    drop(done);
    done_sender.closed().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_are_capped_per_ip_and_in_total_and_given_back() {
        let limits = ConnectionLimits::new(3, 2);
        let a: IpAddr = "192.0.2.1".parse().expect("ip");
        let b: IpAddr = "192.0.2.2".parse().expect("ip");
        let c: IpAddr = "192.0.2.3".parse().expect("ip");
        let first = limits.admit(a).expect("a 1");
        let _second = limits.admit(a).expect("a 2");
        assert_eq!(limits.admit(a).err(), Some(Refusal::TooManyFromThisIp));
        let _third = limits.admit(b).expect("b 1");
        assert_eq!(limits.admit(c).err(), Some(Refusal::TooManyInTotal));
        assert_eq!(limits.open(), 3);
        drop(first);
        assert_eq!(limits.open(), 2);
        limits.admit(c).expect("a place came back");
    }

    #[test]
    fn refusal_answers_announce_their_exact_length() {
        for refusal in [Refusal::TooManyInTotal, Refusal::TooManyFromThisIp] {
            let answer = std::str::from_utf8(refusal.answer()).expect("text");
            let (head, body) = answer.split_once("\r\n\r\n").expect("head and body");
            assert!(
                head.contains(&format!("Content-Length: {}", body.len())),
                "{answer}"
            );
        }
    }
}
