//! Seed 004's curl session, replayed against the real binary: create, list, rename, delete;
//! the administrators' calls; the 401/403/404 cases; and introspection for the filter. Each on
//! SQLite, and on two replicas sharing one PostgreSQL (see the end of the file).

// The sessions are test bodies (the macro at the end wraps each in `#[test]`): they fail loudly.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod common;

use common::*;
use serde_json::json;

fn a_user_creates_lists_renames_and_deletes_tokens(service: &Service, _database: &TestDatabase) {
    // Create a new token.
    let created = service.create("fred", r#"{"tokenDescription":"Automation token"}"#);
    let token = created["plainTextToken"].as_str().unwrap().to_owned();
    let id = created["id"].as_i64().unwrap();
    assert_eq!(created["tokenForUserKey"], FRED_KEY);
    // With an expiration period of one month.
    let short = service.create(
        "fred",
        r#"{"tokenDescription":"one month", "tokenValidityTimeInMonths" : 1}"#,
    );
    let month_ms = short["validUntil"].as_i64().unwrap() - short["created"].as_i64().unwrap();
    assert!((28..=31).contains(&(month_ms / 86_400_000)), "{short}");

    // List all tokens: the four fields of seed 004, never the token.
    let listed = service.api("GET", "/user/token/", Some(&password("fred")), "");
    assert_eq!(listed.status, 200);
    assert!(listed
        .header("content-type")
        .unwrap()
        .starts_with("application/json"));
    assert!(!listed.body.contains(&token));
    let first = &listed.json()[0];
    assert_eq!(first["id"], id);
    assert_eq!(first["description"], "Automation token");
    assert_eq!(first.as_object().unwrap().len(), 4);
    assert_eq!(first["lastAccessed"], 0);

    // Use the token in the place of the password: it works and its use is recorded.
    let with_token = service.api("GET", "/user/token/", Some(&basic(&format!("fred:{token}"))), "");
    assert_eq!(with_token.status, 200);
    let with_bearer = service.api("GET", "/user/token/", Some(&bearer(&token)), "");
    assert!(with_bearer.json()[0]["lastAccessed"].as_i64().unwrap() > 0);

    // Update a token description.
    let renamed = service.api(
        "PATCH",
        &format!("/user/token/{id}"),
        Some(&password("fred")),
        r#"{"tokenDescription":"Updated token description"}"#,
    );
    assert_eq!(renamed.status, 200, "{}", renamed.body);
    assert_eq!(renamed.json()["description"], "Updated token description");

    // Delete a token: gone, and it no longer authenticates.
    let deleted = service.api(
        "DELETE",
        &format!("/user/token/{id}"),
        Some(&password("fred")),
        "",
    );
    assert_eq!(deleted.status, 204);
    let listed = service
        .api("GET", "/user/token/", Some(&password("fred")), "")
        .json();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    service
        .api("GET", "/user/token/", Some(&bearer(&token)), "")
        .assert_jira_error(401);
    assert_eq!(
        service.introspect(&format!("token={token}")).json(),
        json!({"active": false})
    );
}

fn administrators_manage_other_users_tokens_and_others_get_403(service: &Service, _database: &TestDatabase) {
    // Create tokens for other users; 12 months is the maximum, so 24 is shortened to it.
    let body = format!(r#"{{"tokenDescription":"token for another user", "tokenForUserKey":"{FRED_KEY}"}}"#);
    let default = service.create("admin", &body);
    assert_eq!(default["tokenForUserKey"], FRED_KEY);
    assert_eq!(default["tokenCreatedByUserKey"], ADMIN_KEY);
    let days = |v: &serde_json::Value| {
        (v["validUntil"].as_i64().unwrap() - v["created"].as_i64().unwrap()) / 86_400_000
    };
    assert!(
        (181..=184).contains(&days(&default)),
        "6 months by default: {default}"
    );
    let body = format!(
        r#"{{"tokenDescription":"token for another user", "tokenForUserKey":"{FRED_KEY}","tokenValidityTimeInMonths":24}}"#
    );
    let clamped = service.create("admin", &body);
    assert!(
        (365..=366).contains(&days(&clamped)),
        "clamped to 12 months: {clamped}"
    );
    let admin_token = service.create("admin", r#"{"tokenDescription":"Shell Script"}"#);
    let admin_token = admin_token["plainTextToken"].as_str().unwrap().to_owned();
    let fred_own = service.create("fred", r#"{"tokenDescription":"mine"}"#);
    service.create("jsmith", r#"{"tokenDescription":"jsmith's"}"#);

    // Fred sees the two made for him and his own.
    let fred = service
        .api("GET", "/user/token/", Some(&password("fred")), "")
        .json();
    assert_eq!(fred.as_array().unwrap().len(), 3);

    // Non-administrators: 403 on the administrators' endpoints and for others' keys.
    let for_admin = format!(r#"{{"tokenDescription":"x","tokenForUserKey":"{ADMIN_KEY}"}}"#);
    service
        .api("POST", "/user/token", Some(&password("fred")), &for_admin)
        .assert_jira_error(403);
    service
        .api(
            "DELETE",
            &format!("/user/token/deleteAllFor/{JSMITH_KEY}"),
            Some(&password("fred")),
            "",
        )
        .assert_jira_error(403);
    service
        .api(
            "GET",
            "/user/tokensByFilter?notValidAfter=-1",
            Some(&password("jsmith")),
            "",
        )
        .assert_jira_error(403);

    // Another user's token id: 404, the same as an id that does not exist.
    let fred_id = fred_own["id"].as_i64().unwrap();
    let other = service.api(
        "DELETE",
        &format!("/user/token/{fred_id}"),
        Some(&password("jsmith")),
        "",
    );
    other.assert_jira_error(404);
    let missing = service.api("DELETE", "/user/token/424242", Some(&password("jsmith")), "");
    assert_eq!(other.body, missing.body);
    service
        .api(
            "PATCH",
            &format!("/user/token/{fred_id}"),
            Some(&password("jsmith")),
            r#"{"tokenDescription":"x"}"#,
        )
        .assert_jira_error(404);

    // tokensByFilter, with an administrator's token instead of a password.
    let all = service
        .api(
            "GET",
            "/user/tokensByFilter?notValidAfter=-1",
            Some(&basic(&format!("admin:{admin_token}"))),
            "",
        )
        .json();
    assert_eq!(all["total"], 5);
    assert_eq!(all["limit"], 50);
    assert_eq!(all["totalPages"], 1);
    assert_eq!(
        all["paginationLinks"],
        json!({"baseUrl": BASE_URL, "nextPage": "", "previousPage": ""})
    );
    let valid_untils: Vec<i64> = all["content"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["validUntil"].as_i64().unwrap())
        .collect();
    assert!(
        valid_untils.windows(2).all(|w| w[0] <= w[1]),
        "soonest expiry first"
    );

    // Paging as in seed 004.
    let mut seen = Vec::new();
    let mut url = format!("{PREFIX}/user/tokensByFilter?page=0&limit=2&notValidAfter=4102444800000");
    for page in 0..3 {
        let reply = service.call("GET", &url, Some(&password("admin")), "").json();
        assert_eq!(reply["currentPage"], page);
        assert_eq!(reply["offset"], page * 2);
        assert_eq!(
            (reply["total"].clone(), reply["totalPages"].clone()),
            (json!(5), json!(3))
        );
        let links = &reply["paginationLinks"];
        let expected_previous = if page == 0 {
            String::new()
        } else {
            format!(
                "{BASE_URL}{PREFIX}/user/tokensByFilter?page={}&limit=2&notValidAfter=4102444800000",
                page - 1
            )
        };
        assert_eq!(links["previousPage"], expected_previous.as_str());
        seen.extend(
            reply["content"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["id"].as_i64().unwrap()),
        );
        let next = links["nextPage"].as_str().unwrap();
        if page < 2 {
            assert_eq!(
                next,
                format!(
                    "{BASE_URL}{PREFIX}/user/tokensByFilter?page={}&limit=2&notValidAfter=4102444800000",
                    page + 1
                )
            );
            url = next.strip_prefix(BASE_URL).unwrap().to_owned();
        } else {
            assert_eq!(next, "");
        }
    }
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(seen.len(), 5, "every token exactly once across the pages");

    // Nothing expires before 1970.
    let none = service
        .api(
            "GET",
            "/user/tokensByFilter?notValidAfter=0",
            Some(&password("admin")),
            "",
        )
        .json();
    assert_eq!(
        (none["total"].clone(), none["totalPages"].clone()),
        (json!(0), json!(0))
    );

    // Delete all tokens for a user (by key).
    let reply = service.api(
        "DELETE",
        &format!("/user/token/deleteAllFor/{FRED_KEY}"),
        Some(&password("admin")),
        "",
    );
    assert_eq!(reply.status, 204);
    let fred = service
        .api("GET", "/user/token/", Some(&password("fred")), "")
        .json();
    assert_eq!(fred, json!([]));
    let all = service
        .api(
            "GET",
            "/user/tokensByFilter?notValidAfter=-1",
            Some(&password("admin")),
            "",
        )
        .json();
    assert_eq!(all["total"], 2);
}

fn bad_credentials_get_401_in_jiras_error_format(service: &Service, _database: &TestDatabase) {
    let token = service.create("fred", r#"{"tokenDescription":"t"}"#)["plainTextToken"]
        .as_str()
        .unwrap()
        .to_owned();
    for auth in [
        None,
        Some(basic("fred:wrong-password")),
        Some(basic("nobody:x")),
        Some(password("departed")),
        Some(basic(&format!("jsmith:{token}"))),
        Some(bearer("tgat_nope")),
        Some("Negotiate abc".to_owned()),
    ] {
        let reply = service.api("GET", "/user/token/", auth.as_deref(), "");
        reply.assert_jira_error(401);
        assert!(reply.header("www-authenticate").is_some());
    }
}

fn introspection_answers_the_filter(service: &Service, database: &TestDatabase) {
    let created = service.create("fred", r#"{"tokenDescription":"for the filter"}"#);
    let token = created["plainTextToken"].as_str().unwrap().to_owned();

    // Active, with the owner, and `lastAccessed` recorded.
    let reply = service.introspect(&format!("token={token}&token_type_hint=api_token"));
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    let body = reply.json();
    assert_eq!(body["active"], true);
    assert_eq!(body["username"], "fred");
    assert_eq!(body["sub"], FRED_KEY);
    assert_eq!(body["token_type"], "api_token");
    assert_eq!(body["client_id"], CLIENT_ID);
    assert_eq!(body["exp"], created["validUntil"].as_i64().unwrap() / 1000);
    let listed = service
        .api("GET", "/user/token/", Some(&password("fred")), "")
        .json();
    assert!(listed[0]["lastAccessed"].as_i64().unwrap() >= created["created"].as_i64().unwrap());

    // A Basic `user:token` pair: the user must own the token.
    assert_eq!(
        service.introspect(&format!("token={token}&username=fred")).json()["active"],
        true
    );
    assert_eq!(
        service
            .introspect(&format!("token={token}&username=jsmith"))
            .json(),
        json!({"active": false})
    );

    // Unknown tokens are inactive, not errors.
    for form in [
        "token=tgat_000000000000000000000000_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "token=garbage",
    ] {
        assert_eq!(service.introspect(form).json(), json!({"active": false}));
    }

    // A token of a user who is no longer active is inactive.
    let departed = service.create(
        "admin",
        r#"{"tokenDescription":"x","tokenForUserKey":"JIRAUSER10008"}"#,
    );
    let departed = departed["plainTextToken"].as_str().unwrap();
    assert_eq!(
        service.introspect(&format!("token={departed}")).json(),
        json!({"active": false})
    );

    // An expired token (its validity moved into the past in the database) is inactive.
    database.execute(
        "UPDATE tokens SET valid_until = 1000 WHERE id = $1",
        created["id"].as_i64().unwrap(),
    );
    assert_eq!(
        service.introspect(&format!("token={token}")).json(),
        json!({"active": false})
    );

    // A wrong or missing client secret: 401 invalid_client.
    let form = format!("token={token}");
    for auth in [
        basic(&format!("{CLIENT_ID}:wrong")),
        basic("fred:fred-password"),
        bearer(&token),
    ] {
        let reply = service.introspect_as(&auth, &form);
        assert_eq!(reply.status, 401);
        assert_eq!(reply.json(), json!({"error": "invalid_client"}));
    }
    let headers = [(
        "Content-Type".to_owned(),
        "application/x-www-form-urlencoded".to_owned(),
    )];
    let reply = service.call_with("POST", "/introspect", &headers, form.as_bytes());
    assert_eq!(
        (reply.status, reply.json()),
        (401, json!({"error": "invalid_client"}))
    );
    assert!(reply.header("www-authenticate").unwrap().starts_with("Basic"));

    // No token parameter: 400 invalid_request.
    let reply = service.introspect("token_type_hint=api_token");
    assert_eq!(
        (reply.status, reply.json()),
        (400, json!({"error": "invalid_request"}))
    );
}

/// Each session on the embedded SQLite, and on two replicas sharing one PostgreSQL: requests
/// alternate between the replicas, so every step reads what the other one wrote, and each
/// replica's own count of answered requests shows that both served.
macro_rules! on_sqlite_and_on_two_postgres_replicas {
    ($($session:ident),* $(,)?) => {
        mod sqlite {
            use super::*;
            $(
                #[test]
                fn $session() {
                    let scratch = Scratch::new();
                    let database = TestDatabase::sqlite(&scratch);
                    super::$session(&Service::start_on(&scratch, &database.spec()), &database);
                }
            )*
        }
        mod two_postgres_replicas {
            use super::*;
            $(
                #[test]
                fn $session() {
                    let scratch = Scratch::new();
                    let database = TestDatabase::postgres();
                    let replicas = Service::start_replicas(&scratch, &database.spec(), 2);
                    super::$session(&replicas, &database);
                    let answered = replicas.answered();
                    eprintln!("{}: requests answered by each replica: {answered:?}", stringify!($session));
                    assert!(answered.iter().all(|&n| n > 0), "{answered:?}");
                    let logs = scratch.logs();
                    assert!(!logs.contains(common::postgres::PG_PASSWORD), "the database password was logged: {logs}");
                }
            )*
        }
    };
}

on_sqlite_and_on_two_postgres_replicas!(
    a_user_creates_lists_renames_and_deletes_tokens,
    administrators_manage_other_users_tokens_and_others_get_403,
    bad_credentials_get_401_in_jiras_error_format,
    introspection_answers_the_filter,
);
