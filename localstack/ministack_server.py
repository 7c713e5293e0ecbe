#!/usr/bin/env python3
"""The Docker-free local AWS: MiniStack (pinned in requirements.txt), started with two measured
defects removed. Each adds 40-96 ms to every warm Lambda invocation; with both fixed a warm
invocation costs a few milliseconds (see ../shared/LOCAL-STACK.md and the README's notes).

1. After every invocation MiniStack waits up to 50 ms for the function's first log line
   (`_drain_stderr_bounded(first_line_wait=0.05)`), even when the lines are already there or
   none is coming. Lines that arrive later are not lost: they join the next drain.
2. Its Lambda Runtime API server does not set TCP_NODELAY, so TCP delayed ACK holds a
   response's last segment for about 40 ms.

`test_ministack_patches.py` fails when an upgrade breaks either patch or no longer needs it.

Usage: ministack_server.py   (GATEWAY_PORT, BIND_HOST and the AWS settings from the environment)
"""
import inspect
import socketserver

from ministack.core import lambda_runtime

#: MiniStack's own default for the first-line wait, which the patch removes.
UPSTREAM_FIRST_LINE_WAIT = 0.050


def drain_owner():
    """The worker class that defines `_drain_stderr_bounded` (the provided-runtime worker
    inherits it)."""
    for value in vars(lambda_runtime).values():
        if isinstance(value, type) and "_drain_stderr_bounded" in value.__dict__:
            return value
    raise RuntimeError("ministack no longer defines _drain_stderr_bounded: review the patch")


def apply():
    """Installs both fixes. Idempotent."""
    socketserver.StreamRequestHandler.disable_nagle_algorithm = True
    owner = drain_owner()
    original = owner._drain_stderr_bounded
    if getattr(original, "_saas_patched", False):
        return
    params = inspect.signature(original).parameters
    if params["first_line_wait"].default != UPSTREAM_FIRST_LINE_WAIT:
        raise RuntimeError("ministack changed its first-line wait: review the patch")

    def drain_without_waiting(self, first_line_wait=0.0, idle_confirm=0.001, hard_cap=0.250):
        # An explicit wait (MiniStack asks for one when reporting an init failure) is kept.
        return original(self, first_line_wait=first_line_wait, idle_confirm=idle_confirm,
                        hard_cap=hard_cap)

    drain_without_waiting._saas_patched = True
    owner._drain_stderr_bounded = drain_without_waiting


def main():
    apply()
    from ministack.app import main as serve
    serve()


if __name__ == "__main__":
    main()
