//! A fault-injecting HTTP/1.1 proxy on loopback, in front of the emulator. Reflex's clients are
//! pointed at it (`AWS_ENDPOINT_URL`), so every AWS call they make (STS, S3, DynamoDB, SSM…)
//! crosses it and may meet a fault:
//!
//! - `Unavailable`: a 503 answer, nothing forwarded;
//! - `Reset`: the connection reset, nothing forwarded;
//! - `LostResponse`: forwarded (the emulator acted), then the connection reset before the
//!   answer: the caller cannot know the call took effect;
//! - `HeldThenDropped`: the request held a while, then the connection closed unanswered.
//!
//! A tripwire stops the world at an exact point instead: before the n-th matching request is
//! forwarded, or right after its answer came back (the call took effect) but before the caller
//! hears it. The test is told, and kills the caller's process there.
//!
//! It also logs every request (operation, bucket, the SDK's invocation id, what happened), so a
//! test can count changes: one logical call, retried by the SDK, keeps its invocation id.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fault {
    Unavailable,
    Reset,
    LostResponse,
    HeldThenDropped,
}

pub const ALL_FAULTS: [Fault; 4] = [
    Fault::Unavailable,
    Fault::Reset,
    Fault::LostResponse,
    Fault::HeldThenDropped,
];

/// What became of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    Forwarded,
    Faulted(Fault),
    /// Stopped by the tripwire (forwarded first if the wire trips after the answer).
    Tripped {
        forwarded: bool,
    },
}

/// One request as the proxy saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    /// The AWS operation: `PutItem`, `PutPublicAccessBlock`, `GetCallerIdentity`…
    pub operation: String,
    /// The bucket a path-style S3 request names, if any.
    pub bucket: Option<String>,
    /// The SDK's `amz-sdk-invocation-id`: the same for every retry of one logical call.
    pub invocation_id: String,
    /// The request body (as text, cut at 4 KiB): which `UpdateItem` a ledger call was.
    pub body: String,
    pub fate: Fate,
}

impl Seen {
    /// The request reached the emulator.
    pub fn forwarded(&self) -> bool {
        matches!(
            self.fate,
            Fate::Forwarded
                | Fate::Faulted(Fault::LostResponse)
                | Fate::Tripped { forwarded: true }
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// Before the request is forwarded: it never takes effect.
    Before,
    /// After the emulator answered: it took effect, the caller never hears so.
    After,
}

/// Trip on the `nth` (1-based) request whose operation is `operation` and whose body contains
/// `containing` (when given: e.g. the checkpoint's `if_not_exists(pre_state` among UpdateItems).
#[derive(Debug, Clone)]
pub struct Tripwire {
    pub operation: &'static str,
    pub containing: Option<&'static str>,
    pub nth: usize,
    pub when: When,
}

/// A fault for chosen requests: the next `times` requests of `operation` whose body contains
/// `containing` (when given) meet `fault`.
#[derive(Debug, Clone)]
pub struct Rule {
    pub operation: &'static str,
    pub containing: Option<&'static str>,
    pub fault: Fault,
    pub times: usize,
}

pub struct FaultProxy {
    /// `http://127.0.0.1:PORT`, for `AWS_ENDPOINT_URL`.
    pub endpoint: String,
    log: Arc<Mutex<Vec<Seen>>>,
    rules: Arc<Mutex<Vec<Rule>>>,
    /// Fires once, when the tripwire trips.
    pub tripped: mpsc::UnboundedReceiver<Seen>,
}

struct Shared {
    upstream: String,
    rate: f64,
    kinds: Vec<Fault>,
    hold: Duration,
    rng: Mutex<u64>,
    tripwire: Option<Tripwire>,
    matched: AtomicUsize,
    log: Arc<Mutex<Vec<Seen>>>,
    rules: Arc<Mutex<Vec<Rule>>>,
    trip: mpsc::UnboundedSender<Seen>,
    /// Held while a DynamoDB write is forwarded (see [`Shared::forward`]).
    writes: tokio::sync::Mutex<()>,
}

/// DynamoDB's writes, which it applies atomically, item by item.
const DYNAMODB_WRITES: [&str; 4] = ["PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems"];

impl Shared {
    /// Forward a request. moto applies DynamoDB's conditional writes without a lock, so two
    /// concurrent `UpdateItem`s can both pass a condition that only one of them should (a
    /// budget counter's `n < max`): the proxy forwards DynamoDB writes one at a time, which is
    /// what DynamoDB's per-item atomicity guarantees (and stronger).
    async fn forward(&self, req: &Request) -> Option<Vec<u8>> {
        let _one_at_a_time = if DYNAMODB_WRITES.contains(&req.operation().as_str()) {
            Some(self.writes.lock().await)
        } else {
            None
        };
        forward(&self.upstream, req).await
    }

    /// SplitMix64: a seeded, dependency-free stream of numbers in [0, 1).
    fn roll(&self) -> f64 {
        let mut s = self.rng.lock().unwrap();
        *s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = *s;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }

    fn fault(&self, operation: &str, body: &[u8]) -> Option<Fault> {
        let mut rules = self.rules.lock().unwrap();
        if let Some(rule) = rules.iter_mut().find(|r| {
            r.times > 0
                && r.operation == operation
                && r.containing
                    .is_none_or(|c| String::from_utf8_lossy(body).contains(c))
        }) {
            rule.times -= 1;
            return Some(rule.fault);
        }
        drop(rules);
        if self.kinds.is_empty() || self.roll() >= self.rate {
            return None;
        }
        let i = (self.roll() * self.kinds.len() as f64) as usize;
        Some(self.kinds[i.min(self.kinds.len() - 1)])
    }

    fn trips(&self, operation: &str, body: &[u8]) -> Option<When> {
        let wire = self.tripwire.as_ref()?;
        let contains = |needle: &str| String::from_utf8_lossy(body).contains(needle);
        if wire.operation != operation || !wire.containing.is_none_or(contains) {
            return None;
        }
        let n = self.matched.fetch_add(1, Ordering::SeqCst) + 1;
        (n == wire.nth).then_some(wire.when)
    }
}

/// Options for [`FaultProxy::start`].
#[derive(Debug, Clone)]
pub struct Faults {
    /// The chance that a request meets a fault (0.0–1.0).
    pub rate: f64,
    pub kinds: Vec<Fault>,
    /// How long `HeldThenDropped` holds a request.
    pub hold: Duration,
    pub seed: u64,
    pub tripwire: Option<Tripwire>,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            rate: 0.0,
            kinds: ALL_FAULTS.to_vec(),
            hold: Duration::from_millis(300),
            seed: 1,
            tripwire: None,
        }
    }
}

impl FaultProxy {
    /// Listen on a free loopback port and forward to `upstream` (`http://127.0.0.1:PORT`).
    pub async fn start(upstream: &str, faults: Faults) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let log = Arc::new(Mutex::new(Vec::new()));
        let rules = Arc::new(Mutex::new(Vec::new()));
        let (trip, tripped) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            upstream: upstream
                .trim_start_matches("http://")
                .trim_end_matches('/')
                .to_string(),
            rate: faults.rate,
            kinds: faults.kinds,
            hold: faults.hold,
            rng: Mutex::new(faults.seed),
            tripwire: faults.tripwire,
            matched: AtomicUsize::new(0),
            log: log.clone(),
            rules: rules.clone(),
            trip,
            writes: tokio::sync::Mutex::new(()),
        });
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, shared.clone()));
            }
        });
        FaultProxy {
            endpoint,
            log,
            rules,
            tripped,
        }
    }

    /// Add a targeted fault (before the random ones are rolled).
    pub fn add_rule(&self, rule: Rule) {
        self.rules.lock().unwrap().push(rule);
    }

    pub fn clear_rules(&self) {
        self.rules.lock().unwrap().clear();
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.log.lock().unwrap().clone()
    }

    /// Faults injected, by kind.
    pub fn faults(&self) -> BTreeMap<Fault, usize> {
        let mut m = BTreeMap::new();
        for s in self.seen() {
            if let Fate::Faulted(f) = s.fate {
                *m.entry(f).or_default() += 1;
            }
        }
        m
    }

    /// Logical calls of `operation` that reached the emulator, per bucket: SDK retries of one
    /// call (same invocation id) count once.
    pub fn logical_calls_per_bucket(&self, operation: &str) -> BTreeMap<String, usize> {
        let mut ids: BTreeMap<String, std::collections::BTreeSet<String>> = BTreeMap::new();
        for s in self.seen() {
            if s.operation == operation && s.forwarded() {
                ids.entry(s.bucket.clone().unwrap_or_default())
                    .or_default()
                    .insert(s.invocation_id.clone());
            }
        }
        ids.into_iter().map(|(b, set)| (b, set.len())).collect()
    }
}

/// One request off the wire: its head (as sent) and body.
struct Request {
    head: Vec<String>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.iter().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    fn method_and_path(&self) -> (&str, &str) {
        let mut parts = self.head[0].split_whitespace();
        (parts.next().unwrap_or(""), parts.next().unwrap_or(""))
    }

    /// The AWS operation, from the protocol's own marks: `X-Amz-Target` (JSON protocols), the
    /// `Action` form field (query protocols), or the S3 subresource.
    fn operation(&self) -> String {
        if let Some(t) = self.header("x-amz-target") {
            return t.rsplit('.').next().unwrap_or(t).to_string();
        }
        let body = String::from_utf8_lossy(&self.body);
        if let Some(action) = body.split('&').find_map(|kv| kv.strip_prefix("Action=")) {
            return action.to_string();
        }
        let (method, path) = self.method_and_path();
        let query = path.split_once('?').map(|(_, q)| q).unwrap_or("");
        let sub = query.split('&').next().unwrap_or("");
        let verb = match method {
            "GET" => "Get",
            "PUT" => "Put",
            "DELETE" => "Delete",
            "HEAD" => "Head",
            _ => "Post",
        };
        match sub.split('=').next().unwrap_or("") {
            "publicAccessBlock" => format!("{verb}PublicAccessBlock"),
            "tagging" => format!("{verb}BucketTagging"),
            "" => format!("{method} {}", path.split('?').next().unwrap_or("")),
            other => format!("{verb}:{other}"),
        }
    }

    fn bucket(&self) -> Option<String> {
        if self.header("x-amz-target").is_some() {
            return None;
        }
        let (_, path) = self.method_and_path();
        let first = path
            .split('?')
            .next()?
            .trim_start_matches('/')
            .split('/')
            .next()?;
        (!first.is_empty()).then(|| first.to_string())
    }

    fn json(&self) -> bool {
        self.header("x-amz-target").is_some()
            || self
                .header("content-type")
                .is_some_and(|c| c.contains("json"))
    }
}

async fn read_line<R: AsyncRead + Unpin>(r: &mut BufReader<R>) -> Option<String> {
    let mut line = String::new();
    match r.read_line(&mut line).await {
        Ok(0) | Err(_) => None,
        Ok(_) => Some(line.trim_end_matches(['\r', '\n']).to_string()),
    }
}

/// A chunked body, decoded.
async fn read_chunked<R: AsyncRead + Unpin>(r: &mut BufReader<R>) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let size = read_line(r).await?;
        let size = usize::from_str_radix(size.split(';').next()?.trim(), 16).ok()?;
        if size == 0 {
            // Trailers, then the blank line.
            while !read_line(r).await?.is_empty() {}
            return Some(body);
        }
        let mut chunk = vec![0; size];
        r.read_exact(&mut chunk).await.ok()?;
        body.extend(chunk);
        read_line(r).await?;
    }
}

/// A message head and body (request or response) off the wire.
async fn read_message<R: AsyncRead + Unpin>(
    r: &mut BufReader<R>,
    until_eof: bool,
) -> Option<(Vec<String>, Vec<u8>)> {
    let mut head = vec![read_line(r).await?];
    loop {
        let line = read_line(r).await?;
        if line.is_empty() {
            break;
        }
        head.push(line);
    }
    let header = |name: &str| {
        head.iter().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    };
    let body = if header("transfer-encoding").is_some_and(|t| t.contains("chunked")) {
        read_chunked(r).await?
    } else if let Some(n) = header("content-length").and_then(|n| n.parse::<usize>().ok()) {
        let mut b = vec![0; n];
        r.read_exact(&mut b).await.ok()?;
        b
    } else if until_eof {
        let mut b = Vec::new();
        r.read_to_end(&mut b).await.ok()?;
        b
    } else {
        Vec::new()
    };
    Some((head, body))
}

/// The head without hop-by-hop framing, with `extra` headers added.
fn reframe(head: &[String], extra: &[String]) -> String {
    let mut out = String::new();
    out.push_str(&head[0]);
    out.push_str("\r\n");
    for line in head.iter().skip(1) {
        let name = line
            .split(':')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if !matches!(
            name.as_str(),
            "content-length" | "transfer-encoding" | "connection" | "keep-alive"
        ) {
            out.push_str(line);
            out.push_str("\r\n");
        }
    }
    for e in extra {
        out.push_str(e);
        out.push_str("\r\n");
    }
    out.push_str("\r\n");
    out
}

/// Forward one request to the emulator on a fresh connection; the whole answer, re-framed
/// with a content length for the client's kept-alive connection.
async fn forward(upstream: &str, req: &Request) -> Option<Vec<u8>> {
    let mut up = TcpStream::connect(upstream).await.ok()?;
    let head = reframe(
        &req.head,
        &[
            format!("content-length: {}", req.body.len()),
            "connection: close".into(),
        ],
    );
    up.write_all(head.as_bytes()).await.ok()?;
    up.write_all(&req.body).await.ok()?;
    let mut reader = BufReader::new(up);
    let (head, body) = read_message(&mut reader, true).await?;
    let is_head = req.method_and_path().0 == "HEAD";
    let mut out = reframe(
        &head,
        &[if is_head {
            "content-length: 0".to_string()
        } else {
            format!("content-length: {}", body.len())
        }],
    )
    .into_bytes();
    if !is_head {
        out.extend(body);
    }
    Some(out)
}

/// Close the connection with a reset (RST), not an orderly FIN.
fn reset(stream: TcpStream) {
    let _ = stream.set_zero_linger();
    drop(stream);
}

async fn serve(stream: TcpStream, shared: Arc<Shared>) {
    let mut client = BufReader::new(stream);
    loop {
        let Some((head, body)) = read_message(&mut client, false).await else {
            return;
        };
        let req = Request { head, body };
        let mut seen = Seen {
            operation: req.operation(),
            bucket: req.bucket(),
            invocation_id: req
                .header("amz-sdk-invocation-id")
                .unwrap_or_default()
                .to_string(),
            body: String::from_utf8_lossy(&req.body[..req.body.len().min(4096)]).into_owned(),
            fate: Fate::Forwarded,
        };
        let log = |seen: &Seen| shared.log.lock().unwrap().push(seen.clone());
        let trip = |seen: Seen| {
            let _ = shared.trip.send(seen);
        };

        if let Some(when) = shared.trips(&seen.operation, &req.body) {
            let forwarded = when == When::After;
            if forwarded {
                let _ = shared.forward(&req).await;
            }
            seen.fate = Fate::Tripped { forwarded };
            log(&seen);
            trip(seen.clone());
            // The caller never hears back; the test kills it.
            std::future::pending::<()>().await;
        }

        match shared.fault(&seen.operation, &req.body) {
            None => {}
            Some(fault) => {
                seen.fate = Fate::Faulted(fault);
                log(&seen);
                match fault {
                    Fault::Unavailable => {
                        let body = if req.json() {
                            r#"{"__type":"ServiceUnavailable","message":"injected by the fault proxy"}"#
                        } else {
                            "<Error><Code>ServiceUnavailable</Code><Message>injected by the fault proxy</Message></Error>"
                        };
                        let answer = format!(
                            "HTTP/1.1 503 Service Unavailable\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                            body.len()
                        );
                        let _ = client.get_mut().write_all(answer.as_bytes()).await;
                    }
                    Fault::Reset => reset(client.into_inner()),
                    Fault::LostResponse => {
                        let _ = shared.forward(&req).await;
                        reset(client.into_inner());
                    }
                    Fault::HeldThenDropped => tokio::time::sleep(shared.hold).await,
                }
                return;
            }
        }

        log(&seen);
        let Some(answer) = shared.forward(&req).await else {
            return;
        };
        if client.get_mut().write_all(&answer).await.is_err() {
            return;
        }
    }
}
