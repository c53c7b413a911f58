"""Sets up an IAM-enforcing moto_server for one test (tests/integration/iam.rs).

moto_server runs with INITIAL_NO_AUTH_ACTION_COUNT=3: exactly the first three requests go
unchecked, and they create an administrator. Everything after is signed and checked against
IAM: the stack (bucket, queues, notifications) is made by the administrator, and the worker's
user gets, as its only inline policy, the policy document given on stdin.

usage: iam_setup.py ENDPOINT STACK MAX_RECEIVE_COUNT < policy.json; prints JSON.
"""

import json
import sys

import boto3

ACCOUNT = "123456789012"
REGION = "us-east-1"


def client(service, endpoint, key):
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=key[0],
        aws_secret_access_key=key[1],
    )


def user_with_policy(iam, name, policy):
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName=name, PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return key["AccessKeyId"], key["SecretAccessKey"]


def main():
    endpoint, stack, max_receive_count = sys.argv[1], sys.argv[2], sys.argv[3]
    worker_policy = json.load(sys.stdin)
    everything = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
    }
    # The three unchecked requests.
    admin = user_with_policy(client("iam", endpoint, ("setup", "setup")), "admin", everything)

    s3 = client("s3", endpoint, admin)
    sqs = client("sqs", endpoint, admin)
    bucket = f"{stack}-documents-{ACCOUNT}"
    s3.create_bucket(Bucket=bucket)
    dlq_url = sqs.create_queue(QueueName=f"{stack}-docworker-uploads-dlq")["QueueUrl"]
    redrive = {
        "deadLetterTargetArn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{stack}-docworker-uploads-dlq",
        "maxReceiveCount": max_receive_count,
    }
    queue_url = sqs.create_queue(
        QueueName=f"{stack}-docworker-uploads",
        Attributes={"VisibilityTimeout": "1", "RedrivePolicy": json.dumps(redrive)},
    )["QueueUrl"]
    s3.put_bucket_notification_configuration(
        Bucket=bucket,
        NotificationConfiguration={
            "QueueConfigurations": [
                {
                    "QueueArn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{stack}-docworker-uploads",
                    "Events": ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"],
                }
            ]
        },
    )
    worker = user_with_policy(client("iam", endpoint, admin), "worker", worker_policy)
    json.dump(
        {
            "admin": admin,
            "worker": worker,
            "bucket": bucket,
            "queue_url": queue_url,
            "dlq_url": dlq_url,
        },
        sys.stdout,
    )


if __name__ == "__main__":
    main()
