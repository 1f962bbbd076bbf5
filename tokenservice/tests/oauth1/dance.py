"""The OAuth 1.0a dance as an application link's client does it, with requests-oauthlib
(tokenservice/tests/oauth1_dance.rs runs it against the real token service).

    dance.py BASE CONSUMER_KEY PRIVATE_KEY_FILE CALLBACK USER PASSWORD BUTTON

BUTTON is `approve` or `deny` (the form's submit buttons). The authorize step is driven as a
browser would: the page fetched, its hidden fields read from the HTML, the form posted with
the cookie the page set. Prints one JSON object: what each step answered.
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


def main():
    base, consumer_key, key_file, callback, user, password, button = sys.argv[1:8]
    with open(key_file) as f:
        rsa_key = f.read()
    result = {}
    oauth = OAuth1Session(
        consumer_key, signature_method=SIGNATURE_RSA, rsa_key=rsa_key, callback_uri=callback
    )
    oauth.fetch_request_token(base + "/plugins/servlet/oauth/request-token")
    authorize_url = oauth.authorization_url(base + "/plugins/servlet/oauth/authorize")
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
    location = posted.headers.get("Location")
    result["location"] = location
    if posted.status_code != 302:
        print(json.dumps(result))
        return
    oauth.parse_authorization_response(location)
    try:
        tokens = oauth.fetch_access_token(base + "/plugins/servlet/oauth/access-token")
        result["access_token"] = tokens
    except TokenRequestDenied as denied:
        result["access_status"] = denied.status_code
        result["access_body"] = denied.response.text
        result["access_challenge"] = denied.response.headers.get("WWW-Authenticate")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
