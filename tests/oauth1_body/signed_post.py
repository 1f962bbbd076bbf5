"""A consumer's signed form POST, as requests-oauthlib sends it (tests/oauth1_body.rs).

    signed_post.py keygen DIR BITS
        writes DIR/consumer.pem (private) and DIR/consumer.pub (SubjectPublicKeyInfo PEM)
    signed_post.py post URL CONSUMER_KEY PRIVATE_KEY_FILE TOKEN TOKEN_SECRET BODY
        POSTs BODY (application/x-www-form-urlencoded, signed over, RSA-SHA1) to URL with the
        access token; prints {"status": ..., "body": ..., "www_authenticate": ...}
    signed_post.py tampered URL CONSUMER_KEY PRIVATE_KEY_FILE TOKEN TOKEN_SECRET BODY SENT
        the same, signed over BODY but sending SENT (a body changed after signing)
"""

import json
import sys

import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from oauthlib.oauth1 import SIGNATURE_RSA, Client
from requests_oauthlib import OAuth1


def keygen(directory, bits):
    key = rsa.generate_private_key(public_exponent=65537, key_size=int(bits))
    with open(directory + "/consumer.pem", "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    with open(directory + "/consumer.pub", "wb") as f:
        f.write(key.public_key().public_bytes(serialization.Encoding.PEM,
                                              serialization.PublicFormat.SubjectPublicKeyInfo))
    print(json.dumps({"ok": True}))


def post(url, consumer_key, key_file, token, secret, body):
    with open(key_file) as f:
        rsa_key = f.read()
    auth = OAuth1(consumer_key, resource_owner_key=token, resource_owner_secret=secret,
                  signature_method=SIGNATURE_RSA, rsa_key=rsa_key)
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    report(requests.post(url, data=body, headers=headers, auth=auth))


def tampered(url, consumer_key, key_file, token, secret, body, sent):
    with open(key_file) as f:
        rsa_key = f.read()
    client = Client(consumer_key, resource_owner_key=token, resource_owner_secret=secret,
                    signature_method=SIGNATURE_RSA, rsa_key=rsa_key)
    _, headers, _ = client.sign(url, "POST", body=body,
                                headers={"Content-Type": "application/x-www-form-urlencoded"})
    report(requests.post(url, data=sent, headers=headers))


def report(response):
    print(json.dumps({"status": response.status_code, "body": response.text,
                      "www_authenticate": response.headers.get("WWW-Authenticate")}))


if __name__ == "__main__":
    {"keygen": keygen, "post": post, "tampered": tampered}[sys.argv[1]](*sys.argv[2:])
