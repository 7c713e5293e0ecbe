#!/usr/bin/env python3
"""The deployed functions' log lines, from the emulator's CloudWatch Logs (where Lambda writes
them, as on AWS). `make logs` prints them; tests read them with --json.

Every line is read, or the reader says it could not be: the emulator's FilterLogEvents answers at
most 10,000 events (the oldest) and no continuation token, so one query over a busy function's
whole log silently drops its newest lines. Each log group is therefore read in time windows
small enough that every answer is complete (`window_events`), following `nextToken` where the
service gives one (AWS). A window that still fills an answer at a single millisecond cannot be
split further: `IncompleteLogs` is raised rather than a partial log returned.

Usage: logs.py STACK_JSON [--json] [--since-ms MS]
"""
import json
import os
import sys
import time

import boto3

# The most events one FilterLogEvents answer holds (AWS's default limit, and the emulator's cap,
# beyond which it answers no more and gives no token).
CAP = 10_000


class IncompleteLogs(RuntimeError):
    """Some events of a log could not be read: the caller must not act as if it saw them all."""


def window_events(fetch, start, end, cap=CAP):
    """Every event with `start <= timestamp <= end` (Unix ms, both ends included, as
    FilterLogEvents takes them), each once, oldest first.

    `fetch(lo, hi, token)` answers one FilterLogEvents page: `(events, next_token)`. A window is
    complete when its pages end with one that carries no token and holds fewer than `cap`
    events; a last page of `cap` events may have been cut short, so that window is read again as
    two smaller ones, split at the middle timestamp of what it answered (any split is correct;
    this one suits an answer of the oldest events, the emulator's, and halves the rest). A single
    millisecond that still fills a page raises `IncompleteLogs`.
    """
    out = []
    pending = [(start, end)]
    while pending:
        lo, hi = pending.pop()
        events, token = [], None
        while True:
            page, token = fetch(lo, hi, token)
            events += page
            if not token:
                break
        if len(page) < cap:
            out += events
            continue
        if lo >= hi:
            raise IncompleteLogs(
                f"{len(page)} events at {lo} ms fill one answer ({cap} at most, no continuation): "
                "the rest of that millisecond cannot be read")
        stamps = sorted(e["timestamp"] for e in page)
        mid = min(max(stamps[len(stamps) // 2], lo), hi - 1)
        # The older half is read first, so the events come out in time order.
        pending += [(mid + 1, hi), (lo, mid)]
    return sorted(out, key=lambda e: e["timestamp"])


def group_events(client, group, since_ms=0, until_ms=None, cap=CAP):
    """Every event of log group `group` since `since_ms` (none when the group does not exist)."""
    until = until_ms if until_ms is not None else int(time.time() * 1000) + 60_000

    def fetch(lo, hi, token):
        kwargs = {"logGroupName": group, "startTime": lo, "endTime": hi}
        if token:
            kwargs["nextToken"] = token
        page = client.filter_log_events(**kwargs)
        return page["events"], page.get("nextToken")

    try:
        return window_events(fetch, since_ms, until, cap)
    except client.exceptions.ResourceNotFoundException:
        return []


def lines(stack_file, since_ms=0, client=None):
    """(function binary, message) of every log event since `since_ms`, oldest first.
    Raises `IncompleteLogs` when some could not be read."""
    with open(stack_file) as f:
        names = json.load(f)
    logs = client or boto3.client("logs", endpoint_url=os.environ.get("AWS_ENDPOINT_URL") or None,
                                  region_name=os.environ.get("AWS_REGION", "us-east-1"))
    out = []
    for binary, physical in names["functions"].items():
        for e in group_events(logs, f"/aws/lambda/{physical}", since_ms):
            out.append((e["timestamp"], binary, e["message"].rstrip("\n")))
    return [(b, m) for _, b, m in sorted(out, key=lambda e: e[0])]


def main(argv):
    since = int(argv[argv.index("--since-ms") + 1]) if "--since-ms" in argv else 0
    try:
        found = lines(argv[0], since)
    except IncompleteLogs as e:
        sys.exit(f"logs: {e}")
    if "--json" in argv:
        print(json.dumps([{"function": b, "message": m} for b, m in found]))
    else:
        for b, m in found:
            print(f"{b:<16} {m}")


if __name__ == "__main__":
    main(sys.argv[1:])
