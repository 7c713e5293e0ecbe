#!/usr/bin/env python3
"""The Docker-free emulator: moto's server application, served one request at a time.

`moto_server` handles requests on many threads without a lock around the backends, so two
conditional writes can interleave between moto's check and its write. DynamoDB never lets that
happen, and the platform's single-use guarantees (refresh rotation, reset tokens) rest on it.
Serving requests one by one gives the emulator the same atomicity. Each request takes
milliseconds, and moto closes every connection, so the queue stays short.

Usage: emulator.py HOST PORT
"""
import os
import signal
import sys

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import run_simple


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    os.environ.setdefault("MOTO_PORT", str(port))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(host, port, app, threaded=False, use_reloader=False)


if __name__ == "__main__":
    main()
