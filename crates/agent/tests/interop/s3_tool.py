"""An independent S3 client for the tests (boto3): makes buckets, lists, reads back and uploads
objects on an S3-compatible server (moto's, on 127.0.0.1). Credentials come from the
environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY); moto accepts any.

  s3_tool.py ENDPOINT create-bucket BUCKET
  s3_tool.py ENDPOINT list BUCKET [PREFIX]        -> one JSON object per line: key, size, etag
  s3_tool.py ENDPOINT get BUCKET KEY OUT_FILE
  s3_tool.py ENDPOINT put BUCKET KEY IN_FILE      -> prints the upload's seconds
  s3_tool.py ENDPOINT uploads BUCKET              -> number of unfinished multipart uploads
  s3_tool.py ENDPOINT make-user BUCKET            -> makes the bucket and an IAM user allowed
                                                     s3:*; prints its key id and secret
"""
import json
import os
import sys
import time

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config


def client(endpoint):
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2}),
    )


def main():
    endpoint, command, bucket = sys.argv[1], sys.argv[2], sys.argv[3]
    rest = sys.argv[4:]
    s3 = client(endpoint)
    if command == "create-bucket":
        s3.create_bucket(Bucket=bucket)
    elif command == "list":
        prefix = rest[0] if rest else ""
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                print(json.dumps({"key": obj["Key"], "size": obj["Size"], "etag": obj["ETag"].strip('"')}))
    elif command == "dump":
        # Every object under a prefix, in one process: written under OUT by key, listed.
        prefix, out = rest
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                path = os.path.join(out, obj["Key"])
                os.makedirs(os.path.dirname(path), exist_ok=True)
                s3.download_file(bucket, obj["Key"], path)
                print(json.dumps({"key": obj["Key"], "size": obj["Size"]}))
    elif command == "get":
        key, out = rest
        s3.download_file(bucket, key, out)
    elif command == "put":
        key, path = rest
        # The same part size and threshold as the destination's default (8 MiB), two at once.
        config = TransferConfig(
            multipart_threshold=8 * 1024 * 1024,
            multipart_chunksize=8 * 1024 * 1024,
            max_concurrency=2,
        )
        start = time.perf_counter()
        s3.upload_file(path, bucket, key, Config=config)
        print(f"{time.perf_counter() - start:.6f}")
    elif command == "uploads":
        print(len(s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])))
    elif command == "make-user":
        # Four actions, before moto starts checking signatures (INITIAL_NO_AUTH_ACTION_COUNT).
        s3.create_bucket(Bucket=bucket)
        iam = boto3.client("iam", endpoint_url=endpoint, region_name="us-east-1")
        iam.create_user(UserName="sluice")
        iam.put_user_policy(
            UserName="sluice",
            PolicyName="s3",
            PolicyDocument=json.dumps(
                {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
            ),
        )
        key = iam.create_access_key(UserName="sluice")["AccessKey"]
        print(key["AccessKeyId"], key["SecretAccessKey"])
    else:
        sys.exit(f"unknown command {command}")


if __name__ == "__main__":
    main()
