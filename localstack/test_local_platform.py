"""Tests of the local platform's own machinery against the stack `make test` deployed
(STACK_FILE, API_URL, TABLE_NAME and AWS_ENDPOINT_URL in the environment): the emulator's
private temporary files, the mail listing, and the stable local address. (The deploy script's
guards are `infra/checks/test_deploy.py`.)"""
import contextlib
import json
import os
import selectors
import shutil
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


@contextlib.contextmanager
def forwarder():
    """`make dev`'s local address (forward.py) in front of this stack's API, on a free port."""
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
        yield port
    finally:
        proc.terminate()
        proc.wait()


def listen_backlog(port):
    """The kernel's listen backlog of the socket listening on `port` (`ss`'s Send-Q), or None
    when `ss` is not installed."""
    if not shutil.which("ss"):
        return None
    out = subprocess.run(["ss", "-Hltn", f"sport = :{port}"], capture_output=True, text=True).stdout
    return int(out.split()[2]) if out.split() else None


class StableAddress(unittest.TestCase):
    def test_the_forwarder_passes_requests_and_answers_through_unchanged(self):
        with forwarder() as port:
            base = f"http://127.0.0.1:{port}"
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

    def test_a_hundred_simultaneous_connections_are_all_answered(self):
        # With socketserver's default listen backlog (5), 10 of 50 simultaneous clients got a
        # reset (issue 23, finding 20). Measured here with 100: some hung until their timeout,
        # and most waited a second or more for a retransmitted handshake (a full accept queue
        # drops the SYN). Each client asks for a route no function serves, so the emulator's
        # gateway answers (404 ROUTE_NOT_FOUND) without starting 100 functions.
        clients = 100
        with forwarder() as port:
            backlog = listen_backlog(port)
            answers, connected = burst(port, clients, "/no-such-route")
        print(f"\n{clients} simultaneous connections through the local address: every handshake "
              f"within {max(connected, default=0):.3f} s", file=sys.stderr)
        if backlog is not None:
            self.assertGreaterEqual(backlog, clients, "the local address's listen backlog")
        wrong = [(i, a) for i, a in enumerate(answers) if a != (404, "ROUTE_NOT_FOUND")]
        self.assertEqual(wrong, [], f"{len(wrong)} of {clients} clients got no proper answer")
        # A dropped SYN is sent again after 1 s: no handshake may have needed that.
        self.assertLess(max(connected), 1.0, "a connection waited for a retransmitted handshake")


def burst(port, clients, path, timeout=10.0):
    """`clients` connections to 127.0.0.1:`port` opened at once from one thread (no scheduling
    between them), each sending `GET path-<i>`: each answer as (status, error code) or what went
    wrong, and how long each handshake took, in seconds."""
    sel = selectors.DefaultSelector()
    started = time.monotonic()
    answers, connected = [f"no answer within {timeout} s"] * clients, []
    for i in range(clients):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", port))
        sel.register(s, selectors.EVENT_WRITE, {"i": i, "data": b""})
    open_ = clients
    while open_ and time.monotonic() - started < timeout:
        for key, events in sel.select(timeout=0.1):
            s, state = key.fileobj, key.data
            if events & selectors.EVENT_WRITE:
                error = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if error:
                    answers[state["i"]] = f"connect failed: {os.strerror(error)}"
                else:
                    connected.append(time.monotonic() - started)
                    s.send(f"GET {path}-{state['i']} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                           "Connection: close\r\n\r\n".encode())
                    sel.modify(s, selectors.EVENT_READ, state)
                    continue
            else:
                try:
                    chunk = s.recv(65536)
                except OSError as e:
                    chunk, answers[state["i"]] = b"", f"read failed: {e}"
                if chunk:
                    state["data"] += chunk
                    continue
                if state["data"]:
                    head, _, body = state["data"].partition(b"\r\n\r\n")
                    try:
                        answers[state["i"]] = (int(head.split()[1]), json.loads(body)["error"]["code"])
                    except (ValueError, IndexError, KeyError, TypeError):
                        answers[state["i"]] = f"unexpected answer: {state['data'][:200]!r}"
            sel.unregister(s)
            s.close()
            open_ -= 1
    for key in list(sel.get_map().values()):
        key.fileobj.close()
    return answers, connected


if __name__ == "__main__":
    unittest.main()
