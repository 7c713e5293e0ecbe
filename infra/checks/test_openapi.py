"""`infra/openapi.yaml` describes every route: each operation says what it does (a summary or a
description), names its tags, declares every path parameter its path has, and lists its
answers, every error answer in the platform's envelope. (That its routes are exactly the
template's is a test of `infra/checks/src/template.rs`; that it is valid OpenAPI 3 is
`openapi-spec-validator`'s, in `make test` and `make lint`.)
"""
import pathlib
import re
import unittest

import yaml

DOC = yaml.safe_load((pathlib.Path(__file__).resolve().parent.parent / "openapi.yaml").read_text())
METHODS = {"get", "post", "put", "patch", "delete"}


def resolve(node):
    while isinstance(node, dict) and "$ref" in node:
        path = node["$ref"].lstrip("#/").split("/")
        node = DOC
        for part in path:
            node = node[part]
    return node


def operations():
    for path, item in DOC["paths"].items():
        for method, op in item.items():
            if method in METHODS:
                yield path, method, item, op


class EveryRouteIsDescribed(unittest.TestCase):
    def test_each_operation_says_what_it_does(self):
        missing = [f"{m.upper()} {p}" for p, m, _, op in operations()
                   if not (op.get("summary") or "").strip() and not (op.get("description") or "").strip()]
        self.assertEqual(missing, [])

    def test_each_path_parameter_is_declared(self):
        for path, method, item, op in operations():
            declared = {resolve(p)["name"] for p in item.get("parameters", []) + op.get("parameters", [])
                        if resolve(p).get("in") == "path"}
            self.assertEqual(set(re.findall(r"{(\w+)}", path)), declared, f"{method.upper()} {path}")

    def test_each_error_answer_uses_the_envelope(self):
        for path, method, _, op in operations():
            self.assertTrue(op.get("responses"), f"{method.upper()} {path}: no responses")
            for code, answer in op["responses"].items():
                if not str(code).startswith(("4", "5")):
                    continue
                schema = resolve(resolve(answer)["content"]["application/json"]["schema"])
                self.assertIn("error", schema.get("properties", {}), f"{method.upper()} {path} {code}")

    def test_the_check_notices_a_missing_summary(self):
        DOC["paths"]["/__probe"] = {"get": {"responses": {"200": {"description": "x"}}}}
        try:
            with self.assertRaises(AssertionError):
                self.test_each_operation_says_what_it_does()
        finally:
            del DOC["paths"]["/__probe"]


if __name__ == "__main__":
    unittest.main()
