"""Tests of the four MiniStack patches in ministack_server.py. They fail when an upgrade of
the pinned MiniStack breaks a patch, or fixes the defect itself (then drop the patch)."""
import inspect
import json
import queue
import socketserver
import time
import unittest

from ministack.core import lambda_runtime

import ministack_server

# Taken before any test applies the patches.
OWNER = ministack_server.drain_owner()
UPSTREAM_DRAIN = OWNER.__dict__["_drain_stderr_bounded"]


class Patches(unittest.TestCase):
    def test_upstream_still_waits_for_a_first_log_line(self):
        # Checked on the unpatched method: if this fails, upstream changed and the patch goes.
        self.assertFalse(getattr(UPSTREAM_DRAIN, "_saas_patched", False))
        default = inspect.signature(UPSTREAM_DRAIN).parameters["first_line_wait"].default
        self.assertEqual(default, ministack_server.UPSTREAM_FIRST_LINE_WAIT)

    def test_upstream_runtime_api_does_not_set_nodelay(self):
        self.assertNotIn("disable_nagle_algorithm", inspect.getsource(lambda_runtime))
        self.assertNotIn("TCP_NODELAY", inspect.getsource(lambda_runtime))

    def test_a_drain_with_nothing_to_read_returns_at_once_after_the_patch(self):
        owner = OWNER
        worker = owner.__new__(owner)  # only the queue is used by the drain
        worker._stderr_queue = queue.Queue()
        started = time.monotonic()
        UPSTREAM_DRAIN(worker)
        unpatched = time.monotonic() - started
        ministack_server.apply()
        started = time.monotonic()
        self.assertEqual(owner._drain_stderr_bounded(worker), "")
        patched = time.monotonic() - started
        self.assertGreaterEqual(unpatched, 0.045, "upstream no longer waits: drop the patch")
        self.assertLess(patched, 0.010)
        # Lines already there are all collected.
        for line in ("a", "b"):
            worker._stderr_queue.put(line)
        self.assertEqual(owner._drain_stderr_bounded(worker), "a\nb")

    def test_runtime_api_sockets_get_nodelay_after_the_patch(self):
        ministack_server.apply()
        self.assertTrue(socketserver.StreamRequestHandler.disable_nagle_algorithm)
        ministack_server.apply()  # idempotent


    def test_a_mock_integration_keeps_its_responses_only_after_the_patch(self):
        from ministack.services import apigateway_v1 as api
        spec = {"swagger": "2.0", "info": {"title": "cors-probe", "version": "1"}, "paths": {"/p": {
            "options": {"x-amazon-apigateway-integration": {
                "type": "mock",
                "requestTemplates": {"application/json": '{"statusCode": 200}'},
                "responses": {"default": {"statusCode": "200", "responseParameters": {
                    "method.response.header.Access-Control-Allow-Origin": "'https://a.example'"}}}}}}}}

        def imported():
            api_id = api._import_rest_api(json.loads(json.dumps(spec)), {})
            resource = next(r for r in api._resources.get(api_id, {}).values() if r.get("path") == "/p")
            return resource["resourceMethods"]["OPTIONS"]["methodIntegration"]

        if not getattr(api._import_operation, "_saas_patched", False):
            self.assertEqual(imported().get("integrationResponses"), {},
                             "upstream imports integration responses now: drop the patch")
        ministack_server.import_integration_responses()
        integration = imported()
        status, headers, _ = api._invoke_mock_v1(integration)
        self.assertEqual(status, 200)
        self.assertEqual(headers["Access-Control-Allow-Origin"], "https://a.example")
        ministack_server.import_integration_responses()  # idempotent

    def test_an_any_method_is_imported_only_after_the_patch(self):
        from ministack.services import apigateway_v1 as api
        proxy = {"x-amazon-apigateway-integration": {
            "type": "aws_proxy", "httpMethod": "POST",
            "uri": "arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/f/invocations"}}
        spec = {"swagger": "2.0", "info": {"title": "any-probe", "version": "1"}, "paths": {
            "/q": {"get": proxy, "x-amazon-apigateway-any-method": proxy}}}

        def methods():
            api_id = api._import_rest_api(json.loads(json.dumps(spec)), {})
            resource = next(r for r in api._resources.get(api_id, {}).values() if r.get("path") == "/q")
            return set(resource["resourceMethods"])

        if not getattr(api._import_path_item, "_saas_patched", False):
            self.assertEqual(methods(), {"GET"}, "upstream imports ANY now: drop the patch")
        ministack_server.import_any_method()
        self.assertEqual(methods(), {"GET", "ANY"})
        ministack_server.import_any_method()  # idempotent


if __name__ == "__main__":
    unittest.main()
