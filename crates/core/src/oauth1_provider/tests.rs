//! The OAuth 1.0a stage end to end in the core: requests signed as a client signs them (RSA-SHA1
//! with the `rsa` crate), decided by `decide::begin`, their questions answered as the worker
//! answers them (`Todo`, `Answer::read`, `Then::answered`) by a fake token service, their
//! denials rendered as the client sees them.

use std::cell::RefCell;
use std::sync::OnceLock;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use oauth1::encode::encode;
use rsa::pkcs1v15::SigningKey;
use rsa::pkcs8::EncodePublicKey as _;
use rsa::signature::{SignatureEncoding as _, Signer as _};
use rsa::RsaPrivateKey;
use serde_json::{json, Value};
use sha1::Sha1;

use crate::cache::tests::MapStore;
use crate::cache::SharedStore;
use crate::callout::{Callout, CalloutResult};
use crate::clock::UnixSeconds;
use crate::config::Config;
use crate::decide::{begin, Decision, Denial, DenyReason, Forward, RequestHead};
use crate::host::{Counter, Env};
use crate::hostcrypto::ModuleOnly;
use crate::metrics::Metric;
use crate::questions::{Answer, Todo, Waiter};
use crate::respond::{render, LocalReply, ReplyStyle};
use crate::test_support::EnvoyLikeStore;
use crate::test_support::NoKeys;

pub(crate) const NOW: UnixSeconds = 1_764_590_000;
pub(crate) const CONSUMER: &str = "tokengate-demo";
pub(crate) const TOKEN: &str = "yL5m0Q4nZ2k8bW1vT7cR3dF6gH9jK0lM2nP4qS6tU8w";
const BASE: &str = "https://jira.example.com";
const REALM: &str = "OAuth realm=\"https://jira.example.com\"";

/// Test key pairs (1024 bits, as Jira's tutorial makes): the consumer's, and another.
pub(crate) fn key(which: usize) -> &'static RsaPrivateKey {
    static KEYS: OnceLock<Vec<RsaPrivateKey>> = OnceLock::new();
    let keys = KEYS.get_or_init(|| {
        (0..2)
            .map(|_| RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 1024).unwrap())
            .collect()
    });
    &keys[which]
}

/// The consumer's public key as the token service answers it: base64 of the DER
/// SubjectPublicKeyInfo.
pub(crate) fn public_key_base64(which: usize) -> String {
    let der = key(which).to_public_key().to_public_key_der().unwrap();
    STANDARD.encode(der.as_bytes())
}

/// RSA-SHA1 (RSASSA-PKCS1-v1_5 with SHA-1) of `base_string` by key `which`, base64.
pub(crate) fn sign(which: usize, base_string: &str) -> String {
    let signing = SigningKey::<Sha1>::new(key(which).clone());
    STANDARD.encode(signing.sign(base_string.as_bytes()).to_bytes())
}

/// A request as a client (jira-python over requests-oauthlib) sends it.
#[derive(Clone)]
pub(crate) struct Client {
    pub method: &'static str,
    /// What the client signs: `scheme://authority/path?query`.
    pub url: String,
    pub content_type: Option<&'static str>,
    pub body: Option<String>,
    pub consumer: &'static str,
    pub token: Option<&'static str>,
    pub nonce: String,
    pub timestamp: i64,
    pub method_name: &'static str,
    pub version: Option<&'static str>,
    /// The key that signs (0: the consumer's).
    pub signer: usize,
}

impl Client {
    pub(crate) fn get(path: &str) -> Self {
        Client {
            method: "GET",
            url: format!("{BASE}{path}"),
            content_type: None,
            body: None,
            consumer: CONSUMER,
            token: Some(TOKEN),
            nonce: "f0b7c6e1a2".to_owned(),
            timestamp: NOW,
            method_name: "RSA-SHA1",
            version: Some("1.0"),
            signer: 0,
        }
    }

    pub(crate) fn nonce(self, nonce: &str) -> Self {
        Client {
            nonce: nonce.to_owned(),
            ..self
        }
    }

    /// The `Authorization` header, signed over the request as the client sees it.
    pub(crate) fn authorization(&self) -> String {
        let timestamp = self.timestamp.to_string();
        let mut params = vec![
            ("oauth_consumer_key", self.consumer),
            ("oauth_signature_method", self.method_name),
            ("oauth_timestamp", timestamp.as_str()),
            ("oauth_nonce", self.nonce.as_str()),
        ];
        params.extend(self.token.map(|t| ("oauth_token", t)));
        params.extend(self.version.map(|v| ("oauth_version", v)));
        let mut header = String::from("OAuth realm=\"jira\"");
        for (name, value) in params {
            header.push_str(&format!(", {name}=\"{}\"", encode(value.as_bytes())));
        }
        // A header the filter refuses before its signature (another version) is sent unsigned.
        let Ok(unsigned) = oauth1::parse(&format!("{header}, oauth_signature=\"x\"")) else {
            return format!("{header}, oauth_signature=\"bm90IHNpZ25lZA%3D%3D\"");
        };
        let uri = oauth1::BaseUri::from_url(&self.url).unwrap();
        let query = self.url.split_once('?').map_or("", |(_, q)| q);
        let form = self.content_type == Some("application/x-www-form-urlencoded");
        let body = self.body.as_deref().filter(|_| form).map(str::as_bytes);
        let base = oauth1::base_string(self.method, &uri, query.as_bytes(), &unsigned, body).unwrap();
        let signature = sign(self.signer, &base);
        format!("{header}, oauth_signature=\"{}\"", encode(signature.as_bytes()))
    }

    /// The request Envoy hands the filter, with `authorization` (or none).
    pub(crate) fn request_with(&self, authorization: Option<&str>) -> RequestHead {
        let rest = self.url.split_once("://").unwrap().1;
        let at = rest.find('/').unwrap();
        let (authority, path) = rest.split_at(at);
        let scheme = self.url.split_once("://").unwrap().0;
        let mut headers = vec![
            (":method".to_owned(), self.method.as_bytes().to_vec()),
            (":path".to_owned(), path.as_bytes().to_vec()),
            (":scheme".to_owned(), scheme.as_bytes().to_vec()),
            (":authority".to_owned(), authority.as_bytes().to_vec()),
        ];
        headers.extend(authorization.map(|a| ("authorization".to_owned(), a.as_bytes().to_vec())));
        headers.extend(
            self.content_type
                .map(|t| ("content-type".to_owned(), t.as_bytes().to_vec())),
        );
        RequestHead {
            method: self.method.to_owned(),
            path: path.to_owned(),
            headers,
            client_address: Some("192.0.2.7".to_owned()),
            body: None,
            has_body: self.body.is_some(),
        }
    }

    pub(crate) fn request(&self) -> RequestHead {
        self.request_with(Some(&self.authorization()))
    }
}

/// The `applinks` provider on every path, with these extra provider fields.
pub(crate) fn config_with(extra: Value) -> Config {
    let mut provider = json!({
        "introspection": {"cluster": "token_service", "path": "/introspect",
                          "client_id": "tokengate", "client_secret": "s3cr3t"},
        "public_base_url": BASE,
    });
    for (k, v) in extra.as_object().unwrap() {
        if v.is_null() {
            provider.as_object_mut().unwrap().remove(k);
        } else {
            provider[k] = v.clone();
        }
    }
    let config = json!({
        "oauth1_providers": {"applinks": provider},
        "rules": [{"path_prefix": "/", "providers": ["applinks"]}],
        "directory": {"inactive_users": ["gone"]},
    });
    Config::from_json(config.to_string().as_bytes()).unwrap()
}

pub(crate) fn config() -> Config {
    config_with(json!({}))
}

/// The token service's answer about `TOKEN` for `CONSUMER`: fred's, key 0's.
pub(crate) fn active(user: &str) -> Value {
    json!({"active": true, "token_type": "oauth1_access_token", "username": user,
           "client_id": CONSUMER, "exp": NOW + 3600, "consumer_public_key": public_key_base64(0)})
}

fn response(status: u32, body: &Value) -> CalloutResult {
    CalloutResult::Response {
        status,
        body: body.to_string().into_bytes(),
    }
}

/// A token service that knows `TOKEN` as fred's, for `CONSUMER` only.
fn service(callout: &Callout) -> CalloutResult {
    let form = String::from_utf8(callout.body.clone().unwrap()).unwrap();
    let expected = format!(
        "token={TOKEN}&token_type_hint=oauth1_access_token&oauth_consumer_key={}",
        crate::callout::encode_component(CONSUMER)
    );
    if form == expected {
        response(200, &active("fred"))
    } else {
        response(200, &json!({"active": false, "oauth_problem": "token_rejected"}))
    }
}

#[derive(Default)]
pub(crate) struct Counted(RefCell<Vec<Metric>>);
impl Counter for Counted {
    fn count(&self, metric: Metric) {
        self.0.borrow_mut().push(metric);
    }
}

impl Counted {
    fn of(&self, metric: Metric) -> usize {
        self.0.borrow().iter().filter(|m| **m == metric).count()
    }
}

/// What became of a request: the decision and the questions it asked.
pub(crate) struct Run {
    pub decision: Decision,
    pub callouts: Vec<Callout>,
}

/// Decides `request` as the worker does, the body read when asked for (`body`), each
/// question answered by `answer`.
pub(crate) fn run_with(
    config: &Config,
    mut request: RequestHead,
    body: Option<&str>,
    store: &dyn SharedStore,
    count: &dyn Counter,
    answer: &dyn Fn(&Callout) -> CalloutResult,
) -> Run {
    let env = Env {
        keyring: &NoKeys,
        store,
        count,
        signatures: &ModuleOnly,
    };
    let mut callouts = Vec::new();
    let mut step = begin(config, &request, &env, NOW);
    for _ in 0..8 {
        match Todo::of(config, step, &env, NOW) {
            Todo::Done(decision) => return Run { decision, callouts },
            Todo::ReadBody { .. } => {
                assert!(request.body.is_none(), "asked for the body twice");
                request.body = Some(body.unwrap_or_default().as_bytes().to_vec());
                step = begin(config, &request, &env, NOW);
            }
            Todo::Ask(_, callout, then) => {
                let result = answer(&callout);
                callouts.push(callout);
                let waiters = [Waiter {
                    context: 1,
                    deadline: 0,
                    then: then.clone(),
                }];
                step = match Answer::read(config, &waiters, result, None, &env, NOW) {
                    Some((answer, _)) => then.answered(config, &answer, &env, NOW),
                    None => then.failed(config, &env, NOW),
                };
            }
            Todo::WaitForKeys { .. } => panic!("no keys to wait for"),
        }
    }
    panic!("no decision");
}

pub(crate) fn run(config: &Config, client: &Client, store: &dyn SharedStore) -> Run {
    run_with(
        config,
        client.request(),
        client.body.as_deref(),
        store,
        &Counted::default(),
        &service,
    )
}

fn reply_of(config: &Config, decision: &Decision) -> Option<LocalReply> {
    let Decision::Deny(denial) = decision else {
        return None;
    };
    let style = ReplyStyle {
        plugin_version: "1",
        realm: &config.realm,
        oauth1_providers: &config.oauth1_providers,
    };
    Some(render(denial, style, NOW))
}

/// (status, WWW-Authenticate values, body) of a denial; `None` for an allowed request.
fn seen(config: &Config, decision: &Decision) -> Option<(u32, Vec<String>, String)> {
    let reply = reply_of(config, decision)?;
    let challenges = reply
        .headers
        .iter()
        .filter(|(n, _)| n == "www-authenticate")
        .map(|(_, v)| v.clone())
        .collect();
    Some((reply.status, challenges, reply.body))
}

fn errors(message: &str) -> String {
    json!({"errorMessages": [message], "errors": {}}).to_string()
}

/// What a client told `problem` sees.
fn problem_reply(problem: &str, message: &str) -> Option<(u32, Vec<String>, String)> {
    Some((
        401,
        vec![format!("{REALM}, oauth_problem=\"{problem}\"")],
        errors(message),
    ))
}

fn reason(decision: &Decision) -> Option<DenyReason> {
    match decision {
        Decision::Deny(Denial { reason, .. }) => Some(reason.clone()),
        Decision::Allow(_) => None,
    }
}

fn allowed_as(user: &str) -> Decision {
    Decision::Allow(Forward {
        remove_headers: vec![
            "x-tokengate-user".into(),
            "x-tokengate-tenant".into(),
            "authorization".into(),
        ],
        set_headers: vec![("x-tokengate-user".into(), user.into())],
        path: None,
    })
}

#[test]
fn a_good_request_is_allowed_as_the_tokens_user_without_its_authorization_header() {
    let config = config();
    let store = MapStore::default();
    let run = run(&config, &Client::get("/rest/api/2/myself?expand=groups"), &store);
    assert_eq!(run.decision, allowed_as("fred"));
    let [callout] = &run.callouts[..] else {
        panic!("{:?}", run.callouts)
    };
    assert_eq!(
        (callout.method, callout.cluster.as_str(), callout.path.as_str()),
        ("POST", "token_service", "/introspect")
    );
    assert_eq!(
        String::from_utf8(callout.body.clone().unwrap()).unwrap(),
        format!("token={TOKEN}&token_type_hint=oauth1_access_token&oauth_consumer_key=tokengate-demo")
    );
    let header = |name: &str| {
        callout
            .headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(header("authorization"), Some("Basic dG9rZW5nYXRlOnMzY3IzdA=="));
    assert_eq!(header("content-type"), Some("application/x-www-form-urlencoded"));
}

#[test]
fn every_problem_before_the_question_is_refused_with_its_report_and_no_callout() {
    let config = config();
    let good = Client::get("/rest/api/2/myself");
    let header = good.authorization();
    let cases: Vec<(&str, RequestHead, &str, &str)> = vec![
        (
            "no oauth_token",
            Client {
                token: None,
                ..good.clone()
            }
            .request(),
            "parameter_absent",
            "A required OAuth parameter is missing.",
        ),
        (
            "an unquoted value",
            good.request_with(Some("OAuth oauth_consumer_key=tokengate-demo")),
            "parameter_rejected",
            "An OAuth parameter is malformed, repeated, or outside the Authorization header.",
        ),
        (
            "a repeated parameter",
            good.request_with(Some(&format!("{header}, oauth_nonce=\"again\""))),
            "parameter_rejected",
            "An OAuth parameter is malformed, repeated, or outside the Authorization header.",
        ),
        (
            "version 2.0",
            Client {
                version: Some("2.0"),
                ..good.clone()
            }
            .request(),
            "version_rejected",
            "The OAuth version is not 1.0.",
        ),
        (
            "HMAC-SHA1",
            Client {
                method_name: "HMAC-SHA1",
                ..good.clone()
            }
            .request(),
            "signature_method_rejected",
            "The OAuth signature method is not accepted: sign with RSA-SHA1.",
        ),
        (
            "PLAINTEXT",
            Client {
                method_name: "PLAINTEXT",
                ..good.clone()
            }
            .request(),
            "signature_method_rejected",
            "The OAuth signature method is not accepted: sign with RSA-SHA1.",
        ),
        (
            "a timestamp 301 s old",
            Client {
                timestamp: NOW - 301,
                ..good.clone()
            }
            .request(),
            "timestamp_refused",
            "The OAuth timestamp is outside the accepted window: check the client's clock.",
        ),
        (
            "a timestamp 301 s ahead",
            Client {
                timestamp: NOW + 301,
                ..good.clone()
            }
            .request(),
            "timestamp_refused",
            "The OAuth timestamp is outside the accepted window: check the client's clock.",
        ),
        (
            "oauth_ parameters in the query too (RFC 5849 3.5.3)",
            Client::get("/rest/api/2/myself?oauth_nonce=x").request_with(Some(&header)),
            "parameter_rejected",
            "An OAuth parameter is malformed, repeated, or outside the Authorization header.",
        ),
    ];
    for (case, request, problem, message) in cases {
        let count = Counted::default();
        let store = MapStore::default();
        let run = run_with(&config, request, None, &store, &count, &service);
        assert_eq!(
            seen(&config, &run.decision),
            problem_reply(problem, message),
            "{case}"
        );
        assert!(run.callouts.is_empty(), "{case}: no question");
        assert_eq!(count.0.borrow().len(), 0, "{case}: nothing counted");
        assert!(store.0.borrow().is_empty(), "{case}: nothing stored");
    }
}

#[test]
fn the_token_services_refusals_are_reported_as_it_names_them() {
    let config = config();
    for (problem, message) in [
        ("consumer_key_unknown", "The OAuth consumer is not known."),
        ("token_rejected", "The OAuth access token is not valid."),
        ("token_expired", "The OAuth access token has expired."),
    ] {
        let answer = |_: &Callout| response(200, &json!({"active": false, "oauth_problem": problem}));
        let store = MapStore::default();
        let request = Client::get("/x").request();
        let run = run_with(&config, request, None, &store, &Counted::default(), &answer);
        assert_eq!(
            seen(&config, &run.decision),
            problem_reply(problem, message),
            "{problem}"
        );
    }
    // An active answer whose exp has passed is an expired token.
    let expired = |_: &Callout| {
        let mut answer = active("fred");
        answer["exp"] = json!(NOW);
        response(200, &answer)
    };
    let run = run_with(
        &config,
        Client::get("/x").request(),
        None,
        &MapStore::default(),
        &Counted::default(),
        &expired,
    );
    assert_eq!(
        seen(&config, &run.decision),
        problem_reply("token_expired", "The OAuth access token has expired.")
    );
}

#[test]
fn a_signature_that_does_not_verify_is_signature_invalid() {
    let config = config();
    let other_key = Client {
        signer: 1,
        ..Client::get("/x")
    };
    let run = run(&config, &other_key, &MapStore::default());
    assert_eq!(
        seen(&config, &run.decision),
        problem_reply(
            "signature_invalid",
            "OAuth signature is invalid for this request."
        )
    );
    // Signed for another path, another host, another method, another query.
    let good = Client::get("/rest/api/2/issue/DEMO-1?fields=summary");
    let header = good.authorization();
    for other in [
        Client::get("/rest/api/2/issue/DEMO-2?fields=summary"),
        Client::get("/rest/api/2/issue/DEMO-1?fields=summary,status"),
        Client::get("/rest/api/2/issue/DEMO-1"),
        Client {
            method: "DELETE",
            ..good.clone()
        },
    ] {
        let run = run_with(
            &config,
            other.request_with(Some(&header)),
            None,
            &MapStore::default(),
            &Counted::default(),
            &service,
        );
        assert_eq!(
            reason(&run.decision),
            Some(DenyReason::OAuth1(oauth1::Problem::SignatureInvalid)),
            "{}",
            other.url
        );
    }
}

#[test]
fn a_cached_answer_still_has_every_signature_checked() {
    let config = config();
    let store = MapStore::default();
    let count = Counted::default();
    let good = Client::get("/rest/api/2/myself");
    let first = run_with(&config, good.request(), None, &store, &count, &service);
    assert_eq!(first.decision, allowed_as("fred"));
    let second = run_with(
        &config,
        good.clone().nonce("n2").request(),
        None,
        &store,
        &count,
        &service,
    );
    assert_eq!(second.decision, allowed_as("fred"));
    assert!(second.callouts.is_empty(), "answered from the cache");
    assert_eq!(
        (
            count.of(Metric::IntrospectionCacheMiss),
            count.of(Metric::IntrospectionCacheHit)
        ),
        (1, 1)
    );
    // The header of a request to /myself, replayed (new nonce, old signature) against another path.
    let signed = good.clone().nonce("n3").authorization();
    let tampered = Client::get("/rest/api/2/user?username=admin").request_with(Some(&signed));
    let third = run_with(&config, tampered, None, &store, &count, &service);
    assert_eq!(
        reason(&third.decision),
        Some(DenyReason::OAuth1(oauth1::Problem::SignatureInvalid))
    );
    assert!(third.callouts.is_empty());
    let by_another_key = Client {
        signer: 1,
        ..good.nonce("n4")
    };
    let fourth = run_with(&config, by_another_key.request(), None, &store, &count, &service);
    assert_eq!(
        reason(&fourth.decision),
        Some(DenyReason::OAuth1(oauth1::Problem::SignatureInvalid))
    );
}

#[test]
fn a_nonce_is_accepted_once() {
    let config = config();
    let store = MapStore::default();
    let client = Client::get("/rest/api/2/myself");
    assert_eq!(run(&config, &client, &store).decision, allowed_as("fred"));
    let replay = run(&config, &client, &store);
    assert_eq!(
        seen(&config, &replay.decision),
        problem_reply("nonce_used", "The OAuth nonce has already been used.")
    );
    assert!(replay.callouts.is_empty());
    // A refused request uses up no nonce: the same nonce, rightly signed, is still good.
    let store = MapStore::default();
    let wrong = Client {
        signer: 1,
        ..client.clone()
    };
    assert!(reason(&run(&config, &wrong, &store).decision).is_some());
    assert_eq!(run(&config, &client, &store).decision, allowed_as("fred"));
}

#[test]
fn of_two_workers_inserting_one_nonce_exactly_one_is_allowed() {
    let config = config();
    let client = Client::get("/rest/api/2/myself").nonce("raced");
    let other: RefCell<Option<Decision>> = RefCell::new(None);
    let store = EnvoyLikeStore::default();
    // The answer is cached by a first request, so the nonce bucket is the next write.
    assert_eq!(
        run(&config, &Client::get("/x").nonce("warm-up"), &store).decision,
        allowed_as("fred")
    );
    store.before_next_write(|shared| {
        *other.borrow_mut() = Some(run(&config, &client, shared).decision);
    });
    let first = run(&config, &client, &store).decision;
    let second = other.borrow_mut().take().expect("the other worker ran");
    let allowed = [&first, &second]
        .iter()
        .filter(|d| matches!(d, Decision::Allow(_)))
        .count();
    assert_eq!(allowed, 1, "{first:?} {second:?}");
    assert_eq!(second, allowed_as("fred"), "the other worker wrote first");
    assert_eq!(
        reason(&first),
        Some(DenyReason::OAuth1(oauth1::Problem::NonceUsed))
    );
}

#[test]
fn a_full_nonce_store_refuses_new_nonces_with_503_and_still_refuses_replays() {
    let config = config_with(json!({"nonce_store": {"buckets": 1, "per_bucket": 1}}));
    let store = EnvoyLikeStore::default();
    let client = Client::get("/x");
    assert_eq!(run(&config, &client, &store).decision, allowed_as("fred"));
    let full = run(&config, &client.clone().nonce("another"), &store);
    assert_eq!(
        seen(&config, &full.decision),
        Some((
            503,
            vec![],
            errors("The OAuth nonce store is full. Please try again later.")
        ))
    );
    assert_eq!(
        reason(&run(&config, &client, &store).decision),
        Some(DenyReason::OAuth1(oauth1::Problem::NonceUsed))
    );
    // A store that refuses writes (shared data full, or a host error) is refused the same way.
    let unwritable = EnvoyLikeStore::default();
    unwritable.refuse_writes.set(true);
    let refused = run(&super::tests::config(), &client, &unwritable);
    assert_eq!(reason(&refused.decision), Some(DenyReason::NonceStoreFull));
}

#[test]
fn another_configuration_shares_nonces_but_not_answers() {
    // A push that changes a TTL: its own question (answers are scoped), but the nonce it saw
    // before the push is still used, so the push makes no captured request replayable.
    let ours = config();
    let theirs = config_with(json!({"cache_ttl_seconds": 11}));
    let store = MapStore::default();
    let client = Client::get("/rest/api/2/myself");
    assert_eq!(run(&ours, &client, &store).decision, allowed_as("fred"));
    let elsewhere = run(&theirs, &client, &store);
    assert_eq!(elsewhere.callouts.len(), 1, "its own question");
    assert_eq!(
        reason(&elsewhere.decision),
        Some(DenyReason::OAuth1(oauth1::Problem::NonceUsed))
    );
    let fresh = run(&theirs, &client.clone().nonce("after-the-push"), &store);
    assert_eq!(fresh.decision, allowed_as("fred"));
    assert_eq!(
        reason(&run(&ours, &client.nonce("after-the-push"), &store).decision),
        Some(DenyReason::OAuth1(oauth1::Problem::NonceUsed))
    );
}

#[test]
fn a_token_of_one_consumer_used_with_another_consumers_key_is_refused() {
    let config = config();
    let store = MapStore::default();
    assert_eq!(
        run(&config, &Client::get("/x"), &store).decision,
        allowed_as("fred")
    );
    // The same access token, signed by another consumer with its own key: asked about anew
    // (the cache key names the consumer), and the service says it is not that consumer's.
    let other = Client {
        consumer: "other-app",
        signer: 1,
        ..Client::get("/x").nonce("n2")
    };
    let run = run(&config, &other, &store);
    assert_eq!(run.callouts.len(), 1);
    assert_eq!(
        seen(&config, &run.decision),
        problem_reply("token_rejected", "The OAuth access token is not valid.")
    );
    // A service that answered for another consumer than the one asked about is not believed.
    let confused = |_: &Callout| response(200, &active("fred"));
    let run = run_with(
        &config,
        other.request(),
        None,
        &MapStore::default(),
        &Counted::default(),
        &confused,
    );
    assert_eq!(reason(&run.decision), Some(DenyReason::ProviderUnavailable));
}

#[test]
fn an_answer_that_is_not_exactly_the_documented_one_is_unavailable() {
    let config = config();
    let with = |field: &str, value: Value| {
        let mut answer = active("fred");
        if value.is_null() {
            answer.as_object_mut().unwrap().remove(field);
        } else {
            answer[field] = value;
        }
        answer
    };
    let unavailable = Some((
        503,
        vec![],
        errors("The token service could not be reached. Please try again later."),
    ));
    let cases = [
        ("no username", response(200, &with("username", Value::Null))),
        ("an empty username", response(200, &with("username", json!("")))),
        ("no client_id", response(200, &with("client_id", Value::Null))),
        (
            "another token type",
            response(200, &with("token_type", json!("access_token"))),
        ),
        ("no exp", response(200, &with("exp", Value::Null))),
        (
            "exp as a string",
            response(200, &with("exp", json!("1764593600"))),
        ),
        ("no key", response(200, &with("consumer_public_key", Value::Null))),
        (
            "a key that is not base64",
            response(200, &with("consumer_public_key", json!("%%%"))),
        ),
        (
            "a key that is not a key",
            response(200, &with("consumer_public_key", json!("AAAA"))),
        ),
        (
            "an unknown problem",
            response(200, &json!({"active": false, "oauth_problem": "nonsense"})),
        ),
        (
            "inactive without a problem",
            response(200, &json!({"active": false})),
        ),
        ("no active", response(200, &json!({"username": "fred"}))),
        (
            "not JSON",
            CalloutResult::Response {
                status: 200,
                body: b"<html>".to_vec(),
            },
        ),
        (
            "invalid_request",
            response(400, &json!({"error": "invalid_request"})),
        ),
        ("a 500", response(500, &json!({}))),
        (
            "our client refused",
            response(401, &json!({"error": "invalid_client"})),
        ),
        ("no answer", CalloutResult::Failed),
    ];
    for (case, result) in cases {
        let count = Counted::default();
        let store = MapStore::default();
        let answer = |_: &Callout| result.clone();
        let run = run_with(
            &config,
            Client::get("/x").request(),
            None,
            &store,
            &count,
            &answer,
        );
        assert_eq!(seen(&config, &run.decision), unavailable, "{case}");
        assert_eq!(
            count
                .0
                .borrow()
                .iter()
                .filter(|m| m.name().starts_with("tokengate.introspection.failed."))
                .count(),
            1,
            "{case}"
        );
        // Nothing is cached: the next request asks again.
        let again = run_with(
            &config,
            Client::get("/x").nonce("n2").request(),
            None,
            &store,
            &count,
            &service,
        );
        assert_eq!(again.callouts.len(), 1, "{case}");
    }
}

#[test]
fn a_refusal_is_cached_for_the_negative_ttl_and_an_answer_until_its_exp() {
    let config = config_with(json!({"cache_ttl_seconds": 600, "negative_cache_ttl_seconds": 5}));
    let provider = &config.oauth1_providers[0];
    let info = provider
        .read_answer(200, active("fred").to_string().as_bytes(), CONSUMER, NOW)
        .unwrap();
    assert_eq!(provider.cache_until(&info, NOW), NOW + 600);
    let soon = {
        let mut answer = active("fred");
        answer["exp"] = json!(NOW + 30);
        provider
            .read_answer(200, answer.to_string().as_bytes(), CONSUMER, NOW)
            .unwrap()
    };
    assert_eq!(provider.cache_until(&soon, NOW), NOW + 30);
    let refused = crate::oauth1_question::AccessTokenInfo::Refused(oauth1::Problem::TokenRejected);
    assert_eq!(provider.cache_until(&refused, NOW), NOW + 5);
    // A refusal comes from the cache while it lasts: no second question.
    let store = MapStore::default();
    let count = Counted::default();
    let no = |_: &Callout| response(200, &json!({"active": false, "oauth_problem": "token_rejected"}));
    let first = run_with(&config, Client::get("/x").request(), None, &store, &count, &no);
    let second = run_with(
        &config,
        Client::get("/x").nonce("n2").request(),
        None,
        &store,
        &count,
        &no,
    );
    assert_eq!(reason(&first.decision), reason(&second.decision));
    assert!(second.callouts.is_empty());
}

#[test]
fn a_form_body_is_read_and_signed_and_any_other_body_is_not() {
    let config = config();
    let form = Client {
        method: "POST",
        content_type: Some("application/x-www-form-urlencoded"),
        body: Some("summary=Hello+world&labels=a%20b".to_owned()),
        ..Client::get("/rest/api/2/issue")
    };
    let env_store = MapStore::default();
    let env = crate::test_support::env_over(&env_store);
    assert_eq!(
        begin(&config, &form.request(), &env, NOW),
        crate::decide::Step::ReadBody {
            max_bytes: 65_536,
            timeout_ms: 5_000
        }
    );
    assert_eq!(
        run(&config, &form, &MapStore::default()).decision,
        allowed_as("fred")
    );
    let header = form.authorization();
    let tampered = run_with(
        &config,
        form.request_with(Some(&header)),
        Some("summary=Hello+world&labels=a%20c"),
        &MapStore::default(),
        &Counted::default(),
        &service,
    );
    assert_eq!(
        reason(&tampered.decision),
        Some(DenyReason::OAuth1(oauth1::Problem::SignatureInvalid))
    );
    let smuggled = run_with(
        &config,
        form.request_with(Some(&header)),
        Some("summary=Hello+world&labels=a%20b&oauth_token=x"),
        &MapStore::default(),
        &Counted::default(),
        &service,
    );
    assert_eq!(
        reason(&smuggled.decision),
        Some(DenyReason::OAuth1(oauth1::Problem::ParameterRejected))
    );
    // A JSON body is not the signature's: never read, and the request verifies without it.
    let json_body = Client {
        method: "POST",
        content_type: Some("application/json"),
        body: Some(r#"{"fields":{}}"#.to_owned()),
        ..Client::get("/rest/api/2/issue")
    };
    let run = run_with(
        &config,
        json_body.request(),
        None,
        &MapStore::default(),
        &Counted::default(),
        &service,
    );
    assert_eq!(run.decision, allowed_as("fred"));
}

#[test]
fn without_a_public_base_url_the_base_uri_is_envoys_scheme_and_authority() {
    let config = config_with(json!({"public_base_url": null}));
    let local = Client {
        url: "http://127.0.0.1:8080/rest/api/2/myself".to_owned(),
        ..Client::get("/")
    };
    assert_eq!(
        run(&config, &local, &MapStore::default()).decision,
        allowed_as("fred")
    );
    // Signed for https (a TLS-terminating proxy in front), received as http: x-forwarded-proto
    // is not read, so the signature does not verify.
    let header = Client {
        url: "https://127.0.0.1:8080/rest/api/2/myself".to_owned(),
        ..local.clone()
    }
    .authorization();
    let mut request = local.request_with(Some(&header));
    request
        .headers
        .push(("x-forwarded-proto".to_owned(), b"https".to_vec()));
    let run = run_with(
        &config,
        request,
        None,
        &MapStore::default(),
        &Counted::default(),
        &service,
    );
    assert_eq!(
        seen(&config, &run.decision),
        Some((
            401,
            vec!["OAuth realm=\"tokengate\", oauth_problem=\"signature_invalid\"".to_owned()],
            errors("OAuth signature is invalid for this request.")
        )),
        "the realm defaults to the top-level one"
    );
}

#[test]
fn the_query_form_alone_is_no_credential() {
    let config = config();
    let request = Client::get("/x?oauth_consumer_key=tokengate-demo&oauth_token=t&oauth_signature=s")
        .request_with(None);
    let run = run_with(
        &config,
        request,
        None,
        &MapStore::default(),
        &Counted::default(),
        &service,
    );
    assert_eq!(
        seen(&config, &run.decision),
        Some((
            401,
            vec![REALM.to_owned()],
            errors("You are not authenticated. Authentication required to perform this operation.")
        ))
    );
}

#[test]
fn an_authorization_header_that_is_no_oauth_credential_is_answered_in_the_oauth1_family() {
    let config = config();
    let missing = Some((
        401,
        vec![REALM.to_owned()],
        errors("You are not authenticated. Authentication required to perform this operation."),
    ));
    let cases = [
        ("OAuth", missing.clone()),
        ("OAuth   ", missing),
        (
            "",
            Some((
                401,
                vec![REALM.to_owned()],
                errors("The Authorization header is not a valid credential."),
            )),
        ),
        (
            // Two headers Envoy folded into one: not OAuth parameters.
            "OAuth oauth_consumer_key=\"a\", Bearer xyz",
            problem_reply(
                "parameter_rejected",
                "An OAuth parameter is malformed, repeated, or outside the Authorization header.",
            ),
        ),
    ];
    for (header, expected) in cases {
        let request = Client::get("/x").request_with(Some(header));
        let run = run_with(
            &config,
            request,
            None,
            &MapStore::default(),
            &Counted::default(),
            &service,
        );
        assert_eq!(seen(&config, &run.decision), expected, "{header:?}");
        assert!(run.callouts.is_empty());
    }
}

/// A host that checks signatures with the answer it was given, recording what it was asked.
struct RecordingHost {
    answer: Option<bool>,
    asked: RefCell<Vec<(crate::hostcrypto::Hash, Vec<u8>)>>,
}

impl crate::hostcrypto::SignatureHost for RecordingHost {
    fn verify(&self, hash: crate::hostcrypto::Hash, spki_der: &[u8], _: &[u8], _: &[u8]) -> Option<bool> {
        self.asked.borrow_mut().push((hash, spki_der.to_vec()));
        self.answer
    }
}

#[test]
fn envoys_verify_signature_checks_rsa_sha1_with_the_consumers_key_where_it_answers() {
    let config = config();
    let key_der = STANDARD.decode(public_key_base64(0)).unwrap();
    for (answer, good, expected) in [
        (Some(true), 0, None),
        // The host's word is the verdict: it is the one doing the arithmetic.
        (
            Some(false),
            0,
            Some(DenyReason::OAuth1(oauth1::Problem::SignatureInvalid)),
        ),
        // It cannot tell: the module checks, and a signature by another key fails.
        (
            None,
            1,
            Some(DenyReason::OAuth1(oauth1::Problem::SignatureInvalid)),
        ),
        (None, 0, None),
    ] {
        let host = RecordingHost {
            answer,
            asked: RefCell::default(),
        };
        let store = MapStore::default();
        let env = Env {
            keyring: &NoKeys,
            store: &store,
            count: &crate::host::NoCount,
            signatures: &host,
        };
        // The token service's answer is cached first, so that begin goes all the way.
        let cache_key = crate::oauth1_question::answer_key(&config.oauth1_providers[0], CONSUMER, TOKEN);
        let info = config.oauth1_providers[0]
            .read_answer(200, active("fred").to_string().as_bytes(), CONSUMER, NOW)
            .unwrap();
        crate::oauth1_question::remember(&store, &config.oauth1_providers[0], &cache_key, &info, NOW);
        let client = Client {
            signer: good,
            ..Client::get("/x")
        };
        let decision = match Todo::of(&config, begin(&config, &client.request(), &env, NOW), &env, NOW) {
            Todo::Done(decision) => decision,
            other => panic!("{other:?}"),
        };
        assert_eq!(reason(&decision), expected, "{answer:?} {good}");
        assert_eq!(
            host.asked.into_inner(),
            [(crate::hostcrypto::Hash::Sha1, key_der.clone())],
            "asked once, with sha1 and the consumer's key"
        );
    }
}

#[test]
fn the_directorys_word_and_the_rules_scopes_still_apply() {
    let config = config();
    let gone = |_: &Callout| response(200, &active("gone"));
    let run = run_with(
        &config,
        Client::get("/x").request(),
        None,
        &MapStore::default(),
        &Counted::default(),
        &gone,
    );
    assert_eq!(
        seen(&config, &run.decision),
        Some((
            401,
            vec![REALM.to_owned()],
            errors("The user of this OAuth access token is not active.")
        ))
    );
    let scoped = {
        let json = json!({
            "oauth1_providers": {"applinks": {
                "introspection": {"cluster": "ts", "path": "/introspect", "client_id": "a", "client_secret": "b"}}},
            "rules": [{"path_prefix": "/", "providers": ["applinks"], "scopes": ["write"]}],
        });
        Config::from_json(json.to_string().as_bytes()).unwrap()
    };
    let run = run_with(
        &scoped,
        Client::get("/x").request(),
        None,
        &MapStore::default(),
        &Counted::default(),
        &service,
    );
    assert_eq!(
        reason(&run.decision),
        Some(DenyReason::InsufficientScope(vec!["write".into()]))
    );
    assert!(run.callouts.is_empty());
}
