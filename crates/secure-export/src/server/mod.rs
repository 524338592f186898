//! [`serve`]: the HTTP server loop for the public and the admin router, with the limits an
//! internet-facing listener needs.
//!
//! `axum::serve` has no header-read timeout and no connection cap: a client that sends half a
//! header and then trickles a byte a minute holds its connection (and a task) for ever, and a few
//! hundred of them exhaust the file descriptors. [`serve`] runs hyper's HTTP/1.1 connection
//! directly with:
//!
//! * **`header_read_timeout`** (default 10 s): the request head must arrive within it, or the
//!   connection is closed. Hyper's timer also runs while a keep-alive connection waits for its
//!   next request.
//! * **`keep_alive_timeout`** (default 5 s): an idle keep-alive connection (no request in
//!   flight) is closed after it. Zero disables keep-alive.
//! * **`max_connections`** (default 4096): past it the loop stops accepting until a connection
//!   closes; new connections wait in the kernel's backlog (and are refused by the kernel when
//!   it is full). The process stays healthy and served connections are not disturbed.
//! * optional **TLS** ([`TlsFiles`], rustls): the certificate and key are reloaded when the
//!   files change, so a certificate renewal needs no restart. The handshake must finish within
//!   `header_read_timeout`.
//! * **graceful shutdown**: when `shutdown` completes, the loop stops accepting, asks every
//!   connection to finish its request in flight and close, and waits up to `shutdown_grace`.
//!
//! The request body and the answer are bounded by the router itself (`body_limit`,
//! `request_timeout`).
//!
//! ```no_run
//! # async fn demo(state: secure_export::router::AppState) -> std::io::Result<()> {
//! use secure_export::server::{ServeOptions, serve};
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! let app = secure_export::router::public_router(state);
//! serve(listener, app, ServeOptions::new("public"), std::future::pending()).await
//! # }
//! ```

mod tls;

pub use tls::{TlsError, TlsFiles};

use std::future::Future;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tower::ServiceExt;

use crate::metrics::Metrics;

/// Limits and options of one listener (see the [module docs](self)).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ServeOptions {
    /// Listener name for logs and metric labels (`public`, `admin`).
    pub name: String,
    /// Deadline for a request head (and for the TLS handshake).
    pub header_read_timeout: Duration,
    /// Idle keep-alive connections are closed after this; zero disables keep-alive.
    pub keep_alive_timeout: Duration,
    /// Most connections served at once.
    pub max_connections: usize,
    /// How long shutdown waits for connections to finish.
    pub shutdown_grace: Duration,
    /// Serve HTTPS with these files.
    pub tls: Option<TlsFiles>,
    /// Where to record `secure_export_connections_*` metrics.
    pub metrics: Option<Metrics>,
}

impl ServeOptions {
    /// Options with the defaults: 10 s header timeout, 5 s keep-alive, 4096 connections,
    /// 10 s shutdown grace, plain HTTP, no metrics.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            header_read_timeout: Duration::from_secs(10),
            keep_alive_timeout: Duration::from_secs(5),
            max_connections: 4096,
            shutdown_grace: Duration::from_secs(10),
            tls: None,
            metrics: None,
        }
    }

    /// Sets [`header_read_timeout`](Self::header_read_timeout).
    #[must_use]
    pub fn header_read_timeout(mut self, timeout: Duration) -> Self {
        self.header_read_timeout = timeout;
        self
    }

    /// Sets [`keep_alive_timeout`](Self::keep_alive_timeout).
    #[must_use]
    pub fn keep_alive_timeout(mut self, timeout: Duration) -> Self {
        self.keep_alive_timeout = timeout;
        self
    }

    /// Sets [`max_connections`](Self::max_connections) (at least 1).
    #[must_use]
    pub fn max_connections(mut self, max: usize) -> Self {
        self.max_connections = max.max(1);
        self
    }

    /// Sets [`shutdown_grace`](Self::shutdown_grace).
    #[must_use]
    pub fn shutdown_grace(mut self, grace: Duration) -> Self {
        self.shutdown_grace = grace;
        self
    }

    /// Serves HTTPS with `tls`.
    #[must_use]
    pub fn tls(mut self, tls: Option<TlsFiles>) -> Self {
        self.tls = tls;
        self
    }

    /// Records connection metrics into `metrics`.
    #[must_use]
    pub fn metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = Some(metrics);
        self
    }
}

/// Serves `app` on `listener` until `shutdown` completes, then drains (see the
/// [module docs](self)). Fails only when the TLS files cannot be loaded at start; accept errors
/// (such as running out of file descriptors) are logged and retried.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    options: ServeOptions,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let acceptor = match &options.tls {
        Some(files) => Some(
            tls::Acceptor::load(files.clone(), &options.name)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?,
        ),
        None => None,
    };
    let max = options.max_connections.max(1);
    let slots = Arc::new(Semaphore::new(max));
    let (stop_tx, stop_rx) = watch::channel(false);
    let options = Arc::new(options);
    let mut shutdown = pin!(shutdown);
    let mut at_capacity_logged = false;
    loop {
        let permit = if let Ok(p) = slots.clone().try_acquire_owned() {
            at_capacity_logged = false;
            p
        } else {
            if !at_capacity_logged {
                tracing::warn!(
                    event = "server.at_capacity",
                    listener = %options.name,
                    max_connections = max,
                    "connection limit reached; new connections wait until one closes"
                );
                at_capacity_logged = true;
            }
            count(&options, "secure_export_connections_waited_total");
            tokio::select! {
                p = slots.clone().acquire_owned() => match p {
                    Ok(p) => p,
                    Err(_) => break,
                },
                () = &mut shutdown => break,
            }
        };
        let accepted = tokio::select! {
            r = listener.accept() => r,
            () = &mut shutdown => break,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                // Per-connection errors (reset before accept) are harmless; running out of
                // descriptors is not, but retrying a little later is all we can do.
                tracing::warn!(event = "server.accept_failed", listener = %options.name, error = %e);
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        count(&options, "secure_export_connections_total");
        let open = max - slots.available_permits();
        gauge(&options, "secure_export_connections_open", open as f64);
        let (app, options, acceptor, stop) = (
            app.clone(),
            options.clone(),
            acceptor.clone(),
            stop_rx.clone(),
        );
        let slots_for_gauge = slots.clone();
        tokio::spawn(async move {
            connection(stream, peer, app, &options, acceptor, stop).await;
            drop(permit);
            let open = max - slots_for_gauge.available_permits();
            gauge(&options, "secure_export_connections_open", open as f64);
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    // Every connection holds a permit: all permits back means all connections closed.
    let drained = tokio::time::timeout(
        options.shutdown_grace,
        slots.acquire_many(u32::try_from(max).unwrap_or(u32::MAX)),
    )
    .await;
    if drained.is_err() {
        tracing::warn!(
            event = "server.drain_timeout",
            listener = %options.name,
            open = max - slots.available_permits(),
            "connections still open after the shutdown grace; closing them"
        );
    }
    Ok(())
}

/// One connection: optional TLS handshake, then HTTP/1.1 until it closes, idles out, or the
/// server stops.
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    app: Router,
    options: &ServeOptions,
    acceptor: Option<tls::Acceptor>,
    stop: watch::Receiver<bool>,
) {
    match acceptor {
        None => http(stream, peer, app, options, stop).await,
        Some(acceptor) => {
            match tokio::time::timeout(options.header_read_timeout, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => http(tls, peer, app, options, stop).await,
                Ok(Err(e)) => {
                    count(options, "secure_export_tls_handshake_failures_total");
                    tracing::debug!(event = "server.tls_failed", listener = %options.name, %peer, error = %e);
                }
                Err(_) => {
                    count(options, "secure_export_tls_handshake_failures_total");
                    tracing::debug!(event = "server.tls_timeout", listener = %options.name, %peer);
                }
            }
        }
    }
}

/// Requests in flight on a connection and when the last one ended (ms since `epoch`).
#[derive(Debug)]
struct Activity {
    epoch: Instant,
    in_flight: AtomicUsize,
    last_ms: AtomicU64,
}

impl Activity {
    fn idle_for(&self) -> Option<Duration> {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return None;
        }
        let last = Duration::from_millis(self.last_ms.load(Ordering::Acquire));
        Some(self.epoch.elapsed().saturating_sub(last))
    }

    fn end(&self) {
        let now = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(now, Ordering::Release);
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

async fn http<I>(
    io: I,
    peer: SocketAddr,
    app: Router,
    options: &ServeOptions,
    mut stop: watch::Receiver<bool>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let activity = Arc::new(Activity {
        epoch: Instant::now(),
        in_flight: AtomicUsize::new(0),
        last_ms: AtomicU64::new(0),
    });
    let service = {
        let activity = activity.clone();
        hyper::service::service_fn(move |request: Request<Incoming>| {
            let (app, activity) = (app.clone(), activity.clone());
            activity.in_flight.fetch_add(1, Ordering::AcqRel);
            async move {
                let response = app.oneshot(request).await;
                activity.end();
                response
            }
        })
    };
    let keep_alive = !options.keep_alive_timeout.is_zero();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(options.header_read_timeout)
        .keep_alive(keep_alive)
        .max_buf_size(64 * 1024);
    let mut conn = pin!(builder.serve_connection(TokioIo::new(io), service));
    let tick = options
        .keep_alive_timeout
        .max(Duration::from_millis(100))
        .min(Duration::from_secs(1));
    let mut closing = false;
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    if e.is_timeout() {
                        count(options, "secure_export_connections_timed_out_total");
                        tracing::debug!(event = "server.header_timeout", listener = %options.name, %peer);
                    } else {
                        tracing::debug!(event = "server.connection_error", listener = %options.name, %peer, error = %e);
                    }
                }
                return;
            }
            changed = stop.changed(), if !closing => {
                if changed.is_err() || *stop.borrow() {
                    closing = true;
                    conn.as_mut().graceful_shutdown();
                }
            }
            () = tokio::time::sleep(tick), if keep_alive && !closing => {
                if activity
                    .idle_for()
                    .is_some_and(|idle| idle >= options.keep_alive_timeout)
                {
                    closing = true;
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

fn count(options: &ServeOptions, name: &str) {
    if let Some(m) = &options.metrics {
        m.inc_counter(name, &[("listener", options.name.as_str())]);
    }
}

fn gauge(options: &ServeOptions, name: &str, value: f64) {
    if let Some(m) = &options.metrics {
        m.set_gauge(name, &[("listener", options.name.as_str())], value);
    }
}

#[cfg(test)]
mod tests;
