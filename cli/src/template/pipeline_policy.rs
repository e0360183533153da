//! The pipeline's IAM statements, once for every function: an `AWS::IAM::ManagedPolicy` built
//! from `PIPELINE_IAM_ACTIONS`, and the outcome-table statements each role keeps for itself.
//!
//! Why the table's statements stay per function: each role may touch only its own items
//! (`dynamodb:LeadingKeys` against `ledger::key_prefixes(name)`). One managed policy cannot name
//! each function's prefixes; it could only through a policy variable on a role tag
//! (`${aws:PrincipalTag/…}`), which moves the boundary into a tag anyone with `iam:TagRole`
//! can change. So every other pipeline action lives in the managed policy, and the DynamoDB ones
//! in each role.

use super::TemplateError;
use reflex_shared::ledger::key_prefixes;
use reflex_shared::pipeline::PIPELINE_IAM_ACTIONS;

/// The managed policy's logical id; every function role attaches it.
pub const POLICY_ID: &str = "PipelinePolicy";

/// One statement of the managed policy: the pipeline actions it grants, and the YAML of its
/// resource and condition (indented for a statement at 12 spaces).
struct Grant {
    sid: &'static str,
    comment: &'static str,
    actions: &'static [&'static str],
    rest: &'static str,
}

const SHARED: &[Grant] = &[
    Grant {
        sid: "ConfigRuleIdentity",
        comment: "",
        actions: &["config:DescribeConfigRules"],
        rest: "            Resource: \"*\"\n",
    },
    Grant {
        sid: "SecurityHubFeedback",
        comment: "\
          # Only what Reflex sends (securityhub.rs): a note, and the workflow status RESOLVED
          # or NOTIFIED (or none). Every other field BatchUpdateFindings can change must be
          # absent: the Null keys must all hold. A field is named as a whole and by its parts
          # (AWS's own managed policies use both forms); a name Security Hub does not set is
          # always absent, so listing it costs nothing.
",
        actions: &["securityhub:BatchUpdateFindings"],
        rest: "            Resource: \"*\"
            Condition:
              StringEqualsIfExists:
                securityhub:ASFFSyntaxPath/Workflow.Status: [RESOLVED, NOTIFIED]
              \"Null\":
                securityhub:ASFFSyntaxPath/Confidence: \"true\"
                securityhub:ASFFSyntaxPath/Criticality: \"true\"
                securityhub:ASFFSyntaxPath/RelatedFindings: \"true\"
                securityhub:ASFFSyntaxPath/RelatedFindings.Id: \"true\"
                securityhub:ASFFSyntaxPath/RelatedFindings.ProductArn: \"true\"
                securityhub:ASFFSyntaxPath/Severity: \"true\"
                securityhub:ASFFSyntaxPath/Severity.Label: \"true\"
                securityhub:ASFFSyntaxPath/Severity.Normalized: \"true\"
                securityhub:ASFFSyntaxPath/Severity.Product: \"true\"
                securityhub:ASFFSyntaxPath/Types: \"true\"
                securityhub:ASFFSyntaxPath/UserDefinedFields: \"true\"
                securityhub:ASFFSyntaxPath/UserDefinedFields.key: \"true\"
                securityhub:ASFFSyntaxPath/UserDefinedFields.value: \"true\"
                securityhub:ASFFSyntaxPath/VerificationState: \"true\"
",
    },
    Grant {
        sid: "ConfirmAtSource",
        comment: "\
          # Reading a finding back from GuardDuty or Security Hub before a fix that can lock
          # someone out (confirm_at_source): read-only, and findings name no resource to scope.
",
        actions: &["guardduty:GetFindings", "securityhub:GetFindings"],
        rest: "            Resource: \"*\"\n",
    },
    Grant {
        sid: "OnFailureDestination",
        comment: "",
        actions: &["sqs:SendMessage"],
        rest: "            Resource: !GetAtt FailedInvocations.Arn\n",
    },
    Grant {
        sid: "Notifications",
        comment: "\
          # The stack's notification topic only (the outcomes the policy's `notify` names).
",
        actions: &["sns:Publish"],
        rest: "            Resource: !Ref NotificationTopic\n",
    },
    Grant {
        sid: "NotificationTopicKey",
        comment: "\
          # SNS encrypts what the function publishes with the topic's key: the customer's, or the
          # stack's own. Through SNS only.
",
        actions: &["kms:Decrypt", "kms:GenerateDataKey"],
        rest: "            Resource: !If [UseKmsKey, !Ref KmsKeyArn, !GetAtt NotificationKey.Arn]
            Condition:
              StringEquals:
                kms:ViaService: !Sub sns.${AWS::Region}.amazonaws.com
",
    },
    Grant {
        sid: "Policy",
        comment: "\
          # Exactly the stack's policy parameter (REFLEX_POLICY_PARAMETER), which the stack does
          # not create: operators push it.
",
        actions: &["ssm:GetParameter"],
        rest: "            Resource: !Sub arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter/${AWS::StackName}/policy\n",
    },
];

/// The outcome table's item actions (each role, on the table) and its index reads (each role,
/// on the table's indexes), both held to the role's own key prefixes.
const TABLE_ITEM_ACTIONS: &[&str] = &[
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
];
const TABLE_INDEX_ACTIONS: &[&str] = &["dynamodb:Query"];

fn pipeline_has(action: &str) -> bool {
    PIPELINE_IAM_ACTIONS.contains(&action)
}

/// Every pipeline action has a statement here, or the template would silently lack it.
fn check_covered() -> Result<(), TemplateError> {
    for action in PIPELINE_IAM_ACTIONS {
        let covered = SHARED.iter().any(|g| g.actions.contains(action))
            || TABLE_ITEM_ACTIONS.contains(action)
            || TABLE_INDEX_ACTIONS.contains(action);
        if !covered {
            return Err(TemplateError::UnknownPipelineAction(action.to_string()));
        }
    }
    Ok(())
}

fn actions_yaml(actions: &[&str], indent: &str) -> String {
    actions.iter().map(|a| format!("{indent}- {a}\n")).collect()
}

/// The managed policy resource (under `Resources:`).
pub fn managed_policy() -> Result<String, TemplateError> {
    check_covered()?;
    let mut out = String::from(
        "  # ---------------------------------------------------------------------------------------------
  # The pipeline's own permissions (PIPELINE_IAM_ACTIONS), once, attached to every function's
  # role. The outcome table's statements stay in each role: they name the role's own key prefixes.
",
    );
    out.push_str(&format!(
        "  {POLICY_ID}:
    Type: AWS::IAM::ManagedPolicy
    Properties:
      Description: Reflex pipeline (every remediation function) - policy, Config rule identity, Security Hub feedback, on-failure queue, notifications, own account
      PolicyDocument:
        Version: \"2012-10-17\"
        Statement:
"
    ));
    for g in SHARED {
        let actions: Vec<&str> = g
            .actions
            .iter()
            .copied()
            .filter(|a| pipeline_has(a))
            .collect();
        if actions.is_empty() {
            continue;
        }
        out.push_str(g.comment);
        out.push_str(&format!(
            "          - Sid: {}\n            Effect: Allow\n            Action:\n{}{}",
            g.sid,
            actions_yaml(&actions, "              "),
            g.rest
        ));
    }
    out.push_str(
        "          # With a customer key, the on-failure queue is encrypted with it: sending there needs it.
          - !If
            - UseKmsKey
            - Sid: OnFailureDestinationKey
              Effect: Allow
              Action:
                - kms:Decrypt
                - kms:GenerateDataKey
              Resource: !Ref KmsKeyArn
            - !Ref AWS::NoValue
",
    );
    Ok(out)
}

/// The role's own outcome-table statements (items of `Policies:` at 8 spaces).
pub fn table_statements(name: &str) -> String {
    let prefixes: String = key_prefixes(name)
        .iter()
        .map(|p| {
            format!(
                "                    - {}\n",
                super::yaml::scalar(&format!("{p}*"))
            )
        })
        .collect();
    let condition = format!(
        "              Condition:
                ForAllValues:StringLike:
                  dynamodb:LeadingKeys:
{prefixes}                \"Null\":
                  dynamodb:LeadingKeys: \"false\"
"
    );
    let mut out = String::from(
        "        # Only this function's own items of the shared table, by the start of their key
        # (ledger::key_prefixes): its records, budget counters and suppressions. LeadingKeys is
        # a set: ForAllValues would also hold for a request without it, so the Null check
        # demands it (GetItem, PutItem, UpdateItem and Query always carry a partition key).
        - Version: \"2012-10-17\"
          Statement:
",
    );
    let items: Vec<&str> = TABLE_ITEM_ACTIONS
        .iter()
        .copied()
        .filter(|a| pipeline_has(a))
        .collect();
    if !items.is_empty() {
        out.push_str(&format!(
            "            - Sid: OutcomeLedgerOwnItemsNoDelete
              Effect: Allow
              Action:
{}              Resource: !GetAtt OutcomeTable.Arn
{condition}",
            actions_yaml(&items, "                ")
        ));
    }
    let index: Vec<&str> = TABLE_INDEX_ACTIONS
        .iter()
        .copied()
        .filter(|a| pipeline_has(a))
        .collect();
    if !index.is_empty() {
        out.push_str(&format!(
            "            - Sid: OutcomeLedgerOwnIndexItems
              Effect: Allow
              Action:
{}              Resource: !Sub ${{OutcomeTable.Arn}}/index/by-time
{condition}",
            actions_yaml(&index, "                ")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pipeline_action_has_a_statement() {
        check_covered().unwrap();
    }

    #[test]
    fn no_shared_statement_touches_the_outcome_table() {
        // The table's statements must name the role's own prefixes: never the shared policy.
        for g in SHARED {
            for a in g.actions {
                assert!(!a.starts_with("dynamodb:"), "{}: {a}", g.sid);
            }
        }
    }
}
