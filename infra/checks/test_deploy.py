"""The deploy script's guards against the emulator's traps (`infra/deploy.py`): the package's
`bootstrap` is executable whatever the binary's own mode, and a deployed function without code
(which MiniStack answers with 200 "Mock response") is caught. The second class needs the stack
`make test` deployed (STACK_FILE and AWS_ENDPOINT_URL in the environment)."""
import io
import json
import os
import sys
import tempfile
import unittest
import uuid
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import deploy  # noqa: E402


class Packaging(unittest.TestCase):
    def test_bootstrap_is_packaged_executable(self):
        with tempfile.NamedTemporaryFile() as f:
            f.write(b"\x7fELF not really")
            f.flush()
            os.chmod(f.name, 0o644)  # whatever the file's own mode, the package's is 0755
            package = deploy.zip_bootstrap(__import__("pathlib").Path(f.name))
        info = zipfile.ZipFile(io.BytesIO(package)).getinfo("bootstrap")
        self.assertEqual((info.external_attr >> 16) & 0o777, 0o755)

    def test_a_package_without_the_execute_bit_is_refused(self):
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            info = zipfile.ZipInfo("bootstrap")
            info.external_attr = 0o100644 << 16
            z.writestr(info, b"binary")
        with self.assertRaises(SystemExit):
            deploy.check_executable(buf.getvalue())


class DeployedStack(unittest.TestCase):
    def setUp(self):
        self.stack = json.load(open(os.environ["STACK_FILE"]))

    def test_every_function_has_code(self):
        lam = deploy.client("lambda")
        for physical in self.stack["functions"].values():
            deploy.check_code(lam, physical)  # raises if not

    def test_a_function_without_code_is_caught(self):
        lam = deploy.client("lambda")
        name = f"no-code-{uuid.uuid4().hex[:8]}"
        # The emulator accepts a function whose code object does not exist.
        lam.create_function(FunctionName=name, Runtime="provided.al2023", Handler="bootstrap",
                            Role="arn:aws:iam::000000000000:role/none",
                            Code={"S3Bucket": "no-such-bucket", "S3Key": "no-such.zip"})
        try:
            with self.assertRaises(SystemExit):
                deploy.check_code(lam, name)
        finally:
            lam.delete_function(FunctionName=name)


if __name__ == "__main__":
    unittest.main()
