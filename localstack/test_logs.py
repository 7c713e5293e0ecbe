"""The log reader (`logs.py`, behind `make logs` and the IAM check) reads every line or says it
could not, against fake CloudWatch Logs clients that answer like the emulator (at most N events,
the oldest, and no continuation token) or like AWS (pages with a token). Needs no stack."""
import json
import os
import random
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import logs  # noqa: E402


class NotFound(Exception):
    pass


class CappedLogs:
    """FilterLogEvents as the emulator answers it: the oldest `cap` events of the window
    (`order="oldest"`) or any `cap` of them (`order="any"`), never a token."""

    class exceptions:
        ResourceNotFoundException = NotFound

    def __init__(self, groups, cap, order="oldest", seed=7):
        self.groups, self.cap, self.order = groups, cap, order
        self.random = random.Random(seed)
        self.calls = 0

    def filter_log_events(self, logGroupName, startTime=0, endTime=None, nextToken=None, limit=None):
        self.calls += 1
        if logGroupName not in self.groups:
            raise NotFound(logGroupName)
        hits = [e for e in self.groups[logGroupName]
                if e["timestamp"] >= startTime and (endTime is None or e["timestamp"] <= endTime)]
        hits.sort(key=lambda e: e["timestamp"])
        if self.order == "any":
            self.random.shuffle(hits)
        return {"events": hits[:self.cap], "searchedLogStreams": []}


class PagedLogs(CappedLogs):
    """FilterLogEvents as AWS answers it: pages of `cap` events, with a token while more remain."""

    def filter_log_events(self, logGroupName, startTime=0, endTime=None, nextToken=None, limit=None):
        self.calls += 1
        hits = sorted((e for e in self.groups[logGroupName]
                       if startTime <= e["timestamp"] <= (endTime if endTime is not None else 1 << 62)),
                      key=lambda e: e["timestamp"])
        at = int(nextToken or 0)
        page = {"events": hits[at:at + self.cap]}
        if at + self.cap < len(hits):
            page["nextToken"] = str(at + self.cap)
        return page


def events(stamps):
    return [{"timestamp": t, "message": f"line {i}", "eventId": str(i)} for i, t in enumerate(stamps)]


def ids(found):
    return sorted(int(e["eventId"]) for e in found)


class Windows(unittest.TestCase):
    def test_a_log_larger_than_one_answer_is_read_whole_and_once(self):
        rng = random.Random(1)
        stamps = sorted(1_000_000 + rng.randrange(600_000) for _ in range(2_537))
        client = CappedLogs({"g": events(stamps)}, cap=100)
        found = logs.group_events(client, "g", 0, until_ms=2_000_000, cap=100)
        self.assertEqual(ids(found), list(range(len(stamps))))
        self.assertEqual([e["timestamp"] for e in found], stamps)
        # The reader did not fall back to asking for every millisecond.
        self.assertLess(client.calls, 200)

    def test_bursts_many_events_in_one_millisecond_and_answers_in_any_order(self):
        stamps = [5_000] * 90 + [5_001] * 90 + list(range(6_000, 6_500)) + [9_999] * 99
        for order in ("oldest", "any"):
            with self.subTest(order=order):
                client = CappedLogs({"g": events(stamps)}, cap=100, order=order)
                found = logs.group_events(client, "g", 0, until_ms=10_000, cap=100)
                self.assertEqual(ids(found), list(range(len(stamps))))

    def test_a_millisecond_that_fills_an_answer_is_reported_not_skipped(self):
        stamps = list(range(1_000, 1_050)) + [2_000] * 100 + list(range(3_000, 3_050))
        client = CappedLogs({"g": events(stamps)}, cap=100)
        with self.assertRaises(logs.IncompleteLogs):
            logs.group_events(client, "g", 0, until_ms=4_000, cap=100)

    def test_pages_with_a_token_are_followed_without_splitting(self):
        stamps = list(range(0, 1_050))
        client = PagedLogs({"g": events(stamps)}, cap=100)
        found = logs.group_events(client, "g", 0, until_ms=2_000, cap=100)
        self.assertEqual(ids(found), stamps)
        self.assertEqual(client.calls, 11)

    def test_the_window_starts_at_since_and_a_missing_group_is_empty(self):
        client = CappedLogs({"g": events([10, 20, 30, 40])}, cap=100)
        self.assertEqual([e["timestamp"] for e in logs.group_events(client, "g", 25, until_ms=100)],
                         [30, 40])
        self.assertEqual(logs.group_events(client, "missing", 0, until_ms=100), [])


class Lines(unittest.TestCase):
    """`make logs` and the IAM check: every function's lines, with the emulator's 10,000 cap."""

    def test_every_line_of_a_busy_function_is_read(self):
        stack = {"functions": {"login": "stack-Login-1", "tenants": "stack-Tenants-2"}}
        now = int(time.time() * 1000)
        login = [{"timestamp": now - 1_000_000 + i * 37, "message": f"login {i}\n"}
                 for i in range(25_000)]
        tenants = [{"timestamp": now - 500_000 + i, "message": f"tenants {i}\n"} for i in range(300)]
        client = CappedLogs({"/aws/lambda/stack-Login-1": login,
                             "/aws/lambda/stack-Tenants-2": tenants}, cap=logs.CAP)
        with tempfile.NamedTemporaryFile("w", suffix=".json") as f:
            json.dump(stack, f)
            f.flush()
            found = logs.lines(f.name, client=client)
        self.assertEqual(sum(1 for b, _ in found if b == "login"), 25_000)
        self.assertEqual(sum(1 for b, _ in found if b == "tenants"), 300)
        # The newest line, the one a single capped query loses, is there.
        self.assertIn(("login", "login 24999"), found)


if __name__ == "__main__":
    unittest.main()
