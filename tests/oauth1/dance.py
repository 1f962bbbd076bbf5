"""The OAuth 1.0a dance as an application link performs it, with requests-oauthlib's
OAuth1Session (RSA-SHA1), through Envoy to the token service, the authorisation step driven as a
browser would: GET the page, read the hidden fields from its HTML, POST the login and the button
with the page's cookie, and read the verifier from the 302's Location. argv[1] is JSON:
  {"base", "consumer_key", "key_file", "callback", "user", "password",
   "button": "approve" | "deny", "myself": true|false, "spare_request_token": true|false,
   "wrong_passwords": [...] (optional: tried first, each on the page the last answer showed),
   "sign": [{"path", ...}] (optional: requests signed with the new access token at once, as
           sign.py signs them, for a test that must use them before the token expires),
   "sign_base" (what those are signed over; base if absent)}
Prints one JSON object with what each step answered (the test asserts on it)."""

import json
import sys
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlsplit

import requests
from oauthlib.oauth1 import SIGNATURE_RSA
from requests_oauthlib import OAuth1Session
from requests_oauthlib.oauth1_session import TokenRequestDenied

from sign import sign

args = json.loads(sys.argv[1])
base = args["base"]
KEY = open(args["key_file"]).read()
out = {}


class Form(HTMLParser):
    """The page's form: its method and action, and each input's name and value."""

    def __init__(self):
        super().__init__()
        self.form = None
        self.inputs = []
        self.ids = {}

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form" and self.form is None:
            self.form = attrs
        if tag == "input" or tag == "button":
            self.inputs.append(attrs)
        if "id" in attrs:
            self.ids[attrs["id"]] = attrs


def answer(response):
    return {"status": response.status_code,
            "headers": {k.lower(): v for k, v in response.headers.items()},
            "body": response.text}


def session(**extra):
    return OAuth1Session(args["consumer_key"], signature_method=SIGNATURE_RSA, rsa_key=KEY, **extra)


oauth = session(callback_uri=args["callback"])
out["request_token"] = oauth.fetch_request_token(base + "/plugins/servlet/oauth/request-token")
if args.get("spare_request_token"):
    # A second request token, left pending: the test uses it where an access token belongs.
    out["spare_request_token"] = session(callback_uri="oob").fetch_request_token(
        base + "/plugins/servlet/oauth/request-token")

browser = requests.Session()
page = browser.get(oauth.authorization_url(base + "/plugins/servlet/oauth/authorize"))
out["page"] = answer(page)
form = Form()
form.feed(page.text)
out["form"] = {"form": form.form, "inputs": form.inputs}
out["cookies"] = [{"name": c.name, "path": c.path} for c in browser.cookies]
button = args.get("button", "approve")
out["wrong_logins"] = []
for password in args.get("wrong_passwords", []) + [args["password"]]:
    fields = {i["name"]: i.get("value", "") for i in form.inputs
              if i.get("type") == "hidden" and "name" in i}
    fields.update({"os_username": args["user"], "os_password": password})
    fields[button] = {"approve": "Allow", "deny": "Deny"}[button]
    action = (form.form or {}).get("action", "/plugins/servlet/oauth/authorize")
    login = browser.post(base + action, data=fields, allow_redirects=False)
    if password != args["password"]:
        out["wrong_logins"].append(answer(login))
        # The page again with an error: its form (and hidden fields) for the next try.
        form = Form()
        form.feed(login.text)
out["login"] = answer(login)
location = login.headers.get("Location")
if login.status_code != 302 or not location:
    print(json.dumps(out))
    sys.exit(0)
out["callback_query"] = parse_qs(urlsplit(location).query)
oauth.parse_authorization_response(location)
try:
    out["access_token"] = oauth.fetch_access_token(base + "/plugins/servlet/oauth/access-token")
except TokenRequestDenied as denied:
    out["access_refused"] = answer(denied.response)
    print(json.dumps(out))
    sys.exit(0)
access = out["access_token"]
sign_base = args.get("sign_base", base)  # the filter's public_base_url, if it has one
out["signed"] = [sign(dict(spec, url=sign_base + spec["path"], consumer_key=args["consumer_key"],
                           key_file=args["key_file"], token=access["oauth_token"],
                           token_secret=access["oauth_token_secret"],
                           signature_method="RSA-SHA1"))
                 for spec in args.get("sign", [])]
if args.get("myself", True):
    out["myself"] = answer(oauth.get(base + "/rest/api/2/myself"))
print(json.dumps(out))
