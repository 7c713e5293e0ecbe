#!/usr/bin/env python3
"""Creates the platform's resources on an AWS endpoint, idempotently.

The table definition (keys, indexes, TTL) is read from infra/template.yaml, so the local table
is the deployed table. Run it again and nothing changes; existing secrets keep their values.

Configuration (environment): AWS_ENDPOINT_URL, AWS_REGION, TABLE_NAME, BUCKET_NAME,
JWT_SIGNING_KEY_SECRET_ID, JWT_PUBLIC_KEYS_SECRET_ID, DATA_KEY_SECRET_ID, SENDER_EMAIL.
"""
import base64
import json
import os
import secrets
import sys
from pathlib import Path

import boto3
import keys
import yaml
from botocore.exceptions import ClientError

TEMPLATE = Path(__file__).resolve().parent.parent / "infra" / "template.yaml"


class _CfnLoader(yaml.SafeLoader):
    """Reads CloudFormation short-form tags (!Ref, !GetAtt, !Sub ...) as plain mappings."""


def _tag(loader, suffix, node):
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {suffix: value}


_CfnLoader.add_multi_constructor("!", _tag)


def load_template(path=TEMPLATE):
    with open(path) as f:
        return yaml.load(f, Loader=_CfnLoader)


def table_definition(template):
    """The create_table arguments for the template's one DynamoDB table (minus the name)."""
    tables = [r for r in template["Resources"].values() if r["Type"] == "AWS::DynamoDB::Table"]
    if len(tables) != 1:
        raise SystemExit(f"expected exactly one DynamoDB table in {TEMPLATE}, found {len(tables)}")
    props = tables[0]["Properties"]
    definition = {
        "AttributeDefinitions": props["AttributeDefinitions"],
        "KeySchema": props["KeySchema"],
        "BillingMode": props.get("BillingMode", "PAY_PER_REQUEST"),
    }
    if props.get("GlobalSecondaryIndexes"):
        definition["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
    return definition, props.get("TimeToLiveSpecification")


def env(name):
    value = os.environ.get(name)
    if not value:
        raise SystemExit(f"bootstrap: {name} must be set")
    return value


def client(service):
    return boto3.client(service, endpoint_url=os.environ.get("AWS_ENDPOINT_URL"),
                        region_name=os.environ.get("AWS_REGION", "us-east-1"))


def ensure_table(name, template):
    ddb = client("dynamodb")
    definition, ttl = table_definition(template)
    try:
        ddb.describe_table(TableName=name)
        print(f"table {name}: exists")
    except ddb.exceptions.ResourceNotFoundException:
        ddb.create_table(TableName=name, **definition)
        ddb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
        print(f"table {name}: created")
    if ttl and ttl.get("Enabled"):
        current = ddb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
        if current.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING"):
            ddb.update_time_to_live(TableName=name, TimeToLiveSpecification={
                "AttributeName": ttl["AttributeName"], "Enabled": True})
            print(f"table {name}: TTL on {ttl['AttributeName']}")


def ensure_bucket(name):
    s3 = client("s3")
    try:
        s3.head_bucket(Bucket=name)
        print(f"bucket {name}: exists")
    except ClientError:
        region = os.environ.get("AWS_REGION", "us-east-1")
        args = {"Bucket": name}
        if region != "us-east-1":
            args["CreateBucketConfiguration"] = {"LocationConstraint": region}
        s3.create_bucket(**args)
        s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration={
            "BlockPublicAcls": True, "IgnorePublicAcls": True,
            "BlockPublicPolicy": True, "RestrictPublicBuckets": True})
        print(f"bucket {name}: created")


def new_data_key():
    return base64.b64encode(secrets.token_bytes(32)).decode()


def ensure_secret(name, make_value):
    sm = client("secretsmanager")
    try:
        value = sm.get_secret_value(SecretId=name).get("SecretString")
        if value:
            print(f"secret {name}: exists")
            return
        sm.put_secret_value(SecretId=name, SecretString=make_value())
        print(f"secret {name}: value written")
    except sm.exceptions.ResourceNotFoundException:
        sm.create_secret(Name=name, SecretString=make_value())
        print(f"secret {name}: created")


def ensure_sender(address):
    # Both SES APIs: moto sends SES v2 mail through its v1 identity list.
    client("ses").verify_email_identity(EmailAddress=address)
    ses2 = client("sesv2")
    try:
        ses2.get_email_identity(EmailIdentity=address)
    except ClientError:
        try:
            ses2.create_email_identity(EmailIdentity=address)
        except ClientError as e:
            if e.response["Error"]["Code"] != "AlreadyExistsException":
                raise
    print(f"sender {address}: verified")


def main():
    template = load_template()
    ensure_table(env("TABLE_NAME"), template)
    ensure_bucket(env("BUCKET_NAME"))
    keys.main("ensure")
    ensure_secret(env("DATA_KEY_SECRET_ID"), new_data_key)
    ensure_sender(env("SENDER_EMAIL"))


if __name__ == "__main__":
    sys.exit(main())
