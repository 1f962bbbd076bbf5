//! Security review of issue 13 (branch `oa-review`): each test pins a defect found in the
//! OAuth 1.0a stage and FAILS until it is fixed. See /work/coord/review13.md for the findings
//! and the suggested fixes. Built on the stage's own harness (`oauth1_provider::tests`).

use serde_json::json;

use crate::cache::tests::MapStore;
use crate::callout::{Callout, CalloutResult};
use crate::decide::{Decision, Denial};
use crate::oauth1_provider::tests::{
    active, config, config_with, run, run_with, Client, Counted, CONSUMER, TOKEN,
};

/// The token service of the stage's tests: `TOKEN` is fred's for `CONSUMER`, nothing else is.
fn service(callout: &Callout) -> CalloutResult {
    let form = String::from_utf8(callout.body.clone().unwrap_or_default()).unwrap_or_default();
    let ours =
        form == format!("token={TOKEN}&token_type_hint=oauth1_access_token&oauth_consumer_key={CONSUMER}");
    let body = match ours {
        true => active("fred"),
        false => json!({"active": false, "oauth_problem": "token_rejected"}),
    };
    CalloutResult::Response {
        status: 200,
        body: body.to_string().into_bytes(),
    }
}

fn allowed(decision: &Decision) -> bool {
    matches!(decision, Decision::Allow(_))
}

fn problem(decision: &Decision) -> Option<oauth1::Problem> {
    match decision {
        Decision::Deny(Denial {
            reason: crate::decide::DenyReason::OAuth1(problem),
            ..
        }) => Some(*problem),
        _ => None,
    }
}

/// Finding F1. Nonces are keyed under the digest of the whole provider section, so ANY edit of
/// it (here `cache_ttl_seconds` 10 -> 11, a routine tuning pushed by LDS/ECDS) starts an empty
/// nonce namespace: every request signed in the last `timestamp_window_seconds` can be replayed
/// once more, within the same Envoy process. A replay must stay `nonce_used`.
#[test]
fn an_edit_of_the_provider_section_forgets_every_nonce_inside_the_window() {
    let before = config();
    let after = config_with(json!({"cache_ttl_seconds": 11}));
    let store = MapStore::default();
    let client = Client::get("/rest/api/2/issue/KEY-1/transitions");
    assert!(allowed(&run(&before, &client, &store).decision));
    let replay = run(&after, &client, &store);
    assert_eq!(
        problem(&replay.decision),
        Some(oauth1::Problem::NonceUsed),
        "the same signed request, replayed after a configuration edit, was accepted again"
    );
}

/// Finding F3. With `public_base_url` the base string URI ignores `:authority` entirely, so a
/// request signed for `https://jira.example.com/...` verifies on ANY virtual host the filter
/// chain serves (another application behind the same listener): a captured signed request can be
/// redirected to another host (its nonce was never used there). The authority Envoy received must
/// be the public one (or one of a configured list).
#[test]
fn with_a_public_base_url_a_request_signed_for_one_host_is_accepted_on_another() {
    let config = config();
    let client = Client::get("/rest/api/2/myself");
    let mut request = client.request();
    for (name, value) in &mut request.headers {
        if name == ":authority" {
            *value = b"confluence.example.com".to_vec();
        }
    }
    let run = run_with(
        &config,
        request,
        None,
        &MapStore::default(),
        &Counted::default(),
        &service,
    );
    assert!(
        !allowed(&run.decision),
        "signed for jira.example.com, accepted with :authority confluence.example.com"
    );
}
