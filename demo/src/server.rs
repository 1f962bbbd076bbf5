//! The loopback HTTP server behind the demo application, the demo identity provider and the
//! acceptance tests' upstreams and providers: hyper 1 on its own tokio runtime.

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::Value;
use std::io;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// One request as the application received it.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub path: String,
    /// Header names lower-cased, in arrival order.
    pub headers: Vec<(String, String)>,
    /// The request body (at most 1 MiB is read).
    pub body: String,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
    pub fn header_values(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// What a server answers to one request.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: String,
    pub content_type: &'static str,
    /// Wait this long before answering (to play a slow provider).
    pub delay: std::time::Duration,
    /// Close the connection instead of answering (after `delay`).
    pub hang_up: bool,
}

impl Reply {
    pub fn json(status: u16, body: &Value) -> Self {
        Self::text(status, &body.to_string(), "application/json;charset=UTF-8")
    }

    pub fn text(status: u16, body: &str, content_type: &'static str) -> Self {
        Self {
            status,
            body: body.to_owned(),
            content_type,
            delay: std::time::Duration::ZERO,
            hang_up: false,
        }
    }

    /// No answer: the connection is closed (to play a provider that goes away mid-request).
    pub fn hang_up() -> Self {
        Self {
            hang_up: true,
            ..Self::text(502, "", "text/plain")
        }
    }

    pub fn after(mut self, delay: std::time::Duration) -> Self {
        self.delay = delay;
        self
    }
}

type Handler = dyn Fn(&Received) -> Reply + Send + Sync;

/// At most this much of a request body is read (the rest is left unread).
const BODY_CAP: usize = 1 << 20;

/// Header lines one request may carry (hyper's default, 100, is below what Envoy may forward:
/// up to 100 of the client's plus its own).
const MAX_HEADERS: usize = 1000;

/// What every connection of one server shares.
struct Shared {
    received: Mutex<Vec<Received>>,
    handler: Box<Handler>,
}

/// An HTTP server (HTTP/1.1, and HTTP/2 with prior knowledge) on a loopback port that answers
/// with `handler` and records what it received. It runs on its own tokio runtime (hyper 1):
/// connections are tasks, so any number of them can be open at once, and each call of `handler`
/// runs on tokio's blocking pool, so a handler that blocks, or a delayed answer, never holds up
/// the others. It stops listening when dropped.
pub struct Server {
    port: u16,
    shared: Arc<Shared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    worker: Option<JoinHandle<()>>,
}

impl Server {
    /// Starts on `127.0.0.1:port` (0 picks a free port).
    pub fn start(
        port: u16,
        handler: impl Fn(&Received) -> Reply + Send + Sync + 'static,
    ) -> io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("demo-server")
            .enable_all()
            .build()?;
        let listener = std::net::TcpListener::bind(("127.0.0.1", port))?;
        listener.set_nonblocking(true)?;
        let port = listener.local_addr()?.port();
        let listener = {
            let _entered = runtime.enter();
            tokio::net::TcpListener::from_std(listener)?
        };
        let shared = Arc::new(Shared {
            received: Mutex::new(Vec::new()),
            handler: Box::new(handler),
        });
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let worker = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name(format!("demo-server-{port}"))
                .spawn(move || {
                    runtime.block_on(accept(listener, stopped, shared));
                    // Connections still open are dropped with the runtime, without waiting.
                    runtime.shutdown_background();
                })?
        };
        Ok(Self {
            port,
            shared,
            stop: Some(stop),
            worker: Some(worker),
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Every request received so far, oldest first.
    pub fn received(&self) -> Vec<Received> {
        self.shared.received.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// How many requests had a path starting with `prefix`.
    pub fn count(&self, prefix: &str) -> usize {
        self.received()
            .iter()
            .filter(|r| r.path.starts_with(prefix))
            .count()
    }

    /// Blocks until the server stops (for the demo binary).
    pub fn wait(mut self) {
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}

/// Accepts connections until `stopped` fires (or its sender is gone), each served on its own task.
async fn accept(
    listener: tokio::net::TcpListener,
    mut stopped: tokio::sync::oneshot::Receiver<()>,
    shared: Arc<Shared>,
) {
    let mut http = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    http.http1().max_headers(MAX_HEADERS);
    let http = Arc::new(http);
    loop {
        tokio::select! {
            _ = &mut stopped => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    let (http, shared) = (http.clone(), shared.clone());
                    tokio::spawn(async move {
                        let service = service_fn(move |request| answer(request, shared.clone()));
                        let _ = http.serve_connection(TokioIo::new(stream), service).await;
                    });
                }
                // Out of file descriptors and the like: the listener stays, try again shortly.
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(10)).await,
            },
        }
    }
}

/// The service's error for [`Reply::hang_up`]: hyper closes the connection without an answer.
#[derive(Debug)]
struct HungUp;

impl std::fmt::Display for HungUp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the handler hung up")
    }
}

impl std::error::Error for HungUp {}

/// One request: read (at most [`BODY_CAP`] of the body), record, ask the handler, answer.
async fn answer(
    request: hyper::Request<Incoming>,
    shared: Arc<Shared>,
) -> Result<hyper::Response<Full<Bytes>>, HungUp> {
    let (parts, body) = request.into_parts();
    let seen = Received {
        method: parts.method.as_str().to_owned(),
        // The request target as sent (origin form), also for HTTP/2's `:path`.
        path: parts
            .uri
            .path_and_query()
            .map_or_else(|| parts.uri.to_string(), |p| p.as_str().to_owned()),
        headers: parts
            .headers
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_owned(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: read_body(body, BODY_CAP).await,
    };
    if let Ok(mut log) = shared.received.lock() {
        log.push(seen.clone());
    }
    let reply = tokio::task::spawn_blocking(move || (shared.handler)(&seen))
        .await
        .unwrap_or_else(|_| Reply::text(500, "the handler panicked", "text/plain"));
    tokio::time::sleep(reply.delay).await;
    if reply.hang_up {
        return Err(HungUp);
    }
    let mut response = hyper::Response::new(Full::new(Bytes::from(reply.body)));
    *response.status_mut() =
        hyper::StatusCode::from_u16(reply.status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    if let Ok(value) = hyper::header::HeaderValue::from_str(reply.content_type) {
        response.headers_mut().insert(hyper::header::CONTENT_TYPE, value);
    }
    Ok(response)
}

/// The first `cap` bytes of a body as text (empty if they are not UTF-8, or the body breaks off).
async fn read_body(mut body: Incoming, cap: usize) -> String {
    let mut bytes = Vec::new();
    while bytes.len() < cap {
        match body.frame().await {
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    let room = cap.saturating_sub(bytes.len()).min(data.len());
                    bytes.extend_from_slice(data.get(..room).unwrap_or_default());
                }
            }
            Some(Err(_)) => return String::new(),
            None => break,
        }
    }
    String::from_utf8(bytes).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read as _, Write as _};
    use std::net::TcpStream;
    use std::sync::Condvar;
    use std::time::{Duration, Instant};

    /// Sends `request` on a new connection and reads until the server closes it.
    fn exchange(port: u16, request: &[u8]) -> io::Result<String> {
        let mut stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_read_timeout(Some(Duration::from_secs(20)))?;
        stream.write_all(request)?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer)?;
        Ok(String::from_utf8_lossy(&answer).into_owned())
    }

    fn status(answer: &str) -> &str {
        answer.get(9..12).unwrap_or_default()
    }

    #[test]
    fn a_request_is_recorded_as_it_was_sent_and_answered_as_the_handler_says() {
        let server = Server::start(0, |request| {
            Reply::text(201, &format!("saw {}", request.body), "text/x-demo")
        })
        .unwrap();
        let answer = exchange(
            server.port(),
            b"POST /echo?q=1&r=2 HTTP/1.1\r\nHost: demo\r\nX-One: a\r\nx-two: b\r\nX-ONE: c\r\n\
              Content-Length: 5\r\nConnection: close\r\n\r\nhello",
        )
        .unwrap();
        assert_eq!(status(&answer), "201", "{answer}");
        assert!(
            answer
                .to_ascii_lowercase()
                .contains("content-type: text/x-demo\r\n"),
            "{answer}"
        );
        assert!(answer.ends_with("\r\n\r\nsaw hello"), "{answer}");
        let received = server.received();
        assert_eq!(received.len(), 1);
        let seen = &received[0];
        assert_eq!(
            (seen.method.as_str(), seen.path.as_str()),
            ("POST", "/echo?q=1&r=2")
        );
        assert_eq!(seen.header_values("x-one"), ["a", "c"]);
        assert_eq!(seen.header("x-two"), Some("b"));
        assert_eq!(seen.header("host"), Some("demo"));
        assert_eq!(seen.body, "hello");
        assert_eq!(server.count("/echo"), 1);
        assert_eq!(server.count("/other"), 0);
    }

    #[test]
    fn at_most_one_mebibyte_of_a_body_is_read() {
        let server = Server::start(0, |_| Reply::text(200, "ok", "text/plain")).unwrap();
        let mut request = format!(
            "PUT /big HTTP/1.1\r\nhost: demo\r\nconnection: close\r\ncontent-length: {}\r\n\r\n",
            BODY_CAP + 10
        )
        .into_bytes();
        request.resize(request.len() + BODY_CAP + 10, b'x');
        let answer = exchange(server.port(), &request).unwrap();
        assert_eq!(status(&answer), "200", "{answer}");
        assert_eq!(server.received()[0].body.len(), BODY_CAP);
    }

    #[test]
    fn two_hundred_requests_are_held_at_the_same_moment_and_all_answered() {
        const AT_ONCE: usize = 200;
        // Each handler call waits until all of them are inside together (10 s at most).
        let inside = Arc::new((Mutex::new(0usize), Condvar::new()));
        let server = {
            let inside = inside.clone();
            Server::start(0, move |_| {
                let (count, arrived) = &*inside;
                let mut count = count.lock().unwrap();
                *count += 1;
                arrived.notify_all();
                let deadline = Instant::now() + Duration::from_secs(10);
                while *count < AT_ONCE && !deadline.saturating_duration_since(Instant::now()).is_zero() {
                    let left = deadline.saturating_duration_since(Instant::now());
                    count = arrived.wait_timeout(count, left).unwrap().0;
                }
                Reply::text(if *count >= AT_ONCE { 200 } else { 503 }, "", "text/plain")
            })
            .unwrap()
        };
        let port = server.port();
        let clients: Vec<_> = (0..AT_ONCE)
            .map(|_| {
                std::thread::spawn(move || {
                    exchange(port, b"GET / HTTP/1.1\r\nhost: demo\r\nconnection: close\r\n\r\n")
                        .map(|a| status(&a).to_owned())
                })
            })
            .collect();
        let statuses: Vec<String> = clients.into_iter().map(|c| c.join().unwrap().unwrap()).collect();
        assert!(statuses.iter().all(|s| s == "200"), "{statuses:?}");
    }

    #[test]
    fn a_handler_that_panics_gets_a_500_and_the_server_answers_the_next_request() {
        let server = Server::start(0, |request| {
            assert_ne!(request.path, "/panic", "the handler gives up");
            Reply::text(200, "fine", "text/plain")
        })
        .unwrap();
        let request = |path: &str| {
            let request = format!("GET {path} HTTP/1.1\r\nhost: demo\r\nconnection: close\r\n\r\n");
            exchange(server.port(), request.as_bytes()).unwrap()
        };
        assert_eq!(status(&request("/panic")), "500");
        assert_eq!(status(&request("/fine")), "200");
    }

    #[test]
    fn an_http2_request_with_prior_knowledge_is_answered() {
        let server = Server::start(0, |request| {
            Reply::text(200, &format!("{} {}", request.method, request.path), "text/plain")
        })
        .unwrap();
        let port = server.port();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let (status, body) = runtime.block_on(async move {
            let stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
            let (mut sender, connection) =
                hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
                    .await
                    .unwrap();
            tokio::spawn(connection);
            let request = hyper::Request::get(format!("http://127.0.0.1:{port}/h2?x=1"))
                .body(http_body_util::Empty::<Bytes>::new())
                .unwrap();
            let response = sender.send_request(request).await.unwrap();
            let status = response.status();
            (status, response.into_body().collect().await.unwrap().to_bytes())
        });
        assert_eq!(status, hyper::StatusCode::OK);
        assert_eq!(body, "GET /h2?x=1");
        assert_eq!(server.received()[0].path, "/h2?x=1");
    }

    #[test]
    fn a_reply_that_hangs_up_closes_the_connection_without_an_answer() {
        let server = Server::start(0, |request| match request.path.as_str() {
            "/hang-up" => Reply::hang_up(),
            _ => Reply::text(200, "fine", "text/plain"),
        })
        .unwrap();
        let request = |path: &str| {
            let request = format!("GET {path} HTTP/1.1\r\nhost: demo\r\nconnection: close\r\n\r\n");
            exchange(server.port(), request.as_bytes())
        };
        // Closed (or reset) with nothing written.
        assert!(request("/hang-up").map_or(true, |answer| answer.is_empty()));
        assert_eq!(status(&request("/fine").unwrap()), "200");
    }

    #[test]
    fn a_dropped_server_no_longer_listens() {
        let server = Server::start(0, |_| Reply::text(200, "", "text/plain")).unwrap();
        let port = server.port();
        assert!(TcpStream::connect(("127.0.0.1", port)).is_ok());
        drop(server);
        assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
    }
}
