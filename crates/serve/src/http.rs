//! The HTTP side of `didact serve`: hyper (HTTP/1.1) on a tokio runtime. Why this and not a
//! thread per connection: a client that stalls — before its headers, mid-body, or while
//! reading a stream — must cost a timer, not a thread, so 4 stalled clients never starve 32
//! good ones. Routing, the fault plan, the body limit (413 from `Content-Length` unread, or
//! once the bytes pass it), the read timeout (408), and the hand-off of generation to at most
//! `Limits::workers` blocking threads; a streamed answer flows from its blocking thread
//! through a bounded channel, and a client that goes away ends its generation.

use crate::answer::{Stamp, body as answer_body, stream as answer_stream};
use crate::{Fault, FaultPlan, Limits, Model, Result, ServeError, ask, error_json};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::{Method, Request, Response, StatusCode, header};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::sync::{Semaphore, mpsc};

type Body = BoxBody<Bytes, std::io::Error>;

/// A bound, not yet serving, socket.
pub struct Listener(std::net::TcpListener);

/// Bind `addr` (port 0 = any free port); returns the socket and the address it listens on.
pub fn bind(addr: &str) -> Result<(Listener, String)> {
    let listener = std::net::TcpListener::bind(addr).map_err(|e| ServeError::Bind {
        addr: addr.to_string(),
        msg: e.to_string(),
    })?;
    let local = listener.local_addr()?.to_string();
    Ok((Listener(listener), local))
}

struct State {
    m: Model,
    faults: FaultPlan,
    limits: Limits,
    count: AtomicUsize,
    workers: Arc<Semaphore>,
}

/// Answer requests on `listener` forever (or until an I/O error on the socket itself).
pub fn run(listener: Listener, m: Model, faults: FaultPlan, limits: Limits) -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let st = Arc::new(State {
        m,
        faults,
        workers: Arc::new(Semaphore::new(limits.workers.max(1))),
        limits,
        count: AtomicUsize::new(0),
    });
    rt.block_on(accept_loop(listener, st))
}

async fn accept_loop(listener: Listener, st: Arc<State>) -> Result<()> {
    listener.0.set_nonblocking(true)?;
    let listener = tokio::net::TcpListener::from_std(listener.0)?;
    loop {
        let sock = match listener.accept().await {
            Ok((sock, _)) => sock,
            Err(_) => {
                // Out of descriptors or a connection reset before accept: try again shortly.
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        let st = st.clone();
        tokio::spawn(async move {
            let timeout = st.limits.read_timeout;
            let svc = hyper::service::service_fn(move |req| handle(req, st.clone()));
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(timeout)
                .serve_connection(TokioIo::new(sock), svc)
                .await;
        });
    }
}

fn json(status: u16, v: &serde_json::Value) -> Response<Body> {
    Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header(header::CONTENT_TYPE, "application/json")
        .body(
            Full::new(Bytes::from(v.to_string()))
                .map_err(|e| match e {})
                .boxed(),
        )
        .expect("a valid response")
}

fn refuse(status: u16, msg: &str) -> Response<Body> {
    json(status, &error_json(msg, "invalid_request_error"))
}

/// Answer one request; an `Err` closes the connection without an answer (the `drop` fault).
async fn handle(req: Request<Incoming>, st: Arc<State>) -> std::io::Result<Response<Body>> {
    let n = st.count.fetch_add(1, Ordering::SeqCst) + 1;
    match st.faults.fault(n) {
        Some(Fault::Drop) => return Err(std::io::Error::other("injected fault: drop")),
        Some(Fault::Status(code)) => {
            return Ok(json(
                code,
                &serde_json::json!({"error": {"message": format!("injected fault {code}")}}),
            ));
        }
        Some(Fault::Slow) => tokio::time::sleep(Duration::from_millis(st.faults.slow_ms)).await,
        None => {}
    }
    let path = req.uri().path().to_string();
    let chat = match (req.method(), path.as_str()) {
        (&Method::POST, "/v1/completions") => false,
        (&Method::POST, "/v1/chat/completions") => true,
        (&Method::GET, "/v1/models") => {
            let v = serde_json::json!({"object": "list", "data": [{"id": st.m.name, "object": "model"}]});
            return Ok(json(200, &v));
        }
        (m, "/v1/completions" | "/v1/chat/completions" | "/v1/models") => {
            return Ok(refuse(405, &format!("{m} is not allowed on {path}")));
        }
        _ => return Ok(refuse(404, &format!("no route {path}"))),
    };
    let body = match read_body(req, &st.limits).await {
        Ok(b) => b,
        Err(answer) => return Ok(answer),
    };
    let Ok(permit) = st.workers.clone().acquire_owned().await else {
        return Ok(refuse(503, "the server is shutting down"));
    };
    let st2 = st.clone();
    let parsed = tokio::task::spawn_blocking(move || ask::parse(&st2.m, &body, chat))
        .await
        .map_err(std::io::Error::other)?;
    let a = match parsed {
        Ok(a) => a,
        Err(msg) => return Ok(refuse(400, &msg)),
    };
    if a.stream {
        let (tx, rx) = mpsc::channel(64);
        let deadline = st.limits.read_timeout;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let mut w = ChannelWriter {
                tx,
                buf: Vec::new(),
                deadline,
            };
            let _ = answer_stream(&st.m, &a, &Stamp::new(n), &mut w);
        });
        return Ok(Response::builder()
            .header(header::CONTENT_TYPE, "text/event-stream")
            .header(header::CACHE_CONTROL, "no-cache")
            .body(Events(rx).boxed())
            .expect("a valid response"));
    }
    let answer = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        answer_body(&st.m, &a, &Stamp::new(n))
    })
    .await
    .map_err(std::io::Error::other)?;
    Ok(match answer {
        Ok(v) => json(200, &v),
        Err(msg) => json(500, &error_json(&msg, "server_error")),
    })
}

/// The body as text, read within the limits — else the answer to give (413, 408, 400).
async fn read_body(
    req: Request<Incoming>,
    limits: &Limits,
) -> std::result::Result<String, Response<Body>> {
    let too_large = || {
        refuse(
            413,
            &format!(
                "the request body is larger than {} bytes",
                limits.max_body_bytes
            ),
        )
    };
    let announced = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if announced.is_some_and(|n| n > limits.max_body_bytes as u64) {
        return Err(too_large());
    }
    let limited = Limited::new(req.into_body(), limits.max_body_bytes);
    let bytes = match tokio::time::timeout(limits.read_timeout, limited.collect()).await {
        Err(_) => {
            let msg = format!(
                "the request body did not arrive within {:?}",
                limits.read_timeout
            );
            return Err(refuse(408, &msg));
        }
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => return Err(too_large()),
        Ok(Err(e)) => return Err(refuse(400, &format!("reading the request body: {e}"))),
        Ok(Ok(c)) => c.to_bytes(),
    };
    String::from_utf8(bytes.to_vec()).map_err(|_| refuse(400, "the request body is not UTF-8"))
}

/// The write end of a streamed answer: each flush is one piece sent to the connection. A
/// client that went away, or stopped reading for `deadline`, is an error (generation ends).
struct ChannelWriter {
    tx: mpsc::Sender<Bytes>,
    buf: Vec<u8>,
    deadline: Duration,
}

impl std::io::Write for ChannelWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(b);
        Ok(b.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let mut piece = Bytes::from(std::mem::take(&mut self.buf));
        let until = Instant::now() + self.deadline;
        loop {
            match self.tx.try_send(piece) {
                Ok(()) => return Ok(()),
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    return Err(std::io::ErrorKind::BrokenPipe.into());
                }
                Err(mpsc::error::TrySendError::Full(p)) if Instant::now() < until => {
                    piece = p;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(mpsc::error::TrySendError::Full(_)) => {
                    return Err(std::io::ErrorKind::TimedOut.into());
                }
            }
        }
    }
}

/// The body of a streamed answer: the pieces as they come, ended when the sender is done.
struct Events(mpsc::Receiver<Bytes>);

impl hyper::body::Body for Events {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<std::result::Result<Frame<Bytes>, std::io::Error>>> {
        self.0.poll_recv(cx).map(|p| p.map(|b| Ok(Frame::data(b))))
    }
}
