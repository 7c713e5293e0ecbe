"""Tests of the local platform's own machinery against the stack `make test` deployed
(STACK_FILE, API_URL, TABLE_NAME and AWS_ENDPOINT_URL in the environment): the emulator's
private temporary files, the mail listing, and the stable local address. (The deploy script's
guards are `infra/checks/test_deploy.py`.)"""
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "infra"))
import deploy  # noqa: E402  (infra/deploy.py: its AWS clients)
import mail  # noqa: E402


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class EmulatorState(unittest.TestCase):
    def test_emulator_state_stays_out_of_the_shared_temporary_directory(self):
        port = os.environ["AWS_ENDPOINT_URL"].rsplit(":", 1)[1]
        shared_tmp = tempfile.gettempdir()
        leaked = [n for n in os.listdir(shared_tmp) if n.startswith("ministack") and port in n]
        self.assertEqual(leaked, [], f"emulator files in {shared_tmp}")


class Mail(unittest.TestCase):
    def test_the_listing_stays_fast_with_thousands_of_items_in_the_table(self):
        ddb = deploy.client("dynamodb")
        table = os.environ["TABLE_NAME"]
        run = uuid.uuid4().hex
        for start in range(0, 3000, 25):
            ddb.batch_write_item(RequestItems={table: [
                {"PutRequest": {"Item": {"PK": {"S": f"LOAD#{run}#{i}"}, "SK": {"S": "LOAD"},
                                         "payload": {"S": "x" * 200}}}}
                for i in range(start, start + 25)]})
        to = f"mail-{run}@example.com"
        deploy.client("sesv2").send_email(
            FromEmailAddress=os.environ["SENDER_EMAIL"],
            Destination={"ToAddresses": [to]},
            Content={"Simple": {"Subject": {"Data": "hello"},
                                "Body": {"Text": {"Data": "see https://x.example/r#token=t"}}}})
        started = time.monotonic()
        found = [m for m in mail.fetch(os.environ["AWS_ENDPOINT_URL"]) if to in m["to"]]
        took = time.monotonic() - started
        print(f"\nmail listing with 3000 extra table items: {took * 1000:.1f} ms", file=sys.stderr)
        self.assertEqual([m["subject"] for m in found], ["hello"])
        # Liveness, not speed: moto's listing took 22 s after an hour of use.
        self.assertLess(took, 5.0)


class StableAddress(unittest.TestCase):
    def test_the_forwarder_passes_requests_and_answers_through_unchanged(self):
        port = free_port()
        proc = subprocess.Popen([sys.executable, "forward.py", str(port), os.environ["API_URL"]])
        try:
            base = f"http://127.0.0.1:{port}"
            for _ in range(100):
                try:
                    urllib.request.urlopen(f"{base}/health/live", timeout=2)
                    break
                except OSError:
                    time.sleep(0.05)
            req = urllib.request.Request(f"{base}/health/live", headers={"X-Request-ID": "fwd-1"})
            with urllib.request.urlopen(req, timeout=10) as resp:
                self.assertEqual(resp.status, 200)
                self.assertEqual(resp.headers["x-request-id"], "fwd-1")
                self.assertEqual(json.load(resp)["data"]["status"], "live")
            body = json.dumps({"email": "nobody@example.com", "password": "x"}).encode()
            req = urllib.request.Request(f"{base}/auth/login", data=body, method="POST",
                                         headers={"content-type": "application/json",
                                                  "X-Forwarded-For": f"10.250.{port % 250}.9"})
            with self.assertRaises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(req, timeout=10)
            self.assertEqual(refused.exception.code, 401)
            self.assertEqual(json.load(refused.exception)["error"]["code"], "INVALID_CREDENTIALS")
            # The API's description, as JSON, naming this address as its server.
            with urllib.request.urlopen(f"{base}/openapi.json", timeout=10) as resp:
                doc = json.load(resp)
            self.assertEqual(doc["servers"][0]["url"], base)
            self.assertIn("/tenants/{slug}/reconcile", doc["paths"])
        finally:
            proc.terminate()
            proc.wait()


if __name__ == "__main__":
    unittest.main()
