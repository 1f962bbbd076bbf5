//! A test upstream that holds every request it receives until the test releases it: the test
//! decides when (and with what) each callout is answered, after polling Envoy for the state it
//! needs, instead of sleeping. Built on the demo [`Server`] (hyper, each handler call on tokio's
//! blocking pool, so any number of requests can be held at once).

use super::{Received, Reply, Server};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// A request held this long without a release is answered 504, so that a forgotten request
/// never keeps a thread (or the test) waiting forever.
const HOLD_AT_MOST: Duration = Duration::from_secs(30);

/// One request the upstream received, in arrival order.
#[derive(Debug, Clone)]
pub struct Held {
    /// Its position in arrival order, from 0: what [`HeldUpstream::release`] takes.
    pub index: usize,
    pub request: Received,
    /// Whether the test has released it yet.
    pub released: bool,
}

#[derive(Default)]
struct State {
    arrived: Vec<Held>,
    /// The answer chosen for each released request, by index (taken by its handler).
    answers: Vec<(usize, Reply)>,
    /// Once set, every held request and every one arriving later gets this answer.
    everyone: Option<Reply>,
    /// The upstream is being dropped: every held request hangs up.
    closing: bool,
}

struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// See the module documentation. Dropping it hangs up on every request still held.
pub struct HeldUpstream {
    shared: Arc<Shared>,
    server: Option<Server>,
}

impl HeldUpstream {
    pub fn start() -> HeldUpstream {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
        });
        let handler = {
            let shared = shared.clone();
            move |request: &Received| hold(&shared, request)
        };
        let server = Server::start(0, handler).unwrap_or_else(|e| panic!("held upstream: {e}"));
        HeldUpstream {
            shared,
            server: Some(server),
        }
    }

    pub fn port(&self) -> u16 {
        self.server.as_ref().map_or(0, Server::port)
    }

    /// Every request received so far (held or released), oldest first.
    pub fn received(&self) -> Vec<Held> {
        self.shared.lock().arrived.clone()
    }

    /// The requests received and not released yet, oldest first.
    pub fn held(&self) -> Vec<Held> {
        self.received().into_iter().filter(|h| !h.released).collect()
    }

    /// Waits until at least `count` requests have arrived (released or not) and returns them
    /// all; panics with what did arrive after `within`.
    pub fn wait_for_requests(&self, count: usize, within: Duration) -> Vec<Held> {
        let deadline = Instant::now() + within;
        let mut state = self.shared.lock();
        while state.arrived.len() < count {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "{} requests arrived within {within:?}, not {count}: {:?}",
                state.arrived.len(),
                state.arrived
            );
            state = match self.shared.changed.wait_timeout(state, left) {
                Ok((state, _)) => state,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
        state.arrived.clone()
    }

    /// Answers the request `index` with `reply` ([`Reply::hang_up`] closes its connection).
    pub fn release(&self, index: usize, reply: Reply) {
        let mut state = self.shared.lock();
        let Some(held) = state.arrived.iter_mut().find(|h| h.index == index) else {
            panic!("no request {index} arrived");
        };
        assert!(!held.released, "request {index} was released already");
        held.released = true;
        state.answers.push((index, reply));
        self.shared.changed.notify_all();
    }

    /// Answers every request held now, and every one that arrives from now on, with `reply`.
    pub fn release_all(&self, reply: Reply) {
        let mut state = self.shared.lock();
        for held in &mut state.arrived {
            held.released = true;
        }
        state.everyone = Some(reply);
        self.shared.changed.notify_all();
    }
}

impl Drop for HeldUpstream {
    fn drop(&mut self) {
        self.shared.lock().closing = true;
        self.shared.changed.notify_all();
        // Then the server stops (it joins its accept loop, not the held handlers).
        drop(self.server.take());
    }
}

/// The handler: records the request, then waits for the test's answer.
fn hold(shared: &Shared, request: &Received) -> Reply {
    let mut state = shared.lock();
    let index = state.arrived.len();
    let released = state.everyone.is_some();
    state.arrived.push(Held {
        index,
        request: request.clone(),
        released,
    });
    shared.changed.notify_all();
    let deadline = Instant::now() + HOLD_AT_MOST;
    loop {
        if let Some(at) = state.answers.iter().position(|(i, _)| *i == index) {
            return state.answers.swap_remove(at).1;
        }
        if let Some(reply) = &state.everyone {
            return reply.clone();
        }
        if state.closing {
            return Reply::hang_up();
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Reply::text(504, "held and never released", "text/plain");
        }
        state = match shared.changed.wait_timeout(state, left) {
            Ok((state, _)) => state,
            Err(poisoned) => poisoned.into_inner().0,
        };
    }
}
