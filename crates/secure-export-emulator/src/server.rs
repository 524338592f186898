//! The HTTP plumbing shared by both emulators: accept loop, body buffering,
//! fault injection, call recording and graceful shutdown.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

use crate::call::{CallLog, RecordedCall};
use crate::fault::{Decision, Faults, HIBERNATING_HTML};

/// Largest request body accepted (bytes).
const MAX_BODY: usize = 8 * 1024 * 1024;

/// A fully buffered request, as the emulators' handlers see it.
#[derive(Debug)]
pub(crate) struct ApiRequest {
    pub(crate) method: Method,
    /// Percent-decoded path segments (empty segments dropped).
    pub(crate) segments: Vec<String>,
    /// Decoded query pairs.
    pub(crate) query: Vec<(String, String)>,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl ApiRequest {
    /// First decoded value of query parameter `name`.
    pub(crate) fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Header value as text.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The path segments as `&str`s.
    pub(crate) fn segs(&self) -> Vec<&str> {
        self.segments.iter().map(String::as_str).collect()
    }
}

/// An answer built by a handler.
#[derive(Debug, Clone)]
pub(crate) struct ApiResponse {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl ApiResponse {
    pub(crate) fn json(status: u16, value: &serde_json::Value) -> Self {
        Self {
            status,
            headers: vec![(
                "Content-Type".to_owned(),
                "application/json;charset=UTF-8".to_owned(),
            )],
            body: value.to_string().into_bytes(),
        }
    }

    pub(crate) fn empty(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    pub(crate) fn text(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        Self {
            status,
            headers: vec![("Content-Type".to_owned(), content_type.to_owned())],
            body: body.into(),
        }
    }

    pub(crate) fn with_header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_owned(), value.into()));
        self
    }
}

/// What an emulator implements to be served.
pub(crate) trait Api: Send + Sync + 'static {
    /// Handle one request.
    fn handle(&self, req: &ApiRequest) -> ApiResponse;
    /// The error answer this API gives for an injected failure status.
    fn fault_error(&self, status: u16) -> ApiResponse;
    /// The error answer for a rate-limited request (status 429).
    fn rate_limited(&self) -> ApiResponse;
}

/// The error a service returns to make hyper close the connection unanswered.
#[derive(Debug)]
struct DroppedConnection;

impl fmt::Display for DroppedConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("connection dropped by fault injection")
    }
}

impl std::error::Error for DroppedConnection {}

struct Ctx {
    api: Arc<dyn Api>,
    faults: Faults,
    calls: CallLog,
}

/// A running server: its address and how to stop it.
#[derive(Debug)]
pub(crate) struct Server {
    addr: SocketAddr,
    shutdown: Option<watch::Sender<bool>>,
    task: Option<JoinHandle<()>>,
}

impl Server {
    /// Bind `addr` and serve the API built by `make_api` (given the bound
    /// address) until [`Server::shutdown`] (or drop).
    pub(crate) async fn start(
        addr: SocketAddr,
        make_api: impl FnOnce(SocketAddr) -> Arc<dyn Api>,
        faults: Faults,
        calls: CallLog,
    ) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let api = make_api(addr);
        let (tx, rx) = watch::channel(false);
        let ctx = Arc::new(Ctx { api, faults, calls });
        let task = tokio::spawn(accept_loop(listener, ctx, rx));
        Ok(Self {
            addr,
            shutdown: Some(tx),
            task: Some(task),
        })
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stop accepting, abort open connections and wait for the loop to end.
    pub(crate) async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(true);
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(true);
        }
    }
}

async fn accept_loop(listener: TcpListener, ctx: Arc<Ctx>, mut shutdown: watch::Receiver<bool>) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            changed = shutdown.changed() => {
                if changed.is_err() || *shutdown.borrow() {
                    break;
                }
            }
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    conns.spawn(serve_connection(stream, Arc::clone(&ctx)));
                }
                Err(err) => {
                    tracing::warn!(error = %err, "emulator accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    conns.abort_all();
}

async fn serve_connection(stream: TcpStream, ctx: Arc<Ctx>) {
    let _ = stream.set_nodelay(true);
    let io = TokioIo::new(stream);
    let service = hyper::service::service_fn(move |req| {
        let ctx = Arc::clone(&ctx);
        async move { ctx.serve(req).await }
    });
    if let Err(err) = hyper::server::conn::http1::Builder::new()
        .serve_connection(io, service)
        .await
    {
        tracing::debug!(error = %err, "emulator connection ended");
    }
}

impl Ctx {
    async fn serve(
        &self,
        req: http::Request<Incoming>,
    ) -> Result<http::Response<Body>, DroppedConnection> {
        let (parts, body) = req.into_parts();
        let path = parts.uri.path().to_owned();
        let query_raw = parts.uri.query().unwrap_or_default().to_owned();
        let headers: Vec<(String, String)> = parts
            .headers
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let mut record = RecordedCall {
            method: parts.method.as_str().to_owned(),
            path: path.clone(),
            query: query_raw.clone(),
            headers,
            body: String::new(),
            status: 0,
        };
        let Ok(body) = axum::body::to_bytes(Body::new(body), MAX_BODY).await else {
            let resp = self.api.fault_error(413);
            record.status = resp.status;
            self.calls.push(record);
            return Ok(into_http(resp));
        };
        record.body = String::from_utf8_lossy(&body).into_owned();

        let latency = self.faults.latency();
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        let resp = match self.faults.decide() {
            Decision::Drop => {
                self.calls.push(record);
                return Err(DroppedConnection);
            }
            Decision::RateLimited { headers } => {
                let mut resp = self.api.rate_limited();
                resp.headers.extend(headers);
                resp
            }
            Decision::Fail(status) => self.api.fault_error(status),
            Decision::Html => ApiResponse::text(200, "text/html;charset=UTF-8", HIBERNATING_HTML),
            Decision::Proceed { headers } => {
                let api_req = ApiRequest {
                    method: parts.method,
                    segments: path
                        .split('/')
                        .filter(|s| !s.is_empty())
                        .map(percent_decode)
                        .collect(),
                    query: url::form_urlencoded::parse(query_raw.as_bytes())
                        .into_owned()
                        .collect(),
                    headers: parts.headers,
                    body,
                };
                let mut resp = self.api.handle(&api_req);
                resp.headers.extend(headers);
                resp
            }
        };
        record.status = resp.status;
        self.calls.push(record);
        Ok(into_http(resp))
    }
}

fn into_http(resp: ApiResponse) -> http::Response<Body> {
    let mut out = http::Response::new(Body::from(resp.body));
    *out.status_mut() =
        StatusCode::from_u16(resp.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    for (name, value) in resp.headers {
        match (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            (Ok(name), Ok(value)) => {
                out.headers_mut().append(name, value);
            }
            _ => tracing::warn!(header = %name, "emulator skipped an invalid response header"),
        }
    }
    out
}

/// Decode `%XX` escapes in a path segment (`+` stays literal, invalid escapes are kept).
pub(crate) fn percent_decode(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes.get(i).copied().unwrap_or_default();
        if b == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            if let Some(v) = hex {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding_of_path_segments() {
        assert_eq!(percent_decode("HPD%3AHelp%20Desk"), "HPD:Help Desk");
        assert_eq!(percent_decode("a+b"), "a+b");
        assert_eq!(percent_decode("bad%zz%4"), "bad%zz%4");
    }
}
