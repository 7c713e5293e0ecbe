#!/usr/bin/env python3
"""The stable local address: http://127.0.0.1:3000/<route> is forwarded, unchanged (method,
headers, body, status), to the deployed REST API's stage on the emulator,
http://127.0.0.1:4566/_aws/execute-api/<api id>/<stage>/<route>. API ids change with every
new stack; this address does not. The caller's address goes along as X-Forwarded-For, which
the emulator's API Gateway reports as `requestContext.identity.sourceIp`.

It also serves the API's description, `infra/openapi.yaml`, as JSON at `GET /openapi.json`
(with this address as its server), for tools such as Schemathesis or Swagger UI.

Usage: forward.py LISTEN_PORT TARGET_BASE_URL
"""
import http.client
import http.server
import json
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

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade",
              "proxy-authorization", "proxy-authenticate", "host", "content-length"}


def handler_for(target):
    parsed = urllib.parse.urlsplit(target)
    prefix = parsed.path.rstrip("/")

    class Forward(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def forward(self):
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


def main():
    port, target = int(sys.argv[1]), sys.argv[2]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler_for(target))
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
