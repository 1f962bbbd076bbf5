//! Criterion micro-benchmarks of the core, native (`make bench-core`): signature verification
//! per algorithm, credential extraction, response rendering, and whole decisions through
//! `decide::begin` (the per-request work of the filter minus the proxy-wasm host calls).
//! Keys are fresh demo keys (`tokengate_demo::keys`); nothing here runs under `make test`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::cell::RefCell;
use std::collections::HashMap;
use std::hint::black_box;
use std::rc::Rc;

use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::{json, Value};
use tokengate::cache::SharedStore;
use tokengate::clock::UnixSeconds;
use tokengate::config::Config;
use tokengate::decide::{
    begin, Decision, Denial, DenyReason, Env, Family, Keyring, NoCount, RequestHead, Step,
};
use tokengate::extract::{extract, Header};
use tokengate::hostcrypto::ModuleOnly;
use tokengate::jwk::KeySet;
use tokengate::jwt::{Algorithm, HmacSecret, JwtError, UntrustedJwt};
use tokengate::respond::{render, ReplyStyle};
use tokengate_demo::keys::{jwks, TestKey};
use tokengate_demo::mint_tisjwt;

const ISSUER: &str = "https://idp.example.com";
const SECRET: &str = "bench-shared-secret-0123456789abcdef";
const NOW: UnixSeconds = 1_800_000_000;

fn claims() -> Value {
    json!({"iss": ISSUER, "aud": "jira", "sub": "fred", "iat": NOW, "exp": NOW + 3600})
}

fn tis_claims() -> Value {
    json!({"iss": ISSUER, "aud": "jira", "sub": "fred", "clientKey": "tenant", "iat": NOW, "exp": NOW + 3600})
}

/// Parse plus signature check, per algorithm: what a cache miss costs before claim checks.
fn verification(c: &mut Criterion) {
    let (rsa, ec) = (TestKey::rs256("rsa"), TestKey::es256("ec"));
    let keys = KeySet::from_jwks(jwks(&[&rsa, &ec]).to_string().as_bytes()).unwrap();
    let secret = HmacSecret::new(SECRET.as_bytes().to_vec());
    let (rs256, es256) = (rsa.sign(&claims()), ec.sign(&claims()));
    let hs256 = mint_tisjwt(SECRET.as_bytes(), &claims());

    let mut group = c.benchmark_group("verify");
    for (name, token, alg) in [
        ("RS256", &rs256, Algorithm::RS256),
        ("ES256", &es256, Algorithm::ES256),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| {
                let jwt = UntrustedJwt::parse(black_box(token)).unwrap();
                jwt.verify(&keys, &[alg]).unwrap()
            })
        });
    }
    group.bench_function("HS256", |b| {
        b.iter(|| {
            let jwt = UntrustedJwt::parse(black_box(&hs256)).unwrap();
            jwt.verify_hmac(Algorithm::HS256, &secret).unwrap()
        })
    });
    group.bench_function("parse only (RS256 token)", |b| {
        b.iter(|| UntrustedJwt::parse(black_box(&rs256)).unwrap())
    });
    group.finish();
}

fn request_headers(authorization: Option<&str>) -> Vec<Header> {
    let mut headers: Vec<Header> = [
        (":method", "GET"),
        (":path", "/rest/api/2/myself"),
        (":authority", "jira.example.com"),
        (":scheme", "https"),
        ("user-agent", "curl/8.5.0"),
        ("accept", "application/json"),
        ("x-forwarded-proto", "https"),
        ("x-request-id", "5c0a4b9e-6a8e-4c1e-9f55-6d1f1a9d2f33"),
    ]
    .iter()
    .map(|(n, v)| ((*n).to_owned(), v.as_bytes().to_vec()))
    .collect();
    if let Some(value) = authorization {
        headers.push(("authorization".to_owned(), value.as_bytes().to_vec()));
    }
    headers
}

fn extraction(c: &mut Criterion) {
    let token = mint_tisjwt(SECRET.as_bytes(), &tis_claims());
    let bearer = request_headers(Some(&format!("Bearer {token}")));
    let none = request_headers(None);
    let query = format!("/rest/export/status?page=2&tisjwt={token}&expand=all");

    let mut group = c.benchmark_group("extract");
    group.bench_function("Authorization: Bearer", |b| {
        b.iter(|| extract(black_box(&bearer), black_box("/rest/api/2/myself")))
    });
    group.bench_function("tisjwt query parameter", |b| {
        b.iter(|| extract(black_box(&none), black_box(&query)))
    });
    group.bench_function("no credential", |b| {
        b.iter(|| extract(black_box(&none), black_box("/rest/api/2/myself")))
    });
    group.finish();
}

fn rendering(c: &mut Criterion) {
    let style = ReplyStyle {
        plugin_version: "2.0.0.1",
        realm: "jira",
        oauth1_providers: &[],
    };
    let denials = [
        (
            "TISJWT 401 required",
            Family::Tisjwt,
            DenyReason::MissingCredential,
        ),
        (
            "OAuth 401 invalid token",
            Family::OAuth,
            DenyReason::InvalidToken(JwtError::BadSignature),
        ),
    ];
    let mut group = c.benchmark_group("render");
    for (name, family, reason) in denials {
        let denial = Denial::new(family, reason);
        group.bench_function(name, |b| b.iter(|| render(black_box(&denial), style, NOW)));
    }
    group.finish();
}

/// Shared data as a map, as the unit tests do.
#[derive(Default)]
struct MapStore(RefCell<HashMap<String, Vec<u8>>>);

impl SharedStore for MapStore {
    fn get(&self, key: &str) -> Option<Vec<u8>> {
        self.0.borrow().get(key).cloned()
    }
    fn set(&self, key: &str, value: &[u8]) {
        self.0.borrow_mut().insert(key.to_owned(), value.to_vec());
    }
}

struct NoRemoteKeys;

impl Keyring for NoRemoteKeys {
    fn remote_keys(&self, _provider: &str) -> Option<(Rc<KeySet>, tokengate::jwks_cache::Generation)> {
        None
    }
}

fn bearer_config(key: &TestKey, cache_ttl: u32) -> Config {
    let config = json!({"jwt_providers": {"idp": {
        "issuer": ISSUER, "audiences": ["jira"], "local_jwks": jwks(&[key]),
        "cache_ttl_seconds": cache_ttl}}});
    Config::from_json(config.to_string().as_bytes()).unwrap()
}

fn allowed(step: Step) -> bool {
    matches!(step, Step::Done(Decision::Allow(_)))
}

/// One request through extract, policy, verify (or the verified-token cache) and decide.
fn decisions(c: &mut Criterion) {
    let (rsa, ec) = (TestKey::rs256("rsa"), TestKey::es256("ec"));
    let tisjwt = Config::from_json(json!({"tisjwt": {"secret": SECRET}}).to_string().as_bytes()).unwrap();
    let cases = [
        (
            "RS256, cache hit",
            bearer_config(&rsa, 300),
            format!("Bearer {}", rsa.sign(&claims())),
        ),
        (
            "RS256, cache off",
            bearer_config(&rsa, 0),
            format!("Bearer {}", rsa.sign(&claims())),
        ),
        (
            "ES256, cache hit",
            bearer_config(&ec, 300),
            format!("Bearer {}", ec.sign(&claims())),
        ),
        (
            "ES256, cache off",
            bearer_config(&ec, 0),
            format!("Bearer {}", ec.sign(&claims())),
        ),
        (
            "TISJWT HS256",
            tisjwt,
            format!("TISJWT {}", mint_tisjwt(SECRET.as_bytes(), &tis_claims())),
        ),
    ];
    let mut group = c.benchmark_group("decide");
    for (name, config, authorization) in cases {
        let request = RequestHead {
            method: "GET".to_owned(),
            path: "/rest/api/2/myself".to_owned(),
            headers: request_headers(Some(&authorization)),
            client_address: None,
            body: None,
            has_body: false,
        };
        let store = MapStore::default();
        let env = Env {
            keyring: &NoRemoteKeys,
            store: &store,
            count: &NoCount,
            signatures: &ModuleOnly,
        };
        assert!(allowed(begin(&config, &request, &env, NOW)), "{name}");
        group.bench_function(name, |b| {
            b.iter(|| begin(black_box(&config), black_box(&request), &env, NOW))
        });
    }
    group.finish();
}

criterion_group!(benches, verification, extraction, rendering, decisions);
criterion_main!(benches);
