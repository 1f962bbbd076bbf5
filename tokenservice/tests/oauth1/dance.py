"""The OAuth 1.0a dance as an application link's client does it, with requests-oauthlib
(tokenservice/tests/oauth1_dance.rs runs it against the real token service).

    dance.py BASE CONSUMER_KEY PRIVATE_KEY_FILE CALLBACK USER PASSWORD BUTTON [OTHER_BASE]

BUTTON is `approve` or `deny` (the form's submit buttons). With OTHER_BASE (another replica),
the steps alternate: request-token and the form's post on BASE, the page and access-token on
OTHER_BASE. The authorize step is driven as a browser would: the page fetched, its hidden
fields read from the HTML, the form posted with the cookie the page set. Prints one JSON
object: what each step answered.
"""

import html
import json
import re
import sys

import requests
from oauthlib.oauth1 import SIGNATURE_RSA
from requests_oauthlib import OAuth1Session
from requests_oauthlib.oauth1_session import TokenRequestDenied


def hidden(page, name):
    match = re.search(r'<input type="hidden" name="%s" value="([^"]*)">' % re.escape(name), page)
    return html.unescape(match.group(1)) if match else None


def session(consumer_key, key_file, callback):
    with open(key_file) as f:
        rsa_key = f.read()
    return OAuth1Session(
        consumer_key, signature_method=SIGNATURE_RSA, rsa_key=rsa_key, callback_uri=callback
    )


def authorize(oauth, base, other, user, password, button, result):
    """request-token on `base`, the page on `other`, the post on `base`: the post's answer."""
    oauth.fetch_request_token(base + "/plugins/servlet/oauth/request-token")
    authorize_url = oauth.authorization_url(other + "/plugins/servlet/oauth/authorize")
    browser = requests.Session()
    page = browser.get(authorize_url)
    result["page_status"] = page.status_code
    result["page_headers"] = {k.lower(): v for k, v in page.headers.items()}
    form = {
        "oauth_token": hidden(page.text, "oauth_token"),
        "atl_token": hidden(page.text, "atl_token"),
        "os_username": user,
        "os_password": password,
        button: "Allow" if button == "approve" else "Deny",
    }
    result["cookie_sent"] = "atl.xsrf.token" in browser.cookies
    posted = browser.post(
        base + "/plugins/servlet/oauth/authorize", data=form, allow_redirects=False
    )
    result["authorize_status"] = posted.status_code
    result["authorize_body"] = posted.text
    result["location"] = posted.headers.get("Location")
    return posted


def exchange(oauth, base):
    """access-token on `base`: the tokens, or the refusal."""
    try:
        return {"access_token": oauth.fetch_access_token(base + "/plugins/servlet/oauth/access-token")}
    except TokenRequestDenied as denied:
        return {
            "access_status": denied.status_code,
            "access_body": denied.response.text,
            "access_challenge": denied.response.headers.get("WWW-Authenticate"),
        }


def main():
    base, consumer_key, key_file, callback, user, password, button = sys.argv[1:8]
    other = sys.argv[8] if len(sys.argv) > 8 else base
    result = {}
    oauth = session(consumer_key, key_file, callback)
    posted = authorize(oauth, base, other, user, password, button, result)
    if posted.status_code == 302:
        oauth.parse_authorization_response(result["location"])
        result.update(exchange(oauth, other))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
