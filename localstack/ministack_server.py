#!/usr/bin/env python3
"""The Docker-free local AWS: MiniStack (pinned in requirements.txt), started with four measured
defects removed. Each adds 40-96 ms to every warm Lambda invocation; with both fixed a warm
invocation costs a few milliseconds (see ../shared/LOCAL-STACK.md and the README's notes).

1. After every invocation MiniStack waits up to 50 ms for the function's first log line
   (`_drain_stderr_bounded(first_line_wait=0.05)`), even when the lines are already there or
   none is coming. Lines that arrive later are not lost: they join the next drain.
2. Its Lambda Runtime API server does not set TCP_NODELAY, so TCP delayed ACK holds a
   response's last segment for about 40 ms.

3. Its import of an API's OpenAPI body keeps a `x-amazon-apigateway-integration`'s type and
   URI only, dropping its request templates and `responses`. A mock integration then answers
   `{}` with no headers: the CORS preflights the template's `Cors` defines (SAM writes them as
   mock integrations with static `Access-Control-Allow-*` headers) would carry none. The patch
   imports both, as API Gateway does.

4. The same import skips a path's `x-amazon-apigateway-any-method` (how SAM writes a `Method: any`
   event), so a method a route does not declare never reaches its function and API Gateway's
   404 answers instead of the function's 405 with `Allow`. The patch imports it as the `ANY`
   method; MiniStack's router already prefers an explicit method over `ANY`, as AWS does.

`test_ministack_patches.py` fails when an upgrade breaks a patch or no longer needs it.

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


def _run_after(module, name, then):
    """Replaces `module.name` with a function that runs the original, then `then` with the same
    arguments. Idempotent: a function already replaced is left alone."""
    original = getattr(module, name)
    if getattr(original, "_saas_patched", False):
        return

    def patched(*args, **kwargs):
        original(*args, **kwargs)
        then(*args, **kwargs)

    patched._saas_patched = True
    setattr(module, name, patched)


def import_integration_responses():
    """Patch 3: a body's integration request templates and responses are imported. Idempotent."""
    from ministack.services import apigateway_v1 as api

    def add_responses(api_id, resource_id, http_method, operation, *_args, **_kwargs):
        integration = (operation or {}).get("x-amazon-apigateway-integration") or {}
        method = api._resources.get(api_id, {}).get(resource_id, {}) \
            .get("resourceMethods", {}).get(http_method) or {}
        imported = method.get("methodIntegration")
        if imported is None:
            return
        if integration.get("requestTemplates"):
            imported["requestTemplates"] = dict(integration["requestTemplates"])
        for selection, response in (integration.get("responses") or {}).items():
            api._put_integration_response(api_id, resource_id, http_method,
                                          str(response.get("statusCode", "200")), {
                                              "selectionPattern": "" if selection == "default" else selection,
                                              "responseParameters": response.get("responseParameters", {}),
                                              "responseTemplates": response.get("responseTemplates", {}),
                                          })

    _run_after(api, "_import_operation", add_responses)


def import_any_method():
    """Patch 4: a path's `x-amazon-apigateway-any-method` is imported as `ANY`. Idempotent."""
    from ministack.services import apigateway_v1 as api

    def add_any(api_id, path, path_item, *args, **kwargs):
        operation = (path_item or {}).get("x-amazon-apigateway-any-method")
        if operation is None:
            return
        resource_id = next(rid for rid, res in api._resources.get(api_id, {}).items()
                           if res.get("path") == path)
        api._import_operation(api_id, resource_id, "ANY", operation, *args, **kwargs)

    _run_after(api, "_import_path_item", add_any)


def main():
    apply()
    import_integration_responses()
    import_any_method()
    from ministack.app import main as serve
    serve()


if __name__ == "__main__":
    main()
