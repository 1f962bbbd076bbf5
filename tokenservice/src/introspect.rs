//! `POST /introspect`: OAuth 2.0 Token Introspection (RFC 7662) of API tokens, for the filter.
//!
//! - The caller authenticates as the configured client with HTTP Basic `client_id:secret`
//!   (RFC 7662 section 2.1, RFC 6749 section 2.3.1); anything else is 401
//!   `{"error":"invalid_client"}` with a `WWW-Authenticate` challenge (RFC 6749 section 5.2).
//! - The form body has `token` and optionally `token_type_hint` (ignored: there is one kind of
//!   token here, RFC 7662 section 2.1 allows that) and `username`, our extension: with it, a
//!   Basic `user:token` pair is checked to belong together, and a token of someone else is
//!   `{"active":false}`.
//! - An active token answers `active`, `username`, `sub` (the user key), `exp` and `iat`
//!   (seconds), `token_type` `api_token` and `client_id`, and records `lastAccessed`. Any
//!   other token (unknown, wrong secret, expired, owner gone or inactive) is just
//!   `{"active":false}` (RFC 7662 section 2.2: nothing more is said about why).
//! - The failed-login lockout ([`crate::lockout`]) in RFC 7662's extension space (section
//!   2.2: "specific implementations MAY extend this structure"): every inactive answer to a
//!   question with `username` counts a failed login of that user (and of `client_address`, an
//!   extension parameter the filter sends with the client's address; the peer here is Envoy);
//!   a question naming a locked user or address, or about a token whose owner is locked, is
//!   `{"active":false,"locked":true,"username":"<the locked user>","login_url":"<url>"}`
//!   (`username` absent when only the address is locked), checked before the token. With
//!   `count_failures=false` (a route where the secret may be a password the application
//!   checks) nothing is counted, but a lock is still answered. An active Basic answer ends
//!   the user's streak.
//! - The OAuth 1.0a question (issue 13): `token_type_hint=oauth1_access_token` with
//!   `oauth_consumer_key`, about an access token of the dance ([`crate::oauth1_dance`]); see
//!   `oauth1_answer`. Nothing in it is counted or locked.

use crate::auth;
use crate::http::{Request, Response};
use crate::lockout::{Attempt, Locked};
use crate::service::Service;
use crate::store::StoreError;
use crate::tokens;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::{json, Value};

/// The token type of our tokens in introspection answers.
pub const TOKEN_TYPE: &str = "api_token";

/// The `token_type_hint` (and answered `token_type`) of an OAuth 1.0a access token.
pub const OAUTH1_TOKEN_TYPE: &str = "oauth1_access_token";

fn oauth_error(status: u16, error: &str) -> Response {
    Response::json(status, &json!({ "error": error }))
}

fn invalid_client() -> Response {
    oauth_error(401, "invalid_client")
        .with_header("www-authenticate", "Basic realm=\"tokengate-introspection\"")
}

/// Whether the request carries the configured client's credentials (compared in constant
/// time, lengths included). RFC 6749 section 2.3.1: the id and secret inside Basic are
/// form-encoded, so they are form-decoded after base64 (the filter encodes them so; a secret
/// outside `[A-Za-z0-9-._~]` works only because of it).
fn client_authenticated(service: &Service, request: &Request) -> bool {
    let expected = &service.config.introspection;
    let mut values = request.headers.iter().filter(|(name, _)| name == "authorization");
    let value = match (values.next(), values.next()) {
        (Some((_, value)), None) => value,
        _ => return false,
    };
    match basic_auth::client_from_header(value) {
        Ok(basic_auth::Credentials { user, secret }) => {
            // Both halves are checked, always, so the time taken does not tell which was wrong.
            let id_ok = tokens::secrets_equal(&user, &expected.client_id);
            let secret_ok = tokens::secrets_equal(&secret, &expected.client_secret);
            id_ok & secret_ok
        }
        _ => false,
    }
}

/// Answers one introspection request at `now` (epoch milliseconds).
pub fn handle(service: &Service, request: &Request, now: i64) -> Response {
    if !client_authenticated(service, request) {
        return invalid_client();
    }
    let mut token = None;
    let mut username = None;
    let mut client_address = None;
    let mut count_failures = None;
    let mut token_type_hint = None;
    let mut consumer_key = None;
    for (name, value) in form_urlencoded::parse(&request.body) {
        let slot = match name.as_ref() {
            "token" => &mut token,
            "username" => &mut username,
            "client_address" => &mut client_address,
            "count_failures" => &mut count_failures,
            "token_type_hint" => &mut token_type_hint,
            "oauth_consumer_key" => &mut consumer_key,
            _ => continue,
        };
        // RFC 6749 section 3.1: a parameter must not be sent more than once.
        if slot.replace(value.into_owned()).is_some() {
            return oauth_error(400, "invalid_request");
        }
    }
    let Some(token) = token.filter(|t| !t.is_empty()) else {
        return oauth_error(400, "invalid_request");
    };
    if token_type_hint.as_deref() == Some(OAUTH1_TOKEN_TYPE) {
        let Some(consumer_key) = consumer_key.filter(|k| !k.is_empty()) else {
            return oauth_error(400, "invalid_request");
        };
        return match oauth1_answer(service, &token, &consumer_key, now) {
            Ok(response) => response,
            Err(e) => {
                eprintln!("tokengate-tokens: {e}");
                oauth_error(500, "server_error")
            }
        };
    }
    // An empty name names nobody: it must not become a user whose failures are counted.
    if username.as_deref() == Some("") {
        return oauth_error(400, "invalid_request");
    }
    let attempt = Attempt {
        user: username.as_deref(),
        address: client_address.as_deref().and_then(crate::lockout::parse_address),
    };
    match answer(
        service,
        &token,
        attempt,
        count_failures.as_deref() != Some("false"),
        now,
    ) {
        Ok(response) => response,
        Err(e) => {
            eprintln!("tokengate-tokens: {e}");
            oauth_error(500, "server_error")
        }
    }
}

/// The answer about `token` for `attempt`, counting a failure when `counted`.
fn answer(
    service: &Service,
    token: &str,
    attempt: Attempt<'_>,
    counted: bool,
    now: i64,
) -> Result<Response, StoreError> {
    let gate = service.gate();
    let locked = |user: Option<&str>| {
        let mut answer =
            json!({"active": false, "locked": true, "login_url": service.config.lockout.login_url});
        if let (Some(user), Value::Object(map)) = (user, &mut answer) {
            map.insert("username".to_owned(), Value::String(user.to_owned()));
        }
        Response::json(200, &answer)
    };
    match gate.check(attempt, now)? {
        Some(Locked::User) => return Ok(locked(attempt.user)),
        Some(Locked::Address) => return Ok(locked(None)),
        None => {}
    }
    let inactive = || -> Result<Response, StoreError> {
        if counted && gate.failed(attempt, now)? {
            // This failure locked the user: the asking Envoy refuses what it cached for them.
            let answer = json!({"active": false, "now_locked": true, "username": attempt.user,
                                "login_url": service.config.lockout.login_url});
            return Ok(Response::json(200, &answer));
        }
        Ok(Response::json(200, &json!({"active": false})))
    };
    let Some(record) = auth::check_token(&service.store, token, now)? else {
        return inactive();
    };
    let owner = match auth::token_owner(service.directory.as_ref(), &record) {
        Some(owner) if owner.active => owner,
        _ => return inactive(),
    };
    if attempt
        .user
        .is_some_and(|name| !crate::users::same_user(name, &owner.name))
    {
        return inactive();
    }
    if gate.user_is_locked(&owner.name, now)? {
        return Ok(locked(Some(&owner.name)));
    }
    if let Some(name) = attempt.user {
        gate.succeeded(name)?;
    }
    service.store.touch(record.id, now)?;
    let answer: Value = json!({
        "active": true,
        "username": owner.name,
        "sub": owner.key,
        "exp": record.valid_until.div_euclid(1000),
        "iat": record.created.div_euclid(1000),
        "token_type": TOKEN_TYPE,
        "client_id": service.config.introspection.client_id,
    });
    Ok(Response::json(200, &answer))
}

/// The answer to the filter's OAuth 1.0a question: is `token` an access token of
/// `consumer_key`, and whose? Never a failed login (a signed request is no password guess) and
/// no lock is looked at: the filter checks the user through the directory as for every scheme.
///
/// - no such consumer: `{"active":false,"oauth_problem":"consumer_key_unknown"}`;
/// - no such access token (revoked, a request token, anything else), another consumer's, or
///   one whose user is gone or inactive: `token_rejected`; past its `expires` or its
///   authorization's: `token_expired`;
/// - else `active`, `token_type`, `username`, `client_id` (the consumer key), `exp` (seconds)
///   and `consumer_public_key` (standard base64 of the consumer key's DER
///   SubjectPublicKeyInfo), and the token's `lastAccessed` is recorded.
fn oauth1_answer(
    service: &Service,
    token: &str,
    consumer_key: &str,
    now: i64,
) -> Result<Response, StoreError> {
    let problem = |problem: oauth1::Problem| {
        Ok(Response::json(
            200,
            &json!({"active": false, "oauth_problem": problem.name()}),
        ))
    };
    let consumer = service
        .config
        .oauth1
        .as_ref()
        .and_then(|oauth1| oauth1.consumer(consumer_key));
    let Some(consumer) = consumer else {
        return problem(oauth1::Problem::ConsumerKeyUnknown);
    };
    if !crate::oauth_tokens::is_well_formed(token) {
        return problem(oauth1::Problem::TokenRejected);
    }
    let Some(record) = service
        .store
        .find_access_token(&crate::oauth_tokens::hash(token))?
    else {
        return problem(oauth1::Problem::TokenRejected);
    };
    if record.consumer_key != consumer.consumer_key {
        return problem(oauth1::Problem::TokenRejected);
    }
    if now >= record.expires || now >= record.authorization_expires {
        return problem(oauth1::Problem::TokenExpired);
    }
    let Some(owner) = service
        .directory
        .by_key(&record.user_key)
        .filter(|owner| owner.active)
    else {
        return problem(oauth1::Problem::TokenRejected);
    };
    service.store.touch_access_token(record.id, now)?;
    let expires = record.expires.min(record.authorization_expires);
    let answer = json!({
        "active": true,
        "token_type": OAUTH1_TOKEN_TYPE,
        "username": owner.name,
        "client_id": consumer.consumer_key,
        "exp": expires.div_euclid(1000),
        "consumer_public_key": STANDARD.encode(consumer.key.spki_der()),
    });
    Ok(Response::json(200, &answer))
}

#[cfg(test)]
pub mod tests {
    use crate::api::tests::{basic, create_as, request, service, NOW};
    use crate::api::{handle, Service};
    use crate::clock;
    use crate::oauth1_signed::tests::NOW_MS;
    use serde_json::{json, Value};

    const CLIENT: &str = "tokengate:introspection-secret-0123";

    fn introspect(service: &Service, client: &str, body: &str, now: i64) -> (u16, Value) {
        let response = handle(
            service,
            &request("POST", "/introspect", Some(basic(client)), body),
            now,
        );
        (response.status, response.json_body())
    }

    fn fred_token(service: &Service) -> String {
        create_as(service, "fred", r#"{"tokenDescription":"t"}"#, NOW)["plainTextToken"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    #[test]
    fn an_active_token_is_described_and_its_use_recorded() {
        let service = service();
        let token = fred_token(&service);
        let later = NOW + 60_000;
        let (status, body) = introspect(
            &service,
            CLIENT,
            &format!("token={token}&token_type_hint=api_token"),
            later,
        );
        assert_eq!(status, 200);
        assert_eq!(
            body,
            json!({"active": true, "username": "fred", "sub": "JIRAUSER10004",
                   "exp": clock::add_months(NOW, 6) / 1000, "iat": NOW / 1000,
                   "token_type": "api_token", "client_id": "tokengate"})
        );
        assert_eq!(
            service.store.list_for_user("JIRAUSER10004").unwrap()[0].last_accessed,
            later
        );
    }

    #[test]
    fn unknown_altered_and_expired_tokens_are_inactive() {
        let service = service();
        let token = fred_token(&service);
        let mut altered = token.clone();
        let last = altered.pop().unwrap();
        altered.push(if last == 'A' { 'Q' } else { 'A' });
        for (body, now) in [
            (format!("token={altered}"), NOW),
            (
                "token=tgat_000000000000000000000000_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".to_owned(),
                NOW,
            ),
            ("token=fred-password".to_owned(), NOW),
            (format!("token={token}"), clock::add_months(NOW, 6)),
        ] {
            assert_eq!(
                introspect(&service, CLIENT, &body, now),
                (200, json!({"active": false})),
                "{body}"
            );
        }
        assert_eq!(
            service.store.list_for_user("JIRAUSER10004").unwrap()[0].last_accessed,
            0
        );
    }

    #[test]
    fn username_must_name_the_owner() {
        let service = service();
        let token = fred_token(&service);
        for name in ["Fred", "FRED", "fred"] {
            let (_, body) = introspect(&service, CLIENT, &format!("token={token}&username={name}"), NOW);
            assert_eq!(body["active"], true, "{name}: folded as Jira folds names");
        }
        let (_, body) = introspect(
            &service,
            CLIENT,
            &format!("token={token}&username=fr%C3%A9d"),
            NOW,
        );
        assert_eq!(body, json!({"active": false}));
        let (_, body) = introspect(&service, CLIENT, &format!("token={token}&username=jsmith"), NOW);
        assert_eq!(body, json!({"active": false}));
    }

    #[test]
    fn a_wrong_or_missing_client_secret_is_invalid_client() {
        let service = service();
        let token = fred_token(&service);
        let body = format!("token={token}");
        for client in [
            "tokengate:wrong",
            "other:introspection-secret-0123",
            "tokengate:",
            "fred:fred-password",
        ] {
            assert_eq!(
                introspect(&service, client, &body, NOW),
                (401, json!({"error": "invalid_client"}))
            );
        }
        let response = handle(&service, &request("POST", "/introspect", None, &body), NOW);
        assert_eq!(response.status, 401);
        assert!(response
            .headers
            .iter()
            .any(|(n, v)| n == "www-authenticate" && v.starts_with("Basic")));
        let bearer = ("authorization".to_owned(), format!("Bearer {token}"));
        assert_eq!(
            handle(
                &service,
                &request("POST", "/introspect", Some(bearer), &body),
                NOW
            )
            .status,
            401
        );
    }

    #[test]
    fn a_client_secret_outside_the_unreserved_set_works_form_encoded_as_rfc_6749_says() {
        let mut service = service();
        let secret = "s3cr%t+&=:/ é-and-long-enough";
        service.config.introspection.client_secret = secret.to_owned();
        let token = fred_token(&service);
        let body = format!("token={token}");
        let encoded = basic_auth::encode_client("tokengate", secret);
        let response = handle(
            &service,
            &request(
                "POST",
                "/introspect",
                Some(("authorization".to_owned(), encoded)),
                &body,
            ),
            NOW,
        );
        assert_eq!(response.json_body()["active"], true, "{}", response.body);
        // Sent as it is, not form-encoded, `%t` is no escape and `+` is a space: refused.
        assert_eq!(
            introspect(&service, &format!("tokengate:{secret}"), &body, NOW).0,
            401
        );
    }

    #[test]
    fn a_missing_or_repeated_token_is_invalid_request() {
        let service = service();
        for body in [
            "",
            "token=",
            "token_type_hint=api_token",
            "token=a&token=b",
            "\u{ff}\u{fe}",
            "token=wrong&username=",
            "token=wrong&username=a&username=b",
        ] {
            assert_eq!(
                introspect(&service, CLIENT, body, NOW),
                (400, json!({"error": "invalid_request"})),
                "{body}"
            );
        }
    }

    #[test]
    fn wrong_secrets_for_a_user_count_even_when_repeated_and_then_every_token_of_theirs_is_locked() {
        let service = service();
        let token = fred_token(&service);
        for name in ["fred", "fred"] {
            let (_, body) = introspect(&service, CLIENT, &format!("token=wrong&username={name}"), NOW);
            assert_eq!(body, json!({"active": false}), "{name}");
        }
        let (_, body) = introspect(&service, CLIENT, "token=wrong&username=FRED", NOW);
        assert_eq!(
            body,
            json!({"active": false, "now_locked": true, "username": "FRED",
                   "login_url": "https://jira.test/login.jsp"}),
            "the failure that locks says so"
        );
        let locked = json!({"active": false, "locked": true, "username": "fred",
                            "login_url": "https://jira.test/login.jsp"});
        let (_, basic_answer) = introspect(&service, CLIENT, &format!("token={token}&username=fred"), NOW);
        assert_eq!(basic_answer, locked, "the right token too, for Basic");
        let (_, bearer_answer) = introspect(&service, CLIENT, &format!("token={token}"), NOW);
        assert_eq!(bearer_answer, locked, "and for Bearer: the owner is locked");
        service.store.clear_failed_logins("fred").unwrap();
        let (_, body) = introspect(&service, CLIENT, &format!("token={token}"), NOW);
        assert_eq!(body["active"], true);
    }

    #[test]
    fn someone_elses_token_counts_for_the_named_user_and_a_success_ends_the_streak() {
        let service = service();
        let token = fred_token(&service);
        introspect(&service, CLIENT, &format!("token={token}&username=jsmith"), NOW);
        assert_eq!(service.store.failed_logins("jsmith").unwrap().count, 1);
        assert_eq!(service.store.failed_logins("fred").unwrap().count, 0);
        introspect(&service, CLIENT, "token=wrong&username=Fred", NOW);
        introspect(&service, CLIENT, &format!("token={token}&username=fred"), NOW);
        assert_eq!(service.store.failed_logins("fred").unwrap().count, 0);
    }

    #[test]
    fn a_password_route_counts_nothing_but_still_refuses_a_locked_user() {
        let service = service();
        for _ in 0..5 {
            introspect(
                &service,
                CLIENT,
                "token=fred-password&username=fred&count_failures=false",
                NOW,
            );
        }
        assert_eq!(service.store.failed_logins("fred").unwrap().count, 0);
        for _ in 0..3 {
            introspect(&service, CLIENT, "token=wrong&username=fred", NOW);
        }
        let (_, body) = introspect(
            &service,
            CLIENT,
            "token=x&username=fred&count_failures=false",
            NOW,
        );
        assert_eq!(body["locked"], true);
    }

    #[test]
    fn the_client_address_the_filter_sends_is_throttled_without_naming_a_user() {
        let service = service();
        for i in 0..service.config.lockout.max_failures_per_address {
            let body = format!("token=wrong&username=guess{i}&client_address=203.0.113.7");
            introspect(&service, CLIENT, &body, NOW);
        }
        let token = fred_token(&service);
        let (_, body) = introspect(
            &service,
            CLIENT,
            &format!("token={token}&username=fred&client_address=203.0.113.7"),
            NOW,
        );
        assert_eq!(
            body,
            json!({"active": false, "locked": true, "login_url": "https://jira.test/login.jsp"}),
            "no user named: fred is not locked"
        );
        let (_, body) = introspect(
            &service,
            CLIENT,
            &format!("token={token}&username=fred&client_address=203.0.113.8"),
            NOW,
        );
        assert_eq!(body["active"], true);
    }

    /// An access token of fred's for the demo consumer, from the whole dance at `now`.
    pub fn oauth1_access_token(service: &Service, now: i64) -> String {
        use crate::oauth1_authorize::tests::{
            decide_as, exchange, form_of, request_token, verifier, CALLBACK,
        };
        let token = request_token(service, "tokengate-demo", CALLBACK, now);
        let verifier = verifier(&decide_as(service, &token, "fred", "approve", now));
        let answer = exchange(service, "tokengate-demo", &token, &verifier, now);
        assert_eq!(answer.status, 200, "{}", answer.body);
        form_of(&answer.body)["oauth_token"].clone()
    }

    #[test]
    fn the_oauth1_question_answers_the_user_consumer_and_public_key_of_an_access_token() {
        use base64::Engine as _;
        let service = crate::oauth1_authorize::tests::service();
        let token = oauth1_access_token(&service, NOW_MS);
        let later = NOW_MS + 60_000;
        let (status, body) = introspect(
            &service,
            CLIENT,
            &format!("token={token}&token_type_hint=oauth1_access_token&oauth_consumer_key=tokengate-demo"),
            later,
        );
        assert_eq!(status, 200);
        let demo = service
            .config
            .oauth1
            .as_ref()
            .unwrap()
            .consumer("tokengate-demo")
            .unwrap();
        let spki = base64::engine::general_purpose::STANDARD.encode(demo.key.spki_der());
        assert_eq!(
            body,
            json!({"active": true, "token_type": "oauth1_access_token", "username": "fred",
                   "client_id": "tokengate-demo", "exp": (NOW_MS + 157_680_000_000) / 1000,
                   "consumer_public_key": spki})
        );
        // The DER is the public key file's.
        let pem = include_str!("../config/demo-consumer.pub");
        let der: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        assert_eq!(spki, der);
        let records = service.store.list_access_tokens("JIRAUSER10004").unwrap();
        assert_eq!(records[0].last_accessed, later);
    }

    #[test]
    fn every_oauth1_refusal_is_a_problem_and_never_a_failed_login() {
        let service = crate::oauth1_authorize::tests::service();
        let token = oauth1_access_token(&service, NOW_MS);
        let request_token =
            crate::oauth1_authorize::tests::request_token(&service, "tokengate-demo", "oob", NOW_MS);
        let api_token = fred_token(&service);
        let ask = |token: &str, consumer: &str, now: i64| {
            introspect(
                &service,
                CLIENT,
                &format!("token={token}&token_type_hint=oauth1_access_token&oauth_consumer_key={consumer}&username=fred"),
                now,
            )
        };
        let problem = |name: &str| (200, json!({"active": false, "oauth_problem": name}));
        let expires = NOW_MS + 157_680_000_000;
        let table = [
            (token.as_str(), "nobody", NOW_MS, problem("consumer_key_unknown")),
            (token.as_str(), "other", NOW_MS, problem("token_rejected")),
            (
                request_token.as_str(),
                "tokengate-demo",
                NOW_MS,
                problem("token_rejected"),
            ),
            (
                api_token.as_str(),
                "tokengate-demo",
                NOW_MS,
                problem("token_rejected"),
            ),
            (
                "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                "tokengate-demo",
                NOW_MS,
                problem("token_rejected"),
            ),
            (
                token.as_str(),
                "tokengate-demo",
                expires,
                problem("token_expired"),
            ),
        ];
        for (token, consumer, now, expected) in table {
            assert_eq!(ask(token, consumer, now), expected, "{token} {consumer}");
        }
        // None of them counted against fred (`username` is not the oauth1 question's).
        assert_eq!(service.store.failed_logins("fred").unwrap().count, 0);
        // Revoked: rejected at once.
        let id = service.store.list_access_tokens("JIRAUSER10004").unwrap()[0].id;
        assert_eq!(ask(&token, "tokengate-demo", NOW_MS).1["active"], true);
        assert!(service.store.revoke_access_token(id, None).unwrap());
        assert_eq!(ask(&token, "tokengate-demo", NOW_MS), problem("token_rejected"));
        // No consumer key: a malformed question.
        let (status, body) = introspect(
            &service,
            CLIENT,
            &format!("token={token}&token_type_hint=oauth1_access_token"),
            NOW_MS,
        );
        assert_eq!((status, body), (400, json!({"error": "invalid_request"})));
        // The client must authenticate as for every question.
        let (status, _) = introspect(
            &service,
            "tokengate:wrong-secret-0123456",
            &format!("token={token}&token_type_hint=oauth1_access_token&oauth_consumer_key=tokengate-demo"),
            NOW_MS,
        );
        assert_eq!(status, 401);
    }

    #[test]
    fn without_an_oauth1_section_every_oauth1_question_is_an_unknown_consumer() {
        let service = service();
        assert_eq!(
            introspect(
                &service,
                CLIENT,
                "token=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA&token_type_hint=oauth1_access_token&oauth_consumer_key=tokengate-demo",
                NOW,
            ),
            (200, json!({"active": false, "oauth_problem": "consumer_key_unknown"}))
        );
    }
}
