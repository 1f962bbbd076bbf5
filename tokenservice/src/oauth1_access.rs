//! Listing and revoking OAuth 1.0a access tokens (application links a user authorised), under
//! the REST prefix, authenticated as the other management calls (`api::with_caller`):
//!
//! - `GET  /user/oauth/access-tokens`: the caller's own;
//! - `DELETE /user/oauth/access-tokens/<id>`: one of the caller's own (204; 404 for any id that
//!   is not the caller's, so ids do not tell which tokens exist);
//! - `GET  /admin/oauth/access-tokens?user=<name>` and `DELETE /admin/oauth/access-tokens/<id>`:
//!   administrators, for anyone.
//!
//! A revoked access token is deleted: introspection answers `token_rejected` for it at once,
//! and an Envoy that cached the token's answer believes it for at most its provider's
//! `cache_ttl_seconds`.

use crate::auth::Caller;
use crate::http::Response;
use crate::service::Service;
use crate::store::{AccessTokenRecord, StoreError};
use serde_json::{json, Value};

pub const NOT_FOUND: &str = "No access token with this id exists for the current user.";

fn internal(e: &StoreError) -> Response {
    eprintln!("tokengate-tokens: {e}");
    Response::error(500, crate::api::messages::INTERNAL)
}

/// An access token as listed: never the token, only what it is and when it was used.
fn listed(service: &Service, record: &AccessTokenRecord) -> Value {
    let name = service
        .config
        .oauth1
        .as_ref()
        .and_then(|oauth1| oauth1.consumer(&record.consumer_key))
        .map_or(record.consumer_key.as_str(), |consumer| consumer.name.as_str());
    json!({
        "id": record.id,
        "consumerKey": record.consumer_key,
        "consumerName": name,
        "created": record.created,
        "expires": record.expires,
        "lastAccessed": record.last_accessed,
    })
}

fn list_of(service: &Service, user_key: &str) -> Response {
    match service.store.list_access_tokens(user_key) {
        Ok(records) => Response::json(
            200,
            &Value::Array(records.iter().map(|r| listed(service, r)).collect()),
        ),
        Err(e) => internal(&e),
    }
}

/// An access token id from the path; anything else names no token (404).
fn token_id(text: &str) -> Option<i64> {
    text.parse::<i64>()
        .ok()
        .filter(|id| *id > 0 && !text.starts_with('+'))
}

fn revoke(service: &Service, id: &str, owner: Option<&str>) -> Response {
    let Some(id) = token_id(id) else {
        return Response::error(404, NOT_FOUND);
    };
    match service.store.revoke_access_token(id, owner) {
        Ok(true) => Response::no_content(),
        Ok(false) => Response::error(404, NOT_FOUND),
        Err(e) => internal(&e),
    }
}

/// `GET /user/oauth/access-tokens`.
pub fn list_own(service: &Service, caller: &Caller) -> Response {
    list_of(service, &caller.key)
}

/// `DELETE /user/oauth/access-tokens/<id>`.
pub fn revoke_own(service: &Service, caller: &Caller, id: &str) -> Response {
    revoke(service, id, Some(&caller.key))
}

/// `GET /admin/oauth/access-tokens?user=<name>` (administrators).
pub fn list_for(service: &Service, query: &str) -> Response {
    let mut users = form_urlencoded::parse(query.as_bytes()).filter(|(name, _)| name == "user");
    let name = match (users.next(), users.next()) {
        (Some((_, name)), None) if !name.is_empty() => name,
        _ => {
            return Response::error(
                400,
                "user is required, once: the name of the user whose access tokens to list.",
            )
        }
    };
    match service.directory.by_name(&name) {
        Some(user) => list_of(service, &user.key),
        None => Response::error(404, crate::api::messages::NOT_FOUND),
    }
}

/// `DELETE /admin/oauth/access-tokens/<id>` (administrators).
pub fn revoke_any(service: &Service, id: &str) -> Response {
    revoke(service, id, None)
}

#[cfg(test)]
mod tests {
    use crate::api::tests::{as_user, request};
    use crate::api::{handle, PREFIX};
    use crate::oauth1_signed::tests::NOW_MS;
    use serde_json::json;

    fn call(service: &crate::api::Service, method: &str, route: &str, user: &str) -> crate::api::Response {
        handle(
            service,
            &request(method, &format!("{PREFIX}{route}"), Some(as_user(user)), ""),
            NOW_MS,
        )
    }

    #[test]
    fn a_user_lists_and_revokes_their_own_access_tokens_and_nobody_elses() {
        let service = crate::oauth1_authorize::tests::service();
        let token = crate::introspect::tests::oauth1_access_token(&service, NOW_MS);
        let listed = call(&service, "GET", "/user/oauth/access-tokens", "fred");
        assert_eq!(listed.status, 200, "{}", listed.body);
        let id = listed.json_body()[0]["id"].as_i64().unwrap();
        assert_eq!(
            listed.json_body(),
            json!([{"id": id, "consumerKey": "tokengate-demo", "consumerName": "Demo application link",
                    "created": NOW_MS, "expires": NOW_MS + 157_680_000_000_i64, "lastAccessed": 0}])
        );
        assert!(!listed.body.contains(&token));
        assert_eq!(
            call(&service, "GET", "/user/oauth/access-tokens", "jsmith").json_body(),
            json!([])
        );
        // Another user's id, or no id at all, is the same 404.
        for (user, path) in [
            ("jsmith", format!("/user/oauth/access-tokens/{id}")),
            ("fred", "/user/oauth/access-tokens/999".to_owned()),
            ("fred", "/user/oauth/access-tokens/x".to_owned()),
            ("fred", "/user/oauth/access-tokens/+1".to_owned()),
        ] {
            let response = call(&service, "DELETE", &path, user);
            assert_eq!(response.status, 404, "{user} {path}");
            assert_eq!(response.json_body()["errorMessages"][0], super::NOT_FOUND);
        }
        let revoked = call(
            &service,
            "DELETE",
            &format!("/user/oauth/access-tokens/{id}"),
            "fred",
        );
        assert_eq!(revoked.status, 204);
        assert_eq!(
            call(&service, "GET", "/user/oauth/access-tokens", "fred").json_body(),
            json!([])
        );
        assert_eq!(
            call(
                &service,
                "DELETE",
                &format!("/user/oauth/access-tokens/{id}"),
                "fred"
            )
            .status,
            404
        );
        assert_eq!(
            call(&service, "POST", "/user/oauth/access-tokens", "fred").status,
            405
        );
        let anonymous = handle(
            &service,
            &request("GET", &format!("{PREFIX}/user/oauth/access-tokens"), None, ""),
            NOW_MS,
        );
        assert_eq!(anonymous.status, 401);
    }

    #[test]
    fn administrators_list_and_revoke_anyones_access_tokens_and_others_may_not() {
        let service = crate::oauth1_authorize::tests::service();
        crate::introspect::tests::oauth1_access_token(&service, NOW_MS);
        let listed = call(&service, "GET", "/admin/oauth/access-tokens?user=FRED", "admin");
        assert_eq!(listed.status, 200, "{}", listed.body);
        let id = listed.json_body()[0]["id"].as_i64().unwrap();
        for (method, route) in [
            ("GET", "/admin/oauth/access-tokens?user=fred".to_owned()),
            ("DELETE", format!("/admin/oauth/access-tokens/{id}")),
        ] {
            assert_eq!(call(&service, method, &route, "fred").status, 403, "{route}");
        }
        for (route, status) in [
            ("/admin/oauth/access-tokens", 400),
            ("/admin/oauth/access-tokens?user=", 400),
            ("/admin/oauth/access-tokens?user=fred&user=jsmith", 400),
            ("/admin/oauth/access-tokens?user=nobody", 404),
        ] {
            assert_eq!(call(&service, "GET", route, "admin").status, status, "{route}");
        }
        let revoked = call(
            &service,
            "DELETE",
            &format!("/admin/oauth/access-tokens/{id}"),
            "admin",
        );
        assert_eq!(revoked.status, 204);
        assert_eq!(
            call(&service, "GET", "/admin/oauth/access-tokens?user=fred", "admin").json_body(),
            json!([])
        );
        assert_eq!(
            call(
                &service,
                "DELETE",
                &format!("/admin/oauth/access-tokens/{id}"),
                "admin"
            )
            .status,
            404
        );
    }
}
