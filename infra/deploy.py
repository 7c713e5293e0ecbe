#!/usr/bin/env python3
"""Deploys infra/template.yaml, the same template for every target, through CloudFormation:
the local emulator (MiniStack, the default), LocalStack (Docker) or AWS.

  deploy.py --stack NAME [--bin-dir target/debug] [--param Key=Value ...] [--out stack.json]

Steps, the same everywhere; only configuration differs (AWS_ENDPOINT_URL, parameters):
1. package: every function's binary is zipped as `bootstrap` (mode 0755, checked in the zip)
   and uploaded to an artifacts bucket; its `CodeUri` in the template becomes that object;
2. the template (SAM transform included) is created or updated as stack NAME, and awaited;
3. every function is checked to have code (`CodeSize` > 0: MiniStack answers a function
   without code with a 200 "Mock response", which must never pass for a deployment);
4. the access-token keys are written into the stack's two key secrets (keys.py ensure);
5. the stack's names (API id and URL, table, secrets, functions) are written to --out.

Environment: AWS_ENDPOINT_URL (unset for AWS), AWS_REGION, ARTIFACTS_BUCKET (default
`<stack>-artifacts-<account>`).

`make deploy` (infra/deploy.sh) lets `sam deploy` do steps 1-2 instead, in two calls:
  deploy.py --sam-template OUT --bin-dir target/lambda   writes the template `sam deploy` uploads:
      each function's CodeUri is its cargo-lambda zip, the state machine's DefinitionUri an
      absolute path (nothing else changes);
  deploy.py --stack NAME --after-sam [--out stack.json]  steps 3-5 on the deployed stack.
  deploy.py --zips DIR --bin-dir target/debug   zips as cargo-lambda lays them out (make test).
"""
import argparse
import base64
import hashlib
import io
import json
import os
import secrets
import sys
import time
import zipfile
from pathlib import Path

import boto3
import yaml
from botocore.exceptions import ClientError

import keys

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "infra" / "template.yaml"


class _CfnLoader(yaml.SafeLoader):
    """Reads CloudFormation short-form tags as their long forms (`!Ref X` -> {"Ref": "X"})."""


def _tag(loader, suffix, node):
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if suffix == "Ref" or suffix == "Condition":
        return {suffix: value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


_CfnLoader.add_multi_constructor("!", _tag)


def load_template(path=TEMPLATE):
    with open(path) as f:
        return yaml.load(f, Loader=_CfnLoader)


def client(service):
    return boto3.client(service, endpoint_url=os.environ.get("AWS_ENDPOINT_URL") or None,
                        region_name=os.environ.get("AWS_REGION", "us-east-1"))


def functions(template):
    """(logical id, binary name) of every function in the template."""
    out = []
    for name, res in template["Resources"].items():
        if res.get("Type") == "AWS::Serverless::Function":
            binary = res.get("Metadata", {}).get("BuildProperties", {}).get("Binary")
            if not binary:
                raise SystemExit(f"deploy: {name} names no binary (Metadata.BuildProperties.Binary)")
            out.append((name, binary))
    return out


def zip_bootstrap(binary: Path) -> bytes:
    """A Lambda custom-runtime package: the binary as an executable `bootstrap`."""
    if not binary.is_file():
        raise SystemExit(f"deploy: {binary} is missing: build the functions first")
    buf = io.BytesIO()
    # Fast compression: the zip is rebuilt on every local deploy.
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        info = zipfile.ZipInfo("bootstrap", date_time=(2020, 1, 1, 0, 0, 0))
        info.external_attr = (0o100755 << 16)
        info.compress_type = zipfile.ZIP_DEFLATED
        z.writestr(info, binary.read_bytes())
    data = buf.getvalue()
    check_executable(data)
    return data


def check_executable(package: bytes):
    """MiniStack runs a bootstrap without its execute bit; Lambda does not. Check it here."""
    with zipfile.ZipFile(io.BytesIO(package)) as z:
        info = z.getinfo("bootstrap")
        if not (info.external_attr >> 16) & 0o111:
            raise SystemExit("deploy: bootstrap in the package is not executable")


def ensure_bucket(s3, bucket):
    try:
        s3.head_bucket(Bucket=bucket)
    except ClientError:
        region = os.environ.get("AWS_REGION", "us-east-1")
        args = {"Bucket": bucket}
        if region != "us-east-1":
            args["CreateBucketConfiguration"] = {"LocationConstraint": region}
        s3.create_bucket(**args)


def package(template, stack, bin_dir: Path):
    s3 = client("s3")
    account = client("sts").get_caller_identity()["Account"]
    bucket = os.environ.get("ARTIFACTS_BUCKET") or f"{stack.lower()}-artifacts-{account}"
    ensure_bucket(s3, bucket)
    for name, binary in functions(template):
        # cargo build puts `<dir>/<binary>`; cargo lambda build puts `<dir>/<binary>/bootstrap`.
        path = bin_dir / binary
        data = zip_bootstrap(path / "bootstrap" if path.is_dir() else path)
        key = f"{stack}/{binary}-{hashlib.sha256(data).hexdigest()[:16]}.zip"
        s3.put_object(Bucket=bucket, Key=key, Body=data)
        template["Resources"][name]["Properties"]["CodeUri"] = {"Bucket": bucket, "Key": key}
    template.get("Globals", {}).get("Function", {}).pop("CodeUri", None)
    inline_state_machines(template)
    return template, bucket


def inline_state_machines(template):
    """A state machine's `DefinitionUri` (a file beside the template) becomes its inline
    `Definition`: the SAM transform takes a local path only through `sam package`, and an
    inline definition deploys the same everywhere. `DefinitionSubstitutions` still apply."""
    for name, res in template["Resources"].items():
        props = res.get("Properties", {})
        uri = props.get("DefinitionUri")
        if res.get("Type") == "AWS::Serverless::StateMachine" and isinstance(uri, str):
            with open(TEMPLATE.parent / uri) as f:
                props["Definition"] = json.load(f)
            del props["DefinitionUri"]


def sam_template(template, bin_dir: Path):
    """The template as `sam deploy` takes it: code and state machine definitions as local paths
    that it uploads itself."""
    for name, binary in functions(template):
        zipped = (bin_dir / binary / "bootstrap.zip").resolve()
        if not zipped.is_file():
            raise SystemExit(f"deploy: {zipped} is missing: run make package first")
        template["Resources"][name]["Properties"]["CodeUri"] = str(zipped)
    template.get("Globals", {}).get("Function", {}).pop("CodeUri", None)
    for res in template["Resources"].values():
        props = res.get("Properties", {})
        if res.get("Type") == "AWS::Serverless::StateMachine" and isinstance(props.get("DefinitionUri"), str):
            props["DefinitionUri"] = str((TEMPLATE.parent / props["DefinitionUri"]).resolve())
    return template


def stack_status(cfn, stack):
    try:
        return cfn.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"]
    except ClientError as e:
        if "does not exist" in str(e):
            return None
        raise


def template_url(template, stack, bucket):
    """The packaged template, put beside the code: a request body holds at most 51,200 bytes (on
    AWS and the emulator alike), a template in S3 up to 1 MB."""
    body = json.dumps(template, separators=(",", ":")).encode()
    key = f"{stack}/template-{hashlib.sha256(body).hexdigest()[:16]}.json"
    client("s3").put_object(Bucket=bucket, Key=key, Body=body)
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    region = os.environ.get("AWS_REGION", "us-east-1")
    base = endpoint.rstrip("/") if endpoint else f"https://s3.{region}.amazonaws.com"
    return f"{base}/{bucket}/{key}"


def deploy_stack(template, stack, params, bucket):
    cfn = client("cloudformation")
    url = template_url(template, stack, bucket)
    parameters = [{"ParameterKey": k, "ParameterValue": v} for k, v in params.items()]
    caps = ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"]
    status = stack_status(cfn, stack)
    if status == "ROLLBACK_COMPLETE":
        cfn.delete_stack(StackName=stack)
        wait(cfn, stack, {"DELETE_COMPLETE", None})
        status = None
    if status is None:
        cfn.create_stack(StackName=stack, TemplateURL=url, Parameters=parameters, Capabilities=caps)
    else:
        try:
            cfn.update_stack(StackName=stack, TemplateURL=url, Parameters=parameters, Capabilities=caps)
        except ClientError as e:
            if "No updates are to be performed" in str(e):
                return
            raise
    status = wait(cfn, stack, {"CREATE_COMPLETE", "UPDATE_COMPLETE"})
    if status not in ("CREATE_COMPLETE", "UPDATE_COMPLETE"):
        events = cfn.describe_stack_events(StackName=stack)["StackEvents"]
        failed = [f"{e['LogicalResourceId']}: {e.get('ResourceStatusReason', '')}"
                  for e in events if e["ResourceStatus"].endswith("FAILED")]
        raise SystemExit(f"deploy: stack {stack} ended {status}:\n  " + "\n  ".join(failed[:10]))


def wait(cfn, stack, done, timeout=900):
    deadline = time.monotonic() + timeout
    while True:
        status = stack_status(cfn, stack)
        if status in done or (status and (status.endswith("_FAILED") or status.endswith("ROLLBACK_COMPLETE"))):
            return status
        if time.monotonic() > deadline:
            raise SystemExit(f"deploy: stack {stack} still {status} after {timeout}s")
        time.sleep(0.2 if os.environ.get("AWS_ENDPOINT_URL") else 5)


def check_code(lam, function_name):
    """Fails loudly for a function without code: MiniStack creates one when its code object is
    missing and answers every call with 200 "Mock response"."""
    config = lam.get_function(FunctionName=function_name)["Configuration"]
    if not config.get("CodeSize"):
        raise SystemExit(f"deploy: function {function_name} has no code: it would answer "
                         "200 'Mock response' to every request")


def describe(stack, template):
    """The deployed names everything else needs, from the stack itself."""
    cfn, lam = client("cloudformation"), client("lambda")
    resources = {r["LogicalResourceId"]: r["PhysicalResourceId"]
                 for r in cfn.describe_stack_resources(StackName=stack)["StackResources"]}
    outputs = {o["OutputKey"]: o["OutputValue"]
               for o in cfn.describe_stacks(StackName=stack)["Stacks"][0].get("Outputs", [])}
    fns = {}
    for name, binary in functions(template):
        check_code(lam, resources[name])
        fns[binary] = resources[name]
    stage = template["Parameters"]["StageName"].get("Default", "prod")
    return {
        "stack": stack,
        "api_id": resources["Api"],
        "stage": stage,
        "api_url": outputs.get("ApiUrl"),
        "table": resources["PlatformTable"],
        "bucket": resources["StorageBucket"],
        "signing_key_secret": resources["JwtSigningKeySecret"],
        "public_keys_secret": resources["JwtPublicKeysSecret"],
        "data_key_secret": resources["DataEncryptionKeySecret"],
        "cursor_key_secret": resources["CursorKeySecret"],
        "factor_key_secret": resources["FactorKeySecret"],
        "event_bus": resources.get("EventBus", ""),
        "state_machine": outputs.get("ProvisioningStateMachineArn", ""),
        "functions": fns,
    }


def redeploy_stage(template, api_id, stage):
    """Makes the template's gateway responses live. API Gateway serves a deployment's snapshot,
    and a stack update that changes the routes re-imports the API's definition, which can drop
    gateway responses made beside it: so each is put again, then the stage is deployed anew."""
    api = client("apigateway")
    for res in template["Resources"].values():
        if res.get("Type") != "AWS::ApiGateway::GatewayResponse":
            continue
        props = res["Properties"]
        args = {"restApiId": api_id, "responseType": props["ResponseType"],
                "responseParameters": props.get("ResponseParameters", {}),
                "responseTemplates": props.get("ResponseTemplates", {})}
        if "StatusCode" in props:
            args["statusCode"] = str(props["StatusCode"])
        api.put_gateway_response(**args)
    api.create_deployment(restApiId=api_id, stageName=stage,
                          description="deploy.py: gateway responses live")


def shell_env(names):
    """The deployed names as KEY=VALUE lines, for the local scripts and tests to source."""
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    api = (f"{endpoint}/_aws/execute-api/{names['api_id']}/{names['stage']}" if endpoint
           else names["api_url"])
    pairs = {
        "STACK_NAME": names["stack"],
        "API_URL": api,
        "TABLE_NAME": names["table"],
        "BUCKET_NAME": names["bucket"],
        "JWT_SIGNING_KEY_SECRET_ID": names["signing_key_secret"],
        "JWT_PUBLIC_KEYS_SECRET_ID": names["public_keys_secret"],
        "DATA_KEY_SECRET_ID": names["data_key_secret"],
        "CURSOR_KEY_SECRET_ID": names["cursor_key_secret"],
        "FACTOR_KEY_SECRET_ID": names["factor_key_secret"],
        "EVENT_BUS_NAME": names["event_bus"],
        "STATE_MACHINE_ARN": names["state_machine"],
    }
    return "".join(f"{k}={v}\n" for k, v in pairs.items())


def ensure_random_key(secret_id):
    """32 random bytes, base64, written once: the tenant-data encryption key, the list-cursor
    key."""
    sm = client("secretsmanager")
    try:
        if sm.get_secret_value(SecretId=secret_id).get("SecretString"):
            return
    except ClientError as e:
        if e.response["Error"]["Code"] != "ResourceNotFoundException":
            raise
    sm.put_secret_value(SecretId=secret_id,
                        SecretString=base64.b64encode(secrets.token_bytes(32)).decode())


def verify_sender(address):
    """An emulator's SES refuses unverified senders, like SES in its sandbox."""
    ses = client("sesv2")
    try:
        ses.create_email_identity(EmailIdentity=address)
    except ClientError as e:
        if e.response["Error"]["Code"] != "AlreadyExistsException":
            raise


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack")
    parser.add_argument("--sam-template", metavar="OUT",
                        help="only write the template for sam deploy (see above)")
    parser.add_argument("--zips", metavar="DIR",
                        help="only write each binary of --bin-dir as DIR/<name>/bootstrap.zip")
    parser.add_argument("--after-sam", action="store_true",
                        help="the stack was deployed by sam deploy: check it, write keys and names")
    parser.add_argument("--bin-dir", default=str(ROOT / "target" / "debug"))
    parser.add_argument("--param", action="append", default=[], help="Key=Value")
    parser.add_argument("--out", help="where to write the deployed names (JSON)")
    parser.add_argument("--local", action="store_true",
                        help="an emulator: also verify the sender identity in its SES")
    args = parser.parse_args()
    params = dict(p.split("=", 1) for p in args.param)

    if args.zips:
        for _, binary in functions(load_template()):
            out = Path(args.zips) / binary
            out.mkdir(parents=True, exist_ok=True)
            (out / "bootstrap.zip").write_bytes(zip_bootstrap(Path(args.bin_dir) / binary))
        return
    if args.sam_template:
        out = sam_template(load_template(), Path(args.bin_dir))
        Path(args.sam_template).write_text(json.dumps(out, indent=1))
        return
    if not args.stack:
        parser.error("--stack is required")
    started = time.monotonic()
    if args.after_sam:
        template = load_template()
    else:
        template, bucket = package(load_template(), args.stack, Path(args.bin_dir))
        deploy_stack(template, args.stack, params, bucket)
    names = describe(args.stack, template)
    redeploy_stage(template, names["api_id"], names["stage"])
    os.environ["JWT_SIGNING_KEY_SECRET_ID"] = names["signing_key_secret"]
    os.environ["JWT_PUBLIC_KEYS_SECRET_ID"] = names["public_keys_secret"]
    keys.main("ensure")
    ensure_random_key(names["data_key_secret"])
    ensure_random_key(names["cursor_key_secret"])
    ensure_random_key(names["factor_key_secret"])
    if args.local:
        verify_sender(params.get("SenderEmail", "no-reply@example.com"))
    if args.out:
        Path(args.out).write_text(json.dumps(names, indent=2))
        Path(args.out).with_suffix(".env").write_text(shell_env(names))
    print(f"deploy: stack {args.stack} ready in {time.monotonic() - started:.1f}s "
          f"({len(names['functions'])} functions, API {names['api_id']})")


if __name__ == "__main__":
    sys.exit(main())
