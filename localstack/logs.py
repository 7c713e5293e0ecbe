#!/usr/bin/env python3
"""The deployed functions' log lines, from the emulator's CloudWatch Logs (where Lambda writes
them, as on AWS). `make logs` prints them; tests read them with --json.

Usage: logs.py STACK_JSON [--json] [--since-ms MS]
"""
import json
import os
import sys

import boto3


def lines(stack_file, since_ms=0):
    """(function binary, message) of every log event since `since_ms`, oldest first."""
    names = json.load(open(stack_file))
    logs = boto3.client("logs", endpoint_url=os.environ.get("AWS_ENDPOINT_URL") or None,
                        region_name=os.environ.get("AWS_REGION", "us-east-1"))
    out = []
    for binary, physical in names["functions"].items():
        kwargs = {"logGroupName": f"/aws/lambda/{physical}", "startTime": since_ms}
        while True:
            try:
                page = logs.filter_log_events(**kwargs)
            except logs.exceptions.ResourceNotFoundException:
                break
            out += [(e["timestamp"], binary, e["message"].rstrip("\n")) for e in page["events"]]
            if not page.get("nextToken"):
                break
            kwargs["nextToken"] = page["nextToken"]
    return [(b, m) for _, b, m in sorted(out, key=lambda e: e[0])]


def main(argv):
    since = int(argv[argv.index("--since-ms") + 1]) if "--since-ms" in argv else 0
    found = lines(argv[0], since)
    if "--json" in argv:
        print(json.dumps([{"function": b, "message": m} for b, m in found]))
    else:
        for b, m in found:
            print(f"{b:<16} {m}")


if __name__ == "__main__":
    main(sys.argv[1:])
