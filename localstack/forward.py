#!/usr/bin/env python3
"""The stable local address: http://127.0.0.1:3000/<route> is forwarded, unchanged (method,
headers, body, status), to the deployed REST API's stage on the emulator,
http://127.0.0.1:4566/_aws/execute-api/<api id>/<stage>/<route>. API ids change with every
new stack; this address does not. The caller's address goes along as X-Forwarded-For, which
the emulator's API Gateway reports as `requestContext.identity.sourceIp`.

It also serves the API's description, `infra/openapi.yaml`, as JSON at `GET /openapi.json`
(with this address as its server), for tools such as Schemathesis or Swagger UI.

With --console DIR (the console's build, console/dist) it serves the operator console on the
same origin as the API: `/console/...` (a deep link gets index.html, as CloudFront's fallback
does), `/console/config.json` (the API is this origin), and the pages mailed links open,
`/reset-password`, `/accept-invitation` and `/verify-email`. Those answers carry the same security headers as
the CloudFront distribution's policy (infra/template.yaml, ConsoleHeadersPolicy).

Usage: forward.py LISTEN_PORT TARGET_BASE_URL [--console DIR] [--env NAME]
"""
import argparse
import http.client
import http.server
import json
import mimetypes
import pathlib
import sys
import urllib.parse

import yaml

OPENAPI = pathlib.Path(__file__).resolve().parent.parent / "infra" / "openapi.yaml"


def openapi_json(port):
    """The OpenAPI document as JSON, pointing at this forwarder."""
    doc = yaml.safe_load(OPENAPI.read_text())
    doc["servers"] = [{"url": f"http://127.0.0.1:{port}", "description": "make dev"}]
    return json.dumps(doc).encode()

# The distribution's response-headers policy, for the console's files (the API's answers pass
# through unchanged). The API is this origin, so connect-src 'self' is enough here.
CONSOLE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "connect-src 'self'; font-src 'self'; manifest-src 'self'; base-uri 'none'; "
                               "form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Strict-Transport-Security": "max-age=63072000; includeSubDomains",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
}
# Root paths that open the console: the pages mailed links point at.
MAILED_LINK_PAGES = {"/reset-password", "/accept-invitation", "/verify-email"}


def console_file(root: pathlib.Path, path: str):
    """(file, cache-control) for a console request path, or None when it is not the console's."""
    if path in MAILED_LINK_PAGES or path == "/console":
        return root / "index.html", "no-cache"
    if not path.startswith("/console/"):
        return None
    rel = urllib.parse.unquote(path[len("/console/"):])
    target = (root / rel).resolve()
    if rel and root.resolve() in target.parents and target.is_file():
        # Hashed names never change: cache them for a year. index.html and config.json: never.
        immutable = rel.startswith("assets/")
        return target, ("public, max-age=31536000, immutable" if immutable else "no-cache")
    return root / "index.html", "no-cache"


HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade",
              "proxy-authorization", "proxy-authenticate", "host", "content-length"}


def handler_for(target, console=None, env="local"):
    parsed = urllib.parse.urlsplit(target)
    prefix = parsed.path.rstrip("/")
    config = json.dumps({"api": "", "env": env}).encode()

    class Forward(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def console(self):
            """The console's files; True when this request was one."""
            if console is None or self.command not in ("GET", "HEAD"):
                return False
            path = urllib.parse.urlsplit(self.path).path
            if path == "/console/config.json":
                found = (None, "no-cache")
            else:
                found = console_file(console, path)
                if found is None:
                    return False
            file, cache = found
            if file is None:
                data, ctype = config, "application/json"
            elif file.is_file():
                data = file.read_bytes()
                ctype = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
            else:
                data, ctype = b"The console is not built: run `make console` (npm ci, then the build).\n", "text/plain"
            self.send_response(200 if file is None or file.is_file() else 503)
            self.send_header("content-type", ctype + ("; charset=utf-8" if ctype.startswith("text/") or ctype.endswith("javascript") else ""))
            self.send_header("content-length", str(len(data)))
            self.send_header("cache-control", cache)
            for k, v in CONSOLE_HEADERS.items():
                self.send_header(k, v)
            self.end_headers()
            if self.command == "GET":
                self.wfile.write(data)
            return True

        def forward(self):
            if self.console():
                return
            if self.command == "GET" and self.path.split("?")[0] == "/openapi.json":
                data = openapi_json(self.server.server_address[1])
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                return
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else None
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
            headers.setdefault("X-Forwarded-For", self.client_address[0])
            upstream = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=60)
            try:
                upstream.request(self.command, prefix + self.path, body=body, headers=headers)
                resp = upstream.getresponse()
                data = resp.read()
            except OSError as e:
                data = (b'{"success":false,"error":{"code":"SERVICE_UNAVAILABLE",'
                        b'"message":"the local emulator is not answering"}}')
                self.log_error("forward failed: %s", e)
                self.send_response(503)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                return
            finally:
                upstream.close()
            self.send_response_only(resp.status)
            for k, v in resp.getheaders():
                if k.lower() not in HOP_BY_HOP:
                    self.send_header(k, v)
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = forward

        def log_message(self, fmt, *args):
            pass

    return Forward


class Server(http.server.ThreadingHTTPServer):
    """One thread per connection, and a listen backlog for bursts: the kernel holds this many
    connections until the server accepts them. socketserver's default, 5, lost 10 of 50
    simultaneous clients (reset, or hung until their timeout) while the emulator behind answered
    them all; a browser opens several connections at once, a test run dozens. The kernel caps it
    at net.core.somaxconn (4096 on current Linux)."""

    request_queue_size = 1024
    daemon_threads = True


def main():
    parser = argparse.ArgumentParser(description="the stable local address of the API (and the console)")
    parser.add_argument("port", type=int)
    parser.add_argument("target")
    parser.add_argument("--console", type=pathlib.Path, help="the console's build folder (console/dist)")
    parser.add_argument("--env", default="local", help="the environment badge the console shows")
    args = parser.parse_args()
    server = Server(("127.0.0.1", args.port), handler_for(args.target, args.console, args.env))
    quiet = server.handle_error

    def handle_error(request, client_address):
        # A browser that navigates away closes its connections mid-answer: not an error here.
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            quiet(request, client_address)
    server.handle_error = handle_error
    server.serve_forever()


if __name__ == "__main__":
    main()
