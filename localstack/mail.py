#!/usr/bin/env python3
"""`make mail`: the messages the local emulator has captured (recipient, subject, link).

Reads the emulator's own mail listing at $AWS_ENDPOINT_URL (default http://127.0.0.1:4566,
where `make dev` runs it): MiniStack's `/_ministack/ses/messages`, or LocalStack's `/_aws/ses`.
Both list sent mail only, so the call stays cheap however much else the emulator holds.
Local use only: it prints reset links, tokens included, so a person can finish a reset.

Usage: mail.py [--to ADDRESS] [--json]
"""
import json
import os
import re
import sys
import urllib.request


def fetch(endpoint):
    """Sent messages as dicts {to: [...], subject, text, html}, oldest first."""
    for path, shape in (("/_ministack/ses/messages", "ministack"), ("/_aws/ses", "localstack")):
        try:
            with urllib.request.urlopen(f"{endpoint}{path}", timeout=10) as resp:
                data = json.load(resp)
        except urllib.error.HTTPError:
            continue
        if shape == "ministack":
            out = []
            for msgs in data.get("messages", {}).values():
                out += [{"to": m.get("To", []), "subject": m.get("Subject", ""),
                         "text": m.get("BodyText") or "", "html": m.get("BodyHtml") or "",
                         "at": m.get("Timestamp", "")} for m in msgs]
            return sorted(out, key=lambda m: str(m["at"]))
        return [{"to": m.get("Destination", {}).get("ToAddresses", []),
                 "subject": m.get("Subject", ""),
                 "text": (m.get("Body") or {}).get("text_part") or "",
                 "html": (m.get("Body") or {}).get("html_part") or "",
                 "at": m.get("Timestamp", "")} for m in data.get("messages", [])]
    raise OSError("no mail listing found (neither MiniStack nor LocalStack)")


def main(argv):
    endpoint = os.environ.get("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
    to = argv[argv.index("--to") + 1] if "--to" in argv else None
    try:
        messages = fetch(endpoint)
    except OSError as e:
        sys.exit(f"mail: cannot read the emulator at {endpoint} ({e}); is `make dev` running?")
    if to:
        messages = [m for m in messages if to in m["to"]]
    if "--json" in argv:
        print(json.dumps(messages))
        return
    if not messages:
        print("mail: no messages captured yet")
    for m in messages:
        links = sorted(set(re.findall(r'https?://[^\s"<>]+', m["text"])))
        print(f"to:      {', '.join(m['to'])}\nsubject: {m['subject']}")
        for link in links:
            print(f"link:    {link}")
        print()


if __name__ == "__main__":
    main(sys.argv[1:])
