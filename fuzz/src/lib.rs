//! Shared code of the `servicenow_response` and `bmc_response` fuzz targets: a scripted HTTP/1.1
//! server on loopback that answers each request with the next response taken from the fuzz
//! input, so the connectors' real code (reqwest, size cap, status and header handling, JSON
//! decoding, record interpretation) reads attacker-shaped answers through their public API.
//!
//! # Input format
//!
//! ```text
//! <operation line>\n
//! <status>\n<Name: value>\n...\n\n<body bytes>
//! \n%%\n
//! <status>\n...\n\n<body bytes>
//! ...
//! ```
//!
//! The first line picks the operation (words, see each target). Each following block is one
//! HTTP answer, in order: a status line (a number; outside 200..=599 it is folded into that
//! range, unparsable means 200), header lines up to an empty line, then the body (any bytes).
//! Only the headers the connectors read are passed on (`Location`, `Retry-After`,
//! `Content-Type`), with control characters removed; `Content-Length` is always the real body
//! length. Requests beyond the script get `503` with an empty body.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// Separator between two scripted answers.
pub const SEPARATOR: &[u8] = b"\n%%\n";
/// Headers passed from the script to the client.
const PASSED_HEADERS: [&str; 3] = ["location", "retry-after", "content-type"];
/// Most answers taken from one input.
const MAX_RESPONSES: usize = 16;

/// One scripted answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status, in 200..=599.
    pub status: u16,
    /// Header name (lowercase) and value (no control characters).
    pub headers: Vec<(String, Vec<u8>)>,
    /// The body.
    pub body: Vec<u8>,
}

/// A parsed fuzz input.
#[derive(Debug)]
pub struct Script {
    /// The words of the operation line.
    pub words: Vec<String>,
    /// The answers, in order.
    pub responses: Vec<Response>,
}

fn split<'a>(data: &'a [u8], sep: &[u8]) -> Option<(&'a [u8], &'a [u8])> {
    data.windows(sep.len())
        .position(|w| w == sep)
        .map(|i| (&data[..i], &data[i + sep.len()..]))
}

impl Script {
    /// Parses a fuzz input (never fails: every byte string is some script).
    pub fn parse(data: &[u8]) -> Self {
        let (op, mut rest) = split(data, b"\n").unwrap_or((data, &[]));
        let words = String::from_utf8_lossy(op)
            .split_whitespace()
            .map(str::to_owned)
            .collect();
        let mut responses = Vec::new();
        while !rest.is_empty() && responses.len() < MAX_RESPONSES {
            let (block, next) = split(rest, SEPARATOR).unwrap_or((rest, &[]));
            responses.push(Response::parse(block));
            rest = next;
        }
        Self { words, responses }
    }

    /// Whether the operation line has `word`.
    pub fn has(&self, word: &str) -> bool {
        self.words.iter().any(|w| w == word)
    }
}

impl Response {
    fn parse(block: &[u8]) -> Self {
        let (head, body) = split(block, b"\n\n").unwrap_or((block, &[]));
        let mut lines = head.split(|&b| b == b'\n');
        let status = lines
            .next()
            .and_then(|l| std::str::from_utf8(l).ok())
            .and_then(|l| l.trim().parse::<u32>().ok())
            .map_or(200, |s| {
                if (200..=599).contains(&s) {
                    s
                } else {
                    200 + s % 400
                }
            });
        let headers = lines
            .filter_map(|line| {
                let colon = line.iter().position(|&b| b == b':')?;
                let name = String::from_utf8_lossy(&line[..colon])
                    .trim()
                    .to_ascii_lowercase();
                if !PASSED_HEADERS.contains(&name.as_str()) {
                    return None;
                }
                let value: Vec<u8> = line[colon + 1..]
                    .iter()
                    .copied()
                    .filter(|&b| b == b'\t' || (b >= 0x20 && b != 0x7f))
                    .collect();
                Some((name, value.trim_ascii().to_vec()))
            })
            .collect();
        Self {
            status: u16::try_from(status).unwrap_or(200),
            headers,
            body: body.to_vec(),
        }
    }

    fn write_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(format!("HTTP/1.1 {} X\r\n", self.status).as_bytes());
        for (name, value) in &self.headers {
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(format!("content-length: {}\r\n\r\n", self.body.len()).as_bytes());
        out.extend_from_slice(&self.body);
    }
}

/// What the server saw of one request.
#[derive(Debug, Clone)]
pub struct Seen {
    /// Method and target, e.g. `GET /api/now/table/incident?...`.
    pub request_line: String,
}

#[derive(Debug, Default)]
struct State {
    responses: VecDeque<Response>,
    seen: Vec<Seen>,
}

/// The loopback server and the runtime both run on (current-thread: the server tasks progress
/// while the target waits in `block_on`).
#[derive(Debug)]
pub struct Harness {
    /// The runtime to `block_on` the operation in.
    pub runtime: tokio::runtime::Runtime,
    /// `http://127.0.0.1:<port>`.
    pub base_url: String,
    /// A client that follows no redirects and ignores proxy variables.
    pub client: reqwest::Client,
    state: Arc<Mutex<State>>,
}

impl Harness {
    /// Binds `127.0.0.1:0` and starts serving.
    pub fn start() -> Self {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        let state = Arc::new(Mutex::new(State::default()));
        let listener = runtime
            .block_on(TcpListener::bind("127.0.0.1:0"))
            .expect("bind 127.0.0.1:0");
        let addr: SocketAddr = listener.local_addr().expect("local addr");
        let shared = Arc::clone(&state);
        runtime.spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let _ = stream.set_nodelay(true);
                tokio::spawn(serve(stream, Arc::clone(&shared)));
            }
        });
        let client = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("reqwest client");
        Self {
            runtime,
            base_url: format!("http://{addr}"),
            client,
            state,
        }
    }

    /// Runs `op` against the scripted `responses`; returns its output and the requests seen.
    /// Panics if the operation does not finish within `limit` (the server always answers at
    /// once, so only a loop in the client could take that long).
    pub fn run<T>(
        &self,
        responses: &[Response],
        limit: Duration,
        op: impl Future<Output = T>,
    ) -> (T, Vec<Seen>) {
        {
            let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            s.responses = responses.iter().cloned().collect();
            s.seen.clear();
        }
        let out = self
            .runtime
            .block_on(async { tokio::time::timeout(limit, op).await })
            .unwrap_or_else(|_| panic!("operation still running after {limit:?}"));
        let seen = std::mem::take(
            &mut self
                .state
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .seen,
        );
        (out, seen)
    }
}

/// Serves one connection: read a request (head and `Content-Length` or chunked body), answer
/// with the next scripted response, until the client closes it.
async fn serve(stream: TcpStream, state: Arc<Mutex<State>>) {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    loop {
        let mut request_line = String::new();
        match reader.read_line(&mut request_line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let mut content_length = 0usize;
        let mut chunked = false;
        loop {
            let mut line = String::new();
            match reader.read_line(&mut line).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    content_length = value.trim().parse().unwrap_or(0);
                } else if name.eq_ignore_ascii_case("transfer-encoding") {
                    chunked = value.to_ascii_lowercase().contains("chunked");
                }
            }
        }
        if chunked {
            loop {
                let mut size = String::new();
                if reader.read_line(&mut size).await.unwrap_or(0) == 0 {
                    return;
                }
                let n = usize::from_str_radix(size.trim().split(';').next().unwrap_or(""), 16)
                    .unwrap_or(0);
                let mut chunk = vec![0; n + 2];
                if reader.read_exact(&mut chunk).await.is_err() {
                    return;
                }
                if n == 0 {
                    break;
                }
            }
        } else {
            let mut body = vec![0; content_length];
            if reader.read_exact(&mut body).await.is_err() {
                return;
            }
        }
        let response = {
            let mut s = state.lock().unwrap_or_else(PoisonError::into_inner);
            s.seen.push(Seen {
                request_line: request_line.trim_end().to_owned(),
            });
            s.responses.pop_front()
        };
        let response = response.unwrap_or(Response {
            status: 503,
            headers: Vec::new(),
            body: Vec::new(),
        });
        let mut out = Vec::with_capacity(response.body.len() + 128);
        response.write_to(&mut out);
        if write.write_all(&out).await.is_err() {
            return;
        }
    }
}
