"""`make keys` finds the stack's key secrets itself, on the stack `make test` deployed
(STACK_FILE and AWS_ENDPOINT_URL in the environment): from the local stack's stack.json, and
the way it does for AWS (`AWS=1`), from CloudFormation by the stack's name (STACK) or by the name
in the samconfig.toml `make deploy` keeps. It only lists: rotating and retiring move the stack's
own keys, so `tests/tests/keys.rs` runs `make keys-rotate` and `make keys-retire` alone, after
every other test."""
import json
import os
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "infra"))
import keys  # noqa: E402


def make(*args, env=None):
    return subprocess.run(["make", "-s", "--no-print-directory", "-C", str(ROOT), *args],
                          capture_output=True, text=True, env=env)


class MakeKeys(unittest.TestCase):
    def setUp(self):
        self.names = json.loads(Path(os.environ["STACK_FILE"]).read_text())
        signing = keys.read(keys.client(), self.names["signing_key_secret"])
        self.kids = [k["kid"] for k in signing["keys"]]
        # Nothing from the environment may name the secrets: the targets must find them.
        self.env = {k: v for k, v in os.environ.items()
                    if k not in ("JWT_SIGNING_KEY_SECRET_ID", "JWT_PUBLIC_KEYS_SECRET_ID")}

    def listed(self, *args, env=None):
        out = make("keys", *args, env=env or self.env)
        self.assertEqual(out.returncode, 0, out.stderr)
        return [line.split()[0] for line in out.stdout.splitlines()], out.stdout

    def test_make_keys_lists_the_local_stacks_keys_signing_one_first(self):
        kids, text = self.listed()
        self.assertEqual(kids, self.kids)
        self.assertIn("signs, published", text.splitlines()[0])

    def test_with_aws_it_finds_the_secrets_through_cloudformation_by_stack_name(self):
        kids, _ = self.listed("AWS=1", f"STACK={self.names['stack']}")
        self.assertEqual(kids, self.kids)

    def test_with_aws_and_no_stack_named_it_reads_the_name_make_deploy_kept(self):
        with tempfile.TemporaryDirectory() as d:
            Path(d, "samconfig.toml").write_text(
                'version = 0.1\n[default.deploy.parameters]\n'
                f'stack_name = "{self.names["stack"]}"\n')
            kids, _ = self.listed("AWS=1", f"DEPLOY_DIR={d}")
        self.assertEqual(kids, self.kids)

    def test_without_a_stack_it_says_what_to_do_instead_of_naming_variables(self):
        with tempfile.TemporaryDirectory() as d:
            out = make("keys", "AWS=1", f"DEPLOY_DIR={d}", env=self.env)
        self.assertNotEqual(out.returncode, 0)
        self.assertIn("name the stack (STACK=...) or deploy it first", out.stderr)
        self.assertNotIn("must be set", out.stderr)


if __name__ == "__main__":
    unittest.main()
