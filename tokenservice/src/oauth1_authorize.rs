//! The user's step of the OAuth 1.0a dance, on Jira's path
//! `/plugins/servlet/oauth/authorize`:
//!
//! - `GET ?oauth_token=<request token>`: a page naming the consumer, with a login (password or
//!   API token) and Allow / Deny ([`crate::oauth1_page`]), and the CSRF cookie
//!   ([`crate::oauth1_csrf`]);
//! - `POST` (the form): the CSRF value checked, then the login checked as every login of the
//!   service ([`crate::login`]: the lockout, the per-address throttle, argon2 on the password
//!   lane), then the decision recorded in one statement that only a pending, unexpired request
//!   token takes ([`crate::store::TokenStore::decide_request_token`]), so two posts for one
//!   request token cannot both decide. Allow binds the request token to the user with a fresh
//!   verifier (stored hashed) and sends the browser to the callback with `oauth_token` and
//!   `oauth_verifier` (`oob`: a page showing the verifier); Deny marks it denied and sends
//!   `oauth_verifier=denied`. A wrong login shows the form again (401) and counts as a failed
//!   login; a locked user or address gets 403 without any secret checked.
//!
//! Deny needs the login too: the decision is the user's, and a request token's URL (which can
//! leak through a referrer or a log) must not be enough to refuse it for them.

use crate::config::{Consumer, OAuth1};
use crate::http::{Request, Response};
use crate::login::{self, Refused};
use crate::oauth1_callback as callback;
use crate::oauth1_csrf as csrf;
use crate::oauth1_page::{self, Form};
use crate::oauth_tokens;
use crate::service::Service;
use crate::store::{RequestTokenRecord, RequestTokenState, StoreError};
use oauth1::Problem;
use std::net::IpAddr;

/// Messages of the pages.
pub mod messages {
    pub const NO_TOKEN: &str = "The link has no oauth_token. Start again from the application.";
    pub const UNKNOWN: &str =
        "This authorization request is unknown, or has already been answered. Start again from the application.";
    pub const EXPIRED: &str = "This authorization request has expired. Start again from the application.";
    pub const FORGED: &str =
        "The form did not come from this site, or has expired (XSRF check failed). Open the authorization link again.";
    pub const BAD_LOGIN: &str = "The user name, password or API token is not correct.";
    pub const CHOOSE: &str = "Choose Allow or Deny.";
    pub const REPEATED: &str = "A form field was sent twice.";
}

/// The one value of each form or query field the authorize step reads.
#[derive(Debug, Default)]
struct Fields {
    oauth_token: Option<String>,
    atl_token: Option<String>,
    os_username: Option<String>,
    os_password: Option<String>,
    approve: bool,
    deny: bool,
}

/// Reads `input` (a query or a form body); `None` when a field is repeated.
fn fields(input: &[u8]) -> Option<Fields> {
    let mut fields = Fields::default();
    for (name, value) in form_urlencoded::parse(input) {
        let slot = match name.as_ref() {
            "oauth_token" => &mut fields.oauth_token,
            "atl_token" => &mut fields.atl_token,
            "os_username" => &mut fields.os_username,
            "os_password" => &mut fields.os_password,
            "approve" => {
                fields.approve = true;
                continue;
            }
            "deny" => {
                fields.deny = true;
                continue;
            }
            _ => continue,
        };
        if slot.replace(value.into_owned()).is_some() {
            return None;
        }
    }
    Some(fields)
}

fn page(status: u16, html: String, record: Option<&RequestTokenRecord>) -> Response {
    let origin = record.and_then(|r| callback::origin(&r.callback));
    oauth1_page::response(status, html, origin)
}

fn problem_page(status: u16, problem: Problem, message: &str) -> Response {
    page(status, oauth1_page::problem(problem, message), None)
}

fn internal(e: &StoreError) -> Response {
    eprintln!("tokengate-tokens: {e}");
    Response::error(500, crate::api::messages::INTERNAL)
}

/// A pending, unexpired request token and its consumer, or the page saying why not.
fn pending<'a>(
    service: &Service,
    oauth1: &'a OAuth1,
    token: Option<&str>,
    now: i64,
) -> Result<(RequestTokenRecord, &'a Consumer), Response> {
    let Some(token) = token.filter(|t| !t.is_empty()) else {
        return Err(problem_page(400, Problem::ParameterAbsent, messages::NO_TOKEN));
    };
    let unknown = || problem_page(401, Problem::TokenRejected, messages::UNKNOWN);
    if !oauth_tokens::is_well_formed(token) {
        return Err(unknown());
    }
    let record = match service.store.find_request_token(&oauth_tokens::hash(token)) {
        Ok(Some(record)) => record,
        Ok(None) => return Err(unknown()),
        Err(e) => return Err(internal(&e)),
    };
    if now >= record.expires {
        return Err(problem_page(401, Problem::TokenExpired, messages::EXPIRED));
    }
    if record.state != RequestTokenState::Pending {
        return Err(unknown());
    }
    // A consumer removed from the configuration since: its request tokens go with it.
    let consumer = oauth1.consumer(&record.consumer_key).ok_or_else(unknown)?;
    Ok((record, consumer))
}

/// Whether the client reached the service over https (the cookie is then `Secure`).
fn over_https(service: &Service, request: &Request) -> bool {
    crate::oauth1_signed::base_url(&service.config, &request.headers)
        .is_some_and(|base| base.to_ascii_lowercase().starts_with("https://"))
}

/// `GET /plugins/servlet/oauth/authorize?oauth_token=...`.
pub fn show(service: &Service, oauth1: &OAuth1, request: &Request, now: i64) -> Response {
    let query = request.url.split_once('?').map_or("", |(_, q)| q);
    let Some(fields) = fields(query.as_bytes()) else {
        return problem_page(400, Problem::ParameterRejected, messages::REPEATED);
    };
    let token = fields.oauth_token.as_deref();
    let (record, consumer) = match pending(service, oauth1, token, now) {
        Ok(found) => found,
        Err(response) => return response,
    };
    let token = token.unwrap_or_default();
    let value = csrf::value(&service.config.introspection.client_secret, token);
    if !oauth_tokens::hashes_equal(&csrf::hash(&value), &record.csrf_hash) {
        // Made under another introspection secret (the CSRF key): no post could pass.
        return problem_page(401, Problem::TokenRejected, messages::UNKNOWN);
    }
    let html = oauth1_page::authorize(&Form {
        consumer_name: &consumer.name,
        oauth_token: token,
        atl_token: &value,
        error: None,
        username: None,
    });
    page(200, html, Some(&record)).with_header(
        "set-cookie",
        &csrf::set_cookie(&value, over_https(service, request)),
    )
}

/// `POST /plugins/servlet/oauth/authorize` from `address` (the client's, for the lockout).
pub fn decide(
    service: &Service,
    oauth1: &OAuth1,
    request: &Request,
    address: Option<IpAddr>,
    now: i64,
) -> Response {
    let Some(fields) = fields(&request.body) else {
        return problem_page(400, Problem::ParameterRejected, messages::REPEATED);
    };
    let token = fields.oauth_token.as_deref();
    let (record, consumer) = match pending(service, oauth1, token, now) {
        Ok(found) => found,
        Err(response) => return response,
    };
    let token = token.unwrap_or_default();
    let cookie = csrf::cookie(&request.headers);
    if csrf::check(fields.atl_token.as_deref(), cookie, &record.csrf_hash).is_err() {
        return problem_page(403, Problem::ParameterRejected, messages::FORGED);
    }
    let again = |status: u16, error: &str| {
        let html = oauth1_page::authorize(&Form {
            consumer_name: &consumer.name,
            oauth_token: token,
            atl_token: fields.atl_token.as_deref().unwrap_or_default(),
            error: Some(error),
            username: fields.os_username.as_deref(),
        });
        page(status, html, Some(&record))
    };
    if fields.approve == fields.deny {
        return again(400, messages::CHOOSE);
    }
    let user = fields.os_username.as_deref().unwrap_or_default();
    let secret = fields.os_password.as_deref().unwrap_or_default();
    // A name with `:` cannot be one Basic pair, and names nobody: no login to count.
    if user.is_empty() || secret.is_empty() || user.contains(':') {
        return again(401, messages::BAD_LOGIN);
    }
    let headers = [("authorization".to_owned(), basic_auth::encode(user, secret))];
    let caller = match login::login(service, &headers, address, now) {
        Ok(caller) => caller,
        Err(Refused::Locked) => {
            return again(403, crate::api::messages::LOCKED)
                .with_header("x-authentication-denied-reason", &service.gate().denied_reason())
        }
        Err(Refused::Unauthenticated) => return again(401, messages::BAD_LOGIN),
        Err(Refused::Store(e)) => return internal(&e),
    };
    let hash = oauth_tokens::hash(token);
    let (decision, verifier) = if fields.approve {
        let Ok(verifier) = oauth_tokens::generate() else {
            eprintln!("tokengate-tokens: the OS random source failed");
            return Response::error(500, crate::api::messages::INTERNAL);
        };
        let decision = RequestTokenState::Authorized {
            user_key: caller.key.clone(),
            verifier_hash: verifier.hash,
        };
        (decision, verifier.plain)
    } else {
        (RequestTokenState::Denied, "denied".to_owned())
    };
    match service.store.decide_request_token(&hash, &decision, now) {
        Ok(true) => {}
        // Decided, taken or expired in the meantime (another post, another replica).
        Ok(false) => return problem_page(401, Problem::TokenRejected, messages::UNKNOWN),
        Err(e) => return internal(&e),
    }
    if record.callback == callback::OOB {
        let html = match fields.approve {
            true => oauth1_page::verifier(&consumer.name, &verifier),
            false => oauth1_page::denied(&consumer.name),
        };
        return page(200, html, None);
    }
    Response {
        status: 302,
        headers: vec![
            (
                "location".to_owned(),
                callback::redirect(&record.callback, token, &verifier),
            ),
            ("cache-control".to_owned(), "no-store".to_owned()),
            ("referrer-policy".to_owned(), "no-referrer".to_owned()),
        ],
        body: String::new(),
    }
}

#[cfg(test)]
pub mod tests {
    use crate::api::tests::request;
    use crate::api::{handle, Response, Service};
    use crate::oauth1_signed::tests::{config, Signer, NOW_MS};
    use crate::store::Store;
    use crate::users::tests::demo_directory;
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicUsize, Ordering};

    pub const CALLBACK: &str = "http://127.0.0.1:8765/";
    const RT: &str = "/plugins/servlet/oauth/request-token";
    const AT: &str = "/plugins/servlet/oauth/access-token";
    const AUTHORIZE: &str = "/plugins/servlet/oauth/authorize";

    pub fn service() -> Service {
        Service::new(
            config(),
            Store::open_in_memory().unwrap(),
            Box::new(demo_directory()),
        )
    }

    fn nonce() -> String {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        format!("nonce-{}", NEXT.fetch_add(1, Ordering::SeqCst))
    }

    pub fn header<'a>(response: &'a Response, name: &str) -> Option<&'a str> {
        response
            .headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn form_of(text: &str) -> HashMap<String, String> {
        form_urlencoded::parse(text.as_bytes()).into_owned().collect()
    }

    /// A request token for `consumer` with `callback`, made at `now`.
    pub fn request_token(service: &Service, consumer: &str, callback: &str, now: i64) -> String {
        let nonce = nonce();
        let signer = Signer {
            consumer_key: consumer,
            nonce: &nonce,
            timestamp: now / 1000,
            ..Signer::default()
        };
        let response = handle(
            service,
            &signer.request(RT, &[("oauth_callback", callback)], ""),
            now,
        );
        assert_eq!(response.status, 200, "{}", response.body);
        assert_eq!(
            header(&response, "content-type"),
            Some("application/x-www-form-urlencoded")
        );
        let form = form_of(&response.body);
        assert_eq!(form["oauth_callback_confirmed"], "true");
        assert_eq!(form["oauth_token_secret"].len(), 43);
        form["oauth_token"].clone()
    }

    /// The authorize page for `token` and the CSRF value its cookie holds.
    pub fn show(service: &Service, token: &str, now: i64) -> (Response, Option<String>) {
        let response = handle(
            service,
            &request("GET", &format!("{AUTHORIZE}?oauth_token={token}"), None, ""),
            now,
        );
        let cookie = header(&response, "set-cookie").map(|c| {
            let value = c.split(';').next().unwrap();
            value.strip_prefix("atl.xsrf.token=").unwrap().to_owned()
        });
        (response, cookie)
    }

    /// The form posted: `field` as `atl_token`, `cookie` as the cookie, `button` `approve` or
    /// `deny`.
    #[allow(clippy::too_many_arguments)]
    pub fn post(
        service: &Service,
        token: &str,
        field: Option<&str>,
        cookie: Option<&str>,
        user: &str,
        password: &str,
        button: &str,
        now: i64,
    ) -> Response {
        let mut body = form_urlencoded::Serializer::new(String::new());
        body.append_pair("oauth_token", token)
            .append_pair("os_username", user)
            .append_pair("os_password", password)
            .append_pair(button, "x");
        if let Some(field) = field {
            body.append_pair("atl_token", field);
        }
        let mut post = request("POST", AUTHORIZE, None, &body.finish());
        post.headers.push((
            "content-type".to_owned(),
            "application/x-www-form-urlencoded".to_owned(),
        ));
        if let Some(cookie) = cookie {
            post.headers
                .push(("cookie".to_owned(), format!("atl.xsrf.token={cookie}")));
        }
        handle(service, &post, now)
    }

    /// Shown, then posted as `user` with `button`: the answer.
    pub fn decide_as(service: &Service, token: &str, user: &str, button: &str, now: i64) -> Response {
        let (page, csrf) = show(service, token, now);
        assert_eq!(page.status, 200, "{}", page.body);
        let csrf = csrf.unwrap();
        post(
            service,
            token,
            Some(&csrf),
            Some(&csrf),
            user,
            &format!("{user}-password"),
            button,
            now,
        )
    }

    /// The verifier in a redirect to the callback.
    pub fn verifier(response: &Response) -> String {
        assert_eq!(response.status, 302, "{}", response.body);
        let location = header(response, "location").unwrap();
        let query = location.strip_prefix(&format!("{CALLBACK}?")).unwrap();
        form_of(query)["oauth_verifier"].clone()
    }

    /// The access-token step for `token` and `verifier`, signed by `consumer` at `now`.
    pub fn exchange(service: &Service, consumer: &str, token: &str, verifier: &str, now: i64) -> Response {
        let nonce = nonce();
        let signer = Signer {
            consumer_key: consumer,
            nonce: &nonce,
            timestamp: now / 1000,
            ..Signer::default()
        };
        let params = [("oauth_token", token), ("oauth_verifier", verifier)];
        handle(service, &signer.request(AT, &params, ""), now)
    }

    fn problem_of(response: &Response) -> String {
        assert_eq!(response.status, 401, "{}", response.body);
        let challenge = header(response, "www-authenticate").unwrap();
        let form = form_of(&response.body);
        assert!(
            challenge.starts_with("OAuth realm=\"http://127.0.0.1:9090\", oauth_problem=\""),
            "{challenge}"
        );
        assert!(challenge.contains(&form["oauth_problem"]), "{challenge}");
        assert!(!form["oauth_problem_advice"].is_empty());
        form["oauth_problem"].clone()
    }

    #[test]
    fn approving_gives_the_consumer_an_access_token_of_the_user_once() {
        let service = service();
        let token = request_token(&service, "tokengate-demo", CALLBACK, NOW_MS);
        let (page, csrf) = show(&service, &token, NOW_MS);
        assert_eq!(page.status, 200);
        assert!(page.body.contains("Demo application link"), "{}", page.body);
        assert!(page.body.contains(&format!(
            "name=\"atl_token\" value=\"{}\"",
            csrf.as_deref().unwrap()
        )));
        assert_eq!(
            header(&page, "content-security-policy"),
            Some("default-src 'none'; form-action 'self' http://127.0.0.1:8765")
        );
        let decided = decide_as(&service, &token, "fred", "approve", NOW_MS);
        let verifier = verifier(&decided);
        assert_eq!(verifier.len(), 43);
        assert!(header(&decided, "location")
            .unwrap()
            .contains(&format!("oauth_token={token}")));
        let later = NOW_MS + 5_000;
        let answer = exchange(&service, "tokengate-demo", &token, &verifier, later);
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert_eq!(header(&answer, "cache-control"), Some("no-store"));
        let form = form_of(&answer.body);
        assert_eq!(form["oauth_token"].len(), 43);
        assert_eq!(form["oauth_token_secret"].len(), 43);
        assert_eq!(form["oauth_session_handle"].len(), 43);
        assert_eq!(form["oauth_expires_in"], "157680000");
        assert_eq!(form["oauth_authorization_expires_in"], "160704000");
        let stored = service
            .store
            .find_access_token(&crate::oauth_tokens::hash(&form["oauth_token"]))
            .unwrap()
            .unwrap();
        assert_eq!(
            (stored.consumer_key.as_str(), stored.user_key.as_str()),
            ("tokengate-demo", "JIRAUSER10004")
        );
        assert_eq!(stored.expires, later + 157_680_000_000);
        // Single use: the same exchange again, and the page for it, are refused.
        let again = exchange(&service, "tokengate-demo", &token, &verifier, later);
        assert_eq!(problem_of(&again), "token_rejected");
        assert_eq!(show(&service, &token, later).0.status, 401);
    }

    #[test]
    fn denying_sends_the_browser_back_with_denied_and_the_exchange_is_refused() {
        let service = service();
        let token = request_token(&service, "tokengate-demo", CALLBACK, NOW_MS);
        let denied = decide_as(&service, &token, "jsmith", "deny", NOW_MS);
        assert_eq!(verifier(&denied), "denied");
        let answer = exchange(&service, "tokengate-demo", &token, "denied", NOW_MS);
        assert_eq!(problem_of(&answer), "permission_denied");
    }

    #[test]
    fn out_of_band_shows_the_verifier_on_a_page() {
        let service = service();
        let token = request_token(&service, "tokengate-demo", "oob", NOW_MS);
        let page = decide_as(&service, &token, "fred", "approve", NOW_MS);
        assert_eq!(page.status, 200, "{}", page.body);
        let verifier = page
            .body
            .split("<code id=\"oauth_verifier\">")
            .nth(1)
            .and_then(|rest| rest.split('<').next())
            .unwrap()
            .to_owned();
        let answer = exchange(&service, "tokengate-demo", &token, &verifier, NOW_MS);
        assert_eq!(answer.status, 200, "{}", answer.body);
        let other = request_token(&service, "tokengate-demo", "oob", NOW_MS);
        let page = decide_as(&service, &other, "fred", "deny", NOW_MS);
        assert_eq!(page.status, 200);
        assert!(page.body.contains("Access denied"), "{}", page.body);
    }

    #[test]
    fn a_post_without_the_cookie_or_with_another_tokens_value_is_refused_as_forged() {
        let service = service();
        let token = request_token(&service, "tokengate-demo", CALLBACK, NOW_MS);
        let other = request_token(&service, "tokengate-demo", CALLBACK, NOW_MS);
        let (_, mine) = show(&service, &token, NOW_MS);
        let (_, theirs) = show(&service, &other, NOW_MS);
        let (mine, theirs) = (mine.unwrap(), theirs.unwrap());
        let cases = [
            (Some(mine.as_str()), None),
            (None, Some(mine.as_str())),
            (None, None),
            (Some(mine.as_str()), Some(theirs.as_str())),
            (Some(theirs.as_str()), Some(mine.as_str())),
            (Some(theirs.as_str()), Some(theirs.as_str())),
        ];
        for (field, cookie) in cases {
            let response = post(
                &service,
                &token,
                field,
                cookie,
                "fred",
                "fred-password",
                "approve",
                NOW_MS,
            );
            assert_eq!(response.status, 403, "{field:?} {cookie:?}");
            assert!(response.body.contains("XSRF"), "{}", response.body);
        }
        // No password was checked, none counted; the request token is still pending.
        assert_eq!(service.store.failed_logins("fred").unwrap().count, 0);
        assert!(verifier(&decide_as(&service, &token, "fred", "approve", NOW_MS)).len() == 43);
    }

    #[test]
    fn a_wrong_login_shows_the_form_again_counts_and_a_locked_user_is_refused() {
        let service = service();
        let token = request_token(&service, "tokengate-demo", CALLBACK, NOW_MS);
        let (_, csrf) = show(&service, &token, NOW_MS);
        let csrf = csrf.unwrap();
        let attempt = |user: &str, password: &str| {
            post(
                &service,
                &token,
                Some(&csrf),
                Some(&csrf),
                user,
                password,
                "approve",
                NOW_MS,
            )
        };
        for (user, password) in [("fred", "wrong"), ("fred", "fred-passwor"), ("nobody", "x")] {
            let again = attempt(user, password);
            assert_eq!(again.status, 401, "{user}");
            assert!(again.body.contains("is not correct"), "{}", again.body);
            assert!(
                again.body.contains(&format!("value=\"{csrf}\"")),
                "the form again"
            );
        }
        assert_eq!(service.store.failed_logins("fred").unwrap().count, 2);
        let third = attempt("fred", "wrong-again");
        assert_eq!(third.status, 401);
        // Locked: the right password is refused without being checked, as on the REST API.
        let locked = attempt("fred", "fred-password");
        assert_eq!(locked.status, 403, "{}", locked.body);
        assert!(header(&locked, "x-authentication-denied-reason")
            .unwrap()
            .starts_with("CAPTCHA_CHALLENGE"));
        // An inactive user with the right password cannot approve either.
        assert_eq!(attempt("departed", "departed-password").status, 401);
        // Still pending: another user may decide.
        let decided = post(
            &service,
            &token,
            Some(&csrf),
            Some(&csrf),
            "jsmith",
            "jsmith-password",
            "approve",
            NOW_MS,
        );
        assert_eq!(decided.status, 302, "{}", decided.body);
        // Neither or both buttons.
        let other = request_token(&service, "tokengate-demo", CALLBACK, NOW_MS);
        let (_, csrf) = show(&service, &other, NOW_MS);
        let csrf = csrf.unwrap();
        let neither = post(
            &service,
            &other,
            Some(&csrf),
            Some(&csrf),
            "jsmith",
            "jsmith-password",
            "other",
            NOW_MS,
        );
        assert_eq!(neither.status, 400);
    }

    #[test]
    fn an_api_token_logs_in_on_the_form_as_its_user() {
        let service = service();
        let api_token = crate::api::tests::create_as(&service, "fred", r#"{"tokenDescription":"t"}"#, NOW_MS)
            ["plainTextToken"]
            .as_str()
            .unwrap()
            .to_owned();
        let token = request_token(&service, "tokengate-demo", CALLBACK, NOW_MS);
        let (_, csrf) = show(&service, &token, NOW_MS);
        let csrf = csrf.unwrap();
        let decided = post(
            &service,
            &token,
            Some(&csrf),
            Some(&csrf),
            "fred",
            &api_token,
            "approve",
            NOW_MS,
        );
        let verifier = verifier(&decided);
        let answer = exchange(&service, "tokengate-demo", &token, &verifier, NOW_MS);
        assert_eq!(answer.status, 200, "{}", answer.body);
    }

    #[test]
    fn the_exchange_refuses_another_consumer_a_wrong_verifier_a_pending_and_an_expired_token() {
        let service = service();
        let approved = |now| {
            let token = request_token(&service, "tokengate-demo", CALLBACK, now);
            let verifier = verifier(&decide_as(&service, &token, "fred", "approve", now));
            (token, verifier)
        };
        // Another consumer's signature: refused, and the request token is used up.
        let (token, verifier) = approved(NOW_MS);
        assert_eq!(
            problem_of(&exchange(&service, "other", &token, &verifier, NOW_MS)),
            "token_rejected"
        );
        assert_eq!(
            problem_of(&exchange(&service, "tokengate-demo", &token, &verifier, NOW_MS)),
            "token_rejected"
        );
        // A wrong verifier: refused, and no second try.
        let (token, verifier) = approved(NOW_MS);
        let wrong = format!("{}A", &verifier[..42]);
        let wrong = if wrong == verifier {
            format!("{}B", &verifier[..42])
        } else {
            wrong
        };
        assert_eq!(
            problem_of(&exchange(&service, "tokengate-demo", &token, &wrong, NOW_MS)),
            "token_rejected"
        );
        assert_eq!(
            problem_of(&exchange(&service, "tokengate-demo", &token, &verifier, NOW_MS)),
            "token_rejected"
        );
        // Not yet decided.
        let pending = request_token(&service, "tokengate-demo", CALLBACK, NOW_MS);
        assert_eq!(
            problem_of(&exchange(&service, "tokengate-demo", &pending, "x", NOW_MS)),
            "token_rejected"
        );
        // Expired (10 minutes): at the exchange and on the page.
        let (token, verifier) = approved(NOW_MS);
        let late = NOW_MS + 600_000;
        assert_eq!(
            problem_of(&exchange(&service, "tokengate-demo", &token, &verifier, late)),
            "token_expired"
        );
        let stale = request_token(&service, "tokengate-demo", CALLBACK, NOW_MS);
        let (page, cookie) = show(&service, &stale, late);
        assert_eq!((page.status, cookie), (401, None));
        assert!(page.body.contains("token_expired"), "{}", page.body);
        // Unknown and malformed request tokens.
        for token in ["AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "nope", ""] {
            let status = show(&service, token, NOW_MS).0.status;
            assert!(
                status == 401 || (token.is_empty() && status == 400),
                "{token}: {status}"
            );
            assert_eq!(
                problem_of(&exchange(&service, "tokengate-demo", token, "v", NOW_MS)),
                if token.is_empty() {
                    "parameter_absent"
                } else {
                    "token_rejected"
                },
                "{token}"
            );
        }
    }

    #[test]
    fn a_callback_outside_the_consumers_prefixes_is_rejected_and_problems_are_nets_format() {
        let service = service();
        let signer = Signer::default();
        let evil = signer.request(
            RT,
            &[("oauth_callback", "http://127.0.0.1:8765.evil.example/")],
            "",
        );
        let response = handle(&service, &evil, NOW_MS);
        assert_eq!(problem_of(&response), "parameter_rejected");
        assert_eq!(header(&response, "cache-control"), Some("no-store"));
        assert_eq!(
            header(&response, "content-type"),
            Some("application/x-www-form-urlencoded")
        );
        // `other` has no callback prefix: out of band only.
        let first = nonce();
        let other = Signer {
            consumer_key: "other",
            nonce: &first,
            ..Signer::default()
        };
        let response = handle(
            &service,
            &other.request(RT, &[("oauth_callback", CALLBACK)], ""),
            NOW_MS,
        );
        assert_eq!(problem_of(&response), "parameter_rejected");
        let second = nonce();
        let hmac = Signer {
            signature_method: "HMAC-SHA1",
            nonce: &second,
            ..Signer::default()
        };
        let response = handle(
            &service,
            &hmac.request(RT, &[("oauth_callback", CALLBACK)], ""),
            NOW_MS,
        );
        assert_eq!(problem_of(&response), "signature_method_rejected");
        let response = handle(&service, &request("GET", RT, None, ""), NOW_MS);
        assert_eq!(response.status, 405);
    }

    #[test]
    fn without_an_oauth1_section_the_dance_is_not_there() {
        let service = crate::api::tests::service();
        for (method, url) in [
            ("POST", RT),
            ("POST", AT),
            ("GET", "/plugins/servlet/oauth/authorize?oauth_token=x"),
            ("POST", AUTHORIZE),
        ] {
            let response = handle(&service, &request(method, url, None, ""), NOW_MS);
            assert_eq!(response.status, 404, "{method} {url}");
        }
        let with = self::service();
        let response = handle(
            &with,
            &request("GET", "/plugins/servlet/oauth/other", None, ""),
            NOW_MS,
        );
        assert_eq!(response.status, 404);
    }
}
