#!/usr/bin/env python3
"""`make mail`: the messages the local emulator has captured (recipient, subject, link).

Reads moto's SES store at $AWS_ENDPOINT_URL (default http://127.0.0.1:4566, where `make dev`
runs it). Local use only: it prints reset links, tokens included, so a person can finish a reset.
"""
import json
import os
import re
import sys
import urllib.request

endpoint = os.environ.get("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
try:
    with urllib.request.urlopen(f"{endpoint}/moto-api/data.json", timeout=5) as resp:
        data = json.load(resp)
except OSError as e:
    sys.exit(f"mail: cannot read the emulator at {endpoint} ({e}); is `make dev` running?")

messages = data.get("ses", {}).get("Message", [])
if not messages:
    print("mail: no messages captured yet")
for m in messages:
    to = ", ".join(m.get("destinations", {}).get("ToAddresses", []))
    links = sorted(set(re.findall(r'href="([^"]+)"', m.get("body", ""))))
    print(f"to:      {to}\nsubject: {m.get('subject', '')}")
    for link in links:
        print(f"link:    {link}")
    print()
