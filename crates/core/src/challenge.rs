//! Which `WWW-Authenticate` challenges a 401 carries. RFC 7235 section 4.1 lets a server send
//! one challenge per scheme it accepts; clients that send a credential only after a challenge
//! of their own scheme (`curl --anyauth`, Python's `urllib` `HTTPBasicAuthHandler`) need to
//! find theirs, and a client whose Bearer token failed is told so as Bearer (RFC 6750
//! section 3), whichever provider's body the reply has. Leaf types: computed once per request
//! from the matched rule by decide, carried by its denials, read by respond.

/// A scheme the filter challenges with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthScheme {
    /// `TISJWT realm="..."`: the tisjwt provider.
    Tisjwt,
    /// `Bearer realm="..."`: JWT and OAuth providers, and API tokens sent as Bearer.
    Bearer,
    /// `Basic realm="..."`: API-token providers.
    Basic,
    /// `OAuth realm="..."`: OAuth 1.0a providers (application links).
    OAuth,
}

/// The schemes the matched rule accepts, in the order of its providers, and the scheme of
/// the credential the client sent when the rule accepts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Challenges {
    accepted: [Option<AuthScheme>; 4],
    used: Option<AuthScheme>,
    /// The rule's OAuth 1.0a provider (its index in the configuration's `oauth1_providers`),
    /// whose realm the `OAuth` challenge names.
    oauth1: Option<u16>,
}

impl Challenges {
    /// Nothing known about the rule (no rule matched, or a denial made outside one): a 401
    /// then challenges with its owner's scheme only.
    pub const UNKNOWN: Challenges = Challenges {
        accepted: [None; 4],
        used: None,
        oauth1: None,
    };

    /// Adds `scheme` after those already accepted (once).
    #[must_use]
    pub fn accepting(mut self, scheme: AuthScheme) -> Self {
        if !self.accepts(scheme) {
            if let Some(free) = self.accepted.iter_mut().find(|s| s.is_none()) {
                *free = Some(scheme);
            }
        }
        self
    }

    /// Records that the client's credential used `scheme`; ignored when the rule does not
    /// accept it (such a credential is treated as missing, and its scheme not challenged).
    #[must_use]
    pub fn used(mut self, scheme: Option<AuthScheme>) -> Self {
        self.used = scheme.filter(|s| self.accepts(*s));
        self
    }

    /// Accepts [`AuthScheme::OAuth`] for the OAuth 1.0a provider at `index` in the
    /// configuration (a rule lists at most one).
    #[must_use]
    pub fn accepting_oauth1(self, index: u16) -> Self {
        Challenges {
            oauth1: Some(index),
            ..self.accepting(AuthScheme::OAuth)
        }
    }

    /// The index of the rule's OAuth 1.0a provider, whose realm its `OAuth` challenge names.
    pub fn oauth1_provider(&self) -> Option<u16> {
        self.oauth1
    }

    pub fn accepts(&self, scheme: AuthScheme) -> bool {
        self.accepted.contains(&Some(scheme))
    }

    /// The scheme of the credential that failed, if the rule accepts it.
    pub fn used_scheme(&self) -> Option<AuthScheme> {
        self.used
    }

    /// The schemes to challenge with, each once: `first` (the scheme of the failed credential,
    /// or the owner's), then `owner`, then the rest of the rule's in its order.
    pub fn in_order(&self, first: AuthScheme, owner: AuthScheme) -> Vec<AuthScheme> {
        let mut order = vec![first];
        let rest = self.accepted.iter().flatten().copied();
        for scheme in std::iter::once(owner).chain(rest) {
            if !order.contains(&scheme) {
                order.push(scheme);
            }
        }
        order
    }
}

#[cfg(test)]
mod tests {
    use super::AuthScheme::{Basic, Bearer, Tisjwt};
    use super::*;

    #[test]
    fn each_scheme_is_accepted_once_in_the_order_of_the_rule() {
        let c = Challenges::UNKNOWN
            .accepting(Tisjwt)
            .accepting(Bearer)
            .accepting(Basic)
            .accepting(Bearer);
        assert_eq!(c.in_order(Tisjwt, Tisjwt), [Tisjwt, Bearer, Basic]);
    }

    #[test]
    fn the_failed_scheme_comes_first_then_the_owner() {
        let c = Challenges::UNKNOWN
            .accepting(Tisjwt)
            .accepting(Basic)
            .accepting(Bearer);
        assert_eq!(c.in_order(Bearer, Basic), [Bearer, Basic, Tisjwt]);
        assert_eq!(c.in_order(Basic, Basic), [Basic, Tisjwt, Bearer]);
    }

    #[test]
    fn a_scheme_the_rule_does_not_accept_is_not_recorded_as_used() {
        let c = Challenges::UNKNOWN.accepting(Tisjwt);
        assert_eq!(c.used(Some(Bearer)).used_scheme(), None);
        assert_eq!(c.used(Some(Tisjwt)).used_scheme(), Some(Tisjwt));
        assert_eq!(c.used(None).used_scheme(), None);
    }

    #[test]
    fn without_a_rule_only_the_owner_is_challenged() {
        assert_eq!(Challenges::UNKNOWN.in_order(Basic, Basic), [Basic]);
    }
}
