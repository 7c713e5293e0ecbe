#!/usr/bin/env python3
"""Access-token keys in Secrets Manager: the signing secret (private keys, read by `login`
only) and the public-key secret (a JWK Set, read by every other function).

  keys.py ensure   create a first key if there is none; publish the public halves
  keys.py rotate   put a new key first (it signs from now on), keep the old ones; publish
  keys.py retire   keep only the first key (after the access-token lifetime has passed); publish

Functions read the secrets again every JWT_KEYS_REFRESH_SECONDS, and verifiers at once (rate
limited) when they meet an unknown key id, so none of these needs a redeploy. Idempotent.
Configuration (environment): AWS_ENDPOINT_URL (unset for AWS), AWS_REGION,
JWT_SIGNING_KEY_SECRET_ID, JWT_PUBLIC_KEYS_SECRET_ID (names or ARNs).
"""
import base64
import datetime
import json
import os
import secrets
import sys

import boto3
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


def client():
    return boto3.client("secretsmanager", endpoint_url=os.environ.get("AWS_ENDPOINT_URL") or None,
                        region_name=os.environ.get("AWS_REGION", "us-east-1"))


def env(name):
    value = os.environ.get(name)
    if not value:
        raise SystemExit(f"keys: {name} must be set")
    return value


def new_key():
    key = Ed25519PrivateKey.generate()
    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    kid = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d%H%M%S-") + secrets.token_hex(3)
    return {"kid": kid, "private_key_pkcs8": base64.b64encode(der).decode()}


def public_jwk(entry):
    key = serialization.load_der_private_key(base64.b64decode(entry["private_key_pkcs8"]), None)
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    x = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    return {"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": entry["kid"], "x": x}


def read(sm, secret_id):
    """The secret's JSON value, {} when it has none yet, None when the secret does not exist."""
    try:
        value = sm.get_secret_value(SecretId=secret_id).get("SecretString")
        return json.loads(value) if value else {}
    except sm.exceptions.ResourceNotFoundException:
        return None


def write(sm, secret_id, value, exists):
    text = json.dumps(value, separators=(",", ":"))
    if exists:
        sm.put_secret_value(SecretId=secret_id, SecretString=text)
    else:
        sm.create_secret(Name=secret_id, SecretString=text)


def main(command):
    sm = client()
    signing_id, public_id = env("JWT_SIGNING_KEY_SECRET_ID"), env("JWT_PUBLIC_KEYS_SECRET_ID")
    signing = read(sm, signing_id)
    keys = list((signing or {}).get("keys", []))
    changed = False
    if command == "ensure" and not keys:
        keys, changed = [new_key()], True
    elif command == "rotate":
        keys, changed = [new_key()] + keys, True
    elif command == "retire" and len(keys) > 1:
        keys, changed = keys[:1], True
    elif command not in ("ensure", "rotate", "retire"):
        raise SystemExit(__doc__)
    if changed:
        write(sm, signing_id, {"keys": keys}, signing is not None)
    # Public halves first-published or brought in line with the signing keys.
    public = read(sm, public_id)
    want = {"keys": [public_jwk(k) for k in keys]}
    if public != want:
        write(sm, public_id, want, public is not None)
    print(f"keys: {command}: {len(keys)} key(s), signing with {keys[0]['kid']}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "ensure")
