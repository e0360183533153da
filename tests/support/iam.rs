//! IAM users in the emulator, for tests that need an identity of their own (an operator).
//!
//! The workspace has no IAM SDK crate, and compiling one (among the largest) only to create a
//! test user is not worth its minutes; so these calls go to moto's IAM query API as plain HTTP
//! on loopback. That is test setup only: the code under test talks to moto through the real
//! SDK. moto does not verify signatures; it takes the service from the Authorization header's
//! credential scope, so the header below names `iam` and carries no real signature.

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// An IAM user's access key.
#[derive(Debug, Clone)]
pub struct AccessKey {
    pub user_arn: String,
    pub access_key_id: String,
    pub secret_access_key: String,
}

/// The IAM user `name` (in the emulator's default account, created unless it exists) with a
/// fresh access key, its earlier keys deleted (a user may hold two): tests can run again on
/// the same emulator.
pub async fn user_with_access_key(name: &str) -> AccessKey {
    let v = "Version=2010-05-08";
    let (ok, created) = query(&format!("Action=CreateUser&UserName={name}&{v}")).await;
    assert!(ok || created.contains("EntityAlreadyExists"), "{created}");
    let (ok, user) = query(&format!("Action=GetUser&UserName={name}&{v}")).await;
    assert!(ok, "{user}");
    let (ok, keys) = query(&format!("Action=ListAccessKeys&UserName={name}&{v}")).await;
    assert!(ok, "{keys}");
    for old in elements(&keys, "AccessKeyId") {
        let (ok, deleted) = query(&format!(
            "Action=DeleteAccessKey&UserName={name}&AccessKeyId={old}&{v}"
        ))
        .await;
        assert!(ok, "{deleted}");
    }
    let (ok, key) = query(&format!("Action=CreateAccessKey&UserName={name}&{v}")).await;
    assert!(ok, "{key}");
    let first = |xml: &str, tag: &str| {
        elements(xml, tag)
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("no <{tag}> in {xml}"))
    };
    AccessKey {
        user_arn: first(&user, "Arn"),
        access_key_id: first(&key, "AccessKeyId"),
        secret_access_key: first(&key, "SecretAccessKey"),
    }
}

/// One IAM query call: whether it succeeded (HTTP 200), and the answer.
async fn query(body: &str) -> (bool, String) {
    let endpoint = crate::endpoint();
    let host = endpoint
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let mut stream = tokio::net::TcpStream::connect(&host)
        .await
        .unwrap_or_else(|e| panic!("connect to the emulator at {host}: {e}"));
    let request = format!(
        "POST / HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/x-www-form-urlencoded; charset=utf-8\r\n\
         Authorization: AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=0\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    let ok = answer.starts_with("HTTP/1.1 200") || answer.starts_with("HTTP/1.0 200");
    (ok, answer)
}

/// The text of every `<tag>` element, in order.
fn elements(xml: &str, tag: &str) -> Vec<String> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    xml.split(open.as_str())
        .skip(1)
        .filter_map(|rest| rest.split_once(close.as_str()).map(|(v, _)| v.to_string()))
        .collect()
}
