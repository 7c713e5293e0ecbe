#!/usr/bin/env python3
"""The sample subscriber (infra/examples/subscriber.yaml) on the emulator, for the black-box
test of the lifecycle events (tests/tests/provisioning/lifecycle_events.rs):

  subscriber.py deploy STACK BUS      deploys the sample stack for the platform's bus (or keeps
                                      the one deployed); prints its queue's URL
  subscriber.py read QUEUE_URL MATCH COUNT [TIMEOUT]
                                      reads the queue until COUNT events arrived whose detail
                                      matches MATCH: a tenant id, or FIELD=VALUE (key=<flag>)
                                      (the others are taken off the queue: only this test
                                      reads it), checks each detail against its schema
                                      (infra/events/<kind>.v1.schema.json) and prints them in the
                                      order they arrived, as JSON
  subscriber.py delete STACK          removes the sample stack

Needs AWS_ENDPOINT_URL (the emulator)."""
import json
import sys
import time
from pathlib import Path

import jsonschema

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "infra"))
import deploy  # noqa: E402  (its AWS clients and template loader)

ROOT = Path(__file__).resolve().parents[1]


def deploy_stack(stack, bus):
    cfn = deploy.client("cloudformation")
    try:
        out = cfn.describe_stacks(StackName=stack)["Stacks"][0]
        if out["StackStatus"].endswith("_COMPLETE") and "DELETE" not in out["StackStatus"]:
            return outputs(out)
    except cfn.exceptions.ClientError:
        pass
    body = (ROOT / "infra/examples/subscriber.yaml").read_text()
    cfn.create_stack(StackName=stack, TemplateBody=body,
                     Parameters=[{"ParameterKey": "PlatformEventBusName", "ParameterValue": bus}])
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        out = cfn.describe_stacks(StackName=stack)["Stacks"][0]
        status = out["StackStatus"]
        if status == "CREATE_COMPLETE":
            return outputs(out)
        if status.endswith("FAILED") or "ROLLBACK" in status:
            raise SystemExit(f"subscriber stack {stack}: {status} {out.get('StackStatusReason', '')}")
        time.sleep(0.5)
    raise SystemExit(f"subscriber stack {stack} not created in time")


def outputs(stack):
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def schemas():
    return {p.name.split(".")[0]: json.loads(p.read_text())
            for p in (ROOT / "infra/events").glob("*.v1.schema.json")}


def read(queue_url, match, count, timeout):
    field, value = match.split("=", 1) if "=" in match else ("tenant_id", match)
    sqs = deploy.client("sqs")
    known = schemas()
    seen, got, checked = set(), [], 0
    deadline = time.monotonic() + timeout
    while len(got) < count and time.monotonic() < deadline:
        msgs = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                   VisibilityTimeout=2).get("Messages", [])
        for m in msgs:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])
            event = json.loads(m["Body"])
            detail = event.get("detail") or {}
            # Every event that arrives is checked, whichever test's tenant it is about.
            kind = event.get("detail-type")
            if kind not in known:
                raise SystemExit(f"{kind}: no schema in infra/events")
            try:
                jsonschema.validate(detail, known[kind])
            except jsonschema.ValidationError as e:
                raise SystemExit(f"{kind} does not match its schema: {e.message}")
            if event.get("source") != "saas.control-plane":
                raise SystemExit(f"{kind}: source {event.get('source')}")
            checked += 1
            if detail.get(field) != value:
                continue  # another test's tenant or flag
            if detail.get("event_id") in seen:
                continue  # delivered twice (at least once): seen once
            seen.add(detail.get("event_id"))
            got.append({"kind": kind, "detail": detail})
    print(json.dumps({"events": got, "checked": checked}))


def main(argv):
    if len(argv) >= 3 and argv[0] == "deploy":
        print(deploy_stack(argv[1], argv[2])["QueueUrl"])
    elif len(argv) >= 4 and argv[0] == "read":
        read(argv[1], argv[2], int(argv[3]), float(argv[4]) if len(argv) > 4 else 60)
    elif len(argv) == 2 and argv[0] == "delete":
        deploy.client("cloudformation").delete_stack(StackName=argv[1])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
