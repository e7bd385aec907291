"""Times CompleteMultipartUpload for objects of growing size (5 MiB parts).
Completion assembles the object by reference, so its time should stay flat.
Usage: python3 scripts/bench_complete.py ENDPOINT  (a running daemon, dev credentials)"""

import os
import sys
import time

import boto3
from botocore.config import Config

endpoint = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:9000"
s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="bleepstore",
                  aws_secret_access_key="bleepstore-secret", region_name="us-east-1",
                  config=Config(signature_version="s3v4"))
s3.create_bucket(Bucket="bench-complete")
part = os.urandom(5 * 1024 * 1024)
for mib in (10, 50, 200, 500):
    key = f"obj-{mib}"
    upload_id = s3.create_multipart_upload(Bucket="bench-complete", Key=key)["UploadId"]
    parts = []
    for number in range(1, mib // 5 + 1):
        etag = s3.upload_part(Bucket="bench-complete", Key=key, UploadId=upload_id, PartNumber=number, Body=part)["ETag"]
        parts.append({"PartNumber": number, "ETag": etag})
    start = time.perf_counter()
    s3.complete_multipart_upload(Bucket="bench-complete", Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts})
    elapsed = (time.perf_counter() - start) * 1000
    print(f"complete {mib:4d} MiB ({len(parts):3d} parts): {elapsed:6.1f} ms")
    s3.delete_object(Bucket="bench-complete", Key=key)
s3.delete_bucket(Bucket="bench-complete")
