"""Signs requests as real OAuth 1.0a clients do, with oauthlib's RSA-SHA1 Client (what
requests-oauthlib's OAuth1 and jira-python use), and prints as JSON, for each, what goes on
the wire and the signature base string oauthlib signed. Run by tests/oauthlib.rs with the
path of a PEM private key."""

import json
import sys

import requests
from oauthlib.oauth1 import SIGNATURE_RSA, Client
from requests_oauthlib import OAuth1

RSA_KEY = open(sys.argv[1]).read()
BASE_STRINGS = []


class Recording(Client):
    """oauthlib's Client, keeping each base string it signs."""

    SIGNATURE_METHODS = dict(Client.SIGNATURE_METHODS)

    def _record(base_string, client, sign=Client.SIGNATURE_METHODS[SIGNATURE_RSA]):
        BASE_STRINGS.append(base_string)
        return sign(base_string, client)

    SIGNATURE_METHODS[SIGNATURE_RSA] = _record


def text(value):
    return value.decode() if isinstance(value, bytes) else value


def sent(name, method, url, headers, body):
    headers = {k.lower(): text(v) for k, v in headers.items()}
    return {
        "name": name,
        "method": method,
        "url": url,
        "authorization": headers["authorization"],
        "content_type": headers.get("content-type"),
        "body": text(body),
        "base_string": BASE_STRINGS[-1],
    }


def client(**extra):
    return Recording("jira-cli", signature_method=SIGNATURE_RSA, rsa_key=RSA_KEY, **extra)


out = []

url = ("https://Jira.Example.com:443/rest/api/2/search?jql=project%20%3D%20DEMO%20ORDER%20BY%20key"
       "&maxResults=5&fields=summary&fields=status&empty=")
uri, headers, body = client(resource_owner_key="t0k3n", realm="Jira").sign(url)
out.append(sent("GET with a query", "GET", uri, headers, body))

url = "http://jira.example.com:8080/rest/api/2/issue/DEMO-1/comment?notify=true"
form = "body=Hello+w%C3%B6rld%21&tag=a%26b&empty="
uri, headers, body = client(resource_owner_key="t0k3n").sign(
    url, http_method="POST", body=form,
    headers={"Content-Type": "application/x-www-form-urlencoded"})
out.append(sent("POST with a form body", "POST", uri, headers, body))

url = "https://jira.example.com/plugins/servlet/oauth/request-token"
uri, headers, body = client(callback_uri="https://app.example.com/callback?x=1").sign(
    url, http_method="POST")
out.append(sent("request token with a callback", "POST", uri, headers, body))

# Through requests, as requests-oauthlib's OAuth1Session sends them: the URL is
# percent-encoded on the wire (UTF-8) before it is signed.
auth = OAuth1("jira-cli", resource_owner_key="t0k3n", signature_method=SIGNATURE_RSA,
              rsa_key=RSA_KEY, client_class=Recording)
prepared = requests.Request(
    "GET", "https://jira.example.com/rest/api/2/attachment/Café menü 2.txt?q=é ö&x=a+b",
    auth=auth).prepare()
out.append(sent("a path with unicode and spaces", "GET", prepared.url, prepared.headers,
                prepared.body))

prepared = requests.Request(
    "POST", "https://jira.example.com/rest/api/2/issue",
    data={"summary": "Über & more = fun", "n": "1"}, auth=auth).prepare()
out.append(sent("a form posted through requests", "POST", prepared.url, prepared.headers,
                prepared.body))

json.dump(out, sys.stdout)
