//! The HTTP shell: tiny_http on a listening socket, a fixed pool of worker threads, the body
//! cap, and one log line per request. Every decision is in [`crate::api`].

use crate::api::{self, Request, Response, Service};
use crate::clock;
use std::io::Read;
use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

/// The largest request body read; a larger one is answered 413 without reading it all.
pub const MAX_BODY: usize = 64 * 1024;

/// A bound server, not yet serving.
pub struct Server {
    http: Arc<tiny_http::Server>,
    service: Arc<Service>,
}

impl Server {
    /// Binds `service.config.listen`.
    pub fn bind(service: Service) -> Result<Self, String> {
        let http = tiny_http::Server::http(service.config.listen)
            .map_err(|e| format!("cannot listen on {}: {e}", service.config.listen))?;
        Ok(Self {
            http: Arc::new(http),
            service: Arc::new(service),
        })
    }

    /// The address actually bound (the port is known here when the configuration said 0).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.http.server_addr().to_ip()
    }

    /// Serves until the process ends, on `config.threads` workers.
    pub fn run(self) {
        let workers: Vec<_> = (0..self.service.config.threads)
            .map(|_| {
                let (http, service) = (self.http.clone(), self.service.clone());
                std::thread::spawn(move || worker(&http, &service))
            })
            .collect();
        for worker in workers {
            let _ = worker.join();
        }
    }
}

fn worker(http: &tiny_http::Server, service: &Service) {
    while let Ok(mut incoming) = http.recv() {
        let response = match read_request(&mut incoming) {
            Ok(request) => {
                // A bug must cost one request, never the worker: answer 500 and go on.
                catch_unwind(AssertUnwindSafe(|| {
                    api::handle(service, &request, clock::now_millis())
                }))
                .unwrap_or_else(|_| Response::error(500, api::messages::INTERNAL))
            }
            Err(response) => response,
        };
        // The path only: query strings are not logged, and no secret is ever in a path.
        let path = incoming.url().split('?').next().unwrap_or_default();
        eprintln!(
            "tokengate-tokens: {} {} {}",
            incoming.method(),
            path,
            response.status
        );
        let _ = incoming.respond(to_tiny(response));
    }
}

/// Reads method, URL, headers and at most [`MAX_BODY`] bytes of body.
fn read_request(incoming: &mut tiny_http::Request) -> Result<Request, Response> {
    let too_large = || Response::error(413, api::messages::TOO_LARGE).with_header("connection", "close");
    if incoming.body_length().is_some_and(|n| n > MAX_BODY) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    let limit = u64::try_from(MAX_BODY).unwrap_or(u64::MAX) + 1;
    incoming
        .as_reader()
        .take(limit)
        .read_to_end(&mut body)
        .map_err(|_| Response::error(400, "The request body could not be read."))?;
    if body.len() > MAX_BODY {
        return Err(too_large());
    }
    Ok(Request {
        method: incoming.method().as_str().to_owned(),
        url: incoming.url().to_owned(),
        headers: incoming
            .headers()
            .iter()
            .map(|h| {
                (
                    h.field.as_str().as_str().to_ascii_lowercase(),
                    h.value.as_str().to_owned(),
                )
            })
            .collect(),
        body,
    })
}

fn to_tiny(response: Response) -> tiny_http::Response<std::io::Cursor<Vec<u8>>> {
    let mut tiny =
        tiny_http::Response::from_data(response.body.into_bytes()).with_status_code(response.status);
    for (name, value) in &response.headers {
        if let Ok(header) = tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()) {
            tiny.add_header(header);
        }
    }
    tiny
}
