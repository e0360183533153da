//! What a finding comes down to, resolved once and stored in the record: the principal, as IAM
//! named it when the finding was resolved. Approval and rollback work from this, never from the
//! finding again, and refuse a principal whose unique id has changed since.

use crate::aws::Live;
use reflex_shared::finding::ResourceKind;
use reflex_shared::principal::PrincipalKind;
use reflex_shared::remediation::ResourceRef;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainTarget {
    /// The user or role, by its ARN with path (what exemptions and suppressions go by).
    pub resource: ResourceRef,
    pub kind: PrincipalKind,
    pub name: String,
    /// `AIDA…` or `AROA…`, as IAM and the finding both said.
    pub unique_id: String,
    /// The role session the finding saw (`AROA…:SESSION`), for the record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    /// The access key the finding saw, for the record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key_id: Option<String>,
}

impl ContainTarget {
    pub fn new(
        kind: PrincipalKind,
        live: &Live,
        account: &str,
        session: Option<String>,
        access_key_id: Option<String>,
    ) -> Self {
        ContainTarget {
            resource: ResourceRef {
                kind: match kind {
                    PrincipalKind::Role => ResourceKind::IamRole,
                    PrincipalKind::Group => ResourceKind::IamGroup,
                    PrincipalKind::User => ResourceKind::IamUser,
                },
                id: live.name.clone(),
                arn: live.arn.clone(),
                account: account.to_string(),
            },
            kind,
            name: live.name.clone(),
            unique_id: live.unique_id.clone(),
            session,
            access_key_id,
        }
    }

    /// Each principal a step changes, by ARN (path included) and by unique id.
    pub fn principals(&self) -> Vec<String> {
        vec![self.resource.arn.clone(), self.unique_id.clone()]
    }
}
