"""A consumer that signs with HMAC-SHA1 (jira-python's default): requests-oauthlib's
`fetch_request_token` against the token service, which takes RSA-SHA1 only.

    hmac_refused.py BASE CONSUMER_KEY

Prints one JSON object: the status, challenge and body of the refusal.
"""

import json
import sys

from requests_oauthlib import OAuth1Session
from requests_oauthlib.oauth1_session import TokenRequestDenied


def main():
    base, consumer_key = sys.argv[1:3]
    oauth = OAuth1Session(consumer_key, client_secret="not-a-secret-we-share", callback_uri="oob")
    try:
        oauth.fetch_request_token(base + "/plugins/servlet/oauth/request-token")
        print(json.dumps({"status": 200}))
    except TokenRequestDenied as denied:
        print(json.dumps({
            "status": denied.status_code,
            "challenge": denied.response.headers.get("WWW-Authenticate"),
            "body": denied.response.text,
        }))


if __name__ == "__main__":
    main()
