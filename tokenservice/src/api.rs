//! Routing and the REST handlers of seed 004, as pure functions from a [`Request`] to a
//! [`Response`] (plus the store): no sockets, and `now` is a parameter.
//!
//! Paths are under [`PREFIX`]. Every 4xx and 5xx body is Jira's error collection,
//! `{"errorMessages":["..."],"errors":{}}`, except on `/introspect`, which answers in RFC 6749
//! section 5.2's shape (see [`crate::introspect`]). The OAuth 1.0a dance is routed here too,
//! under [`OAUTH1_PREFIX`] ([`crate::oauth1_dance`], [`crate::oauth1_authorize`]), and answers
//! in its own formats.

use crate::auth::Caller;
use crate::clock;
use crate::config::Config;
use crate::introspect;
use crate::login::Refused;
use crate::store::{NewRecord, StoreError, TokenRecord};
use crate::tokens;
use crate::users::User;
use crate::{oauth1_access, oauth1_authorize, oauth1_dance};
use serde_json::{json, Map, Value};
use std::net::IpAddr;

// The request, the response and the service moved to leaf modules (so the endpoints this
// routes to need not import the router); their `api::` paths stay.
pub use crate::http::{Request, Response};
pub use crate::service::Service;

/// Where Envoy routes the API Token app's REST API.
pub const PREFIX: &str = "/rest/de.resolution.apitokenauth/latest";
/// The OpenAPI 3 description of this API (`tokenservice/openapi.json`), served at
/// `GET {PREFIX}/openapi.json` without authentication.
pub const OPENAPI: &str = include_str!("../openapi.json");
/// The most tokens one `tokensByFilter` page holds (seed 004).
pub const MAX_PAGE: u64 = 50;
/// The longest description accepted, in characters.
pub const MAX_DESCRIPTION: usize = 255;

/// Messages of the error bodies.
pub mod messages {
    pub const UNAUTHENTICATED: &str =
        "You are not authenticated. Authentication required to perform this operation.";
    pub const ADMIN_ONLY: &str =
        "You do not have the permission to perform this operation: it is for system administrators only.";
    pub const NOT_FOUND: &str = "Not found.";
    pub const TOKEN_NOT_FOUND: &str = "No token with this id exists for the current user.";
    pub const INTERNAL: &str = "Internal server error. Please try again later.";
    pub const TOO_LARGE: &str = "The request body is too large.";
    pub const NOT_JSON: &str = "The request body must be a JSON object.";
    /// The filter's message for the same state (src/respond.rs `API_LOCKED`).
    pub const LOCKED: &str =
        "Too many failed login attempts. Log in through the web interface to answer the CAPTCHA, or ask an administrator to reset the counter.";
}

/// Answers one request at `now` (epoch milliseconds), with no peer address known.
pub fn handle(service: &Service, request: &Request, now: i64) -> Response {
    handle_from(service, request, None, now)
}

/// Answers one request from `peer` (the address of the connection's other end, used as the
/// client's when no trusted proxy names one) at `now` (epoch milliseconds).
pub fn handle_from(service: &Service, request: &Request, peer: Option<IpAddr>, now: i64) -> Response {
    let address = crate::lockout::client_address(&request.headers, peer, &service.config.lockout);
    let (path, query) = request.url.split_once('?').unwrap_or((request.url.as_str(), ""));
    if path == "/introspect" {
        return match request.method.as_str() {
            "POST" => introspect::handle(service, request, now),
            _ => method_not_allowed("POST"),
        };
    }
    if let Some(step) = path.strip_prefix(OAUTH1_PREFIX) {
        return oauth1_step(service, request, step, address, now);
    }
    let Some(route) = path.strip_prefix(PREFIX) else {
        return Response::error(404, messages::NOT_FOUND);
    };
    let method = request.method.as_str();
    let result = match route {
        "/user/token" | "/user/token/" => match method {
            "GET" => with_caller(service, request, address, now, |caller| list(service, &caller)),
            "POST" => with_caller(service, request, address, now, |caller| {
                create(service, request, &caller, now)
            }),
            _ => Err(method_not_allowed("GET, POST")),
        },
        "/openapi.json" => match method {
            "GET" => Ok(Response {
                status: 200,
                headers: vec![(
                    "content-type".to_owned(),
                    "application/json;charset=UTF-8".to_owned(),
                )],
                body: OPENAPI.to_owned(),
            }),
            _ => Err(method_not_allowed("GET")),
        },
        "/user/tokensByFilter" | "/user/tokensByFilter/" => match method {
            "GET" => with_admin(service, request, address, now, |_| {
                by_filter(service, request, query)
            }),
            _ => Err(method_not_allowed("GET")),
        },
        "/user/oauth/access-tokens" | "/user/oauth/access-tokens/" => match method {
            "GET" => with_caller(service, request, address, now, |caller| {
                Ok(oauth1_access::list_own(service, &caller))
            }),
            _ => Err(method_not_allowed("GET")),
        },
        "/admin/oauth/access-tokens" | "/admin/oauth/access-tokens/" => match method {
            "GET" => with_admin(service, request, address, now, |_| {
                Ok(oauth1_access::list_for(service, query))
            }),
            _ => Err(method_not_allowed("GET")),
        },
        _ => {
            if let Some(id) = route.strip_prefix("/user/oauth/access-tokens/") {
                match method {
                    "DELETE" => with_caller(service, request, address, now, |caller| {
                        Ok(oauth1_access::revoke_own(service, &caller, id))
                    }),
                    _ => Err(method_not_allowed("DELETE")),
                }
            } else if let Some(id) = route.strip_prefix("/admin/oauth/access-tokens/") {
                match method {
                    "DELETE" => with_admin(service, request, address, now, |_| {
                        Ok(oauth1_access::revoke_any(service, id))
                    }),
                    _ => Err(method_not_allowed("DELETE")),
                }
            } else if let Some(name) = route.strip_prefix("/user/failedLogins/") {
                match method {
                    "DELETE" => with_admin(service, request, address, now, |_| {
                        reset_failed_logins(service, name)
                    }),
                    _ => Err(method_not_allowed("DELETE")),
                }
            } else if let Some(key) = route.strip_prefix("/user/token/deleteAllFor/") {
                match method {
                    "DELETE" => with_admin(service, request, address, now, |_| delete_all_for(service, key)),
                    _ => Err(method_not_allowed("DELETE")),
                }
            } else if let Some(id) = route.strip_prefix("/user/token/") {
                match method {
                    "PATCH" => with_caller(service, request, address, now, |caller| {
                        rename(service, request, &caller, id)
                    }),
                    "DELETE" => with_caller(service, request, address, now, |caller| {
                        delete(service, &caller, id)
                    }),
                    _ => Err(method_not_allowed("PATCH, DELETE")),
                }
            } else {
                Err(Response::error(404, messages::NOT_FOUND))
            }
        }
    };
    result.unwrap_or_else(|response| response)
}

type Handled = Result<Response, Response>;

/// Where Envoy routes the OAuth 1.0a dance (Jira's servlet paths).
pub const OAUTH1_PREFIX: &str = "/plugins/servlet/oauth/";

/// The dance's endpoints; all of them 404 without an `oauth1` section.
fn oauth1_step(
    service: &Service,
    request: &Request,
    step: &str,
    address: Option<IpAddr>,
    now: i64,
) -> Response {
    let Some(oauth1) = service.config.oauth1.as_ref() else {
        return Response::error(404, messages::NOT_FOUND);
    };
    let method = request.method.as_str();
    match (step, method) {
        ("request-token", "POST") => oauth1_dance::request_token(service, oauth1, request, now),
        ("access-token", "POST") => oauth1_dance::access_token(service, oauth1, request, now),
        ("authorize", "GET") => oauth1_authorize::show(service, oauth1, request, now),
        ("authorize", "POST") => oauth1_authorize::decide(service, oauth1, request, address, now),
        ("request-token" | "access-token", _) => method_not_allowed("POST"),
        ("authorize", _) => method_not_allowed("GET, POST"),
        _ => Response::error(404, messages::NOT_FOUND),
    }
}

fn method_not_allowed(allow: &str) -> Response {
    Response::error(405, "This method is not allowed here.").with_header("allow", allow)
}

fn internal(e: &StoreError) -> Response {
    eprintln!("tokengate-tokens: {e}");
    Response::error(500, messages::INTERNAL)
}

/// Jira's answer to a login in the CAPTCHA state.
fn locked(service: &Service) -> Response {
    Response::error(403, messages::LOCKED)
        .with_header("x-authentication-denied-reason", &service.gate().denied_reason())
}

/// Authenticates the caller from `address`, then runs `handler` as them. The failed-login
/// lockout comes first: a locked user (named by Basic) or address is refused with 403 before
/// any secret is checked; a Bearer token of a locked user is refused too; a failure counts
/// against the named user and the address, and a Basic success ends the user's streak.
fn with_caller(
    service: &Service,
    request: &Request,
    address: Option<IpAddr>,
    now: i64,
    handler: impl FnOnce(Caller) -> Handled,
) -> Handled {
    match crate::login::login(service, &request.headers, address, now) {
        Ok(caller) => handler(caller),
        Err(Refused::Locked) => Err(locked(service)),
        Err(Refused::Unauthenticated) => Err(Response::error(401, messages::UNAUTHENTICATED)
            .with_header("www-authenticate", "Basic realm=\"tokengate\"")),
        Err(Refused::Store(e)) => Err(internal(&e)),
    }
}

/// Like [`with_caller`], for administrators only: anyone else gets 403 (seed 004).
fn with_admin(
    service: &Service,
    request: &Request,
    address: Option<IpAddr>,
    now: i64,
    handler: impl FnOnce(Caller) -> Handled,
) -> Handled {
    with_caller(service, request, address, now, |caller| {
        if caller.administrator {
            handler(caller)
        } else {
            Err(Response::error(403, messages::ADMIN_ONLY))
        }
    })
}

fn json_object(request: &Request) -> Result<Map<String, Value>, Response> {
    match serde_json::from_slice::<Value>(&request.body) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(Response::error(400, messages::NOT_JSON)),
    }
}

/// `tokenDescription`: a string of 1 to [`MAX_DESCRIPTION`] characters, trimmed, no control
/// characters.
fn description(body: &Map<String, Value>) -> Result<String, Response> {
    let bad = |m: &str| Err(Response::error(400, m));
    match body.get("tokenDescription") {
        Some(Value::String(text)) => {
            let text = text.trim();
            if text.is_empty() {
                bad("tokenDescription must not be empty.")
            } else if text.chars().count() > MAX_DESCRIPTION {
                bad("tokenDescription must be at most 255 characters long.")
            } else if text.chars().any(char::is_control) {
                bad("tokenDescription must not contain control characters.")
            } else {
                Ok(text.to_owned())
            }
        }
        None | Some(Value::Null) => bad("tokenDescription is required."),
        Some(_) => bad("tokenDescription must be a string."),
    }
}

/// `tokenValidityTimeInMonths`: absent means the default; more than the maximum is shortened
/// to it (seed 004: "validated and adjusted to the value set in the system wide settings").
fn validity_months(body: &Map<String, Value>, config: &Config) -> Result<u32, Response> {
    match body.get("tokenValidityTimeInMonths") {
        None | Some(Value::Null) => Ok(config.default_validity_months),
        Some(value) => match value.as_u64() {
            Some(months) if months >= 1 => Ok(u32::try_from(months)
                .map_or(config.max_validity_months, |m| m.min(config.max_validity_months))),
            _ => Err(Response::error(
                400,
                "tokenValidityTimeInMonths must be a whole number of months, at least 1.",
            )),
        },
    }
}

/// A token as the user's own list shows it (seed 004's "List all tokens").
fn listed(record: &TokenRecord) -> Value {
    json!({
        "created": record.created,
        "description": record.description,
        "id": record.id,
        "lastAccessed": record.last_accessed,
    })
}

/// A token as administrators see it (seed 004's "Filter User Tokens").
fn detailed(record: &TokenRecord) -> Value {
    json!({
        "created": record.created,
        "description": record.description,
        "id": record.id,
        "lastAccessed": record.last_accessed,
        "tokenCreatedByUserKey": record.created_by_user_key,
        "tokenForUserKey": record.user_key,
        "validUntil": record.valid_until,
    })
}

/// `POST /user/token`: creates a token for the caller, or (administrators) for
/// `tokenForUserKey`. The answer is the only time the token itself is shown.
///
/// A caller authenticated by an API token gets a token that expires no later than that one:
/// the validity is shortened to it, as a request over the maximum is shortened to the maximum
/// (seed 004's "adjusted"), and the answer's `validUntil` says so. Refusing with 400 instead
/// would break every script that sends the months it always sent.
fn create(service: &Service, request: &Request, caller: &Caller, now: i64) -> Handled {
    let body = json_object(request)?;
    let description = description(&body)?;
    let months = validity_months(&body, &service.config)?;
    let owner = match body.get("tokenForUserKey") {
        None | Some(Value::Null) => caller.user.clone(),
        Some(Value::String(key)) if *key == caller.key => caller.user.clone(),
        Some(Value::String(key)) => {
            if !caller.administrator {
                return Err(Response::error(403, messages::ADMIN_ONLY));
            }
            match service.directory.by_key(key) {
                Some(user) => user,
                None => return Err(Response::error(400, "No user with this key exists.")),
            }
        }
        Some(_) => return Err(Response::error(400, "tokenForUserKey must be a string.")),
    };
    let asked = clock::add_months(now, months);
    let valid_until = caller.token_valid_until.map_or(asked, |limit| asked.min(limit));
    let token = tokens::generate().map_err(|_| {
        eprintln!("tokengate-tokens: the OS random source failed");
        Response::error(500, messages::INTERNAL)
    })?;
    let record = service
        .store
        .create(&NewRecord {
            lookup: &token.lookup,
            hash: &token.hash,
            description: &description,
            user_key: &owner.key,
            created_by_user_key: &caller.key,
            created: now,
            valid_until,
        })
        .map_err(|e| internal(&e))?;
    let mut answer = detailed(&record);
    if let Value::Object(map) = &mut answer {
        map.insert("plainTextToken".to_owned(), Value::String(token.plain));
    }
    Ok(Response::json(200, &answer))
}

/// `GET /user/token/`: the caller's tokens.
fn list(service: &Service, caller: &User) -> Handled {
    let records = service
        .store
        .list_for_user(&caller.key)
        .map_err(|e| internal(&e))?;
    Ok(Response::json(
        200,
        &Value::Array(records.iter().map(listed).collect()),
    ))
}

/// A token id from the path; anything that is not one names no token (404).
fn token_id(text: &str) -> Result<i64, Response> {
    text.parse::<i64>()
        .ok()
        .filter(|id| *id > 0 && !text.starts_with('+'))
        .ok_or_else(|| Response::error(404, messages::TOKEN_NOT_FOUND))
}

/// `PATCH /user/token/<id>`: a new description. Another user's token is "not found", so
/// that ids do not tell whether they exist.
fn rename(service: &Service, request: &Request, caller: &User, id: &str) -> Handled {
    let id = token_id(id)?;
    let body = json_object(request)?;
    let description = description(&body)?;
    match service.store.rename(id, &caller.key, &description) {
        Ok(Some(record)) => Ok(Response::json(200, &listed(&record))),
        Ok(None) => Err(Response::error(404, messages::TOKEN_NOT_FOUND)),
        Err(e) => Err(internal(&e)),
    }
}

/// `DELETE /user/token/<id>`.
fn delete(service: &Service, caller: &User, id: &str) -> Handled {
    let id = token_id(id)?;
    match service.store.delete(id, &caller.key) {
        Ok(true) => Ok(Response::no_content()),
        Ok(false) => Err(Response::error(404, messages::TOKEN_NOT_FOUND)),
        Err(e) => Err(internal(&e)),
    }
}

/// `DELETE /user/token/deleteAllFor/<userKey>` (administrators). The key need not be in the
/// directory any more: tokens of a removed user can still be cleared.
fn delete_all_for(service: &Service, key: &str) -> Handled {
    let key = percent_encoding::percent_decode_str(key)
        .decode_utf8()
        .map_err(|_| Response::error(400, "The user key is not valid UTF-8."))?;
    if key.is_empty() {
        return Err(Response::error(404, messages::NOT_FOUND));
    }
    service.store.delete_all_for(&key).map_err(|e| internal(&e))?;
    Ok(Response::no_content())
}

/// `DELETE /user/failedLogins/<name>` (administrators): clears the user's failed-login
/// counter in the store, for every replica and every Envoy at once (Envoys that cached the
/// "locked" answer let the user in again within their `locked_cache_ttl_seconds`). The name
/// is folded as Jira folds names; a user the directory does not know is 404.
fn reset_failed_logins(service: &Service, name: &str) -> Handled {
    let name = percent_encoding::percent_decode_str(name)
        .decode_utf8()
        .map_err(|_| Response::error(400, "The user name is not valid UTF-8."))?;
    match service.directory.by_name(&name) {
        Some(user) => {
            service
                .store
                .clear_failed_logins(&user.name)
                .map_err(|e| internal(&e))?;
            Ok(Response::no_content())
        }
        None => Err(Response::error(404, messages::NOT_FOUND)),
    }
}

/// The paging parameters of `tokensByFilter`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Paging {
    not_valid_after: i64,
    page: u64,
    limit: u64,
}

fn paging(query: &str) -> Result<Paging, Response> {
    let mut paging = Paging {
        not_valid_after: -1,
        page: 0,
        limit: MAX_PAGE,
    };
    let bad = |name: &str| Response::error(400, &format!("{name} must be a whole number."));
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        match name.as_ref() {
            "notValidAfter" => paging.not_valid_after = value.parse().map_err(|_| bad("notValidAfter"))?,
            "page" => paging.page = value.parse().map_err(|_| bad("page"))?,
            "limit" => {
                let limit: u64 = value.parse().map_err(|_| bad("limit"))?;
                if limit == 0 {
                    return Err(Response::error(400, "limit must be at least 1."));
                }
                paging.limit = limit.min(MAX_PAGE);
            }
            _ => {}
        }
    }
    Ok(paging)
}

/// The public base URL for paging links: the configured one the client used (see
/// [`crate::links`]), never a `Host` header as it came.
fn base_url<'a>(service: &'a Service, request: &Request) -> &'a str {
    crate::links::base_for(
        &service.config.public_base_urls,
        service.config.base_url.as_ref(),
        &request.headers,
    )
}

/// `GET /user/tokensByFilter?notValidAfter=<millis|-1>&page=&limit=` (administrators): every
/// user's tokens that are no longer valid after `notValidAfter` (`-1`: all), soonest to
/// expire first, paged as in seed 004.
fn by_filter(service: &Service, request: &Request, query: &str) -> Handled {
    let paging = paging(query)?;
    // A page past the end is an empty page, however far past (as Jira pages).
    let offset = paging.page.saturating_mul(paging.limit);
    let not_valid_after = (paging.not_valid_after != -1).then_some(paging.not_valid_after);
    let (records, total) = service
        .store
        .filter(not_valid_after, offset, paging.limit)
        .map_err(|e| internal(&e))?;
    let total_pages = total.div_ceil(paging.limit);
    let base = base_url(service, request);
    let link = |page: u64| {
        format!(
            "{base}{PREFIX}/user/tokensByFilter?page={page}&limit={}&notValidAfter={}",
            paging.limit, paging.not_valid_after
        )
    };
    let next = if paging.page.saturating_add(1) < total_pages {
        link(paging.page + 1)
    } else {
        String::new()
    };
    let previous = if paging.page > 0 && total_pages > 0 {
        link((paging.page - 1).min(total_pages - 1))
    } else {
        String::new()
    };
    Ok(Response::json(
        200,
        &json!({
            "content": records.iter().map(detailed).collect::<Vec<_>>(),
            "currentPage": paging.page,
            "limit": paging.limit,
            "offset": offset,
            "paginationLinks": {"baseUrl": base, "nextPage": next, "previousPage": previous},
            "total": total,
            "totalPages": total_pages,
        }),
    ))
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use crate::store::Store;
    use crate::users::tests::demo_directory;
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine as _;

    /// 2020-02-04T16:01:02.985Z, token 64's `created` in seed 004.
    pub const NOW: i64 = 1_580_832_062_985;

    pub fn service() -> Service {
        Service::new(
            Config::for_tests(),
            Store::open_in_memory().unwrap(),
            Box::new(demo_directory()),
        )
    }

    pub fn basic(pair: &str) -> (String, String) {
        (
            "authorization".to_owned(),
            format!("Basic {}", STANDARD.encode(pair)),
        )
    }

    pub fn as_user(user: &str) -> (String, String) {
        basic(&format!("{user}:{user}-password"))
    }

    pub fn request(method: &str, url: &str, auth: Option<(String, String)>, body: &str) -> Request {
        Request {
            method: method.to_owned(),
            url: url.to_owned(),
            headers: auth.into_iter().collect(),
            body: body.as_bytes().to_vec(),
        }
    }

    fn url(route: &str) -> String {
        format!("{PREFIX}{route}")
    }

    /// Creates a token as `user` with `body`; the whole answer.
    pub fn create_as(service: &Service, user: &str, body: &str, now: i64) -> Value {
        let response = handle(
            service,
            &request("POST", &url("/user/token"), Some(as_user(user)), body),
            now,
        );
        assert_eq!(response.status, 200, "{}", response.body);
        response.json_body()
    }

    fn assert_jira_error(response: &Response, status: u16) {
        assert_eq!(response.status, status, "{}", response.body);
        let body = response.json_body();
        assert!(body["errorMessages"][0].is_string(), "{}", response.body);
        assert_eq!(body["errors"], json!({}));
    }

    #[test]
    fn a_created_token_is_shown_once_with_its_validity_and_listed_without_it() {
        let service = service();
        let created = create_as(
            &service,
            "fred",
            r#"{"tokenDescription":"Automation token"}"#,
            NOW,
        );
        assert_eq!(created["id"], 1);
        assert_eq!(created["description"], "Automation token");
        assert_eq!(created["tokenForUserKey"], "JIRAUSER10004");
        assert_eq!(created["tokenCreatedByUserKey"], "JIRAUSER10004");
        assert_eq!(created["created"], NOW);
        // The default of 6 months: token 64 of seed 004 was created at NOW and so valid.
        assert_eq!(created["validUntil"], 1_596_556_862_985_i64);
        assert!(created["plainTextToken"].as_str().unwrap().starts_with("tgat_"));

        let listed = handle(
            &service,
            &request("GET", &url("/user/token/"), Some(as_user("fred")), ""),
            NOW,
        );
        assert_eq!(listed.status, 200);
        assert_eq!(
            listed.json_body(),
            json!([{"created": NOW, "description": "Automation token", "id": 1, "lastAccessed": 0}])
        );
        assert!(!listed.body.contains("tgat_"));
    }

    #[test]
    fn validity_is_clamped_to_the_maximum_and_one_month_is_kept() {
        let service = service();
        let long = create_as(
            &service,
            "fred",
            r#"{"tokenDescription":"x","tokenValidityTimeInMonths":120}"#,
            NOW,
        );
        assert_eq!(long["validUntil"], clock::add_months(NOW, 12));
        let short = create_as(
            &service,
            "fred",
            r#"{"tokenDescription":"x","tokenValidityTimeInMonths":1}"#,
            NOW,
        );
        assert_eq!(short["validUntil"], clock::add_months(NOW, 1));
        let huge = create_as(
            &service,
            "fred",
            r#"{"tokenDescription":"x","tokenValidityTimeInMonths":99999999999}"#,
            NOW,
        );
        assert_eq!(huge["validUntil"], clock::add_months(NOW, 12));
    }

    #[test]
    fn a_token_made_with_a_token_expires_no_later_than_it() {
        let service = service();
        let parent = create_as(
            &service,
            "fred",
            r#"{"tokenDescription":"one month","tokenValidityTimeInMonths":1}"#,
            NOW,
        );
        let plain = parent["plainTextToken"].as_str().unwrap().to_owned();
        let later = NOW + 86_400_000;
        let body = r#"{"tokenDescription":"twelve months","tokenValidityTimeInMonths":12}"#;
        for auth in [
            ("authorization".to_owned(), format!("Bearer {plain}")),
            basic(&format!("fred:{plain}")),
        ] {
            let response = handle(
                &service,
                &request("POST", &url("/user/token"), Some(auth), body),
                later,
            );
            assert_eq!(response.status, 200, "{}", response.body);
            let child = response.json_body();
            assert_eq!(
                child["validUntil"], parent["validUntil"],
                "shortened to the parent"
            );
        }
        // A password is no token: its creates get what they ask for.
        let by_password = create_as(&service, "fred", body, later);
        assert_eq!(by_password["validUntil"], clock::add_months(later, 12));
        // A shorter request than the parent's remaining life is kept as asked.
        let long_parent = create_as(&service, "fred", body, NOW)["plainTextToken"]
            .as_str()
            .unwrap()
            .to_owned();
        let response = handle(
            &service,
            &request(
                "POST",
                &url("/user/token"),
                Some(("authorization".to_owned(), format!("Bearer {long_parent}"))),
                r#"{"tokenDescription":"short","tokenValidityTimeInMonths":1}"#,
            ),
            later,
        );
        assert_eq!(response.json_body()["validUntil"], clock::add_months(later, 1));
    }

    #[test]
    fn bad_create_bodies_get_400_with_a_jira_error_collection() {
        let service = service();
        let bodies = [
            "",
            "not json",
            "[]",
            "{}",
            r#"{"tokenDescription":""}"#,
            r#"{"tokenDescription":"   "}"#,
            r#"{"tokenDescription":42}"#,
            r#"{"tokenDescription":"x","tokenValidityTimeInMonths":0}"#,
            r#"{"tokenDescription":"x","tokenValidityTimeInMonths":-3}"#,
            r#"{"tokenDescription":"x","tokenValidityTimeInMonths":1.5}"#,
            r#"{"tokenDescription":"x","tokenValidityTimeInMonths":"3"}"#,
            r#"{"tokenDescription":"x","tokenForUserKey":7}"#,
            r#"{"tokenDescription":"a\u0000b"}"#,
            &format!(r#"{{"tokenDescription":"{}"}}"#, "x".repeat(256)),
        ];
        for body in bodies {
            let response = handle(
                &service,
                &request("POST", &url("/user/token"), Some(as_user("fred")), body),
                NOW,
            );
            assert_jira_error(&response, 400);
        }
        assert_eq!(service.store.filter(None, 0, 50).unwrap().1, 0);
    }

    #[test]
    fn without_good_credentials_every_endpoint_answers_401() {
        let auths = [
            None,
            Some(basic("fred:wrong")),
            Some(basic("nobody:fred-password")),
            Some(as_user("departed")),
            Some(("authorization".to_owned(), "Bearer tgat_nope".to_owned())),
            Some(("authorization".to_owned(), "Basic %%%".to_owned())),
        ];
        let calls = [
            ("GET", "/user/token/"),
            ("POST", "/user/token"),
            ("PATCH", "/user/token/1"),
            ("DELETE", "/user/token/1"),
            ("DELETE", "/user/token/deleteAllFor/JIRAUSER10004"),
            ("GET", "/user/tokensByFilter?notValidAfter=-1"),
        ];
        for auth in auths {
            for (method, route) in calls {
                // A fresh service each time: the third wrong password would lock fred (403).
                let service = service();
                let response = handle(&service, &request(method, &url(route), auth.clone(), "{}"), NOW);
                assert_jira_error(&response, 401);
                assert_eq!(
                    response.json_body()["errorMessages"][0],
                    messages::UNAUTHENTICATED
                );
                assert!(response.headers.iter().any(|(n, _)| n == "www-authenticate"));
            }
        }
    }

    #[test]
    fn a_token_authenticates_as_basic_pair_or_bearer_and_records_its_use() {
        let service = service();
        let token = create_as(&service, "fred", r#"{"tokenDescription":"t"}"#, NOW)["plainTextToken"]
            .as_str()
            .unwrap()
            .to_owned();
        let bearer = ("authorization".to_owned(), format!("Bearer {token}"));
        let later = NOW + 5000;
        let response = handle(
            &service,
            &request("GET", &url("/user/token/"), Some(bearer), ""),
            later,
        );
        assert_eq!(response.json_body()[0]["lastAccessed"], later);
        let pair = basic(&format!("FRED:{token}"));
        assert_eq!(
            handle(
                &service,
                &request("GET", &url("/user/token/"), Some(pair), ""),
                later
            )
            .status,
            200
        );
        // Another user's name with fred's token is no good.
        let wrong = basic(&format!("jsmith:{token}"));
        assert_eq!(
            handle(
                &service,
                &request("GET", &url("/user/token/"), Some(wrong), ""),
                later
            )
            .status,
            401
        );
        // Nor is an expired token.
        let expired = ("authorization".to_owned(), format!("Bearer {token}"));
        let after = clock::add_months(NOW, 6);
        assert_eq!(
            handle(
                &service,
                &request("GET", &url("/user/token/"), Some(expired), ""),
                after
            )
            .status,
            401
        );
    }

    #[test]
    fn rename_and_delete_own_tokens_and_404_for_anyone_elses() {
        let service = service();
        let id = create_as(&service, "fred", r#"{"tokenDescription":"old"}"#, NOW)["id"]
            .as_i64()
            .unwrap();
        let rename_body = r#"{"tokenDescription":"Updated token description"}"#;
        let route = url(&format!("/user/token/{id}"));
        for user in ["jsmith", "admin"] {
            let response = handle(
                &service,
                &request("PATCH", &route, Some(as_user(user)), rename_body),
                NOW,
            );
            assert_jira_error(&response, 404);
            let response = handle(&service, &request("DELETE", &route, Some(as_user(user)), ""), NOW);
            assert_jira_error(&response, 404);
        }
        // Ids that do not exist look the same as other users' ids.
        let missing = handle(
            &service,
            &request("DELETE", &url("/user/token/999"), Some(as_user("jsmith")), ""),
            NOW,
        );
        assert_eq!(
            missing.body,
            handle(
                &service,
                &request("DELETE", &route, Some(as_user("jsmith")), ""),
                NOW
            )
            .body
        );
        for bad in ["abc", "0", "-1", "+1", "1.0", ""] {
            let response = handle(
                &service,
                &request(
                    "DELETE",
                    &url(&format!("/user/token/{bad}")),
                    Some(as_user("fred")),
                    "",
                ),
                NOW,
            );
            assert_ne!(response.status, 204, "{bad}");
        }
        let response = handle(
            &service,
            &request("PATCH", &route, Some(as_user("fred")), rename_body),
            NOW,
        );
        assert_eq!(response.status, 200);
        assert_eq!(response.json_body()["description"], "Updated token description");
        let response = handle(
            &service,
            &request("PATCH", &route, Some(as_user("fred")), "{}"),
            NOW,
        );
        assert_jira_error(&response, 400);
        let response = handle(
            &service,
            &request("DELETE", &route, Some(as_user("fred")), ""),
            NOW,
        );
        assert_eq!(response.status, 204);
        let response = handle(
            &service,
            &request("DELETE", &route, Some(as_user("fred")), ""),
            NOW,
        );
        assert_jira_error(&response, 404);
    }

    #[test]
    fn administrators_create_for_others_and_users_cannot() {
        let service = service();
        let body = r#"{"tokenDescription":"token for another user","tokenForUserKey":"JIRAUSER10004","tokenValidityTimeInMonths":24}"#;
        let created = create_as(&service, "admin", body, NOW);
        assert_eq!(created["tokenForUserKey"], "JIRAUSER10004");
        assert_eq!(created["tokenCreatedByUserKey"], "JIRAUSER10005");
        assert_eq!(created["validUntil"], clock::add_months(NOW, 12));
        let fred = handle(
            &service,
            &request("GET", &url("/user/token/"), Some(as_user("fred")), ""),
            NOW,
        );
        assert_eq!(fred.json_body().as_array().unwrap().len(), 1);

        let for_admin = r#"{"tokenDescription":"x","tokenForUserKey":"JIRAUSER10005"}"#;
        let response = handle(
            &service,
            &request("POST", &url("/user/token"), Some(as_user("fred")), for_admin),
            NOW,
        );
        assert_jira_error(&response, 403);
        // A user naming their own key is fine.
        create_as(
            &service,
            "fred",
            r#"{"tokenDescription":"x","tokenForUserKey":"JIRAUSER10004"}"#,
            NOW,
        );
        let unknown = r#"{"tokenDescription":"x","tokenForUserKey":"JIRAUSER99999"}"#;
        let response = handle(
            &service,
            &request("POST", &url("/user/token"), Some(as_user("admin")), unknown),
            NOW,
        );
        assert_jira_error(&response, 400);
    }

    #[test]
    fn only_administrators_reset_a_failed_login_counter_of_a_known_user() {
        let service = service();
        let reset = |who: &str, name: &str| {
            handle(
                &service,
                &request(
                    "DELETE",
                    &url(&format!("/user/failedLogins/{name}")),
                    Some(as_user(who)),
                    "",
                ),
                NOW,
            )
        };
        assert_eq!(reset("admin", "fred").status, 204);
        assert_jira_error(&reset("fred", "fred"), 403);
        assert_jira_error(&reset("admin", "nobody"), 404);
    }

    #[test]
    fn only_administrators_delete_all_of_a_users_tokens() {
        let service = service();
        create_as(&service, "fred", r#"{"tokenDescription":"a"}"#, NOW);
        create_as(&service, "fred", r#"{"tokenDescription":"b"}"#, NOW);
        create_as(&service, "jsmith", r#"{"tokenDescription":"c"}"#, NOW);
        let route = url("/user/token/deleteAllFor/JIRAUSER10004");
        let response = handle(
            &service,
            &request("DELETE", &route, Some(as_user("jsmith")), ""),
            NOW,
        );
        assert_jira_error(&response, 403);
        let response = handle(
            &service,
            &request("DELETE", &route, Some(as_user("admin")), ""),
            NOW,
        );
        assert_eq!(response.status, 204);
        assert!(service.store.list_for_user("JIRAUSER10004").unwrap().is_empty());
        assert_eq!(service.store.list_for_user("JIRAUSER10006").unwrap().len(), 1);
    }

    #[test]
    fn tokens_by_filter_pages_with_links_as_in_the_seed() {
        let service = service();
        for (months, description) in [(6, "Shell Script"), (12, "Automation Script"), (3, "Soon")] {
            let body =
                json!({"tokenDescription": description, "tokenValidityTimeInMonths": months}).to_string();
            create_as(&service, "admin", &body, NOW);
        }
        let route = url("/user/tokensByFilter?page=0&limit=1&notValidAfter=1688918956972");
        let response = handle(&service, &request("GET", &route, Some(as_user("admin")), ""), NOW);
        assert_eq!(response.status, 200, "{}", response.body);
        let body = response.json_body();
        assert_eq!(body["content"].as_array().unwrap().len(), 1);
        assert_eq!(body["content"][0]["description"], "Soon");
        assert_eq!(body["content"][0]["tokenForUserKey"], "JIRAUSER10005");
        assert_eq!(
            (body["currentPage"].clone(), body["limit"].clone()),
            (json!(0), json!(1))
        );
        assert_eq!(
            (
                body["offset"].clone(),
                body["total"].clone(),
                body["totalPages"].clone()
            ),
            (json!(0), json!(3), json!(3))
        );
        assert_eq!(
            body["paginationLinks"],
            json!({"baseUrl": "https://your-jira-or-confluence",
                   "nextPage": "https://your-jira-or-confluence/rest/de.resolution.apitokenauth/latest/user/tokensByFilter?page=1&limit=1&notValidAfter=1688918956972",
                   "previousPage": ""})
        );
        // The field order of seed 004's answer.
        assert!(response.body.starts_with(r#"{"content":[{"created":"#));

        let last = url("/user/tokensByFilter?page=2&limit=1&notValidAfter=1688918956972");
        let body = handle(&service, &request("GET", &last, Some(as_user("admin")), ""), NOW).json_body();
        assert_eq!(body["paginationLinks"]["nextPage"], "");
        assert!(body["paginationLinks"]["previousPage"]
            .as_str()
            .unwrap()
            .ends_with("?page=1&limit=1&notValidAfter=1688918956972"));
        assert_eq!(body["offset"], 2);

        // Only tokens invalid by then: 3 and 6 months, not 12.
        let cutoff = clock::add_months(NOW, 6);
        let some = url(&format!("/user/tokensByFilter?notValidAfter={cutoff}"));
        let body = handle(&service, &request("GET", &some, Some(as_user("admin")), ""), NOW).json_body();
        assert_eq!(body["total"], 2);
        assert_eq!(body["limit"], 50);
        assert_eq!(body["paginationLinks"]["nextPage"], "");

        // limit is at most 50.
        let big = url("/user/tokensByFilter?notValidAfter=-1&limit=500");
        let body = handle(&service, &request("GET", &big, Some(as_user("admin")), ""), NOW).json_body();
        assert_eq!(
            (body["limit"].clone(), body["total"].clone()),
            (json!(50), json!(3))
        );
    }

    #[test]
    fn tokens_by_filter_is_for_administrators_and_checks_its_numbers() {
        let service = service();
        let route = url("/user/tokensByFilter?notValidAfter=-1");
        assert_jira_error(
            &handle(&service, &request("GET", &route, Some(as_user("fred")), ""), NOW),
            403,
        );
        for query in [
            "notValidAfter=soon",
            "page=-1",
            "limit=0",
            "limit=x",
            "page=99999999999999999999",
        ] {
            let route = url(&format!("/user/tokensByFilter?{query}"));
            let response = handle(&service, &request("GET", &route, Some(as_user("admin")), ""), NOW);
            assert_jira_error(&response, 400);
        }
        // A page past the end, however far, is an empty page (what the description promises
        // for any page up to 2^64 - 1).
        let huge = url("/user/tokensByFilter?page=18446744073709551615&limit=50");
        let response = handle(&service, &request("GET", &huge, Some(as_user("admin")), ""), NOW);
        assert_eq!(response.status, 200, "{}", response.body);
        assert_eq!(response.json_body()["content"], json!([]));
    }

    #[test]
    fn links_use_the_configured_base_url_the_client_used_and_never_a_bare_host() {
        let mut service = service();
        service.config.base_url = None;
        service.config.public_base_urls = ["https://jira.example.com", "http://127.0.0.1:8080"]
            .iter()
            .filter_map(|t| crate::links::BaseUrl::parse(t))
            .collect();
        for _ in 0..2 {
            create_as(&service, "admin", r#"{"tokenDescription":"x"}"#, NOW);
        }
        let next = |service: &Service, extra: &[(&str, &str)]| {
            let mut req = request(
                "GET",
                &url("/user/tokensByFilter?limit=1"),
                Some(as_user("admin")),
                "",
            );
            req.headers
                .extend(extra.iter().map(|(n, v)| ((*n).to_owned(), (*v).to_owned())));
            let body = handle(service, &req, NOW).json_body();
            body["paginationLinks"]["nextPage"].as_str().unwrap().to_owned()
        };
        let tail =
            "/rest/de.resolution.apitokenauth/latest/user/tokensByFilter?page=1&limit=1&notValidAfter=-1";
        assert_eq!(
            next(&service, &[("host", "127.0.0.1:8080")]),
            format!("http://127.0.0.1:8080{tail}")
        );
        assert_eq!(
            next(
                &service,
                &[("host", "jira.example.com"), ("x-forwarded-proto", "https")]
            ),
            format!("https://jira.example.com{tail}")
        );
        // An attacker's Host gets the canonical (first) base URL, not a link to itself.
        assert_eq!(
            next(&service, &[("host", "evil.example")]),
            format!("https://jira.example.com{tail}")
        );
        // Nothing configured: relative links, whatever Host says.
        service.config.public_base_urls.clear();
        assert_eq!(next(&service, &[("host", "127.0.0.1:8080")]), tail);
    }

    #[test]
    fn the_openapi_description_is_served_without_credentials_and_names_every_route() {
        let service = service();
        let response = handle(&service, &request("GET", &url("/openapi.json"), None, ""), NOW);
        assert_eq!(response.status, 200);
        let spec = response.json_body();
        assert_eq!(spec["openapi"], "3.0.3");
        let paths = spec["paths"].as_object().unwrap();
        for route in [
            "/user/token",
            "/user/token/{id}",
            "/user/token/deleteAllFor/{userKey}",
            "/user/tokensByFilter",
            "/user/failedLogins/{name}",
            "/openapi.json",
            "/user/oauth/access-tokens",
            "/user/oauth/access-tokens/{id}",
            "/admin/oauth/access-tokens",
            "/admin/oauth/access-tokens/{id}",
        ] {
            assert!(paths.contains_key(&url(route)), "{route}");
        }
        assert!(paths.contains_key("/introspect"));
        // Every operation has a response schema for every status it lists (204: no body).
        for (path, item) in paths {
            for (method, operation) in item.as_object().unwrap() {
                let Some(responses) = operation.get("responses") else {
                    continue;
                };
                for (status, answer) in responses.as_object().unwrap() {
                    let answer = match answer.get("$ref").and_then(Value::as_str) {
                        Some(r) => &spec["components"]["responses"][r.rsplit('/').next().unwrap()],
                        None => answer,
                    };
                    assert!(
                        status == "204" || answer["content"].is_object(),
                        "{method} {path} {status}"
                    );
                }
            }
        }
        let post = handle(&service, &request("POST", &url("/openapi.json"), None, ""), NOW);
        assert_eq!(post.status, 405);
    }

    #[test]
    fn unknown_paths_are_404_and_wrong_methods_405() {
        let service = service();
        let response = handle(
            &service,
            &request("GET", "/rest/api/2/myself", Some(as_user("fred")), ""),
            NOW,
        );
        assert_jira_error(&response, 404);
        let response = handle(
            &service,
            &request("PUT", &url("/user/token"), Some(as_user("fred")), ""),
            NOW,
        );
        assert_jira_error(&response, 405);
        let response = handle(&service, &request("GET", "/introspect", None, ""), NOW);
        assert_eq!(response.status, 405);
    }

    fn denied_reason(response: &Response) -> Option<&str> {
        response
            .headers
            .iter()
            .find(|(n, _)| n == "x-authentication-denied-reason")
            .map(|(_, v)| v.as_str())
    }

    fn list_as(service: &Service, auth: (String, String), now: i64) -> Response {
        handle(service, &request("GET", &url("/user/token"), Some(auth), ""), now)
    }

    #[test]
    fn three_wrong_passwords_lock_a_user_for_every_credential_until_an_administrator_resets() {
        let service = service();
        let token = create_as(&service, "fred", r#"{"tokenDescription":"t"}"#, NOW)["plainTextToken"]
            .as_str()
            .unwrap()
            .to_owned();
        for name in ["fred", "FRED", "Fred"] {
            assert_eq!(
                list_as(&service, basic(&format!("{name}:wrong")), NOW).status,
                401
            );
        }
        let bearer = ("authorization".to_owned(), format!("Bearer {token}"));
        for auth in [as_user("fred"), basic(&format!("fred:{token}")), bearer.clone()] {
            let response = list_as(&service, auth, NOW + 1);
            assert_jira_error(&response, 403);
            assert_eq!(
                denied_reason(&response),
                Some("CAPTCHA_CHALLENGE; login-url=https://jira.test/login.jsp")
            );
        }
        assert_eq!(
            list_as(&service, as_user("jsmith"), NOW + 1).status,
            200,
            "others log in"
        );
        let reset = handle(
            &service,
            &request(
                "DELETE",
                &url("/user/failedLogins/FRED"),
                Some(as_user("admin")),
                "",
            ),
            NOW + 2,
        );
        assert_eq!(reset.status, 204);
        assert_eq!(list_as(&service, bearer, NOW + 3).status, 200);
        assert_eq!(list_as(&service, as_user("fred"), NOW + 3).status, 200);
    }

    #[test]
    fn a_lock_ends_with_the_window_and_a_success_ends_a_streak() {
        let service = service();
        let window = service.config.lockout.window_ms;
        for _ in 0..3 {
            list_as(&service, basic("fred:wrong"), NOW);
        }
        assert_eq!(list_as(&service, as_user("fred"), NOW + window - 1).status, 403);
        assert_eq!(list_as(&service, as_user("fred"), NOW + window).status, 200);
        for _ in 0..2 {
            list_as(&service, basic("fred:wrong"), NOW + window);
        }
        assert_eq!(list_as(&service, as_user("fred"), NOW + window).status, 200);
        list_as(&service, basic("fred:wrong"), NOW + window);
        assert_eq!(
            list_as(&service, as_user("fred"), NOW + window).status,
            200,
            "the success before restarted the count"
        );
    }

    #[test]
    fn one_client_address_is_throttled_across_names() {
        let service = service();
        let from = |address: &str, auth: (String, String)| {
            let mut request = request("GET", &url("/user/token"), Some(auth), "");
            request
                .headers
                .push(("x-envoy-external-address".to_owned(), address.to_owned()));
            handle(&service, &request, NOW)
        };
        for i in 0..service.config.lockout.max_failures_per_address {
            assert_eq!(from("203.0.113.7", basic(&format!("guess{i}:x"))).status, 401);
        }
        let response = from("203.0.113.7", as_user("fred"));
        assert_eq!(response.status, 403, "the address is throttled");
        assert!(denied_reason(&response).is_some());
        assert_eq!(
            from("203.0.113.8", as_user("fred")).status,
            200,
            "fred is not locked"
        );
        let peer: IpAddr = "203.0.113.7".parse().unwrap();
        let direct = handle_from(
            &service,
            &request("GET", &url("/user/token"), Some(as_user("fred")), ""),
            Some(peer),
            NOW,
        );
        assert_eq!(direct.status, 403, "without the header, the peer is the client");
    }
}
