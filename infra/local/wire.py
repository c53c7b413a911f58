"""Wires the local bucket and queues exactly as infra/local/wiring.json says: a private bucket,
the processing queue with a redrive policy to its dead-letter queue, and S3 -> SQS notifications.

Idempotent: running it again leaves the same wiring. Reads the endpoint and credentials from the
standard AWS_* environment variables (see stack.sh env)."""

import json
import pathlib

import boto3

wiring = json.loads((pathlib.Path(__file__).parent / "wiring.json").read_text())
s3 = boto3.client("s3")
sqs = boto3.client("sqs")

dlq_url = sqs.create_queue(
    QueueName=wiring["dead_letter_queue"],
    Attributes={
        "MessageRetentionPeriod": str(wiring["dead_letter_message_retention"]),
        "MaximumMessageSize": str(wiring["maximum_message_size"]),
    },
)["QueueUrl"]
dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
queue_url = sqs.create_queue(
    QueueName=wiring["queue"],
    Attributes={
        "VisibilityTimeout": str(wiring["queue_visibility_timeout"]),
        "MessageRetentionPeriod": str(wiring["queue_message_retention"]),
        "MaximumMessageSize": str(wiring["maximum_message_size"]),
        "ReceiveMessageWaitTimeSeconds": "20",
        "RedrivePolicy": json.dumps(
            {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(wiring["max_receive_count"])}
        ),
    },
)["QueueUrl"]
queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]

bucket = wiring["bucket"]
try:
    s3.create_bucket(Bucket=bucket)
except s3.exceptions.BucketAlreadyOwnedByYou:
    pass
s3.put_public_access_block(
    Bucket=bucket,
    PublicAccessBlockConfiguration={
        "BlockPublicAcls": True,
        "IgnorePublicAcls": True,
        "BlockPublicPolicy": True,
        "RestrictPublicBuckets": True,
    },
)
s3.put_bucket_notification_configuration(
    Bucket=bucket,
    NotificationConfiguration={
        # One configuration per category prefix, as infra/aws/docworker.json has it.
        "QueueConfigurations": [
            {
                "Id": f"docworker-{prefix.rstrip('/')}",
                "QueueArn": queue_arn,
                "Events": wiring["notification_events"],
                "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": prefix}]}},
            }
            for prefix in wiring["category_prefixes"]
        ]
    },
)
print(json.dumps({"bucket": bucket, "queue_url": queue_url, "dead_letter_queue_url": dlq_url}))
