//! A fault-injecting HTTP/1.1 forward proxy of the tests' own, put between
//! himaplan and moto (`AWS_ENDPOINT_URL=http://127.0.0.1:PROXYPORT`).
//!
//! Each request is read whole (head + `Content-Length` body), then, as a
//! seeded draw decides, either answered by the proxy itself with an EC2
//! error (503 `ServiceUnavailable`, 500 `InternalError`, 400
//! `RequestLimitExceeded`), or forwarded to moto and its answer returned —
//! possibly late, or never: "drop" forwards the request, lets moto carry it
//! out, and closes the client's connection without a byte of the answer.
//! That is the fault that makes a retried `RunInstances` create a second
//! instance, since moto ignores `ClientToken`. A "slow mode" delays every
//! answer a little to widen the window in which a test can kill himaplan.
//!
//! Every answer closes its connection (`Connection: close`), so the client
//! never reuses a connection the proxy may drop. Requests to `/moto-api/`
//! are never faulted. The proxy listens on 127.0.0.1 only and talks only to
//! the moto address it is given; it stops when dropped.

#![allow(dead_code, reason = "each test binary uses a different part of this toolkit")]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the proxy does to requests: fractions are per request, drawn from
/// one seeded generator; they are tried in the order of the fields.
#[derive(Debug, Clone, Default)]
pub struct FaultPlan {
    pub seed: u64,
    /// Answer 503 `ServiceUnavailable` without forwarding.
    pub unavailable: f64,
    /// Answer 500 `InternalError` without forwarding.
    pub internal: f64,
    /// Answer 400 `RequestLimitExceeded` (throttling) without forwarding.
    pub throttle: f64,
    /// Forward, then close the connection without answering.
    pub drop: f64,
    /// Forward, then answer after `slow_delay`.
    pub slow: f64,
    pub slow_delay: Duration,
    /// Delay every forwarded answer by a draw from this range ("slow mode").
    pub every_delay: Option<(Duration, Duration)>,
    /// Extra delay of every forwarded answer to the named EC2 action (e.g.
    /// hold `RunInstances` answers so a kill lands after moto created the
    /// instance but before himaplan heard of it).
    pub action_delay: Vec<(&'static str, Duration)>,
    /// Deterministic drops: the first N requests of each named EC2 action
    /// (or S3 `METHOD /path`, see `Request::action`) are forwarded and
    /// their answers dropped (on top of the fractions).
    pub drop_first: Vec<(&'static str, usize)>,
}

/// Kinds of injected faults, as counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fault {
    Unavailable,
    Internal,
    Throttle,
    Drop,
    Slow,
}

/// What the proxy saw and did.
#[derive(Debug, Clone, Default)]
pub struct Counts {
    pub requests: usize,
    pub forwarded: usize,
    pub faults: BTreeMap<Fault, usize>,
    /// Dropped answers per EC2 action (the ones moto carried out unseen).
    pub dropped_actions: BTreeMap<String, usize>,
    /// Requests per EC2 action.
    pub actions: BTreeMap<String, usize>,
}

impl Counts {
    pub fn fault(&self, f: Fault) -> usize {
        self.faults.get(&f).copied().unwrap_or(0)
    }

    pub fn total_faults(&self) -> usize {
        self.faults.values().sum()
    }
}

struct Shared {
    upstream: SocketAddr,
    plan: Mutex<FaultPlan>,
    rng: Mutex<Rng>,
    counts: Mutex<Counts>,
    /// Deterministic drops used so far, per action.
    forced: Mutex<BTreeMap<String, usize>>,
}

/// A running proxy; stops when dropped.
pub struct Proxy {
    pub endpoint: String,
    shared: Arc<Shared>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Proxy {
    /// Starts a proxy on a free 127.0.0.1 port in front of `upstream`
    /// (`http://127.0.0.1:PORT`, loopback only).
    pub fn start(upstream: &str, plan: FaultPlan) -> Proxy {
        let hostport = upstream.strip_prefix("http://").expect("upstream is http://HOST:PORT");
        let upstream: SocketAddr = hostport.parse().expect("upstream is an IP:PORT");
        assert!(upstream.ip().is_loopback(), "the proxy only forwards to loopback");
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("proxy runtime");
        let listener = runtime.block_on(TcpListener::bind("127.0.0.1:0")).expect("bind a loopback port");
        let port = listener.local_addr().expect("local addr").port();
        let shared = Arc::new(Shared {
            upstream,
            rng: Mutex::new(Rng::new(plan.seed)),
            plan: Mutex::new(plan),
            counts: Mutex::new(Counts::default()),
            forced: Mutex::new(BTreeMap::new()),
        });
        let accept_shared = shared.clone();
        runtime.spawn(async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else { continue };
                let shared = accept_shared.clone();
                tokio::spawn(async move {
                    let _ = serve(socket, shared).await;
                });
            }
        });
        Proxy { endpoint: format!("http://127.0.0.1:{port}"), shared, runtime: Some(runtime) }
    }

    pub fn counts(&self) -> Counts {
        self.shared.counts.lock().expect("counts").clone()
    }

    /// Replaces the fault plan (the generator keeps its sequence).
    pub fn set_plan(&self, plan: FaultPlan) {
        *self.shared.plan.lock().expect("plan") = plan;
    }

    pub fn reset_counts(&self) {
        *self.shared.counts.lock().expect("counts") = Counts::default();
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// One request as read from the client.
struct Request {
    head: String,
    body: Vec<u8>,
}

impl Request {
    fn path(&self) -> &str {
        self.head.lines().next().and_then(|l| l.split_whitespace().nth(1)).unwrap_or("/")
    }

    /// The EC2 Query API action (`Action=...` in the form body or the
    /// query); for a REST request (S3) without one, `METHOD /path` without
    /// the query, e.g. `PUT /bucket/state.json.lock`.
    fn action(&self) -> String {
        let body = String::from_utf8_lossy(&self.body);
        let (path, query) = self.path().split_once('?').unwrap_or((self.path(), ""));
        for form in [body.as_ref(), query] {
            if let Some(a) = form.split('&').find_map(|p| p.strip_prefix("Action=")) {
                return a.to_string();
            }
        }
        let method = self.head.split_whitespace().next().unwrap_or("?");
        format!("{method} {path}")
    }
}

/// Serves one connection: one request, one answer (or none), then close.
async fn serve(mut client: TcpStream, shared: Arc<Shared>) -> std::io::Result<()> {
    let Some(req) = read_request(&mut client).await? else { return Ok(()) };
    let action = req.action();
    let control = req.path().starts_with("/moto-api");
    let (fault, delay) = decide(&shared, &action, control);
    {
        let mut c = shared.counts.lock().expect("counts");
        c.requests += 1;
        *c.actions.entry(action.clone()).or_default() += 1;
        if let Some(f) = fault {
            *c.faults.entry(f).or_default() += 1;
            if f == Fault::Drop {
                *c.dropped_actions.entry(action.clone()).or_default() += 1;
            }
        }
    }
    let canned = match fault {
        Some(Fault::Unavailable) => {
            Some((503, "Service Unavailable", "ServiceUnavailable", "The request has failed due to a temporary failure of the server."))
        }
        Some(Fault::Internal) => Some((500, "Internal Server Error", "InternalError", "An internal error has occurred.")),
        Some(Fault::Throttle) => Some((400, "Bad Request", "RequestLimitExceeded", "Request limit exceeded.")),
        _ => None,
    };
    if let Some((status, reason, code, message)) = canned {
        let body = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>{code}</Code><Message>{message} (injected by the test proxy)</Message></Error></Errors><RequestID>proxy-fault</RequestID></Response>"
        );
        let answer = format!(
            "HTTP/1.1 {status} {reason}\r\nContent-Type: text/xml;charset=UTF-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        client.write_all(answer.as_bytes()).await?;
        return client.shutdown().await;
    }
    let answer = forward(&shared.upstream, &req).await?;
    shared.counts.lock().expect("counts").forwarded += 1;
    if fault == Some(Fault::Drop) {
        // moto did the work; the client never hears of it.
        drop(client);
        return Ok(());
    }
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    client.write_all(&answer).await?;
    client.shutdown().await
}

/// Which fault (if any) and how long a delay this request gets.
fn decide(shared: &Shared, action: &str, control: bool) -> (Option<Fault>, Duration) {
    if control {
        return (None, Duration::ZERO);
    }
    let plan = shared.plan.lock().expect("plan").clone();
    let mut rng = shared.rng.lock().expect("rng");
    let mut delay = match plan.every_delay {
        Some((lo, hi)) => lo + (hi.saturating_sub(lo)).mul_f64(rng.unit()),
        None => Duration::ZERO,
    };
    if let Some((_, extra)) = plan.action_delay.iter().find(|(a, _)| *a == action) {
        delay += *extra;
    }
    if let Some((_, n)) = plan.drop_first.iter().find(|(a, _)| *a == action) {
        let mut forced = shared.forced.lock().expect("forced");
        let used = forced.entry(action.to_string()).or_default();
        if *used < *n {
            *used += 1;
            return (Some(Fault::Drop), delay);
        }
    }
    let u = rng.unit();
    let mut edge = 0.0;
    for (fault, p) in [
        (Fault::Unavailable, plan.unavailable),
        (Fault::Internal, plan.internal),
        (Fault::Throttle, plan.throttle),
        (Fault::Drop, plan.drop),
        (Fault::Slow, plan.slow),
    ] {
        edge += p;
        if u < edge {
            if fault == Fault::Slow {
                delay += plan.slow_delay;
            }
            return (Some(fault), delay);
        }
    }
    (None, delay)
}

/// Reads one request; `None` when the client closed without sending one.
async fn read_request(client: &mut TcpStream) -> std::io::Result<Option<Request>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(pos) = find(&buf, b"\r\n\r\n") {
            break pos;
        }
        let n = client.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let length = header(&head, "content-length").and_then(|v| v.parse::<usize>().ok()).unwrap_or(0);
    assert!(header(&head, "transfer-encoding").is_none(), "the test proxy does not support chunked requests");
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < length {
        let n = client.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        body.extend_from_slice(&chunk[..n]);
    }
    body.truncate(length);
    Ok(Some(Request { head, body }))
}

/// Sends the request to moto on a fresh connection and returns its whole
/// answer with `Connection: close` set.
async fn forward(upstream: &SocketAddr, req: &Request) -> std::io::Result<Vec<u8>> {
    let mut out = String::new();
    for (i, line) in req.head.split("\r\n").enumerate() {
        if i > 0 && line.to_ascii_lowercase().starts_with("connection:") {
            continue;
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    out.push_str("Connection: close\r\n\r\n");
    let mut moto = TcpStream::connect(upstream).await?;
    moto.write_all(out.as_bytes()).await?;
    moto.write_all(&req.body).await?;
    let mut answer = Vec::new();
    moto.read_to_end(&mut answer).await?;
    let Some(head_end) = find(&answer, b"\r\n\r\n") else { return Ok(answer) };
    let head = String::from_utf8_lossy(&answer[..head_end]).into_owned();
    let mut rebuilt = String::new();
    for (i, line) in head.split("\r\n").enumerate() {
        if i > 0 && line.to_ascii_lowercase().starts_with("connection:") {
            continue;
        }
        rebuilt.push_str(line);
        rebuilt.push_str("\r\n");
    }
    rebuilt.push_str("Connection: close\r\n\r\n");
    let mut bytes = rebuilt.into_bytes();
    bytes.extend_from_slice(&answer[head_end + 4..]);
    Ok(bytes)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.split("\r\n").skip(1).find_map(|line| {
        let (k, v) = line.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// A small seeded generator (SplitMix64): reproducible runs without a
/// dependency.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform draw in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The seed of this run: `HIMAPLAN_TEST_SEED` when set (to reproduce a
/// failure), else one taken from the clock. Printed by the caller.
pub fn seed_from_env() -> u64 {
    std::env::var("HIMAPLAN_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(1))
}
