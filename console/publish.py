#!/usr/bin/env python3
"""Publishes the console's build (console/dist) to a deployed stack's console bucket, writes its
config.json (the API's address and the environment's name: never baked into the build), and
invalidates the distribution. Prints the console's URL.

  publish.py --stack NAME [--dist console/dist] [--env aws|local] [--api URL] [--out FILE]

On AWS (AWS_ENDPOINT_URL unset) the URL is the stack's ConsoleUrl output. On the emulator
(MiniStack) the distribution answers at http://<label>.cloudfront.localhost:<port>/console/, and
the API at <endpoint>/_aws/execute-api/<api id>/<stage>. --out writes both as JSON.

Hashed files under assets/ are cached for a year (immutable); index.html and config.json are
never cached (no-cache), so a new deploy is live at once.
"""
import argparse
import json
import mimetypes
import os
import sys
import urllib.parse
from pathlib import Path

import boto3

ROOT = Path(__file__).resolve().parent
PREFIX = "console/"


def client(service):
    return boto3.client(service, endpoint_url=os.environ.get("AWS_ENDPOINT_URL") or None,
                        region_name=os.environ.get("AWS_REGION", "us-east-1"))


def stack_facts(stack):
    cfn = client("cloudformation")
    outputs = {o["OutputKey"]: o["OutputValue"]
               for o in cfn.describe_stacks(StackName=stack)["Stacks"][0].get("Outputs", [])}
    resources = {r["LogicalResourceId"]: r["PhysicalResourceId"]
                 for r in cfn.describe_stack_resources(StackName=stack)["StackResources"]}
    if "ConsoleBucketName" not in outputs:
        print(f"publish: stack {stack} has no console (ConsoleHosting=none): nothing to publish")
        raise SystemExit(2)
    return outputs, resources


def cache_control(rel: str) -> str:
    return "public, max-age=31536000, immutable" if rel.startswith("assets/") else "no-cache"


def upload(bucket, dist: Path, config: dict):
    s3 = client("s3")
    files = sorted(p for p in dist.rglob("*") if p.is_file())
    if not (dist / "index.html").is_file():
        raise SystemExit(f"publish: {dist}/index.html is missing: build the console first (npm run build)")
    # Assets first, index.html last: a visitor never gets an index naming files not yet there.
    files.sort(key=lambda p: p.name == "index.html")
    for path in files:
        rel = path.relative_to(dist).as_posix()
        ctype = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        s3.put_object(Bucket=bucket, Key=PREFIX + rel, Body=path.read_bytes(), ContentType=ctype,
                      CacheControl=cache_control(rel))
    s3.put_object(Bucket=bucket, Key=PREFIX + "config.json", Body=json.dumps(config).encode(),
                  ContentType="application/json", CacheControl="no-cache")
    return len(files) + 1


def invalidate(distribution_id):
    cf = client("cloudfront")
    ref = f"publish-{os.getpid()}-{os.urandom(4).hex()}"
    cf.create_invalidation(DistributionId=distribution_id, InvalidationBatch={
        "Paths": {"Quantity": 1, "Items": ["/*"]}, "CallerReference": ref})


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack", required=True)
    parser.add_argument("--dist", type=Path, default=ROOT / "dist")
    parser.add_argument("--env", default=None, help="the badge: aws or local (default: from AWS_ENDPOINT_URL)")
    parser.add_argument("--api", help="the API's base URL (default: the stack's)")
    parser.add_argument("--out", type=Path, help="write {console_url, api_url, ...} here")
    args = parser.parse_args()
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    outputs, resources = stack_facts(args.stack)
    stage = "prod"
    if args.api:
        api = args.api
    elif endpoint:
        api = f"{endpoint.rstrip('/')}/_aws/execute-api/{resources['Api']}/{stage}"
    else:
        api = outputs["ApiUrl"]
    env = args.env or ("local" if endpoint else "aws")
    count = upload(outputs["ConsoleBucketName"], args.dist, {"api": api, "env": env})
    invalidate(outputs["ConsoleDistributionId"])
    url = outputs["ConsoleUrl"]
    if endpoint:
        host = urllib.parse.urlsplit(url).hostname or ""
        port = urllib.parse.urlsplit(endpoint).port or 4566
        url = f"http://{host.removesuffix('.cloudfront.net')}.cloudfront.localhost:{port}/console/"
    facts = {"console_url": url, "origin": url.removesuffix("/console/"), "api_url": api,
             "bucket": outputs["ConsoleBucketName"], "distribution": outputs["ConsoleDistributionId"]}
    if args.out:
        args.out.write_text(json.dumps(facts, indent=2))
    print(f"console: {count} files published, config.json -> {api}")
    print(f"console: {url}")


if __name__ == "__main__":
    sys.exit(main())
