#!/usr/bin/env python3
"""Access-token keys in Secrets Manager: the signing secret (private keys, read by `login`
only) and the public-key secret (a JWK Set, read by every other function).

  keys.py ensure   create a first key if there is none; publish the public halves
  keys.py rotate   put a new key first (it signs from now on), keep the old ones; publish
  keys.py retire   keep only the first key (after the access-token lifetime has passed); publish
  keys.py list     the key ids, newest (the signing one) first, and whether all are published

Functions read the secrets again every JWT_KEYS_REFRESH_SECONDS, and verifiers at once (rate
limited) when they meet an unknown key id, so none of these needs a redeploy. Idempotent.

Which stack's secrets (`make keys`, `make keys-rotate`, `make keys-retire` pass one of these):
  --stack-file PATH     a stack.json deploy.py wrote (the local stack: localstack/.state/stack.json)
  --stack NAME          a deployed stack, its two key secrets read from CloudFormation
  --sam-config PATH     the stack named in the samconfig.toml `make deploy` keeps (.sam/)
  (none)                JWT_SIGNING_KEY_SECRET_ID and JWT_PUBLIC_KEYS_SECRET_ID (names or ARNs)
Environment: AWS_ENDPOINT_URL (unset for AWS), AWS_REGION.
"""
import argparse
import base64
import datetime
import json
import os
import secrets
import sys
import tomllib

import boto3
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


def client(service="secretsmanager"):
    return boto3.client(service, endpoint_url=os.environ.get("AWS_ENDPOINT_URL") or None,
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


def secret_ids(stack=None, stack_file=None, sam_config=None):
    """The stack's (signing, public) key secret ids, from whichever of the three is given, else
    from the environment."""
    if sam_config:
        try:
            with open(sam_config, "rb") as f:
                stack = tomllib.load(f)["default"]["deploy"]["parameters"]["stack_name"]
        except FileNotFoundError:
            raise SystemExit(f"keys: {sam_config} does not exist: name the stack (STACK=...) "
                             "or deploy it first (make deploy)")
    if stack:
        cfn = client("cloudformation")
        try:
            resources = cfn.describe_stack_resources(StackName=stack)["StackResources"]
        except ClientError as e:
            raise SystemExit(f"keys: stack {stack}: {e}")
        ids = {r["LogicalResourceId"]: r["PhysicalResourceId"] for r in resources}
        return ids["JwtSigningKeySecret"], ids["JwtPublicKeysSecret"]
    if stack_file:
        try:
            with open(stack_file) as f:
                names = json.load(f)
        except FileNotFoundError:
            raise SystemExit(f"keys: {stack_file} does not exist: is the local stack up (make dev)?")
        return names["signing_key_secret"], names["public_keys_secret"]
    return env("JWT_SIGNING_KEY_SECRET_ID"), env("JWT_PUBLIC_KEYS_SECRET_ID")


def main(command, signing_id=None, public_id=None):
    sm = client()
    if signing_id is None:
        signing_id, public_id = secret_ids()
    signing = read(sm, signing_id)
    keys = list((signing or {}).get("keys", []))
    if command == "list":
        if not keys:
            raise SystemExit(f"keys: {signing_id} holds no key yet (keys.py ensure)")
        published = {k["kid"] for k in (read(sm, public_id) or {}).get("keys", [])}
        for i, k in enumerate(keys):
            role = "signs" if i == 0 else "verifies only"
            where = "published" if k["kid"] in published else "NOT published"
            print(f"{k['kid']}  {role}, {where}")
        return
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


def cli():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.splitlines()[2:]))
    parser.add_argument("command", nargs="?", default="ensure",
                        choices=["ensure", "rotate", "retire", "list"])
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--stack", help="a deployed stack's name (CloudFormation)")
    which.add_argument("--stack-file", help="a stack.json written by deploy.py")
    which.add_argument("--sam-config", help="the samconfig.toml naming the stack")
    args = parser.parse_args()
    ids = secret_ids(args.stack, args.stack_file, args.sam_config)
    main(args.command, *ids)


if __name__ == "__main__":
    sys.exit(cli())
