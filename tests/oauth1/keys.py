"""Makes the RSA key pairs of the test's two consumers in the directory argv[1] (a JSON
string, as every driver's argument is JSON): X (2048 bits)
and Y (1024 bits, the size of Jira's own application-link tutorial). Writes <name>.pem (PKCS#8
private key, what oauthlib signs with) and <name>.pub (SubjectPublicKeyInfo, what the token
service registers) and prints their paths as JSON."""

import json
import os
import sys

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

directory = json.loads(sys.argv[1])
out = {}
for name, bits in (("x", 2048), ("y", 1024)):
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    private = os.path.join(directory, f"{name}.pem")
    public = os.path.join(directory, f"{name}.pub")
    with open(private, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    with open(public, "wb") as f:
        f.write(key.public_key().public_bytes(serialization.Encoding.PEM,
                                              serialization.PublicFormat.SubjectPublicKeyInfo))
    out[name] = {"private": private, "public": public, "bits": bits}
print(json.dumps(out))
