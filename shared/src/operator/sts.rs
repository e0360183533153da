//! The AWS side of operator identity: the function sends the operator's signed
//! `sts:GetCallerIdentity` to its own STS endpoint and takes the operator from the answer.
//!
//! The request goes through an ordinary STS client call, so it uses the function's own endpoint,
//! retries and timeouts. An interceptor, right before the request is sent, puts the proof's
//! signature in place of the function's own (`authorization`, `x-amz-date`,
//! `x-amz-security-token`) and adds `x-reflex-command`: STS then answers for whoever signed
//! the proof, or refuses a signature that does not match.

use super::{check, Expected, Operator, OperatorError, Order, Proof, GET_CALLER_IDENTITY_BODY};
use crate::aws_error::{classify, describe, Fault};
use crate::policy::PolicyCache;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextMut;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use std::sync::{Arc, Mutex};

/// Headers of the function's own signature, replaced by the proof's.
const SIGNATURE_HEADERS: &[&str] = &[
    "authorization",
    "x-amz-date",
    "x-amz-security-token",
    "x-amz-content-sha256",
    super::COMMAND_HEADER,
];

/// What the function knows of itself: its account, table and STS endpoint host.
#[derive(Debug, Clone, Copy)]
pub struct Deployment<'a> {
    pub account: &'a str,
    pub table: &'a str,
    pub sts_host: &'a str,
}

/// The operator who signed `proof` for this command, if the policy's `operators` allows them:
/// the proof is checked ([`check`]), sent to STS, and STS's answer authorised
/// ([`super::authorise`]). A proof that is missing, altered, stale or refused by STS is
/// `Refused`; STS or the policy out of reach is `Unavailable`.
pub async fn authenticate(
    sts: &aws_sdk_sts::Client,
    policy: &PolicyCache,
    deployment: Deployment<'_>,
    order: Order,
    record_id: &str,
    proof: Option<&Proof>,
) -> Result<Operator, OperatorError> {
    let refuse = |why: String| OperatorError::Refused(why);
    let proof = proof.ok_or_else(|| {
        refuse(
            "the command carries no proof of its operator (sign one with `reflex approve|rollback … --command-for-function`)"
                .into(),
        )
    })?;
    let digest = super::digest(order, record_id, deployment.table);
    check(
        proof,
        &Expected {
            digest: &digest,
            host: deployment.sts_host,
            now: chrono::Utc::now(),
        },
    )
    .map_err(refuse)?;
    let operator = identify(sts, proof).await?;
    let policy = policy
        .current()
        .await
        .map_err(|e| OperatorError::Unavailable(e.to_string()))?;
    let operators = match policy.as_ref() {
        Ok(p) => &p.operators,
        Err(e) => return Err(refuse(format!("the policy is not usable: {e}"))),
    };
    super::authorise(&operator, deployment.account, operators).map_err(refuse)?;
    Ok(operator)
}

/// Send the proof to STS through `sts` (the function's own client and endpoint) and read who
/// signed it.
pub async fn identify(sts: &aws_sdk_sts::Client, proof: &Proof) -> Result<Operator, OperatorError> {
    let refused = Arc::new(Mutex::new(None));
    let answer = sts
        .get_caller_identity()
        .customize()
        .interceptor(ProofSignature {
            proof: proof.clone(),
            refused: refused.clone(),
        })
        .send()
        .await;
    if let Some(why) = refused.lock().ok().and_then(|mut r| r.take()) {
        return Err(OperatorError::Refused(why));
    }
    let answer = answer.map_err(|e| match classify(&e) {
        Fault::Transient => OperatorError::Unavailable(format!("STS: {}", describe(&e))),
        Fault::Permanent => {
            OperatorError::Refused(format!("STS refused the proof: {}", describe(&e)))
        }
    })?;
    match (answer.arn, answer.account) {
        (Some(arn), Some(account)) => Ok(Operator { arn, account }),
        _ => Err(OperatorError::Refused(
            "STS answered without an ARN or account".into(),
        )),
    }
}

/// Puts the proof's signature on the outgoing `GetCallerIdentity`, after the SDK signed it with
/// the function's own credentials, and refuses to send anything but the proof's exact request.
#[derive(Debug)]
struct ProofSignature {
    proof: Proof,
    /// Why the interceptor stopped the request, if it did (an SDK error would hide the reason).
    refused: Arc<Mutex<Option<String>>>,
}

impl ProofSignature {
    fn apply(&self, request: &mut aws_smithy_runtime_api::http::Request) -> Result<(), String> {
        if request.body().bytes() != Some(GET_CALLER_IDENTITY_BODY.as_bytes()) {
            return Err("the STS request is not exactly GetCallerIdentity".into());
        }
        let host = super::host_of(request.uri());
        if host.as_deref() != self.proof.header("host") {
            return Err(format!(
                "the STS request goes to {host:?}, not the host the proof is signed for"
            ));
        }
        let headers = request.headers_mut();
        for name in SIGNATURE_HEADERS {
            headers.remove(*name);
        }
        for (name, value) in &self.proof.headers {
            // The host comes from the request's own URI (checked equal above).
            if name == "host" {
                continue;
            }
            headers
                .try_insert(name.clone(), value.clone())
                .map_err(|e| format!("the proof's header {name} is not a valid header: {e}"))?;
        }
        Ok(())
    }
}

impl Intercept for ProofSignature {
    fn name(&self) -> &'static str {
        "ReflexOperatorProof"
    }

    fn modify_before_transmit(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.apply(context.request_mut()).map_err(|why| {
            if let Ok(mut r) = self.refused.lock() {
                *r = Some(why.clone());
            }
            BoxError::from(why)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{Policy, PolicyCache};
    use crate::sent::Sent;
    use aws_sdk_sts::config::{BehaviorVersion, Credentials, Region};
    use aws_smithy_mocks::{create_mock_http_client, mock, MockResponseInterceptor, RuleMode};
    use aws_smithy_runtime_api::http::{Response, StatusCode};
    use aws_smithy_types::body::SdkBody;

    const ACCOUNT: &str = "123456789012";
    const TABLE: &str = "reflex-outcomes";
    const RECORD: &str = "s3-block-public-access#0123";
    const HOST: &str = "sts.us-east-1.amazonaws.com";
    const ORDER: Order = Order::Approve;

    /// An STS client whose answers come from aws-smithy-mocks: moto does not verify SigV4
    /// signatures (it answers for whichever access key the Authorization header names), so a
    /// signature STS refuses can only be had from a mock.
    fn sts(status: u16, body: &'static str) -> (aws_sdk_sts::Client, Sent) {
        let rule = mock!(aws_sdk_sts::Client::get_caller_identity).then_http_response(move || {
            Response::new(StatusCode::try_from(status).unwrap(), SdkBody::from(body))
        });
        let sent = Sent::default();
        let conf = aws_sdk_sts::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new(
                "AKIAFUNCTION",
                "fn",
                Some("fn-token".into()),
                None,
                "fn",
            ))
            .http_client(create_mock_http_client())
            .interceptor(
                MockResponseInterceptor::new()
                    .rule_mode(RuleMode::MatchAny)
                    .with_rule(&rule),
            )
            .interceptor(sent.clone())
            .retry_config(aws_sdk_sts::config::retry::RetryConfig::disabled())
            .build();
        (aws_sdk_sts::Client::from_conf(conf), sent)
    }

    fn proof() -> Proof {
        let alice = Credentials::new("AKIAALICE", "alice-secret", None, None, "alice");
        let url = format!("https://{HOST}");
        super::super::sign(
            ORDER,
            RECORD,
            TABLE,
            &alice,
            "us-east-1",
            &url,
            std::time::SystemTime::now(),
        )
        .unwrap()
    }

    fn policy(operators: &str) -> PolicyCache {
        PolicyCache::fixed(Policy::from_yaml(&format!(
            "version: 1\noperators: {operators}"
        )))
    }

    const DEPLOYMENT: Deployment<'static> = Deployment {
        account: ACCOUNT,
        table: TABLE,
        sts_host: HOST,
    };

    const ALICE: &str = r#"<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><GetCallerIdentityResult><Arn>arn:aws:iam::123456789012:user/alice</Arn><UserId>AIDAALICE</UserId><Account>123456789012</Account></GetCallerIdentityResult><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></GetCallerIdentityResponse>"#;
    const BAD_SIGNATURE: &str = r#"<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated does not match the signature you provided.</Message></Error><RequestId>r</RequestId></ErrorResponse>"#;

    #[tokio::test]
    async fn sts_answers_for_the_proofs_signer_with_the_proofs_signature() {
        let (client, sent) = sts(200, ALICE);
        let proof = proof();
        let operator = authenticate(
            &client,
            &policy("['arn:aws:iam::*:user/alice']"),
            DEPLOYMENT,
            ORDER,
            RECORD,
            Some(&proof),
        )
        .await
        .unwrap();
        assert_eq!(operator.arn, "arn:aws:iam::123456789012:user/alice");
        // STS got the proof's signature, not the function's; the function's token is gone.
        let sent = sent.attempts().pop().map(|a| a.headers).unwrap_or_default();
        let get = |n: &str| sent.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
        assert_eq!(
            get("authorization").as_deref(),
            proof.header("authorization")
        );
        assert_eq!(get("x-amz-date").as_deref(), proof.header("x-amz-date"));
        assert_eq!(
            get("x-reflex-command").as_deref(),
            proof.header("x-reflex-command")
        );
        assert_eq!(get("x-amz-security-token"), None, "{sent:?}");
    }

    #[tokio::test]
    async fn a_signature_sts_refuses_is_refused() {
        let (client, _) = sts(403, BAD_SIGNATURE);
        let e = authenticate(
            &client,
            &policy("['arn:aws:iam::*:user/alice']"),
            DEPLOYMENT,
            ORDER,
            RECORD,
            Some(&proof()),
        )
        .await
        .unwrap_err();
        match e {
            OperatorError::Refused(why) => {
                assert!(why.contains("SignatureDoesNotMatch"), "{why}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn refusals_before_sts_and_after_it() {
        let (client, sent) = sts(200, ALICE);
        let cases: &[(&str, Option<Proof>, &str, &str)] = &[
            (
                "no proof",
                None,
                "['arn:aws:iam::*:user/alice']",
                "carries no proof",
            ),
            (
                "another record",
                Some(proof()),
                "['arn:aws:iam::*:user/alice']",
                "another command",
            ),
            (
                "not an operator",
                Some(proof()),
                "['arn:aws:iam::*:user/bob']",
                "matches no pattern",
            ),
            ("no operators", Some(proof()), "[]", "`operators` is empty"),
        ];
        for (name, proof, operators, why) in cases {
            let record = if *name == "another record" {
                "s3-block-public-access#other"
            } else {
                RECORD
            };
            let got = authenticate(
                &client,
                &policy(operators),
                DEPLOYMENT,
                ORDER,
                record,
                proof.as_ref(),
            )
            .await;
            match got {
                Err(OperatorError::Refused(e)) => assert!(e.contains(why), "{name}: {e}"),
                other => panic!("{name}: {other:?}"),
            }
        }
        // A proof for another host is refused, before and at the wire.
        let e = authenticate(
            &client,
            &policy("['arn:aws:iam::*:user/alice']"),
            Deployment {
                sts_host: "sts.eu-west-1.amazonaws.com",
                ..DEPLOYMENT
            },
            ORDER,
            RECORD,
            Some(&proof()),
        )
        .await
        .unwrap_err();
        assert!(
            e.to_string().contains("not this function's STS endpoint"),
            "{e}"
        );
        sent.clear();
        let mut other_host = proof();
        other_host
            .headers
            .insert("host".into(), "sts.eu-west-1.amazonaws.com".into());
        match identify(&client, &other_host).await {
            Err(OperatorError::Refused(e)) => assert!(e.contains("not the host"), "{e}"),
            other => panic!("{other:?}"),
        }
        assert!(sent.attempts().is_empty(), "nothing was sent");
    }
}
