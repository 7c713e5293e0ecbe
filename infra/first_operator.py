#!/usr/bin/env python3
"""The first operator: invites an address as a platform operator on a deployed stack.

  first_operator.py invite --email ADDRESS [--force] --stack-file STACK.json
                     [--accept-locally PASSWORD]   (emulator only)
  first_operator.py accept --email ADDRESS --accept-locally PASSWORD --stack-file STACK.json

`invite` invokes the stack's `users` function directly (an IAM-only action: your credentials
need lambda:InvokeFunction on it; no HTTP route can do this). The function creates an account
without a password that holds the operator flag and mails an invitation to the console's
accept page, where the person chooses their password: no password is ever passed, printed or
logged. It is idempotent (the same address again re-sends a pending invitation, and changes
nothing once accepted) and refuses while an operator exists, unless --force. `make deploy`
runs it with OPERATOR_EMAIL; `make dev` runs it, then `accept`.

`--accept-locally` completes a new invitation on the local emulator, as the person would: it
reads the invitation from the emulator's captured mail and accepts it with PASSWORD through
`POST /auth/accept-invitation` (`make dev`, so its printed credentials work at once). It
refuses to run against AWS (no AWS_ENDPOINT_URL).

Exit status: 0 done, 3 refused (e.g. OPERATOR_EXISTS: the answer says why), 1 failed.
"""
import argparse
import json
import os
import re
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import boto3
from botocore.config import Config

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "localstack"))


def load(stack_file):
    return json.loads(Path(stack_file).read_text())


def invite(names, email, force):
    lam = boto3.client("lambda", config=Config(read_timeout=60, retries={"max_attempts": 2}))
    payload = {"action": "invite-operator", "email": email, "force": force}
    resp = lam.invoke(FunctionName=names["functions"]["users"], Payload=json.dumps(payload).encode())
    raw = resp["Payload"].read()
    if resp.get("FunctionError"):
        print(f"operator: the users function failed: {raw[:500]!r}", file=sys.stderr)
        return 1, None
    answer = json.loads(raw)
    if answer.get("ok"):
        print(f"operator: {email}: {answer['outcome']} ({answer['message']})")
        return 0, answer
    print(f"operator: {email}: refused, {answer.get('error')}: {answer.get('message')}", file=sys.stderr)
    return 3, answer


def api_url(names):
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    return f"{endpoint}/_aws/execute-api/{names['api_id']}/{names['stage']}"


def accept(names, email, password):
    if not os.environ.get("AWS_ENDPOINT_URL"):
        print("operator: accept runs on the local emulator only (AWS_ENDPOINT_URL unset)", file=sys.stderr)
        return 1
    import mail  # localstack/mail.py: the emulator's captured messages

    token = None
    for _ in range(50):
        for m in reversed(mail.fetch(os.environ["AWS_ENDPOINT_URL"])):
            if email in m["to"]:
                found = re.search(r"/accept-invitation#token=([A-Za-z0-9_\-]+)", m["text"])
                if found:
                    token = found.group(1)
                    break
        if token:
            break
        time.sleep(0.2)
    if not token:
        print(f"operator: no invitation for {email} in the emulator's mail", file=sys.stderr)
        return 1
    req = urllib.request.Request(
        f"{api_url(names)}/auth/accept-invitation",
        data=json.dumps({"token": token, "password": password}).encode(),
        headers={"content-type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            resp.read()
    except urllib.error.HTTPError as e:
        print(f"operator: accepting the invitation answered {e.code}: {e.read()[:300]!r}", file=sys.stderr)
        return 1
    print(f"operator: {email}: invitation accepted (password set)")
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["invite", "accept"])
    parser.add_argument("--email", required=True)
    parser.add_argument("--force", action="store_true")
    parser.add_argument("--accept-locally", metavar="PASSWORD",
                        help="accept a new invitation with this password (local emulator only)")
    parser.add_argument("--stack-file", required=True, help="the stack's names (deploy.py --out)")
    args = parser.parse_args()
    names = load(args.stack_file)
    if args.command == "accept":
        # The invitation a deploy sent, accepted as its recipient would (emulator only).
        if not args.accept_locally:
            parser.error("accept needs --accept-locally PASSWORD")
        return accept(names, args.email, args.accept_locally)
    rc, answer = invite(names, args.email, args.force)
    if rc == 0 and args.accept_locally and answer["outcome"] in ("invited", "reinvited"):
        return accept(names, args.email, args.accept_locally)
    return rc


if __name__ == "__main__":
    sys.exit(main())
