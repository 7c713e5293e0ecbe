#!/usr/bin/env python3
"""`make reconcile`: runs the deployed `reconcile` function once, over every tenant, and prints
its report (the same job the schedule runs, invoked directly through the Lambda API).

Usage: reconcile.py STACK_JSON
"""
import json
import os
import sys

import boto3
from botocore.config import Config


def main(stack_file):
    names = json.load(open(stack_file))
    lam = boto3.client("lambda", endpoint_url=os.environ.get("AWS_ENDPOINT_URL") or None,
                       region_name=os.environ.get("AWS_REGION", "us-east-1"),
                       config=Config(read_timeout=150, retries={"max_attempts": 0}))
    out = lam.invoke(FunctionName=names["functions"]["reconcile"],
                     Payload=json.dumps({"source": "make reconcile"}).encode())
    body = out["Payload"].read().decode()
    if out.get("FunctionError"):
        print(f"reconcile failed: {body}", file=sys.stderr)
        return 1
    print(json.dumps(json.loads(body), indent=2))
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1]))
