//! The HTTP shell: hyper 1 on tokio, HTTP/1.1 and HTTP/2 cleartext (h2c, prior knowledge) on one
//! port, with the limits that keep one client from taking the service down. Every decision about
//! a request is in [`crate::api`] (what to answer) and [`crate::lane`] (which pool answers it);
//! this module reads requests within bounds, runs `api::handle` off the reactor, and writes one
//! log line per request ([`crate::redact`] decides what of the target is written).
//!
//! Bounds, and what a client that breaks them gets:
//!
//! | what | bound | answer |
//! |---|---|---|
//! | request line and headers (HTTP/1.1) | [`MAX_HEAD`] bytes, [`MAX_HEADERS`] headers | 431, connection closed (hyper) |
//! | header list (HTTP/2) | [`MAX_HEAD`] bytes | 431 on that stream (h2, RFC 9113 section 10.5.1) |
//! | body | [`MAX_BODY`] bytes: a larger `Content-Length` is refused before any byte is read; a chunked body when it passes the cap | 413, connection closed |
//! | time to send the head (HTTP/1.1; also the keep-alive idle time) | [`HEAD_TIMEOUT`] | connection closed |
//! | time to send the body | [`BODY_TIMEOUT`] | 408, connection closed |
//! | a connection without traffic (HTTP/2 too) | [`IDLE_TIMEOUT`] | GOAWAY / closed |
//! | open connections | [`MAX_CONNECTIONS`] | further ones wait in the kernel's accept queue |
//! | concurrent HTTP/2 streams per connection | [`MAX_STREAMS`] | refused by flow control (hyper) |
//! | password checks (argon2) | `password_threads` running, `password_queue` waiting | 503 with `Retry-After: 1` |
//!
//! Waiting costs no thread: a slow client holds a connection slot and a few kilobytes, never a
//! worker. `api::handle` is synchronous (SQLite, argon2): it runs on tokio's blocking pool, at
//! most `threads` requests at once on the general lane and `password_threads` on the password
//! lane, so password traffic can never occupy the threads introspection is answered on.
//!
//! On SIGTERM (or SIGINT) the listener closes at once, requests in flight are finished (at most
//! [`SHUTDOWN_GRACE`]), keep-alive connections are closed after their current answer, and
//! [`Server::run`] returns.

use crate::api::{self, Request, Response, Service};
use crate::clock;
use crate::lane::{self, Lane};
use crate::redact;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_LENGTH};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use std::convert::Infallible;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};

/// The largest request body read.
pub const MAX_BODY: usize = 64 * 1024;
/// The largest request head (request line and headers), in bytes.
pub const MAX_HEAD: usize = 16 * 1024;
/// The most header fields in one request.
pub const MAX_HEADERS: usize = 100;
/// How long a client has to send a request head, counted from the end of the previous answer
/// (so it is also how long an idle HTTP/1.1 keep-alive connection stays open).
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a client has to send a whole body, counted from the end of its head.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(10);
/// A connection on which nothing was read or written for this long is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// The most connections served at once.
pub const MAX_CONNECTIONS: usize = 1024;
/// The most concurrent streams on one HTTP/2 connection.
pub const MAX_STREAMS: u32 = 64;
/// How long requests in flight get to finish after SIGTERM.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// Messages of the bodies this module writes (Jira's error collection).
pub mod messages {
    pub const TOO_SLOW: &str = "The request body did not arrive in time.";
    pub const UNREADABLE: &str = "The request body could not be read.";
    pub const BUSY: &str = "Too many password checks are waiting. Please try again later.";
}

/// A bound server, not yet serving.
pub struct Server {
    listener: std::net::TcpListener,
    service: Arc<Service>,
}

impl Server {
    /// Binds `service.config.listen`.
    pub fn bind(service: Service) -> Result<Self, String> {
        let listen = service.config.listen;
        let listener =
            std::net::TcpListener::bind(listen).map_err(|e| format!("cannot listen on {listen}: {e}"))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
        Ok(Self {
            listener,
            service: Arc::new(service),
        })
    }

    /// The address actually bound (the port is known here when the configuration said 0).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.local_addr().ok()
    }

    /// Serves until SIGTERM or SIGINT, then finishes the requests in flight and returns.
    pub fn run(self) -> Result<(), String> {
        let config = &self.service.config;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .max_blocking_threads(config.threads + config.password_threads)
            .thread_name("tokengate-tokens")
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the runtime: {e}"))?;
        let result = runtime.block_on(serve(self.listener, self.service));
        runtime.shutdown_timeout(Duration::from_secs(1));
        result
    }
}

/// What every connection shares.
struct Shared {
    service: Arc<Service>,
    /// Permits for `api::handle` on the general lane.
    general: Semaphore,
    /// Permits for `api::handle` on the password lane.
    password: Semaphore,
    /// Password requests waiting for a permit.
    password_waiting: AtomicUsize,
    password_queue: usize,
}

async fn serve(listener: std::net::TcpListener, service: Arc<Service>) -> Result<(), String> {
    let listener = TcpListener::from_std(listener).map_err(|e| format!("cannot listen: {e}"))?;
    let shared = Arc::new(Shared {
        general: Semaphore::new(service.config.threads),
        password: Semaphore::new(service.config.password_threads),
        password_waiting: AtomicUsize::new(0),
        password_queue: service.config.password_queue,
        service,
    });
    let connections = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut http = auto::Builder::new(TokioExecutor::new());
    http.http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEAD_TIMEOUT)
        .max_buf_size(MAX_HEAD)
        .max_headers(MAX_HEADERS);
    http.http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(MAX_HEAD).unwrap_or(u32::MAX))
        .max_concurrent_streams(MAX_STREAMS)
        .keep_alive_interval(Some(IDLE_TIMEOUT / 2))
        .keep_alive_timeout(Duration::from_secs(20));
    let http = Arc::new(http);
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            () = &mut shutdown => break,
            permit = connections.clone().acquire_owned() => permit,
        };
        let Ok(permit) = permit else { break };
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok((stream, peer)) => (stream, peer.ip()),
            Err(e) => {
                // Out of descriptors, or a connection reset before it was accepted: go on.
                eprintln!("tokengate-tokens: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let (http, shared, stop) = (http.clone(), shared.clone(), stop_rx.clone());
        tokio::spawn(async move {
            connection(&http, shared, stream, peer, stop).await;
            drop(permit);
        });
    }
    // Refuse new connections at once: a load balancer sees the port closed and goes elsewhere.
    drop(listener);
    let _ = stop_tx.send(true);
    // Every connection holds a permit until it is done: when all are back, all are done.
    let all = u32::try_from(MAX_CONNECTIONS).unwrap_or(u32::MAX);
    if tokio::time::timeout(SHUTDOWN_GRACE, connections.acquire_many(all))
        .await
        .is_err()
    {
        eprintln!("tokengate-tokens: shutdown: requests still in flight after the grace period");
    }
    Ok(())
}

/// Resolves on the first SIGTERM or SIGINT.
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt()))
    else {
        eprintln!("tokengate-tokens: cannot watch for SIGTERM; serving until killed");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

/// Serves one connection until it ends, it is idle for [`IDLE_TIMEOUT`], or shutdown.
async fn connection(
    http: &auto::Builder<TokioExecutor>,
    shared: Arc<Shared>,
    stream: TcpStream,
    peer: IpAddr,
    mut stop: watch::Receiver<bool>,
) {
    let started = Instant::now();
    let activity = Arc::new(AtomicU64::new(0));
    let io = TokioIo::new(Tracked {
        inner: stream,
        started,
        activity: activity.clone(),
    });
    let service = hyper::service::service_fn(move |request| answer(shared.clone(), peer, request));
    let conn = http.serve_connection(io, service);
    tokio::pin!(conn);
    let mut draining = false;
    let mut ticker = tokio::time::interval(IDLE_TIMEOUT / 4);
    loop {
        tokio::select! {
            _ = conn.as_mut() => return,
            changed = stop.changed(), if !draining => {
                let _ = changed;
                draining = true;
                conn.as_mut().graceful_shutdown();
            }
            _ = ticker.tick(), if !draining => {
                let idle_since = Duration::from_millis(activity.load(Ordering::Relaxed));
                if started.elapsed().saturating_sub(idle_since) >= IDLE_TIMEOUT {
                    draining = true;
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

/// A socket that notes when it last read or wrote (milliseconds since `started`).
struct Tracked {
    inner: TcpStream,
    started: Instant,
    activity: Arc<AtomicU64>,
}

impl Tracked {
    fn touch(&self) {
        let now = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.activity.store(now, Ordering::Relaxed);
    }
}

impl AsyncRead for Tracked {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.inner).poll_read(cx, buf);
        if result.is_ready() {
            this.touch();
        }
        result
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.inner).poll_write(cx, buf);
        if result.is_ready() {
            this.touch();
        }
        result
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        if result.is_ready() {
            this.touch();
        }
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// Answers one request, and logs it.
async fn answer(
    shared: Arc<Shared>,
    peer: IpAddr,
    incoming: hyper::Request<Incoming>,
) -> Result<hyper::Response<Full<Bytes>>, Infallible> {
    let method = incoming.method().as_str().to_owned();
    let url = incoming
        .uri()
        .path_and_query()
        .map_or_else(|| incoming.uri().path().to_owned(), |p| p.as_str().to_owned());
    let response = match read(incoming).await {
        Ok(request) => dispatch(&shared, peer, request).await,
        Err(response) => response,
    };
    eprintln!(
        "tokengate-tokens: {} {} {}",
        redact::target(&method),
        redact::target(&url),
        response.status
    );
    Ok(to_hyper(response))
}

/// Reads the request: the head as hyper parsed it, and at most [`MAX_BODY`] bytes of body
/// within [`BODY_TIMEOUT`]. A `Content-Length` over the cap is refused before any byte is read.
async fn read(incoming: hyper::Request<Incoming>) -> Result<Request, Response> {
    let close = |status, message| Response::error(status, message).with_header("connection", "close");
    let too_large = || close(413, api::messages::TOO_LARGE);
    let announced = incoming
        .headers()
        .get_all(CONTENT_LENGTH)
        .iter()
        .map(|v| v.to_str().ok().and_then(|v| v.trim().parse::<u64>().ok()))
        .max()
        .flatten();
    let cap = u64::try_from(MAX_BODY).unwrap_or(u64::MAX);
    if announced.is_some_and(|n| n > cap) {
        return Err(too_large());
    }
    let (head, body) = incoming.into_parts();
    let mut request = Request {
        method: head.method.as_str().to_owned(),
        url: head
            .uri
            .path_and_query()
            .map_or_else(|| head.uri.path().to_owned(), |p| p.as_str().to_owned()),
        headers: head
            .headers
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_owned(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: Vec::new(),
    };
    let collected = tokio::time::timeout(BODY_TIMEOUT, Limited::new(body, MAX_BODY).collect()).await;
    request.body = match collected {
        Ok(Ok(body)) => body.to_bytes().to_vec(),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => return Err(too_large()),
        Ok(Err(_)) => return Err(close(400, messages::UNREADABLE)),
        Err(_) => return Err(close(408, messages::TOO_SLOW)),
    };
    Ok(request)
}

/// Runs `api::handle_from` on the request's lane, off the reactor; `peer` is the connection's
/// address (the client's only when no trusted proxy names another, see `crate::lockout`).
async fn dispatch(shared: &Arc<Shared>, peer: IpAddr, request: Request) -> Response {
    let permit = match lane::lane(&request) {
        Lane::Fast => shared.general.acquire().await.ok(),
        Lane::Password => match shared.password.try_acquire() {
            Ok(permit) => Some(permit),
            Err(_) => {
                // The queue is bounded: past it, refuse now rather than answer late.
                let Some(waiting) = Waiting::join(&shared.password_waiting, shared.password_queue) else {
                    return Response::error(503, messages::BUSY).with_header("retry-after", "1");
                };
                let permit = shared.password.acquire().await.ok();
                drop(waiting);
                permit
            }
        },
    };
    // The semaphores are never closed; if one were, the request is refused, not run unbounded.
    let Some(_permit) = permit else {
        return Response::error(503, api::messages::INTERNAL);
    };
    let service = shared.service.clone();
    let handled = tokio::task::spawn_blocking(move || {
        api::handle_from(&service, &request, Some(peer), clock::now_millis())
    })
    .await;
    // A bug costs one request (500), never the server.
    handled.unwrap_or_else(|_| Response::error(500, api::messages::INTERNAL))
}

/// A place in the password queue, given back on drop (also when the client goes away while
/// it waits).
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn join(count: &'a AtomicUsize, limit: usize) -> Option<Self> {
        count
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < limit).then_some(n + 1)
            })
            .ok()
            .map(|_| Self(count))
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn to_hyper(response: Response) -> hyper::Response<Full<Bytes>> {
    let mut out = hyper::Response::new(Full::new(Bytes::from(response.body)));
    *out.status_mut() =
        hyper::StatusCode::from_u16(response.status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    let headers = out.headers_mut();
    for (name, value) in &response.headers {
        if let (Ok(name), Ok(value)) = (
            hyper::header::HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            headers.append(name, value);
        }
    }
    out
}
