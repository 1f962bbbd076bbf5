"""Two access-token requests for one approved request token at once, one to each base URL
(two replicas, or one twice), each signed with its own nonce: which of them got a token.

    race.py BASE OTHER_BASE CONSUMER_KEY PRIVATE_KEY_FILE CALLBACK USER PASSWORD

Prints one JSON object: `answers`, what each exchange answered.
"""

import json
import sys
import threading
from urllib.parse import parse_qs, urlsplit

from oauthlib.oauth1 import SIGNATURE_RSA
from requests_oauthlib import OAuth1Session

from dance import authorize, exchange, session


def main():
    base, other, consumer_key, key_file, callback, user, password = sys.argv[1:8]
    result = {}
    oauth = session(consumer_key, key_file, callback)
    authorize(oauth, base, base, user, password, "approve", result)
    query = parse_qs(urlsplit(result["location"]).query)
    with open(key_file) as f:
        rsa_key = f.read()
    # Two clients holding the same request token and verifier, as a replaying attacker would.
    clients = [
        OAuth1Session(
            consumer_key,
            signature_method=SIGNATURE_RSA,
            rsa_key=rsa_key,
            resource_owner_key=query["oauth_token"][0],
            verifier=query["oauth_verifier"][0],
        )
        for _ in range(2)
    ]
    answers = [None, None]
    start = threading.Barrier(2)

    def run(i, url):
        start.wait()
        try:
            answers[i] = exchange(clients[i], url)
        except Exception as e:  # reported, so the test says what broke
            answers[i] = {"error": repr(e)}

    threads = [threading.Thread(target=run, args=(i, url)) for i, url in enumerate([base, other])]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result["answers"] = answers
    print(json.dumps(result))


if __name__ == "__main__":
    main()
