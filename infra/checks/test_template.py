"""What infra/template.yaml promises against abuse, checked on the template itself (no stack):
nothing local evaluates AWS WAF rules, reserved concurrency, IAM conditions or bucket policies
(MiniStack stores them; see ../shared/LOCAL-STACK.md), so these tests and the linters
(cfn-lint, sam validate --lint) are what prove them. Issue 23: findings 1 (per-client limits in
front of the API, throttles from honest peak traffic, sign-in's reserved concurrency), 6 (SES
reputation alarms) and 17 (each function's DynamoDB key kinds; TLS-only storage).

Run by `make test` and `make template-lint`.
"""
import json
import re
import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import deploy  # noqa: E402

TEMPLATE = deploy.load_template()
RESOURCES = TEMPLATE["Resources"]
PARAMS = TEMPLATE["Parameters"]

# The honest peak the API's throttles are sized for (the template's comments say the same).
DESIGN_SIGNED_IN_USERS = 100_000
ACCESS_TOKEN_SECONDS = 900
# The attack of finding 1: junk requests to /auth/login and /auth/refresh from one client.
ATTACK_REQUESTS_PER_SECOND = 20


def condition(name, **overrides):
    """The value of the template's condition `name` with the parameters' defaults and
    `overrides` (CloudFormation's Equals, Not, And, Or, Condition)."""
    values = {k: str(v.get("Default", "")) for k, v in PARAMS.items()}
    values.update({k: str(v) for k, v in overrides.items()})

    def value(x):
        if isinstance(x, dict) and "Ref" in x:
            return values[x["Ref"]]
        return str(x)

    def holds(expr):
        if "Condition" in expr:
            return holds(TEMPLATE["Conditions"][expr["Condition"]])
        if "Fn::Equals" in expr:
            a, b = expr["Fn::Equals"]
            return value(a) == value(b)
        if "Fn::Not" in expr:
            return not holds(expr["Fn::Not"][0])
        if "Fn::And" in expr:
            return all(holds(e) for e in expr["Fn::And"])
        if "Fn::Or" in expr:
            return any(holds(e) for e in expr["Fn::Or"])
        raise AssertionError(f"condition {expr} is not evaluated by this test")

    return holds({"Condition": name})


def number(x):
    """A number in the template, or the default of the parameter it names."""
    if isinstance(x, dict) and "Ref" in x:
        return int(PARAMS[x["Ref"]]["Default"])
    return int(x)


def sub_text(x, **names):
    """The text of a `!Sub` with `names` (default: the parameters' defaults) filled in."""
    text = x["Fn::Sub"] if isinstance(x, dict) else x
    defaults = {k: str(v.get("Default", "")) for k, v in PARAMS.items()}
    defaults.update(names)
    return re.sub(r"\$\{([^}]+)\}", lambda m: defaults.get(m.group(1), m.group(0)), text)


def rules():
    return {r["Name"]: r for r in RESOURCES["ApiWebAcl"]["Properties"]["Rules"]}


def scope_regex(rule, **names):
    scope = rule["Statement"]["RateBasedStatement"].get("ScopeDownStatement")
    if scope is None:
        return None
    return re.compile(sub_text(scope["RegexMatchStatement"]["RegexString"], **names))


def method_settings():
    """{(resource path, method): (rate, burst)} of the API stage ("/~1auth~1login" is
    /auth/login; "/*" every method)."""
    return {(m["ResourcePath"] if m["ResourcePath"] == "/*" else m["ResourcePath"][1:].replace("~1", "/"),
             m["HttpMethod"]):
            (m["ThrottlingRateLimit"], m["ThrottlingBurstLimit"])
            for m in RESOURCES["Api"]["Properties"]["MethodSettings"]}


class PerClientLimitsInFrontOfTheApi(unittest.TestCase):
    def test_a_regional_web_acl_guards_the_api_stage(self):
        acl, link = RESOURCES["ApiWebAcl"], RESOURCES["ApiWebAclAssociation"]
        self.assertEqual(acl["Type"], "AWS::WAFv2::WebACL")
        self.assertEqual(acl["Properties"]["Scope"], "REGIONAL")
        self.assertEqual(acl["Properties"]["DefaultAction"], {"Allow": {}})
        self.assertEqual(link["Type"], "AWS::WAFv2::WebACLAssociation")
        self.assertEqual(link["Properties"]["WebACLArn"], {"Fn::GetAtt": ["ApiWebAcl", "Arn"]})
        # The API's own stage (SAM's Api.Stage): the association waits for it.
        self.assertTrue(sub_text(link["Properties"]["ResourceArn"]).endswith(
            "::/restapis/${Api}/stages/${Api.Stage}"), link["Properties"]["ResourceArn"])

    def test_it_is_on_by_default_on_aws_and_never_on_the_emulator(self):
        for name in ("ApiWebAcl", "ApiWebAclAssociation"):
            self.assertEqual(RESOURCES[name].get("Condition"), "HasWebAcl", name)
        self.assertTrue(condition("HasWebAcl"))
        self.assertFalse(condition("HasWebAcl", WafWebAcl="false"))
        # MiniStack's CloudFormation has no AWS::WAFv2::WebACLAssociation: the local stacks
        # (LocalMode=true, every one of them) must not ask for it.
        self.assertFalse(condition("HasWebAcl", LocalMode="true"))
        local = [n for n, r in RESOURCES.items() if r["Type"].startswith("AWS::WAFv2::")
                 and ("Condition" not in r or condition(r["Condition"], LocalMode="true"))]
        self.assertEqual(local, [], "WAF resources the local stack would create")

    def test_every_rule_limits_one_client_address_and_answers_429_in_the_envelope(self):
        bodies = RESOURCES["ApiWebAcl"]["Properties"]["CustomResponseBodies"]
        self.assertEqual(set(rules()), {"sign-in-per-address", "auth-per-address", "all-per-address"})
        for name, rule in rules().items():
            rate = rule["Statement"]["RateBasedStatement"]
            self.assertEqual(rate["AggregateKeyType"], "IP", name)
            self.assertEqual(rate["EvaluationWindowSec"], 300, name)
            response = rule["Action"]["Block"]["CustomResponse"]
            self.assertEqual(response["ResponseCode"], 429, name)
            headers = {h["Name"]: h["Value"] for h in response["ResponseHeaders"]}
            self.assertGreaterEqual(int(headers["Retry-After"]), 1, name)
            self.assertEqual(headers["Access-Control-Allow-Origin"], "*", name)
            body = json.loads(bodies[response["CustomResponseBodyKey"]]["Content"])
            self.assertEqual(body["success"], False)
            self.assertEqual(body["error"]["code"], "THROTTLED")
            self.assertEqual(rule["VisibilityConfig"]["MetricName"], name)

    def test_auth_paths_are_held_to_stricter_limits_than_the_rest(self):
        r = rules()
        sign_in, auth, everything = (number(r[n]["Statement"]["RateBasedStatement"]["Limit"])
                                     for n in ("sign-in-per-address", "auth-per-address", "all-per-address"))
        self.assertLess(sign_in, auth)
        self.assertLess(auth, everything)
        self.assertIsNone(scope_regex(r["all-per-address"]))
        sign_in_paths = ["/auth/login", "/auth/mfa", "/auth/forgot-password", "/auth/reset-password",
                         "/auth/accept-invitation", "/auth/verify-email"]
        other_auth = ["/auth/refresh", "/auth/logout", "/auth/me"]
        # A tenant may be called "auth"; its routes are not the sign-in routes.
        elsewhere = ["/tenants", "/tenants/auth/users", "/tenants/x/auth/login", "/health/live",
                     "/.well-known/jwks.json", "/query/v1/db/tables"]
        for stage in ("", "/prod"):
            for path in sign_in_paths:
                self.assertTrue(scope_regex(r["sign-in-per-address"]).match(stage + path), stage + path)
                self.assertTrue(scope_regex(r["auth-per-address"]).match(stage + path), stage + path)
            for path in other_auth:
                self.assertFalse(scope_regex(r["sign-in-per-address"]).match(stage + path), stage + path)
                self.assertTrue(scope_regex(r["auth-per-address"]).match(stage + path), stage + path)
            for path in elsewhere:
                self.assertFalse(scope_regex(r["auth-per-address"]).match(stage + path), stage + path)
        # Another stage name is followed (the regex is built from StageName).
        self.assertTrue(scope_regex(r["auth-per-address"], StageName="v2").match("/v2/auth/refresh"))

    def test_the_limits_stop_the_attack_and_leave_room_for_a_shared_address(self):
        r = rules()
        sign_in = number(r["sign-in-per-address"]["Statement"]["RateBasedStatement"]["Limit"])
        auth = number(r["auth-per-address"]["Statement"]["RateBasedStatement"]["Limit"])
        # Finding 1's attacker: 20 junk requests a second is 6,000 in a window.
        self.assertLess(sign_in, ATTACK_REQUESTS_PER_SECOND * 300)
        self.assertLess(auth, ATTACK_REQUESTS_PER_SECOND * 300)
        # An office of 600 signed-in users behind one address refreshes 200 times in 5 minutes.
        self.assertGreaterEqual(auth, 600 * 300 // ACCESS_TOKEN_SECONDS)
        # ...and 50 of them may sign in within the same 5 minutes.
        self.assertGreaterEqual(sign_in, 50)


class ThrottlesFromHonestPeakTraffic(unittest.TestCase):
    def test_refresh_carries_the_design_peak_twice_over(self):
        rate, burst = method_settings()[("/auth/refresh", "POST")]
        refreshes_per_second = DESIGN_SIGNED_IN_USERS / ACCESS_TOKEN_SECONDS
        # The old 10/s carried 9,000 users: finding 1.
        self.assertGreaterEqual(rate, 2 * refreshes_per_second)
        self.assertGreaterEqual(burst, rate)

    def test_sign_in_lets_every_user_of_the_design_peak_in_within_half_an_hour(self):
        rate, burst = method_settings()[("/auth/login", "POST")]
        self.assertGreaterEqual(rate * 1800, DESIGN_SIGNED_IN_USERS)
        self.assertGreaterEqual(burst, rate)

    def test_every_other_route_keeps_a_ceiling(self):
        settings = method_settings()
        self.assertIn(("/*", "*"), settings)
        for (path, method), (rate, burst) in settings.items():
            self.assertGreaterEqual(rate, 10, path)
            self.assertGreaterEqual(burst, rate, path)
        for path in ("/auth/mfa", "/auth/forgot-password", "/auth/reset-password",
                     "/auth/accept-invitation", "/auth/verify-email"):
            self.assertIn((path, "POST"), settings)

    def test_sign_in_has_reserved_concurrency_unless_the_account_cannot_give_it(self):
        login = RESOURCES["LoginFunction"]["Properties"]
        self.assertEqual(login["ReservedConcurrentExecutions"],
                         {"Fn::If": ["ReservesSignIn", {"Ref": "SignInReservedConcurrency"},
                                     {"Ref": "AWS::NoValue"}]})
        reserved = number({"Ref": "SignInReservedConcurrency"})
        # Room for login at its throttles (about 25 at once), and AWS's 100 unreserved of the
        # usual 1,000 left for everything else.
        self.assertGreaterEqual(reserved, 50)
        self.assertLessEqual(reserved, 900)
        self.assertTrue(condition("ReservesSignIn"))
        # 0 (a new account's quota of 10 cannot reserve any) reserves nothing, never "throttle all".
        self.assertFalse(condition("ReservesSignIn", SignInReservedConcurrency=0))
        self.assertEqual(PARAMS["SignInReservedConcurrency"]["MinValue"], 0)
        # The other functions reserve nothing: they cannot take login's share.
        for name, res in RESOURCES.items():
            if res["Type"] == "AWS::Serverless::Function" and name != "LoginFunction":
                self.assertNotIn("ReservedConcurrentExecutions", res["Properties"], name)


KIND = re.compile(r"^[A-Z][A-Z0-9_]*(#\*)?$")


def dynamodb_statements():
    """(function binary, statement) of every DynamoDB statement in the functions' policies."""
    for logical, binary in deploy.functions(TEMPLATE):
        for policy in RESOURCES[logical]["Properties"].get("Policies", []):
            for st in policy.get("Statement", []):
                actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
                if any(a.startswith("dynamodb:") for a in actions):
                    yield binary, actions, st


def kinds(binary, action):
    """The key kinds `binary` may use `action` on, on the table itself."""
    out = set()
    for b, actions, st in dynamodb_statements():
        if b == binary and action in actions and st["Resource"] == {"Fn::GetAtt": ["PlatformTable", "Arn"]}:
            out |= set(st["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"])
    return out


class EachFunctionTouchesOnlyItsKeyKinds(unittest.TestCase):
    def test_every_dynamodb_statement_names_whole_key_kinds(self):
        found = 0
        for binary, actions, st in dynamodb_statements():
            found += 1
            self.assertEqual(list(st.get("Condition", {})), ["ForAllValues:StringLike"], binary)
            block = st["Condition"]["ForAllValues:StringLike"]
            self.assertEqual(list(block), ["dynamodb:LeadingKeys"], binary)
            patterns = block["dynamodb:LeadingKeys"]
            self.assertTrue(patterns, binary)
            for p in patterns:
                # A kind (USER#*) or a fixed key (HEALTH): what the call log records and the
                # IAM replay (test_iam.py) can hold every call to.
                self.assertRegex(p, KIND, f"{binary}: {p}")
            for a in actions:
                # No Scan (it carries no key, so ForAllValues would let it read everything), no
                # wildcard action.
                self.assertIn(a, {"dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query",
                                  "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"},
                              f"{binary}: {a}")
        self.assertGreaterEqual(found, 9)

    def test_only_the_owners_of_a_kind_write_it(self):
        writes = {}
        for _, binary in deploy.functions(TEMPLATE):
            for action in ("dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"):
                for kind in kinds(binary, action):
                    writes.setdefault(kind, set()).add(binary)
        # Sessions are made by login alone; users (an operator's revocation, one's own sign-out
        # of a device) only marks one revoked. Accounts (users and their email claims) are
        # created only by the functions that invite people (users: the first operator), and
        # their claims released only by users (a removed account); the claim's copy of the
        # password hash is kept by the two that know a new one (reset-password) or find it
        # missing (login).
        self.assertEqual(writes.get("SESSION#*"), {"login", "users"})
        self.assertEqual({b for b in writes["SESSION#*"] if "SESSION#*" in kinds(b, "dynamodb:PutItem")},
                         {"login"})
        self.assertNotIn("SESSION#*", kinds("users", "dynamodb:DeleteItem"))
        claim_puts = {b for b in writes.get("EMAIL#*", set()) if "EMAIL#*" in kinds(b, "dynamodb:PutItem")}
        # (reset-password: a confirmed change of address claims the new one, releases the old.)
        self.assertEqual(claim_puts, {"tenants", "partners", "users", "reset-password"})
        claim_deletes = {b for b in writes.get("EMAIL#*", set()) if "EMAIL#*" in kinds(b, "dynamodb:DeleteItem")}
        self.assertEqual(claim_deletes, {"users", "reset-password"})
        # The operator count moves only with the accounts it counts.
        self.assertEqual(writes.get("OPERATORS"), {"users"})
        # A sign-in's second-factor challenges are login's alone.
        self.assertEqual(writes.get("MFACHAL#*"), {"login"})
        claim_updates = {b for b in writes.get("EMAIL#*", set()) if "EMAIL#*" in kinds(b, "dynamodb:UpdateItem")}
        self.assertEqual(claim_updates, {"login", "reset-password"})
        # presign writes one thing: the audit entry of a request made by an operator acting as
        # a user (every function that admits such a token writes one before serving it).
        self.assertEqual({k for k, b in writes.items() if "presign" in b}, {"AUDIT#*"})
        self.assertEqual(kinds("presign", "dynamodb:UpdateItem") | kinds("presign", "dynamodb:DeleteItem"), set())
        # Feature flags and their kill list are the tenants function's; the revocation list
        # login's (the stop), and the open impersonations login's and the reconcile's (which
        # records an expiry's end); approvals are made by tenants and spent by login.
        self.assertEqual(writes.get("FLAGS"), {"tenants"})
        self.assertEqual(writes.get("REVOKED"), {"login"})
        self.assertEqual(writes.get("IMPERSONATIONS"), {"login", "reconcile"})
        self.assertEqual({b for b in writes["IMPAPPR#*"] if "IMPAPPR#*" in kinds(b, "dynamodb:PutItem")},
                         {"tenants"})
        self.assertEqual(writes.get("IMPAPPR#*"), {"tenants", "login"})
        self.assertNotIn("USER#*", kinds("login", "dynamodb:PutItem"))
        self.assertNotIn("USER#*", kinds("reset-password", "dynamodb:PutItem"))
        # Database registrations (sealed connection strings) are made by the query router
        # alone; the purge (provision-step) may only delete them.
        self.assertEqual({b for b in writes["DB#*"] if "DB#*" in kinds(b, "dynamodb:PutItem")},
                         {"query-router"})
        self.assertEqual(kinds("provision-step", "dynamodb:PutItem") & {"DB#*", "USER#*", "EMAIL#*"}, set())


class StorageTravelsOverTlsOnly(unittest.TestCase):
    def test_plain_http_to_the_storage_bucket_is_refused(self):
        policy = RESOURCES["StorageBucketPolicy"]
        self.assertEqual(policy["Type"], "AWS::S3::BucketPolicy")
        self.assertEqual(policy["Properties"]["Bucket"], {"Ref": "StorageBucket"})
        # On every stack: the emulator stores it without evaluating it (no AUTH=true locally).
        self.assertNotIn("Condition", policy)
        denies = [st for st in policy["Properties"]["PolicyDocument"]["Statement"]
                  if st["Effect"] == "Deny"]
        self.assertEqual(len(denies), 1)
        tls = denies[0]
        self.assertEqual(tls["Principal"], "*")
        self.assertEqual(tls["Action"], "s3:*")
        self.assertEqual(tls["Condition"], {"Bool": {"aws:SecureTransport": "false"}})
        self.assertIn({"Fn::GetAtt": ["StorageBucket", "Arn"]}, tls["Resource"])
        self.assertIn({"Fn::Sub": "${StorageBucket.Arn}/*"}, tls["Resource"])


class MailReputationIsWatched(unittest.TestCase):
    def test_ses_bounce_and_complaint_rates_raise_alarms(self):
        alarms = {r["Properties"]["MetricName"]: r["Properties"] for r in RESOURCES.values()
                  if r["Type"] == "AWS::CloudWatch::Alarm" and r["Properties"].get("Namespace") == "AWS/SES"}
        self.assertEqual(set(alarms), {"Reputation.BounceRate", "Reputation.ComplaintRate"})
        self.assertEqual(alarms["Reputation.BounceRate"]["Threshold"], 0.05)
        self.assertEqual(alarms["Reputation.ComplaintRate"]["Threshold"], 0.001)
        # Wired like every other alarm: the same optional SNS topic.
        wired = RESOURCES["LoginErrorsAlarm"]["Properties"]["AlarmActions"]
        for name, alarm in alarms.items():
            self.assertEqual(alarm["ComparisonOperator"], "GreaterThanThreshold", name)
            self.assertEqual(alarm["AlarmActions"], wired, name)
            self.assertEqual(alarm["TreatMissingData"], "notBreaching", name)
            self.assertNotIn("Dimensions", alarm, name)


if __name__ == "__main__":
    unittest.main()
