"""Signs requests as a consumer does, with oauthlib's Client (what requests-oauthlib and
jira-python sign with), without sending them: tests/oauth1.rs sends them through Envoy, as they
are or changed after signing. argv[1] is a JSON list of requests:
  {"url", "method", "consumer_key", "key_file", "token", "token_secret",
   "signature_method": "RSA-SHA1" | "HMAC-SHA1" | "PLAINTEXT",
   "body" (optional), "content_type" (of the body; application/x-www-form-urlencoded if absent),
   "timestamp", "nonce", "realm" (optional)}
Prints one JSON list: for each, the Authorization header, the URL and the body to send."""

import json
import sys

from oauthlib.oauth1 import Client

FORM = "application/x-www-form-urlencoded"

def sign(spec):
    """One request signed as `spec` says: its Authorization header, URL and body."""
    method = spec["signature_method"]
    client = Client(
        spec["consumer_key"],
        # HMAC-SHA1 and PLAINTEXT sign with the consumer's and the token's secrets: a consumer
        # registered with an RSA key has no consumer secret, so any value stands in for it.
        client_secret=None if method == "RSA-SHA1" else "no-consumer-secret",
        resource_owner_key=spec.get("token"),
        resource_owner_secret=spec.get("token_secret"),
        signature_method=method,
        rsa_key=open(spec["key_file"]).read() if method == "RSA-SHA1" else None,
        timestamp=spec.get("timestamp"),
        nonce=spec.get("nonce"),
        realm=spec.get("realm"),
    )
    body = spec.get("body")
    headers = {"Content-Type": spec.get("content_type", FORM)} if body is not None else None
    uri, headers, body = client.sign(spec["url"], http_method=spec.get("method", "GET"),
                                     body=body, headers=headers)
    return {"url": uri, "authorization": headers["Authorization"], "body": body}


if __name__ == "__main__":
    print(json.dumps([sign(spec) for spec in json.loads(sys.argv[1])]))
