//! Security review of issue 13 (branch `oa-review`): each test pins a defect of the token
//! service's OAuth 1.0a dance and FAILS until it is fixed. See /work/coord/review13.md.

use crate::oauth1_authorize::tests::{decide_as, exchange, request_token, service, verifier, CALLBACK};
use crate::oauth1_signed::tests::NOW_MS;

/// Finding F2. The access-token step takes (deletes) the request token BEFORE it compares the
/// token's consumer with the signer: any other registered consumer that learns a request token
/// (it is in the user's address bar, the authorize link and the callback URL) destroys the dance
/// of the consumer that owns it with one signed request of its own. Another consumer's attempt
/// must leave the request token to its owner.
#[test]
fn another_consumer_presenting_a_request_token_burns_it_for_the_consumer_that_owns_it() {
    let service = service();
    let token = request_token(&service, "tokengate-demo", CALLBACK, NOW_MS);
    let verifier = verifier(&decide_as(&service, &token, "fred", "approve", NOW_MS));
    let intruder = exchange(&service, "other", &token, &verifier, NOW_MS);
    assert_eq!(intruder.status, 401, "{}", intruder.body);
    let owner = exchange(&service, "tokengate-demo", &token, &verifier, NOW_MS + 1_000);
    assert_eq!(
        owner.status, 200,
        "the owner's exchange after another consumer's attempt: {}",
        owner.body
    );
}
