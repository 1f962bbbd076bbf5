//! HTTP callouts the core asks the shell to make (user directory, JWKS, introspection): a
//! plain description of the request, dispatched by the shell with `dispatch_http_call`.

/// A request to an Envoy cluster.
#[derive(Clone, PartialEq, Eq)]
pub struct Callout {
    pub cluster: String,
    pub method: &'static str,
    pub path: String,
    pub authority: String,
    /// Extra headers; values may be secrets, so `Debug` does not print them.
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
    pub timeout_ms: u64,
}

impl std::fmt::Debug for Callout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(n, _)| n.as_str()).collect();
        write!(
            f,
            "Callout({} {} {} via {}, headers {names:?})",
            self.method, self.authority, self.path, self.cluster
        )
    }
}

/// What came back: status and body, or no response at all (timeout, reset, no healthy host).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CalloutResult {
    Response { status: u32, body: Vec<u8> },
    Failed,
}

/// Percent-encodes `value` for a path or query component (RFC 3986 section 2.3: only
/// unreserved characters stay as they are): tokengate-basic-auth's one encoder, which OAuth
/// 1.0a's base string (RFC 5849 section 3.6, the same set) uses too.
pub use basic_auth::form_encode as encode_component;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_are_encoded_so_a_user_cannot_add_parameters() {
        assert_eq!(encode_component("fred"), "fred");
        assert_eq!(encode_component("a&b=c d/é"), "a%26b%3Dc%20d%2F%C3%A9");
        assert_eq!(encode_component("fred@example.com"), "fred%40example.com");
    }

    /// The core's own encoder before it became tokengate-basic-auth's: the oracle that shows
    /// the shared one encodes every component the same way.
    fn encode_component_as_before(value: &str) -> String {
        value
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                    (b as char).to_string()
                }
                other => format!("%{other:02X}"),
            })
            .collect()
    }

    proptest::proptest! {
        #[test]
        fn the_shared_encoder_encodes_components_as_the_core_did(value in proptest::prelude::any::<String>()) {
            proptest::prop_assert_eq!(encode_component(&value), encode_component_as_before(&value));
        }
    }

    #[test]
    fn debug_output_hides_header_values() {
        let callout = Callout {
            cluster: "jira".into(),
            method: "GET",
            path: "/x".into(),
            authority: "jira".into(),
            headers: vec![("authorization".into(), "Basic c2VjcmV0".into())],
            body: None,
            timeout_ms: 1000,
        };
        assert!(!format!("{callout:?}").contains("c2VjcmV0"));
    }
}
