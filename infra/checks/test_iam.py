"""Every AWS call the functions made during the suite, checked against the calling function's
own policy in infra/template.yaml, the way IAM would decide it on AWS.

The emulator does not enforce IAM, so the test stack runs with `AwsCallLog=true`: each function
logs one `aws call` line per SDK operation (shared/src/runtime/call_log.rs) naming the operation and the
resources it touched. This test reads those lines from the emulator's CloudWatch Logs, turns
each into IAM actions and ARNs, and evaluates them against the function's Allow statements
(actions and resources with wildcards, and the `s3:prefix` condition). A call the role would be
refused fails the test, naming the function, the action and the resource.

It covers the calls the suite makes, which is every route and every provisioning step; a code
path no test reaches is not covered. Run it after the other tests (localstack/test.sh does).
Needs STACK_FILE and AWS_ENDPOINT_URL.
"""
import fnmatch
import json
import os
import sys
import unittest
from pathlib import Path

# deploy.py beside infra/, the log reader in localstack/.
ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "infra"), str(ROOT / "localstack")]
import deploy  # noqa: E402
import logs  # noqa: E402

S3_ACTIONS = {
    "GetObject": ["s3:GetObject"],
    "HeadObject": ["s3:GetObject"],
    "PutObject": ["s3:PutObject"],
    "DeleteObject": ["s3:DeleteObject"],
    "PutObjectTagging": ["s3:PutObjectTagging"],
    "DeleteObjectTagging": ["s3:DeleteObjectTagging"],
    "GetObjectTagging": ["s3:GetObjectTagging"],
    "ListObjectsV2": ["s3:ListBucket"],
    "CopyObject": ["s3:GetObject", "s3:PutObject"],
}
PREFIX = {"dynamodb": "dynamodb", "secrets manager": "secretsmanager", "sfn": "states",
          "eventbridge": "events", "sesv2": "ses", "s3": "s3"}


class Context:
    """What the template's intrinsics resolve to in the deployed stack."""

    def __init__(self, stack):
        cfn = deploy.client("cloudformation")
        self.stack = stack
        self.physical = {r["LogicalResourceId"]: r["PhysicalResourceId"]
                         for r in cfn.describe_stack_resources(StackName=stack)["StackResources"]}
        described = cfn.describe_stacks(StackName=stack)["Stacks"][0]
        self.params = {p["ParameterKey"]: p["ParameterValue"]
                       for p in described.get("Parameters", [])}
        self.region = os.environ.get("AWS_REGION", "us-east-1")
        self.account = deploy.client("sts").get_caller_identity()["Account"]
        self.types = {}

    def arn(self, kind, name):
        r, a = self.region, self.account
        return {
            "table": f"arn:aws:dynamodb:{r}:{a}:table/{name}",
            "bucket": f"arn:aws:s3:::{name}",
            "bus": f"arn:aws:events:{r}:{a}:event-bus/{name}",
            "secret": f"arn:aws:secretsmanager:{r}:{a}:secret:{name}",
            "identity": f"arn:aws:ses:{r}:{a}:identity/{name}",
        }[kind]

    def ref(self, name):
        pseudo = {"AWS::Region": self.region, "AWS::AccountId": self.account,
                  "AWS::Partition": "aws", "AWS::StackName": self.stack}
        if name in pseudo:
            return pseudo[name]
        if name in self.params:
            return self.params[name]
        physical = self.physical[name]
        # On AWS a secret's Ref is its ARN; MiniStack returns its name.
        if self.types.get(name) == "AWS::SecretsManager::Secret" and not physical.startswith("arn:"):
            return self.arn("secret", physical)
        return physical

    def get_att(self, name, attr):
        assert attr == "Arn", f"{name}.{attr} is not resolved by this test"
        kind = {"AWS::DynamoDB::Table": "table", "AWS::S3::Bucket": "bucket",
                "AWS::Events::EventBus": "bus"}[self.types[name]]
        return self.arn(kind, self.physical[name])

    def resolve(self, value):
        if isinstance(value, str):
            return value
        if "Ref" in value:
            return self.ref(value["Ref"])
        if "Fn::GetAtt" in value:
            return self.get_att(*value["Fn::GetAtt"])
        if "Fn::Sub" in value:
            text = value["Fn::Sub"]
            out, rest = "", text
            while "${" in rest:
                before, _, after = rest.partition("${")
                var, _, rest = after.partition("}")
                out += before + (self.get_att(*var.split(".", 1)) if "." in var and not var.startswith("AWS::")
                                 else self.ref(var))
            return out + rest
        raise AssertionError(f"unresolved intrinsic {value}")


def statements(ctx, function):
    """The function's Allow statements, with resources resolved to ARN patterns."""
    out = []
    for policy in function["Properties"].get("Policies", []):
        for st in policy.get("Statement", []):
            assert st["Effect"] == "Allow", "this check assumes Allow-only policies"
            actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
            res = st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]]
            out.append({"actions": actions, "resources": [ctx.resolve(r) for r in res],
                        "condition": st.get("Condition", {})})
    return out


def requests(ctx, service, operation, resource):
    """(IAM action, ARN, condition keys) for one logged `Operation@resource`."""
    op, _, name = resource.partition("@")
    prefix = PREFIX[service.lower()]
    if prefix == "dynamodb":
        table, _, index = name.partition("/index/")
        arn = ctx.arn("table", table) + (f"/index/{index}" if index else "")
        return [(f"dynamodb:{op}", arn, {})]
    if prefix == "s3":
        path, _, query = name.partition("?")
        keys = {"s3:prefix": query.removeprefix("prefix=")} if query.startswith("prefix=") else {}
        return [(action, ctx.arn("bucket", path), keys) for action in S3_ACTIONS[op]]
    if prefix == "secretsmanager":
        arn = name if name.startswith("arn:") else ctx.arn("secret", name)
        return [(f"secretsmanager:{op}", arn, {})]
    if prefix == "events":
        arn = name if name.startswith("arn:") else ctx.arn("bus", name or "default")
        return [(f"events:{op}", arn, {})]
    if prefix == "ses":
        return [(f"ses:{op}", ctx.arn("identity", name), {})]
    return [(f"{prefix}:{op}", name, {})]


def allowed(stmts, action, arn, keys):
    for st in stmts:
        if not any(fnmatch.fnmatchcase(action, a) for a in st["actions"]):
            continue
        if not any(fnmatch.fnmatchcase(arn, p) for p in st["resources"]):
            continue
        like = st["condition"].get("StringLike", {})
        if all(k in keys and fnmatch.fnmatchcase(keys[k], v) for k, v in like.items()):
            return True
    return False


class CallsStayWithinPolicies(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.names = json.load(open(os.environ["STACK_FILE"]))
        cls.template = deploy.load_template()
        cls.ctx = Context(cls.names["stack"])
        cls.ctx.types = {k: v["Type"] for k, v in cls.template["Resources"].items()}
        cls.calls = []
        for binary, message in logs.lines(os.environ["STACK_FILE"]):
            try:
                line = json.loads(message)
            except ValueError:
                continue
            if line.get("message") == "aws call":
                cls.calls.append((binary, line["service"], line["operation"],
                                  line.get("resources", "").split()))

    def test_every_function_made_calls_that_were_checked(self):
        # Guards the check itself: without call lines it would pass by checking nothing.
        called = {binary for binary, *_ in self.calls}
        expected = {binary for _, binary in deploy.functions(self.template)}
        self.assertEqual(expected - called, set(), "functions with no logged AWS call")

    def test_every_call_is_allowed_by_its_functions_policy(self):
        by_binary = {binary: statements(self.ctx, self.template["Resources"][logical])
                     for logical, binary in deploy.functions(self.template)}
        refused, checked, used = set(), 0, {}
        for binary, service, operation, resources in self.calls:
            self.assertTrue(resources, f"{binary}: {service} {operation} logged no resource")
            for resource in resources:
                for action, arn, keys in requests(self.ctx, service, operation, resource):
                    checked += 1
                    used.setdefault(binary, set()).add(action)
                    if not allowed(by_binary[binary], action, arn, keys):
                        refused.add(f"{binary}: {action} on {arn} {keys or ''}".rstrip())
        for binary in sorted(used):
            print(f"iam: {binary:<16} {len(used[binary]):>2} actions used: "
                  f"{' '.join(sorted(used[binary]))}")
        print(f"iam: {checked} authorisations from {len(self.calls)} calls checked")
        self.assertEqual(sorted(refused), [], "calls the template's policies would refuse:\n" + "\n".join(sorted(refused)))


class TheEvaluatorRefuses(unittest.TestCase):
    """The evaluator must be able to say no, or the check above proves nothing."""

    stmts = [{"actions": ["dynamodb:GetItem"], "resources": ["arn:aws:dynamodb:r:a:table/T"],
              "condition": {}},
             {"actions": ["s3:ListBucket"], "resources": ["arn:aws:s3:::b"],
              "condition": {"StringLike": {"s3:prefix": "tenants/*"}}},
             {"actions": ["secretsmanager:DescribeSecret"],
              "resources": ["arn:aws:secretsmanager:r:a:secret:stack/tenants/*"], "condition": {}}]

    def test_an_action_or_resource_outside_the_policy(self):
        self.assertTrue(allowed(self.stmts, "dynamodb:GetItem", "arn:aws:dynamodb:r:a:table/T", {}))
        self.assertFalse(allowed(self.stmts, "dynamodb:PutItem", "arn:aws:dynamodb:r:a:table/T", {}))
        self.assertFalse(allowed(self.stmts, "dynamodb:GetItem",
                                 "arn:aws:dynamodb:r:a:table/T/index/GSI1", {}))

    def test_a_condition_and_a_secret_suffix(self):
        self.assertTrue(allowed(self.stmts, "s3:ListBucket", "arn:aws:s3:::b",
                                {"s3:prefix": "tenants/x/"}))
        self.assertFalse(allowed(self.stmts, "s3:ListBucket", "arn:aws:s3:::b", {"s3:prefix": ""}))
        self.assertFalse(allowed(self.stmts, "s3:ListBucket", "arn:aws:s3:::b", {}))
        self.assertTrue(allowed(self.stmts, "secretsmanager:DescribeSecret",
                                "arn:aws:secretsmanager:r:a:secret:stack/tenants/1-AbCdEf", {}))
        self.assertFalse(allowed(self.stmts, "secretsmanager:DescribeSecret",
                                 "arn:aws:secretsmanager:r:a:secret:other/tenants/1-AbCdEf", {}))


if __name__ == "__main__":
    unittest.main()
