"""Every AWS call the functions made during the suite, checked against the calling function's
own policy in infra/template.yaml, the way IAM would decide it on AWS.

The emulator does not enforce IAM, so the test stack runs with `AwsCallLog=true`: each function
logs one `aws call` line per SDK operation (shared/src/runtime/call_log.rs) naming the operation and the
resources it touched, and for DynamoDB the kind of each partition key (`leading_keys`: `USER#`,
`TENANT#`, never the rest of the key). This test reads those lines from the emulator's CloudWatch
Logs, turns each into IAM actions, ARNs and condition keys, and evaluates them against the
function's Allow statements (actions and resources with wildcards, the `s3:prefix` condition, and
`dynamodb:LeadingKeys` with ForAllValues:StringLike). A call the role would be refused fails the
test, naming the function, the action, the resource and the key kinds.

It proves it read every line: the log reader (localstack/logs.py) reads in time windows small
enough to be complete, or fails; and each process numbers its calls (`process`, `seq`), so a
line missing between a process's first and last call fails the test.

It covers the calls the suite makes, which is every route and every provisioning step; a code
path no test reaches is not covered. Run it after the other tests (localstack/test.sh does).
Needs STACK_FILE and AWS_ENDPOINT_URL (the classes at the end need neither).
"""
import collections
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
# DynamoDB operations whose every request names partition keys: IAM sets dynamodb:LeadingKeys
# for them, so a line of one without its key kinds cannot be checked and fails.
KEYED = {"GetItem", "PutItem", "UpdateItem", "DeleteItem", "ConditionCheckItem", "BatchGetItem",
         "Query"}
# Calls only a test build makes: provision-step built with its `faults` feature (make test's)
# reads the fault switch and counts down its remaining faults. No deployed build has that
# code, so no policy grants it.
TEST_BUILD_ONLY = {("provision-step", "dynamodb:GetItem", ("FAULT#",)),
                   ("provision-step", "dynamodb:UpdateItem", ("FAULT#",))}


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


def leading(entries):
    """`Operation@resource=KIND[,KIND]` entries of a line -> {`Operation@resource`: [kinds of
    each authorisation]}."""
    out = {}
    for entry in entries:
        resource, _, kinds = entry.rpartition("=")
        out.setdefault(resource, []).append(tuple(k for k in kinds.split(",") if k))
    return out


def requests(ctx, service, operation, resource, leading_keys=None):
    """(IAM action, ARN, condition keys) for one logged `Operation@resource`; for DynamoDB one
    per authorisation, with its `dynamodb:LeadingKeys` (the key kinds the line logged for it)."""
    op, _, name = resource.partition("@")
    prefix = PREFIX[service.lower()]
    if prefix == "dynamodb":
        table, _, index = name.partition("/index/")
        arn = ctx.arn("table", table) + (f"/index/{index}" if index else "")
        kinds = (leading_keys or {}).get(resource, [])
        if not kinds:
            if op in KEYED:
                raise MissingKeys(f"{op} on {arn} logged no leading keys")
            return [(f"dynamodb:{op}", arn, {})]
        return [(f"dynamodb:{op}", arn, {"dynamodb:LeadingKeys": list(k)}) for k in kinds]
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


class MissingKeys(AssertionError):
    """A keyed DynamoDB call whose line names no key kinds: it cannot be checked."""


def condition_holds(condition, keys):
    """IAM's evaluation of the condition operators these policies use. A logged key kind
    (`USER#`) stands for every key of that kind, so a pattern must name whole kinds (`USER#*`,
    `HEALTH`); infra/checks/test_template.py holds the template to that."""
    for operator, block in condition.items():
        for key, wanted in block.items():
            patterns = wanted if isinstance(wanted, list) else [wanted]

            def like(value):
                return any(fnmatch.fnmatchcase(value, p) for p in patterns)
            if operator == "StringLike":
                value = keys.get(key)
                if not isinstance(value, str) or not like(value):
                    return False
            elif operator == "ForAllValues:StringLike":
                # Every value must match; no value at all matches (IAM's rule, which is why a
                # keyed call without logged keys fails before it gets here).
                if not all(like(v) for v in keys.get(key, [])):
                    return False
            else:
                raise AssertionError(f"condition operator {operator} is not evaluated by this test")
    return True


def allowed(stmts, action, arn, keys):
    for st in stmts:
        if not any(fnmatch.fnmatchcase(action, a) for a in st["actions"]):
            continue
        if not any(fnmatch.fnmatchcase(arn, p) for p in st["resources"]):
            continue
        if condition_holds(st["condition"], keys):
            return True
    return False


class CallsStayWithinPolicies(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.names = json.load(open(os.environ["STACK_FILE"]))
        cls.template = deploy.load_template()
        cls.ctx = Context(cls.names["stack"])
        cls.ctx.types = {k: v["Type"] for k, v in cls.template["Resources"].items()}
        cls.calls, cls.numbered = [], {}
        # Raises logs.IncompleteLogs when some lines could not be read.
        for binary, message in logs.lines(os.environ["STACK_FILE"]):
            try:
                line = json.loads(message)
            except ValueError:
                continue
            if line.get("message") == "aws call":
                cls.calls.append((binary, line["service"], line["operation"],
                                  line.get("resources", "").split(),
                                  leading(line.get("leading_keys", "").split())))
                cls.numbered.setdefault((binary, line.get("process")), []).append(line.get("seq"))

    def test_every_function_made_calls_that_were_checked(self):
        # Guards the check itself: without call lines it would pass by checking nothing.
        called = {binary for binary, *_ in self.calls}
        expected = {binary for _, binary in deploy.functions(self.template)}
        self.assertEqual(expected - called, set(), "functions with no logged AWS call")

    def test_every_call_line_of_every_process_was_read(self):
        problems = missing_calls(self.numbered)
        if not problems:
            print(f"iam: {sum(map(len, self.numbered.values()))} calls read from "
                  f"{len(self.numbered)} processes, none missing")
        self.assertEqual(problems, [], "call lines the check did not read:\n" + "\n".join(problems))

    def test_every_call_is_allowed_by_its_functions_policy(self):
        by_binary = {binary: statements(self.ctx, self.template["Resources"][logical])
                     for logical, binary in deploy.functions(self.template)}
        refused, checked, used, test_only = set(), 0, {}, 0
        for binary, service, operation, resources, leading_keys in self.calls:
            self.assertTrue(resources, f"{binary}: {service} {operation} logged no resource")
            for resource in resources:
                try:
                    found = requests(self.ctx, service, operation, resource, leading_keys)
                except MissingKeys as e:
                    refused.add(f"{binary}: {e}")
                    continue
                for action, arn, keys in found:
                    kinds = tuple(keys.get("dynamodb:LeadingKeys", ()))
                    if (binary, action, kinds) in TEST_BUILD_ONLY:
                        test_only += 1
                        continue
                    checked += 1
                    used.setdefault(binary, set()).add(action)
                    if not allowed(by_binary[binary], action, arn, keys):
                        refused.add(f"{binary}: {action} on {arn} {keys or ''}".rstrip())
        for binary in sorted(used):
            print(f"iam: {binary:<16} {len(used[binary]):>2} actions used: "
                  f"{' '.join(sorted(used[binary]))}")
        print(f"iam: {checked} authorisations from {len(self.calls)} calls checked "
              f"({test_only} of the test build's fault switch left out)")
        self.assertEqual(sorted(refused), [], "calls the template's policies would refuse:\n" + "\n".join(sorted(refused)))


def missing_calls(numbered):
    """What a process's numbered calls say was not read: each process numbers its calls 1, 2,
    3, ...; a number missing below its highest is a line the reader lost, and one seen twice a
    line read twice. (Lines after a process's last read one cannot be told apart from lines
    never written: the windowed reader is what proves the tail.)"""
    problems = []
    for (binary, process), seqs in sorted(numbered.items(), key=lambda kv: (kv[0][0], str(kv[0][1]))):
        if process is None or any(not isinstance(n, int) for n in seqs):
            problems.append(f"{binary}: call lines without a process and number (an old build?)")
            continue
        seen = sorted(seqs)
        gaps = sorted(set(range(1, seen[-1] + 1)) - set(seen))
        twice = sorted(n for n, times in collections.Counter(seen).items() if times > 1)
        if gaps:
            problems.append(f"{binary} process {process}: calls {gaps[:10]} of 1..{seen[-1]} not read")
        if twice:
            problems.append(f"{binary} process {process}: calls {twice[:10]} read twice")
    return problems


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


class LeadingKeysAreChecked(unittest.TestCase):
    """A DynamoDB call outside the function's key kinds is refused, as IAM would refuse it."""

    table = "arn:aws:dynamodb:r:a:table/T"
    stmts = [{"actions": ["dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query"],
              "resources": [table],
              "condition": {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["HEALTH", "USER#*", "TENANT#*"]}}},
             {"actions": ["dynamodb:PutItem"], "resources": [table],
              "condition": {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["SESSION#*"]}}},
             {"actions": ["dynamodb:Query"], "resources": [table + "/index/GSI2"],
              "condition": {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["TENANTS"]}}}]

    class Ctx:
        def arn(self, kind, name):
            return f"arn:aws:dynamodb:r:a:table/{name}"

    def check(self, operation, resource, entries):
        return [allowed(self.stmts, action, arn, keys)
                for action, arn, keys in requests(self.Ctx(), "DynamoDB", operation, resource,
                                                  leading(entries))]

    def test_a_key_kind_inside_the_policy_is_allowed(self):
        self.assertEqual(self.check("GetItem", "GetItem@T", ["GetItem@T=USER#"]), [True])
        self.assertEqual(self.check("GetItem", "GetItem@T", ["GetItem@T=HEALTH"]), [True])
        self.assertEqual(self.check("Query", "Query@T/index/GSI2", ["Query@T/index/GSI2=TENANTS"]), [True])

    def test_a_key_kind_outside_the_policy_is_refused(self):
        self.assertEqual(self.check("GetItem", "GetItem@T", ["GetItem@T=RESET#"]), [False])
        # Allowed for reads, not for writes.
        self.assertEqual(self.check("PutItem", "PutItem@T", ["PutItem@T=USER#"]), [False])
        # A fixed name is not a kind: TENANTS is not TENANT#*, and HEALTHY is not HEALTH.
        self.assertEqual(self.check("GetItem", "GetItem@T", ["GetItem@T=TENANTS"]), [False])
        self.assertEqual(self.check("GetItem", "GetItem@T", ["GetItem@T=HEALTHY"]), [False])
        # An index statement does not cover the index's other partitions.
        self.assertEqual(self.check("Query", "Query@T/index/GSI2", ["Query@T/index/GSI2=AUDIT"]), [False])
        # An unknown shape of key was logged as `?`: never allowed.
        self.assertEqual(self.check("GetItem", "GetItem@T", ["GetItem@T=?"]), [False])

    def test_a_batch_read_is_refused_when_any_of_its_keys_is_outside(self):
        self.assertEqual(self.check("BatchGetItem", "BatchGetItem@T", ["BatchGetItem@T=TENANT#,USER#"]), [True])
        self.assertEqual(self.check("BatchGetItem", "BatchGetItem@T", ["BatchGetItem@T=RATE#,USER#"]), [False])

    def test_each_item_of_a_transaction_is_checked_on_its_own(self):
        self.assertEqual(self.check("PutItem", "PutItem@T", ["PutItem@T=SESSION#", "PutItem@T=AUDIT#"]),
                         [True, False])

    def test_a_keyed_call_that_logged_no_keys_cannot_pass(self):
        with self.assertRaises(MissingKeys):
            self.check("GetItem", "GetItem@T", [])

    def test_unnumbered_or_missing_call_lines_are_reported(self):
        self.assertEqual(missing_calls({("login", "p1"): [1, 2, 3], ("login", "p2"): [2, 1]}), [])
        self.assertEqual(len(missing_calls({("login", "p1"): [1, 2, 4]})), 1)
        self.assertEqual(len(missing_calls({("login", "p1"): [1, 2, 2]})), 1)
        self.assertEqual(len(missing_calls({("login", None): [None]})), 1)


if __name__ == "__main__":
    unittest.main()
