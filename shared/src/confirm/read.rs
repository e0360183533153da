//! The reads that bring a finding back from its source. Each answer is the API's own JSON
//! ([`wire`]), parsed by the same parser as events, so the comparison is between two findings
//! read alike.

use super::{compare, origin, wire, Confirmation, Origin};
use crate::finding::{parse_asff_finding, parse_guardduty_finding, Finding};
use crate::remediation::RemediationError;

/// Security Hub pages read at most, looking for the one finding whose `Id` and `ProductArn` are
/// the ones asked for. AWS answers the filter with that one finding on the first page; the
/// answer is still checked, never trusted to be filtered.
const SECURITY_HUB_PAGES: usize = 5;

/// The clients a read-back needs.
#[derive(Debug, Clone)]
pub struct SourceReader {
    pub guardduty: aws_sdk_guardduty::Client,
    pub securityhub: aws_sdk_securityhub::Client,
}

impl SourceReader {
    pub fn new(sdk: &aws_types::SdkConfig) -> SourceReader {
        SourceReader {
            guardduty: aws_sdk_guardduty::Client::new(sdk),
            securityhub: aws_sdk_securityhub::Client::new(sdk),
        }
    }

    /// Whether `event`'s source confirms it (only read when `asked`).
    pub async fn confirm(
        &self,
        event: &Finding,
        asked: bool,
    ) -> Result<Confirmation, RemediationError> {
        if !asked {
            return Ok(Confirmation::NotAsked);
        }
        let origin = match origin(event) {
            Ok(o) => o,
            Err(why) => return Ok(Confirmation::Unconfirmed(why)),
        };
        let at_source = self.read(&origin).await?;
        Ok(match compare(event, at_source.as_ref()) {
            Ok(()) => Confirmation::Confirmed,
            Err(why) => Confirmation::Unconfirmed(why),
        })
    }

    /// The finding as its source holds it now; `None` when the source has no such finding.
    pub async fn read(&self, origin: &Origin) -> Result<Option<Finding>, RemediationError> {
        match origin {
            Origin::Guardduty { detector, id } => self.guardduty(detector, id).await,
            Origin::SecurityHub { id, product_arn } => self.securityhub(id, product_arn).await,
        }
    }

    async fn guardduty(
        &self,
        detector: &str,
        id: &str,
    ) -> Result<Option<Finding>, RemediationError> {
        const API: &str = "guardduty:GetFindings";
        let answer = wire::guardduty_get_findings(&self.guardduty, detector, id).await?;
        findings_in(API, &answer, "findings")?
            .iter()
            .find(|f| f["id"].as_str() == Some(id))
            .map(|f| parsed(API, parse_guardduty_finding(f)))
            .transpose()
    }

    async fn securityhub(
        &self,
        id: &str,
        product_arn: &str,
    ) -> Result<Option<Finding>, RemediationError> {
        const API: &str = "securityhub:GetFindings";
        let mut token: Option<String> = None;
        for _ in 0..SECURITY_HUB_PAGES {
            let answer = wire::securityhub_get_findings(
                &self.securityhub,
                id,
                product_arn,
                token.as_deref(),
            )
            .await?;
            if let Some(f) = findings_in(API, &answer, "Findings")?.iter().find(|f| {
                f["Id"].as_str() == Some(id) && f["ProductArn"].as_str() == Some(product_arn)
            }) {
                return parsed(API, parse_asff_finding(f)).map(Some);
            }
            match answer["NextToken"].as_str().filter(|t| !t.is_empty()) {
                Some(t) => token = Some(t.to_string()),
                None => return Ok(None),
            }
        }
        Ok(None)
    }
}

/// The answer's list of findings: an answer without one is not a `GetFindings` answer, and
/// must not read as "the source has no such finding" (a final decision).
fn findings_in<'a>(
    api: &'static str,
    answer: &'a serde_json::Value,
    key: &str,
) -> Result<&'a Vec<serde_json::Value>, RemediationError> {
    answer[key].as_array().ok_or_else(|| {
        RemediationError::Invalid(format!("{api} answered without a list of {key:?}"))
    })
}

fn parsed(
    api: &'static str,
    finding: Result<Finding, crate::finding::ParseError>,
) -> Result<Finding, RemediationError> {
    finding.map_err(|e| {
        RemediationError::Invalid(format!("{api} answered a finding Reflex cannot read: {e}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_answer_without_its_list_is_an_error_not_an_absent_finding() {
        let cases = [
            (json!({"findings": []}), true),
            (json!({"findings": [{"id": "f1"}]}), true),
            (json!({}), false),
            (json!({"findings": null}), false),
            (json!({"findings": {"id": "f1"}}), false),
            (json!({"Findings": []}), false),
        ];
        for (answer, ok) in cases {
            let got = findings_in("guardduty:GetFindings", &answer, "findings");
            assert_eq!(got.is_ok(), ok, "{answer}");
            // Security Hub's answer names its list `Findings`.
            let asff = json!({ "Findings": answer.get("findings").cloned() });
            let got = findings_in("securityhub:GetFindings", &asff, "Findings");
            assert_eq!(got.is_ok(), ok, "{asff}");
            if let Err(e) = got {
                assert!(matches!(e, RemediationError::Invalid(_)), "{e:?}");
            }
        }
    }
}
