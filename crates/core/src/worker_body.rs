//! The request bodies one worker reads for the core ([`crate::outcome::Step::ReadBody`]: an
//! OAuth 1.0a form body is signed, so the signature cannot be checked before it is read).
//! Plain state over explicit time; the worker feeds in the host's callbacks (headers, each
//! chunk of the body, trailers, the request's end, the root's tick) and does what it is told.
//!
//! A request with a body is held from its headers until its decision: every chunk that comes
//! before is buffered by the host (a chunk let through before the decision would take the
//! held headers upstream with it). Envoy delivers the chunks of a request whose headers it
//! holds only with the plugin's `allow_on_headers_stop_iteration: true` (1.35+); without it
//! none comes before the request goes on, and a read waits for its deadline. Asked to read the body, the worker refuses at once a
//! `Content-Length` over the bound, then waits until the end of the stream, refusing as soon as
//! what the host buffered passes the bound, and at most until the read's deadline, which the
//! root's tick enforces like every other wait: nothing waits forever. A request that ends
//! takes its entry with it.

use crate::jwks_cache::Millis;
use crate::questions::{ContextId, LONGEST_WAIT_MS};

/// Where a request with a body stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Not decided yet, its body not asked for (yet): held, its chunks buffered.
    Held,
    /// The core needs its body, at most `max_bytes` of it, by `deadline`.
    Reading { max_bytes: usize, deadline: Millis },
    /// Let through upstream: the rest of its body follows unchanged.
    Allowed,
    /// Answered locally.
    Answered,
}

#[derive(Debug)]
struct Stream {
    context: ContextId,
    /// What the host buffered so far (it reports the whole buffer with each chunk).
    buffered: usize,
    /// Whether any body callback came (a host that holds bodies back sends none).
    any_chunk: bool,
    ended: bool,
    phase: Phase,
    /// The body as read, for the decisions taken with it; dropped once the request is decided.
    body: Option<Vec<u8>>,
}

/// What the worker does next with a request whose body it reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyNext {
    /// Keep holding it (its chunks buffered).
    Wait,
    /// Refuse it: the body is over the bound (413).
    TooLarge,
    /// Read the whole body (this many bytes: the host's buffer) and decide again with it.
    Read(usize),
    /// It was let through: the chunk goes on.
    Pass,
}

/// The requests with a body one worker holds.
#[derive(Debug, Default)]
pub struct Streams {
    streams: Vec<Stream>,
}

impl Streams {
    /// The headers of request `context` came; `has_body`: they did not end the stream.
    pub fn begin(&mut self, context: ContextId, has_body: bool) {
        self.streams.retain(|s| s.context != context);
        if has_body {
            self.streams.push(Stream {
                context,
                buffered: 0,
                any_chunk: false,
                ended: false,
                phase: Phase::Held,
                body: None,
            });
        }
    }

    fn find(&mut self, context: ContextId) -> Option<&mut Stream> {
        self.streams.iter_mut().find(|s| s.context == context)
    }

    /// Whether request `context` has a body (its headers did not end the stream).
    pub fn has_body(&self, context: ContextId) -> bool {
        self.streams.iter().any(|s| s.context == context)
    }

    /// The body of request `context` as read, if it was.
    pub fn body(&self, context: ContextId) -> Option<Vec<u8>> {
        let stream = self.streams.iter().find(|s| s.context == context)?;
        stream.body.clone()
    }

    /// The core asks for the body of request `context`, at most `max_bytes`, within
    /// `timeout_ms` of `now`; `content_length` as the client declared it. A request without a
    /// body has an empty one.
    pub fn read(
        &mut self,
        context: ContextId,
        max_bytes: usize,
        timeout_ms: u64,
        content_length: Option<u64>,
        now: Millis,
    ) -> BodyNext {
        let declared_over = content_length
            .is_some_and(|length| usize::try_from(length).map_or(true, |length| length > max_bytes));
        let Some(stream) = self.find(context) else {
            return match declared_over {
                true => BodyNext::TooLarge,
                false => BodyNext::Read(0),
            };
        };
        if declared_over || stream.buffered > max_bytes {
            stream.phase = Phase::Answered;
            return BodyNext::TooLarge;
        }
        if stream.ended {
            return BodyNext::Read(stream.buffered);
        }
        let deadline = now.saturating_add(timeout_ms);
        stream.phase = Phase::Reading { max_bytes, deadline };
        BodyNext::Wait
    }

    /// The host buffered `buffered` bytes of request `context`'s body so far; `ended`: that is
    /// all of it. A request the worker holds no entry for has no body to hold (its headers
    /// ended the stream): `Pass`.
    pub fn data(&mut self, context: ContextId, buffered: usize, ended: bool) -> BodyNext {
        let Some(stream) = self.find(context) else {
            return BodyNext::Pass;
        };
        stream.buffered = buffered;
        stream.any_chunk = true;
        stream.ended |= ended;
        match stream.phase {
            Phase::Allowed => BodyNext::Pass,
            Phase::Held | Phase::Answered => BodyNext::Wait,
            Phase::Reading { max_bytes, .. } if buffered > max_bytes => {
                stream.phase = Phase::Answered;
                BodyNext::TooLarge
            }
            Phase::Reading { .. } if stream.ended => {
                stream.phase = Phase::Held;
                BodyNext::Read(buffered)
            }
            Phase::Reading { .. } => BodyNext::Wait,
        }
    }

    /// The trailers of request `context` came: its body is complete.
    pub fn trailers(&mut self, context: ContextId) -> BodyNext {
        let buffered = self.find(context).map_or(0, |s| s.buffered);
        self.data(context, buffered, true)
    }

    /// The body of request `context` was read: the decisions taken from now on see it.
    pub fn read_done(&mut self, context: ContextId, body: Vec<u8>) {
        if let Some(stream) = self.find(context) {
            stream.body = Some(body);
        }
    }

    /// Request `context` was let through (`allowed`) or answered: it holds nothing any more.
    pub fn decided(&mut self, context: ContextId, allowed: bool) {
        if let Some(stream) = self.find(context) {
            stream.phase = if allowed { Phase::Allowed } else { Phase::Answered };
            stream.body = None;
        }
    }

    /// The requests whose body did not come by their read's deadline at `now` (to be answered
    /// 408), marked answered, and whether any chunk of it came. A deadline further ahead than
    /// any read can be was set under a clock since stepped back: over now, as the question
    /// table's parked waiters.
    pub fn expired(&mut self, now: Millis) -> Vec<(ContextId, bool)> {
        let longest = now.saturating_add(LONGEST_WAIT_MS);
        let mut late = Vec::new();
        for stream in &mut self.streams {
            if let Phase::Reading { deadline, .. } = stream.phase {
                if now >= deadline || deadline > longest {
                    stream.phase = Phase::Answered;
                    late.push((stream.context, stream.any_chunk));
                }
            }
        }
        late
    }

    /// Request `context` ended: nothing is kept for it.
    pub fn gone(&mut self, context: ContextId) {
        self.streams.retain(|s| s.context != context);
    }

    /// Requests with a body this worker holds an entry for (0 when idle).
    pub fn len(&self) -> usize {
        self.streams.len()
    }

    pub fn is_empty(&self) -> bool {
        self.streams.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Millis = 1_000_000;

    #[test]
    fn a_body_in_two_chunks_is_read_at_its_end() {
        let mut streams = Streams::default();
        streams.begin(2, true);
        assert_eq!(streams.data(2, 10, false), BodyNext::Wait, "held until decided");
        assert_eq!(streams.read(2, 100, 5000, Some(30), NOW), BodyNext::Wait);
        assert_eq!(streams.data(2, 30, true), BodyNext::Read(30));
        streams.read_done(2, b"x".repeat(30));
        assert_eq!(streams.body(2), Some(b"x".repeat(30)));
        streams.decided(2, true);
        assert_eq!(streams.body(2), None, "dropped once decided");
        assert_eq!(streams.data(2, 40, true), BodyNext::Pass);
        streams.gone(2);
        assert!(streams.is_empty());
    }

    #[test]
    fn a_body_that_already_ended_is_read_at_once() {
        let mut streams = Streams::default();
        streams.begin(2, true);
        streams.data(2, 12, true);
        assert_eq!(streams.read(2, 100, 5000, None, NOW), BodyNext::Read(12));
    }

    #[test]
    fn a_declared_length_over_the_bound_is_refused_without_waiting() {
        let mut streams = Streams::default();
        streams.begin(2, true);
        assert_eq!(streams.read(2, 100, 5000, Some(101), NOW), BodyNext::TooLarge);
        assert_eq!(streams.data(2, 50, false), BodyNext::Wait, "never let through");
        assert_eq!(streams.expired(NOW + 10_000), []);
        assert_eq!(
            streams.read(3, 100, 5000, Some(u64::MAX), NOW),
            BodyNext::TooLarge
        );
    }

    #[test]
    fn chunks_over_the_bound_are_refused_as_soon_as_they_pass_it() {
        let mut streams = Streams::default();
        streams.begin(2, true);
        assert_eq!(streams.read(2, 100, 5000, None, NOW), BodyNext::Wait);
        assert_eq!(streams.data(2, 100, false), BodyNext::Wait, "at the bound");
        assert_eq!(streams.data(2, 101, false), BodyNext::TooLarge);
        assert_eq!(streams.data(2, 150, true), BodyNext::Wait);
        // Already over when it is asked for.
        streams.begin(3, true);
        streams.data(3, 101, false);
        assert_eq!(streams.read(3, 100, 5000, None, NOW), BodyNext::TooLarge);
    }

    #[test]
    fn a_body_that_never_ends_is_over_at_its_deadline_and_only_then() {
        let mut streams = Streams::default();
        streams.begin(2, true);
        streams.begin(3, true);
        streams.read(2, 100, 5000, None, NOW);
        assert_eq!(streams.expired(NOW + 4999), []);
        streams.data(2, 3, false);
        assert_eq!(
            streams.expired(NOW + 5000),
            [(2, true)],
            "held, unread 3 is not a read"
        );
        assert_eq!(streams.expired(NOW + 6000), [], "once");
        assert_eq!(streams.data(2, 10, true), BodyNext::Wait, "answered: never read");
        // A clock stepped back leaves no read waiting past any possible deadline.
        streams.read(3, 100, 5000, None, NOW + LONGEST_WAIT_MS * 2);
        assert_eq!(streams.expired(NOW), [(3, false)], "no chunk came");
    }

    #[test]
    fn requests_without_a_body_hold_nothing_and_read_an_empty_one() {
        let mut streams = Streams::default();
        streams.begin(2, false);
        assert!(!streams.has_body(2) && streams.is_empty());
        assert_eq!(streams.read(2, 100, 5000, None, NOW), BodyNext::Read(0));
        assert_eq!(streams.data(2, 0, true), BodyNext::Pass);
        assert_eq!(streams.trailers(2), BodyNext::Pass);
    }

    #[test]
    fn trailers_end_the_body() {
        let mut streams = Streams::default();
        streams.begin(2, true);
        streams.read(2, 100, 5000, None, NOW);
        streams.data(2, 20, false);
        assert_eq!(streams.trailers(2), BodyNext::Read(20));
    }

    #[test]
    fn a_request_that_ends_while_its_body_is_awaited_leaves_nothing() {
        let mut streams = Streams::default();
        streams.begin(2, true);
        streams.read(2, 100, 5000, None, NOW);
        streams.data(2, 20, false);
        streams.gone(2);
        assert_eq!(streams.len(), 0);
        assert_eq!(streams.expired(NOW + 10_000), []);
    }
}
