//! Properties of the Basic parser over arbitrary input (proptest; `cargo fuzz` needs nightly).
//!
//! Campaign: `PROPTEST_CASES=200000 cargo test --release -p tokengate-basic-auth --test properties`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use basic_auth::{
    client_from_header, decode, encode, encode_client, form_decode, form_encode, from_header, BasicError,
};
use proptest::prelude::*;

/// A user-id RFC 7617 can carry: not empty, no `:`, no control character.
fn user_id() -> impl Strategy<Value = String> {
    "[^:\\p{Cc}]{1,40}"
}

proptest! {
    /// What `encode` writes, `from_header` reads back exactly, whatever the secret holds.
    #[test]
    fn a_pair_survives_encoding(user in user_id(), secret in any::<String>()) {
        let back = from_header(&encode(&user, &secret)).unwrap();
        prop_assert_eq!((back.user, back.secret), (user, secret));
    }

    /// RFC 6749 section 2.3.1: any client id and secret, `:` `%` `+` and non-ASCII included,
    /// come back unchanged through form-encoding, Basic and form-decoding.
    #[test]
    fn client_credentials_survive_encoding(id in "[^\\p{Cc}]{1,40}", secret in any::<String>()) {
        let back = client_from_header(&encode_client(&id, &secret)).unwrap();
        prop_assert_eq!((back.user, back.secret), (id, secret));
    }

    /// Form-encoding writes only unreserved characters and `%XX`, and decodes to its input.
    #[test]
    fn form_encoding_round_trips_with_a_safe_alphabet(value in any::<String>()) {
        let encoded = form_encode(&value);
        prop_assert!(encoded.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~%".contains(&b)));
        prop_assert_eq!(form_decode(&encoded), Some(value));
    }

    /// On any bytes (as base64 or raw): no panic, and an accepted pair has a user that names
    /// someone (non-empty, no `:`, no control character) and re-encodes to itself.
    #[test]
    fn any_input_is_refused_or_read_consistently(raw in proptest::collection::vec(any::<u8>(), 0..64), text in any::<String>()) {
        let as_base64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &raw);
        for input in [as_base64, text] {
            match decode(&input) {
                Ok(c) => {
                    prop_assert!(!c.user.is_empty() && !c.user.contains(':'));
                    prop_assert!(!c.user.chars().any(char::is_control));
                    let again = from_header(&encode(&c.user, &c.secret)).unwrap();
                    prop_assert_eq!(again, c);
                }
                Err(e) => prop_assert!(e != BasicError::NotBasic),
            }
        }
    }
}
