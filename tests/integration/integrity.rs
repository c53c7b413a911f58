//! Integrity on every upload path and every delivery path: multipart layouts learnt from S3,
//! per-part digests against the ETag S3 computed, and events delivered through EventBridge.

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use docworker::process::parts::{self, Object};
use docworker_shared::fixtures;
use docworker_shared::parts::{PartCheck, PartDigester};

use crate::helpers::{Options, Stack, aws_config};

pub(crate) const MIB: usize = 1 << 20;

/// A PDF of `len` bytes: the sample PDF with a comment of filler bytes (varied, so that a part
/// cut in the wrong place gives a different digest) before its trailer.
pub(crate) fn big_pdf(len: usize) -> Vec<u8> {
    let pdf = fixtures::pdf();
    let trailer_at = pdf
        .windows(7)
        .position(|w| w == b"trailer")
        .expect("trailer");
    let mut out = pdf[..trailer_at].to_vec();
    out.extend_from_slice(b"% ");
    let filler = len - pdf.len() - 3;
    out.extend((0..filler).map(|i| b'a' + ((i * 7 + i / 4096) % 26) as u8));
    out.push(b'\n');
    out.extend_from_slice(&pdf[trailer_at..]);
    assert_eq!(out.len(), len);
    out
}

/// An S3 client that sends no checksum unless an operation requires one: what a browser
/// multipart uploader (Uppy) leaves, and `AWS_REQUEST_CHECKSUM_CALCULATION=when_required`.
pub(crate) async fn s3_without_checksums() -> aws_sdk_s3::Client {
    let config = aws_config().await;
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(true)
            .request_checksum_calculation(
                aws_sdk_s3::config::RequestChecksumCalculation::WhenRequired,
            )
            .build(),
    )
}

/// Uploads `bytes` in parts of the given lengths; returns the ETag S3 computed.
pub(crate) async fn multipart(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    bytes: &[u8],
    lengths: &[usize],
) -> String {
    assert_eq!(lengths.iter().sum::<usize>(), bytes.len());
    let upload = s3
        .create_multipart_upload()
        .bucket(bucket)
        .key(key)
        .content_type("application/pdf")
        .send()
        .await
        .expect("CreateMultipartUpload");
    let id = upload.upload_id().expect("upload id");
    let (mut at, mut done) = (0, CompletedMultipartUpload::builder());
    for (n, length) in lengths.iter().enumerate() {
        let number = n as i32 + 1;
        let part = s3
            .upload_part()
            .bucket(bucket)
            .key(key)
            .upload_id(id)
            .part_number(number)
            .body(ByteStream::from(bytes[at..at + length].to_vec()))
            .send()
            .await
            .expect("UploadPart");
        done = done.parts(
            CompletedPart::builder()
                .part_number(number)
                .e_tag(part.e_tag().expect("part ETag"))
                .build(),
        );
        at += length;
    }
    complete(s3, bucket, key, id, done.build()).await
}

/// Completes an upload and returns the object's ETag. moto answers with a
/// `CompleteMultipartUploadResponse` root, which the Rust SDK refuses to decode although the
/// upload is complete: the ETag is read back with a HeadObject, which fails if it is not.
async fn complete(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    id: &str,
    parts: CompletedMultipartUpload,
) -> String {
    let completed = s3
        .complete_multipart_upload()
        .bucket(bucket)
        .key(key)
        .upload_id(id)
        .multipart_upload(parts)
        .send()
        .await;
    if let Err(error) = &completed {
        assert_eq!(
            error.raw_response().map(|r| r.status().as_u16()),
            Some(200),
            "CompleteMultipartUpload: {error:?}"
        );
    }
    s3.head_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .expect("the completed object")
        .e_tag()
        .expect("ETag")
        .to_owned()
}

fn md5_of_parts(layout: &docworker_shared::parts::PartLayout, bytes: &[u8]) -> PartDigester {
    let mut digester = PartDigester::new(layout.clone(), PartCheck::Md5);
    bytes
        .chunks(64 * 1024 + 17)
        .for_each(|c| digester.update(c));
    digester
}

#[tokio::test(flavor = "multi_thread")]
async fn the_part_layout_is_learnt_from_s3_and_gives_its_multipart_etag() {
    let stack = Stack::with(
        "parts",
        Options {
            notify: false,
            ..Options::default()
        },
    )
    .await;
    let s3 = s3_without_checksums().await;
    let bytes = big_pdf(10 * MIB + 1000);

    let uniform = [5 * MIB, 5 * MIB, 1000];
    let etag = multipart(&s3, &stack.bucket, "medical/uniform.pdf", &bytes, &uniform).await;
    let object = Object {
        bucket: &stack.bucket,
        key: "medical/uniform.pdf",
        version_id: None,
        total: bytes.len() as u64,
        parts: docworker_shared::parts::multipart_etag_parts(&etag).expect("a multipart ETag"),
    };
    let layout = parts::assume_uniform(&s3, object)
        .await
        .expect("HeadObject")
        .expect("one part size explains the first and last parts");
    assert!(
        md5_of_parts(&layout, &bytes).finish().matches(&etag),
        "{etag}"
    );
    let listed = parts::every_part(&s3, object)
        .await
        .expect("HeadObject")
        .expect("lengths add up");
    assert!(listed.same_cut(&layout));

    let mut corrupted = bytes.clone();
    corrupted[7 * MIB] ^= 0x20;
    assert!(
        !md5_of_parts(&layout, &corrupted).finish().matches(&etag),
        "one changed byte in the second part"
    );

    // Uneven parts: the first and last do not explain the middle one, so every length is asked.
    let uneven_bytes = big_pdf(10 * MIB + 1003);
    let uneven = [5 * MIB, 5 * MIB + 3, 1000];
    let etag = multipart(
        &s3,
        &stack.bucket,
        "medical/uneven.pdf",
        &uneven_bytes,
        &uneven,
    )
    .await;
    let object = Object {
        key: "medical/uneven.pdf",
        total: uneven_bytes.len() as u64,
        ..object
    };
    assert_eq!(
        parts::assume_uniform(&s3, object).await.expect("HEAD"),
        None
    );
    let listed = parts::every_part(&s3, object)
        .await
        .expect("HeadObject")
        .expect("lengths add up");
    assert_eq!(listed.count(), 3);
    assert!(md5_of_parts(&listed, &uneven_bytes).finish().matches(&etag));

    // An object uploaded in one piece has no part count: no layout is assumed for it.
    let single = stack
        .put("medical/single.pdf", bytes.clone(), None, &[])
        .await;
    let object = Object {
        key: "medical/single.pdf",
        parts: 1,
        ..object
    };
    assert!(single.e_tag().is_some());
    assert_eq!(
        parts::assume_uniform(&s3, object).await.expect("HEAD"),
        None
    );
}

/// The `Object Created` envelope EventBridge puts on the queue, shaped as the S3 user guide's
/// "EventBridge event message structure" shows it.
fn eventbridge_created(bucket: &str, key: &str, size: usize, etag: &str) -> serde_json::Value {
    serde_json::json!({
        "version": "0", "id": uuid::Uuid::new_v4().to_string(),
        "detail-type": "Object Created", "source": "aws.s3", "account": "123456789012",
        "time": "2026-12-02T12:00:00Z", "region": "us-east-1",
        "resources": [format!("arn:aws:s3:::{bucket}")],
        "detail": {
            "version": "0",
            "bucket": {"name": bucket},
            "object": {
                "key": docworker_shared::event::encode_key(key), "size": size,
                "etag": etag.trim_matches('"'), "sequencer": "0061A3C4B1D2E3F405"
            },
            "request-id": "N4N7GDK58NMKJ12R", "requester": "123456789012",
            "source-ip-address": "127.0.0.1", "reason": "PutObject"
        }
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn an_eventbridge_delivered_event_finalizes_the_document_and_its_deletion_marks_it() {
    let mut stack = Stack::with(
        "eventbridge",
        Options {
            notify: false,
            ..Options::default()
        },
    )
    .await;
    stack.start_worker(&[]);
    let key = "reports/via eventbridge+1.pdf";
    let bytes = fixtures::pdf();
    let put = stack
        .put(key, bytes.clone(), Some("application/pdf"), &[])
        .await;
    let created = eventbridge_created(&stack.bucket, key, bytes.len(), put.e_tag().expect("ETag"));
    stack.send(&created.to_string()).await;
    let row = stack.wait_settled(key).await;
    assert_eq!(row.status, "finalized", "{:?}", row.rejection_reason);
    assert_eq!(row.file_size, Some(bytes.len() as i64));

    stack.delete_object(key).await;
    let mut deleted = created.clone();
    deleted["detail-type"] = "Object Deleted".into();
    deleted["detail"]["reason"] = "DeleteObject".into();
    deleted["detail"]["deletion-type"] = "Permanently Deleted".into();
    deleted["detail"]["object"]["sequencer"] = "0061A3C4B1D2E3F406".into();
    let object = deleted["detail"]["object"].as_object_mut().expect("object");
    object.remove("size");
    object.remove("etag");
    stack.send(&deleted.to_string()).await;
    stack.wait_for(key, |d| d.status == "deleted").await;
    stack.wait_queue_empty().await;
}

/// Runs a Python script (with boto3) against the stack's bucket; `argv[1]` is the bucket.
fn python(stack: &Stack, script: &str, args: &[&str]) -> String {
    let output = std::process::Command::new(crate::iam::python())
        .arg("-c")
        .arg(script)
        .arg(&stack.bucket)
        .args(args)
        .envs(aws_cli_env())
        .output()
        .expect("python3");
    assert!(
        output.status.success(),
        "{script}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// The environment a tool run by hand against the local stack has.
fn aws_cli_env() -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ENDPOINT_URL", crate::helpers::endpoint()),
        ("AWS_ACCESS_KEY_ID", "test".into()),
        ("AWS_SECRET_ACCESS_KEY", "test".into()),
        (
            "AWS_DEFAULT_REGION",
            crate::helpers::env_or("AWS_REGION", "us-east-1"),
        ),
    ]
}

fn temp_file(name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("{}-{name}", uuid::Uuid::new_v4().simple()));
    std::fs::write(&path, bytes).expect("write temp file");
    path
}

/// Waits for the key's row and checks it finalized with the expected class and the bytes' own
/// SHA-256.
pub(crate) async fn finalized_as(stack: &Stack, key: &str, bytes: &[u8], class: &str) {
    let row = stack.wait_settled(key).await;
    assert_eq!(row.status, "finalized", "{key}: {:?}", row.rejection_reason);
    assert_eq!(row.integrity.as_deref(), Some(class), "{key}");
    assert_eq!(
        row.sha256.as_deref(),
        Some(crate::helpers::sha256_hex(bytes).as_str()),
        "{key}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn aws_cli_multipart_uploads_are_checked_over_their_parts() {
    let mut stack = Stack::new("awscli").await;
    stack.start_worker(&[]);
    let bytes = big_pdf(11 * MIB);
    let file = temp_file("cli.pdf", &bytes);
    for (key, calculation, class) in [
        (
            "medical/cli-default.pdf",
            "when_supported",
            "crc32-composite:s3",
        ),
        (
            "medical/cli-when-required.pdf",
            "when_required",
            "md5-multipart-etag:s3",
        ),
    ] {
        let status = std::process::Command::new(crate::iam::tool("aws"))
            .args(["s3", "cp", "--quiet", "--content-type", "application/pdf"])
            .arg(&file)
            .arg(format!("s3://{}/{key}", stack.bucket))
            .envs(aws_cli_env())
            .env("AWS_REQUEST_CHECKSUM_CALCULATION", calculation)
            .status()
            .expect("aws (pip install awscli)");
        assert!(status.success(), "aws s3 cp {key}");
        finalized_as(&stack, key, &bytes, class).await;
    }
    std::fs::remove_file(file).ok();
}

/// boto3's low-level multipart calls with parts of different sizes: the first and last parts do
/// not explain the middle one, so every part's length is learnt. 6 + 5 + 7 + 1 MiB does fit one
/// part size (3 × 6 + 1) and is cut wrongly at first: the ETag disagrees, every length is
/// learnt, and the object is read once more.
const BOTO3_MULTIPART: &str = r#"
import sys, boto3
bucket, key, algorithm, sizes = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
data = open(sys.argv[5], "rb").read()
s3 = boto3.client("s3")
extra = {"ChecksumAlgorithm": algorithm} if algorithm != "none" else {}
up = s3.create_multipart_upload(Bucket=bucket, Key=key, ContentType="application/pdf", **extra)
parts, at = [], 0
for number, size in enumerate(map(int, sizes.split(",")), 1):
    r = s3.upload_part(Bucket=bucket, Key=key, UploadId=up["UploadId"], PartNumber=number,
                       Body=data[at:at + size], **extra)
    part = {"ETag": r["ETag"], "PartNumber": number}
    if extra:
        part["Checksum" + algorithm] = r["Checksum" + algorithm]
    parts.append(part)
    at += size
assert at == len(data)
s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=up["UploadId"],
                             MultipartUpload={"Parts": parts})
"#;

#[tokio::test(flavor = "multi_thread")]
async fn boto3_multipart_uploads_with_uneven_parts_are_checked_over_every_part() {
    let mut stack = Stack::new("uneven").await;
    stack.start_worker(&[]);
    let cases: [(&str, &str, Vec<usize>, &str); 3] = [
        (
            "medical/uneven.pdf",
            "none",
            vec![5 * MIB, 5 * MIB + 3, 1000],
            "md5-multipart-etag:s3",
        ),
        (
            "medical/uneven-sha256.pdf",
            "SHA256",
            vec![5 * MIB + 7, 5 * MIB, 999],
            "sha256-composite:s3",
        ),
        (
            "medical/looks-uniform.pdf",
            "none",
            vec![6 * MIB, 5 * MIB, 7 * MIB, MIB],
            "md5-multipart-etag:s3",
        ),
    ];
    for (key, algorithm, sizes, class) in &cases {
        let bytes = big_pdf(sizes.iter().sum());
        let file = temp_file("uneven.pdf", &bytes);
        let sizes: Vec<String> = sizes.iter().map(usize::to_string).collect();
        python(
            &stack,
            BOTO3_MULTIPART,
            &[
                key,
                algorithm,
                &sizes.join(","),
                file.to_str().expect("path"),
            ],
        );
        finalized_as(&stack, key, &bytes, class).await;
        std::fs::remove_file(file).ok();
    }
    assert!(
        stack
            .worker_log()
            .contains("part layout was not uniform: reading the object again"),
        "the 6/5/7/1 MiB upload took the second read"
    );
}

/// Pre-signed URLs made by boto3 as a web app would, used by curl as a browser would.
const PRESIGN: &str = r#"
import sys, json, boto3
bucket, key, kind, sha256 = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
s3 = boto3.client("s3")
if kind == "put":
    params = {"Bucket": bucket, "Key": key, "ContentType": "application/pdf"}
    if sha256 != "-":
        params["Metadata"] = {"sha256": sha256}
    print(json.dumps({"url": s3.generate_presigned_url("put_object", Params=params, ExpiresIn=600)}))
else:
    fields = {"Content-Type": "application/pdf"}
    conditions = [{"Content-Type": "application/pdf"}, ["content-length-range", 1, 1 << 30]]
    if sha256 != "-":
        fields["x-amz-meta-sha256"] = sha256
        conditions.append({"x-amz-meta-sha256": sha256})
    print(json.dumps(s3.generate_presigned_post(bucket, key, Fields=fields, Conditions=conditions, ExpiresIn=600)))
"#;

fn curl(args: &[String]) {
    let output = std::process::Command::new("curl")
        .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}"])
        .args(args)
        .output()
        .expect("curl");
    let status = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(
        status.starts_with('2'),
        "curl {args:?}: HTTP {status} {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn presigned_put_and_post_from_curl_are_checked_and_a_client_digest_proves_them() {
    let mut stack = Stack::new("presigned").await;
    stack.start_worker(&[]);
    let bytes = fixtures::pdf();
    let file = temp_file("presigned.pdf", &bytes);
    let sha256 = crate::helpers::sha256_hex(&bytes);
    for (key, kind, digest, class) in [
        ("reports/put.pdf", "put", "-", "md5-etag:s3"),
        (
            "reports/put-sha256.pdf",
            "put",
            sha256.as_str(),
            "sha256:client",
        ),
        ("reports/post.pdf", "post", "-", "md5-etag:s3"),
        (
            "reports/post-sha256.pdf",
            "post",
            sha256.as_str(),
            "sha256:client",
        ),
    ] {
        let signed: serde_json::Value =
            serde_json::from_str(&python(&stack, PRESIGN, &[key, kind, digest])).expect("JSON");
        let mut args = Vec::new();
        if kind == "put" {
            args.extend(["-X".into(), "PUT".into(), "-T".into()]);
            args.push(file.display().to_string());
            args.extend(["-H".into(), "Content-Type: application/pdf".into()]);
            if digest != "-" {
                args.extend(["-H".into(), format!("x-amz-meta-sha256: {digest}")]);
            }
            args.push(signed["url"].as_str().expect("url").to_owned());
        } else {
            for (name, value) in signed["fields"].as_object().expect("fields") {
                args.extend([
                    "-F".into(),
                    format!("{name}={}", value.as_str().expect("field")),
                ]);
            }
            args.extend(["-F".into(), format!("file=@{}", file.display())]);
            args.push(signed["url"].as_str().expect("url").to_owned());
        }
        curl(&args);
        finalized_as(&stack, key, &bytes, class).await;
    }
    std::fs::remove_file(file).ok();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_uploaders_sha256_is_compared_and_a_mismatch_or_malformed_value_is_rejected() {
    let mut stack = Stack::new("client-sha").await;
    stack.start_worker(&[]);
    let bytes = fixtures::pdf();
    let right = crate::helpers::sha256_hex(&bytes);
    let wrong = crate::helpers::sha256_hex(b"other bytes");
    stack
        .put(
            "reports/right.pdf",
            bytes.clone(),
            Some("application/pdf"),
            &[("sha256", &right)],
        )
        .await;
    stack
        .put(
            "reports/wrong.pdf",
            bytes.clone(),
            Some("application/pdf"),
            &[("sha256", &wrong)],
        )
        .await;
    stack
        .put(
            "reports/malformed.pdf",
            bytes.clone(),
            Some("application/pdf"),
            &[("sha256", "sha256-of-the-file")],
        )
        .await;
    finalized_as(&stack, "reports/right.pdf", &bytes, "sha256:client").await;
    let wrong_row = stack.wait_settled("reports/wrong.pdf").await;
    assert_eq!(wrong_row.status, "rejected");
    assert_eq!(
        wrong_row.rejection_reason.as_deref(),
        Some("the content's SHA-256 does not match the uploader's x-amz-meta-sha256")
    );
    let malformed = stack.wait_settled("reports/malformed.pdf").await;
    assert_eq!(malformed.status, "rejected");
    assert_eq!(
        malformed.rejection_reason.as_deref(),
        Some("x-amz-meta-sha256 is not a well-formed SHA-256")
    );
    assert!(
        !stack.worker_log().contains(&wrong),
        "no metadata value in the log"
    );

    // A multipart upload carries the digest on CreateMultipartUpload.
    let s3 = s3_without_checksums().await;
    let big = big_pdf(10 * MIB + 5);
    let digest = crate::helpers::sha256_hex(&big);
    let upload = s3
        .create_multipart_upload()
        .bucket(&stack.bucket)
        .key("medical/multipart-sha256.pdf")
        .content_type("application/pdf")
        .metadata("sha256", &digest)
        .send()
        .await
        .expect("CreateMultipartUpload");
    let id = upload.upload_id().expect("upload id");
    let mut done = CompletedMultipartUpload::builder();
    for (number, range) in [(1, 0..5 * MIB), (2, 5 * MIB..big.len())] {
        let part = s3
            .upload_part()
            .bucket(&stack.bucket)
            .key("medical/multipart-sha256.pdf")
            .upload_id(id)
            .part_number(number)
            .body(ByteStream::from(big[range].to_vec()))
            .send()
            .await
            .expect("UploadPart");
        done = done.parts(
            CompletedPart::builder()
                .part_number(number)
                .e_tag(part.e_tag().expect("ETag"))
                .build(),
        );
    }
    complete(
        &s3,
        &stack.bucket,
        "medical/multipart-sha256.pdf",
        id,
        done.build(),
    )
    .await;
    finalized_as(
        &stack,
        "medical/multipart-sha256.pdf",
        &big,
        "sha256:client",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sdk_puts_and_server_side_copies_name_the_checksum_s3_holds() {
    let mut stack = Stack::new("copies").await;
    stack.start_worker(&[]);
    let bytes = fixtures::pdf();
    stack
        .put(
            "reports/source.pdf",
            bytes.clone(),
            Some("application/pdf"),
            &[],
        )
        .await;
    finalized_as(&stack, "reports/source.pdf", &bytes, "crc32:s3").await;
    stack
        .s3
        .copy_object()
        .bucket(&stack.bucket)
        .key("reports/copy.pdf")
        .copy_source(format!("{}/reports/source.pdf", stack.bucket))
        .send()
        .await
        .expect("CopyObject");
    finalized_as(&stack, "reports/copy.pdf", &bytes, "crc32:s3").await;

    let s3 = s3_without_checksums().await;
    s3.put_object()
        .bucket(&stack.bucket)
        .key("reports/plain.pdf")
        .content_type("application/pdf")
        .body(ByteStream::from(bytes.clone()))
        .send()
        .await
        .expect("PutObject");
    finalized_as(&stack, "reports/plain.pdf", &bytes, "md5-etag:s3").await;
    s3.copy_object()
        .bucket(&stack.bucket)
        .key("reports/plain-copy.pdf")
        .copy_source(format!("{}/reports/plain.pdf", stack.bucket))
        .send()
        .await
        .expect("CopyObject");
    finalized_as(&stack, "reports/plain-copy.pdf", &bytes, "md5-etag:s3").await;

    // Operators see the same classes counted, and the ones no object had at 0.
    let counts = [
        ("crc32:s3", 2.0),
        ("md5-etag:s3", 2.0),
        ("length-only", 0.0),
    ];
    let deadline = std::time::Instant::now() + crate::helpers::WAIT;
    loop {
        let (_, metrics) = stack.http_get("/metrics").await;
        let seen: Vec<f64> = counts
            .iter()
            .map(|(class, _)| {
                let series =
                    format!("docworker_objects_by_integrity_total{{integrity=\"{class}\"}}");
                crate::operations::sample(&metrics, &series)
            })
            .collect();
        if seen == counts.map(|(_, n)| n) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{seen:?}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// A proxy between the worker and S3 (HTTP/1.1, one exchange at a time per connection, as the
/// SDK's client does) that flips one bit of the body of every whole-object GET whose path ends
/// with `target`, at byte `at`: bytes corrupted in flight, after S3 computed its ETag.
async fn corrupting_proxy(target: String, at: usize) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let upstream = crate::helpers::endpoint()
        .trim_start_matches("http://")
        .to_owned();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let (upstream, target) = (upstream.clone(), target.clone());
            tokio::spawn(async move {
                let mut server = tokio::net::TcpStream::connect(&upstream)
                    .await
                    .expect("upstream");
                loop {
                    let Some(request) = crate::proxy::read_head(&mut client).await else {
                        return;
                    };
                    let line = String::from_utf8_lossy(&request);
                    let mut words = line.split_whitespace();
                    let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
                    let corrupt = method == "GET" && path.split('?').next() == Some(&target);
                    let head_only = method == "HEAD";
                    server.write_all(&request).await.expect("forward request");
                    let response = crate::proxy::read_head(&mut server)
                        .await
                        .expect("response head");
                    client.write_all(&response).await.ok();
                    let length = content_length(&response);
                    if head_only || length == 0 {
                        continue;
                    }
                    let mut body = vec![0u8; length];
                    server.read_exact(&mut body).await.expect("response body");
                    if corrupt && at < body.len() {
                        body[at] ^= 0x01;
                    }
                    if client.write_all(&body).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    format!("http://{address}")
}

fn content_length(head: &[u8]) -> usize {
    crate::proxy::header(head, "content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_part_corrupted_in_flight_is_caught_by_the_multipart_etag() {
    let mut stack = Stack::new("corrupt").await;
    let key = "medical/corrupted.pdf";
    let proxy = corrupting_proxy(format!("/{}/{key}", stack.bucket), 7 * MIB).await;
    stack.start_worker(&[("AWS_ENDPOINT_URL_S3", proxy.as_str())]);
    let s3 = s3_without_checksums().await;
    let bytes = big_pdf(10 * MIB + 1000);
    multipart(&s3, &stack.bucket, key, &bytes, &[5 * MIB, 5 * MIB, 1000]).await;
    let row = stack.wait_settled(key).await;
    assert_eq!(row.status, "rejected");
    assert_eq!(
        row.rejection_reason.as_deref(),
        Some("the md5 of the object's 3 parts does not match S3's multipart ETag")
    );
    // The same proxy passes an untouched object through.
    let other = "medical/untouched.pdf";
    multipart(&s3, &stack.bucket, other, &bytes, &[5 * MIB, 5 * MIB, 1000]).await;
    finalized_as(&stack, other, &bytes, "md5-multipart-etag:s3").await;
}

/// The one case S3 holds nothing to check: SSE-KMS (the ETag is no MD5) without checksums. On
/// AWS a single-part upload still gets S3's CRC64NVME; moto adds none, so a single-part upload
/// shows the case here. The uploader's own SHA-256 then still proves the bytes.
#[tokio::test(flavor = "multi_thread")]
async fn an_sse_kms_upload_without_checksums_is_length_only_unless_the_uploader_sent_its_sha256() {
    use aws_sdk_s3::types::ServerSideEncryption;
    let mut stack = Stack::new("kms").await;
    stack.start_worker(&[]);
    let s3 = s3_without_checksums().await;
    let bytes = fixtures::pdf();
    let digest = crate::helpers::sha256_hex(&bytes);
    for (key, metadata, class) in [
        ("reports/kms.pdf", None, "length-only"),
        (
            "reports/kms-sha256.pdf",
            Some(digest.as_str()),
            "sha256:client",
        ),
    ] {
        s3.put_object()
            .bucket(&stack.bucket)
            .key(key)
            .content_type("application/pdf")
            .server_side_encryption(ServerSideEncryption::AwsKms)
            .set_metadata(metadata.map(|d| [("sha256".to_owned(), d.to_owned())].into()))
            .body(ByteStream::from(bytes.clone()))
            .send()
            .await
            .expect("PutObject");
        finalized_as(&stack, key, &bytes, class).await;
    }
}
