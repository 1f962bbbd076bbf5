"""jira-python with an access token: `JIRA(server, oauth={...}).myself()`, `times` times in a
row, with oauth["signature_method"] = RSA-SHA1 or without it (then jira tries HMAC-SHA1 first,
which the filter refuses, then RSA-SHA1). Every HTTP exchange is recorded (requests' Session.send)
so the test sees the refused HMAC-SHA1 attempts too. argv[1] is JSON:
  {"server", "consumer_key", "key_file", "access_token", "access_token_secret",
   "signature_method" (optional), "times"}
Prints one JSON object: the names myself() returned, errors, and the exchanges."""

import json
import sys

import requests
from jira import JIRA

args = json.loads(sys.argv[1])
exchanges = []
send = requests.Session.send


def recording_send(self, request, **kwargs):
    response = send(self, request, **kwargs)
    auth = request.headers.get("Authorization", "")
    auth = auth.decode() if isinstance(auth, bytes) else auth  # requests-oauthlib sets bytes
    method = next((p.split("=", 1)[1].strip('"') for p in auth.replace(",", " ").split()
                   if p.startswith("oauth_signature_method=")), None)
    exchanges.append({"url": request.url, "signature_method": method,
                      "status": response.status_code,
                      "www_authenticate": response.headers.get("WWW-Authenticate")})
    return response


requests.Session.send = recording_send

oauth = {"access_token": args["access_token"], "access_token_secret": args["access_token_secret"],
         "consumer_key": args["consumer_key"], "key_cert": open(args["key_file"]).read()}
if args.get("signature_method"):
    oauth["signature_method"] = args["signature_method"]
names, errors = [], []
for _ in range(args.get("times", 1)):
    try:
        # get_server_info=False: the test's application is not Jira and has no serverInfo.
        names.append(JIRA(server=args["server"], oauth=oauth, get_server_info=False,
                          max_retries=0).myself()["name"])
    except Exception as e:  # the test asserts there is none, and shows it
        errors.append(f"{type(e).__name__}: {e}")
print(json.dumps({"names": names, "errors": errors, "exchanges": exchanges}))
