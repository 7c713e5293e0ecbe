"""The provisioning state machine uses only constructs the local emulator runs.

`infra/statemachines/provisioning.asl.json` is deployed unchanged onto MiniStack by `make dev`
and `make test`, and onto AWS by `make deploy`. This test fails when the file uses anything
outside the list below: every entry was run on the pinned MiniStack (1.5.33) by the black-box
tests in `tests/tests/provisioning.rs`, with the real provision-step binary
as every task. Before widening the list, run the new construct on MiniStack, and say so here.

Checked (and allowed):
- top level: Comment, StartAt, States (JSONPath only: no QueryLanguage, no JSONata);
- state types: Task, Parallel, Choice, Succeed;
- Task: a Lambda function ARN as Resource (through the template's DefinitionSubstitutions),
  Parameters (static values, `.$` JSONPath into the input, and `$$.Execution.Name` from the
  context object), ResultPath (a path or null), TimeoutSeconds, Retry, Catch, Next / End;
- Retry: ErrorEquals, IntervalSeconds, MaxAttempts, BackoffRate;
- Catch: ErrorEquals, ResultPath, Next;
- Parallel: Branches (each a StartAt/States machine of the same constructs), ResultPath, Catch,
  Next / End;
- Choice: Choices of Variable + StringEquals + Next, and Default;
- error names: TransientStepError, PermanentStepError (raised by provision-step as the Lambda
  errorType), States.ALL, States.Timeout and the Lambda service errors.

Not allowed (not run here): JSONata, Map / distributed Map, Wait, Pass, Fail, service
integrations (`arn:aws:states:::...`), `.sync` / `.waitForTaskToken`, intrinsic functions,
Heartbeat, Retry's MaxDelaySeconds / JitterStrategy, ItemSelector, ResultSelector, InputPath,
OutputPath, Assign.
"""
import json
import pathlib
import re
import unittest

ASL = pathlib.Path(__file__).resolve().parent.parent / "statemachines" / "provisioning.asl.json"

TOP = {"Comment", "StartAt", "States"}
STATE_FIELDS = {
    "Task": {"Type", "Resource", "Parameters", "ResultPath", "TimeoutSeconds", "Retry", "Catch",
             "Next", "End", "Comment"},
    "Parallel": {"Type", "Branches", "ResultPath", "Catch", "Retry", "Next", "End", "Comment"},
    "Choice": {"Type", "Choices", "Default", "Comment"},
    "Succeed": {"Type", "Comment"},
}
RETRY_FIELDS = {"ErrorEquals", "IntervalSeconds", "MaxAttempts", "BackoffRate"}
CATCH_FIELDS = {"ErrorEquals", "ResultPath", "Next"}
CHOICE_RULE_FIELDS = {"Variable", "StringEquals", "Next"}
ERRORS = {"TransientStepError", "PermanentStepError", "States.ALL", "States.Timeout",
          "Lambda.ServiceException", "Lambda.AWSLambdaException", "Lambda.SdkClientException",
          "Lambda.TooManyRequestsException"}
RESOURCES = {"${ProvisionStepArn}"}
# `$.a.b`, `$.detail-type` into the input, or `$$.Execution.Name` from the context.
PATH = re.compile(r"^\$(\.[A-Za-z_][A-Za-z0-9_-]*)+$")
CONTEXT_PATHS = {"$$.Execution.Name"}


def problems(machine, where="machine"):
    """Every construct in `machine` (a StartAt/States object) outside the allowed list."""
    found = []
    for state_name, state in machine["States"].items():
        at = f"{where}.{state_name}"
        kind = state.get("Type")
        if kind not in STATE_FIELDS:
            found.append(f"{at}: state type {kind!r}")
            continue
        found += [f"{at}: field {f!r}" for f in sorted(set(state) - STATE_FIELDS[kind])]
        if kind == "Task" and state.get("Resource") not in RESOURCES:
            found.append(f"{at}: resource {state.get('Resource')!r}")
        for key, value in (state.get("Parameters") or {}).items():
            if key.endswith(".$") and not (PATH.match(value) or value in CONTEXT_PATHS):
                found.append(f"{at}: parameter path {value!r}")
            if isinstance(value, (dict, list)):
                found.append(f"{at}: nested parameter {key!r}")
        if "ResultPath" in state and state["ResultPath"] is not None \
                and not PATH.match(state["ResultPath"]):
            found.append(f"{at}: ResultPath {state['ResultPath']!r}")
        for retry in state.get("Retry", []):
            found += [f"{at}: Retry field {f!r}" for f in sorted(set(retry) - RETRY_FIELDS)]
            found += [f"{at}: error {e!r}" for e in retry.get("ErrorEquals", []) if e not in ERRORS]
        for catch in state.get("Catch", []):
            found += [f"{at}: Catch field {f!r}" for f in sorted(set(catch) - CATCH_FIELDS)]
            found += [f"{at}: error {e!r}" for e in catch.get("ErrorEquals", []) if e not in ERRORS]
            if catch.get("ResultPath") is not None and not PATH.match(catch["ResultPath"]):
                found.append(f"{at}: Catch ResultPath {catch['ResultPath']!r}")
        for rule in state.get("Choices", []):
            found += [f"{at}: Choice rule field {f!r}" for f in sorted(set(rule) - CHOICE_RULE_FIELDS)]
        for i, branch in enumerate(state.get("Branches", [])):
            found += [f"{at}.branch{i}: field {f!r}" for f in sorted(set(branch) - {"StartAt", "States"})]
            found += problems(branch, f"{at}.branch{i}")
    return found


class AslUsesOnlyWhatTheEmulatorRuns(unittest.TestCase):
    def test_the_provisioning_machine(self):
        asl = json.loads(ASL.read_text())
        self.assertEqual(set(asl) - TOP, set(), "top-level fields")
        self.assertEqual(problems(asl), [])

    def test_the_check_catches_what_it_should(self):
        bad = {"StartAt": "A", "States": {
            "A": {"Type": "Map", "End": True},
            "B": {"Type": "Task", "Resource": "arn:aws:states:::dynamodb:putItem", "End": True,
                  "Parameters": {"x.$": "States.Format('{}', $.a)"}},
            "C": {"Type": "Task", "Resource": "${ProvisionStepArn}", "End": True,
                  "Retry": [{"ErrorEquals": ["Custom.Unknown"], "JitterStrategy": "FULL"}]},
            "D": {"Type": "Pass", "End": True},
        }}
        found = problems(bad)
        for needle in ["state type 'Map'", "resource 'arn:aws:states:::dynamodb:putItem'",
                       "parameter path", "Retry field 'JitterStrategy'", "error 'Custom.Unknown'",
                       "state type 'Pass'"]:
            self.assertTrue(any(needle in p for p in found), f"{needle} not caught: {found}")

    def test_every_task_error_the_function_raises_is_handled_by_name(self):
        asl = json.loads(ASL.read_text())

        def tasks(machine):
            for state in machine["States"].values():
                if state["Type"] == "Task":
                    yield state
                for branch in state.get("Branches", []):
                    yield from tasks(branch)
        for task in tasks(asl):
            retried = {e for r in task.get("Retry", []) for e in r["ErrorEquals"]}
            self.assertIn("TransientStepError", retried, task["Parameters"])


if __name__ == "__main__":
    unittest.main()
