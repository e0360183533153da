//! One function's section of the template, generated from its `Spec`: the function and its role
//! (exactly the spec's `iam_actions`, the pipeline's managed policy and its own outcome-table
//! statements), its EventBridge rules (from `triggers`, `config_resource_types`, `schedule`
//! and `completion_events`), its log group and its alarm.

use super::pipeline_policy::{self, POLICY_ID};
use super::yaml::{flow, pascal, scalar};
use reflex_shared::finding::ResourceKind;
use reflex_shared::remediation::Spec;
use reflex_shared::trigger::Trigger;

/// What every rule of the function shares: EventBridge's retries, then the dead-letter queue.
const DELIVERY: &str =
    "            RetryPolicy: {MaximumRetryAttempts: 8, MaximumEventAgeInSeconds: 3600}
            DeadLetterConfig: {Arn: !GetAtt UndeliveredEvents.Arn}
";

/// This stack's own custom actions (their ids are scoped by the stack: infra/base.yaml).
const CUSTOM_ACTIONS: &str = "              resources:
                - !GetAtt RemediateAction.ActionTargetArn
                - !GetAtt ApproveAction.ActionTargetArn
";

/// The findings a spec declares, sorted by where they are routed from.
#[derive(Default)]
struct Routes {
    controls: Vec<String>,
    guardduty: Vec<String>,
    vulnerabilities: Vec<String>,
    config_rules: bool,
}

fn routes(spec: &Spec) -> Routes {
    let mut r = Routes::default();
    for t in spec.triggers {
        // Exhaustive on purpose: a new kind of trigger must be routed here before it compiles.
        match t {
            Trigger::Control(c) => r.controls.push(c.to_string()),
            Trigger::GuarddutyType(g) => r.guardduty.push(g.to_string()),
            Trigger::ConfigRule(_) => r.config_rules = true,
            Trigger::Vulnerability(v) => r.vulnerabilities.push(v.to_string()),
        }
    }
    r
}

/// A GuardDuty type as an EventBridge pattern item: itself, or a prefix for `Backdoor:EC2/*`.
fn guardduty_item(t: &str) -> String {
    match t.strip_suffix('*') {
        Some(stem) => format!("{{prefix: {}}}", scalar(stem)),
        None => scalar(t),
    }
}

/// A GuardDuty type as Security Hub writes it in `Types` (`/` as `-`, under a namespace).
fn security_hub_type(t: &str) -> String {
    let asff = t.replacen('/', "-", 1);
    format!("{{wildcard: {}}}", scalar(&format!("*/{asff}")))
}

fn list(items: &[String], indent: &str) -> String {
    items.iter().map(|i| format!("{indent}- {i}\n")).collect()
}

fn rule(name: &str, comment: &str, pattern: &str) -> String {
    format!(
        "{comment}        {name}:
          Type: EventBridgeRule
          Properties:
{DELIVERY}            Pattern:
{pattern}"
    )
}

fn events(spec: &Spec) -> String {
    let r = routes(spec);
    let mut out = String::new();
    let account = "[!Ref AWS::AccountId]";
    if !r.guardduty.is_empty() {
        let types: Vec<String> = r.guardduty.iter().map(|t| guardduty_item(t)).collect();
        out += &rule(
            "GuardDutyFindings",
            "",
            &format!(
                "              source: [aws.guardduty]
              detail-type: [GuardDuty Finding]
              detail:
                accountId: {account}
                type:
{}                service:
                  archived: [false]
",
                list(&types, "                  ")
            ),
        );
    }
    if !r.controls.is_empty() {
        let ids = flow(&r.controls);
        out += &rule(
            "SecurityHubControls",
            "        # Consolidated control findings (Compliance.SecurityControlId). Only NEW, ACTIVE, FAILED
        # findings of AWS's own products: Reflex's own workflow updates (NOTIFIED, RESOLVED) do
        # not trigger it again.
",
            &format!(
                "              source: [aws.securityhub]
              detail-type: [Security Hub Findings - Imported]
              detail:
                findings:
                  AwsAccountId: {account}
                  ProductArn: [{{wildcard: \"arn:aws*:securityhub:*::product/aws/*\"}}]
                  RecordState: [ACTIVE]
                  Workflow:
                    Status: [NEW]
                  Compliance:
                    Status: [FAILED]
                    SecurityControlId: {ids}
"
            ),
        );
        out += &rule(
            "SecurityHubLegacyControls",
            "        # The older per-standard format names the control only in ProductFields.ControlId.
",
            &format!(
                "              source: [aws.securityhub]
              detail-type: [Security Hub Findings - Imported]
              detail:
                findings:
                  AwsAccountId: {account}
                  ProductArn: [{{wildcard: \"arn:aws*:securityhub:*::product/aws/*\"}}]
                  RecordState: [ACTIVE]
                  Workflow:
                    Status: [NEW]
                  Compliance:
                    Status: [FAILED]
                  ProductFields:
                    ControlId: {ids}
"
            ),
        );
        out += &rule(
            "SecurityHubCustomAction",
            "        # An analyst's \"Reflex: remediate\" or \"Reflex: approve\" on a finding, whatever its
        # workflow. Like every Security Hub rule, only findings of AWS's own products (the
        # policy's default trusted_products): another product's finding with the same control
        # id is not routed.
",
            &format!(
                "              source: [aws.securityhub]
              detail-type: [Security Hub Findings - Custom Action]
{CUSTOM_ACTIONS}              detail:
                findings:
                  AwsAccountId: {account}
                  ProductArn: [{{wildcard: \"arn:aws*:securityhub:*::product/aws/*\"}}]
                  RecordState: [ACTIVE]
                  Compliance:
                    SecurityControlId: {ids}
"
            ),
        );
        out += &rule(
            "SecurityHubCustomActionLegacy",
            "",
            &format!(
                "              source: [aws.securityhub]
              detail-type: [Security Hub Findings - Custom Action]
{CUSTOM_ACTIONS}              detail:
                findings:
                  AwsAccountId: {account}
                  ProductArn: [{{wildcard: \"arn:aws*:securityhub:*::product/aws/*\"}}]
                  RecordState: [ACTIVE]
                  ProductFields:
                    ControlId: {ids}
"
            ),
        );
    }
    if !r.guardduty.is_empty() {
        let types: Vec<String> = r.guardduty.iter().map(|t| security_hub_type(t)).collect();
        out += &rule(
            "SecurityHubGuardDutyFindings",
            "        # GuardDuty findings as Security Hub imports them (an account that routes findings
        # through Security Hub). The same finding straight from GuardDuty has the same record: one
        # of the two deliveries is a duplicate, never a second change.
",
            &format!(
                "              source: [aws.securityhub]
              detail-type: [Security Hub Findings - Imported]
              detail:
                findings:
                  AwsAccountId: {account}
                  RecordState: [ACTIVE]
                  Workflow:
                    Status: [NEW]
                  ProductArn: [{{wildcard: \"arn:aws*:securityhub:*::product/aws/guardduty\"}}]
                  Types:
{}",
                list(&types, "                    ")
            ),
        );
        out += &rule(
            "SecurityHubCustomActionGuardDuty",
            "        # Custom actions on GuardDuty findings in Security Hub (the GuardDuty type is in Types,
        # with \"/\" as \"-\").
",
            &format!(
                "              source: [aws.securityhub]
              detail-type: [Security Hub Findings - Custom Action]
{CUSTOM_ACTIONS}              detail:
                findings:
                  AwsAccountId: {account}
                  RecordState: [ACTIVE]
                  ProductArn: [{{wildcard: \"arn:aws*:securityhub:*::product/aws/guardduty\"}}]
                  Types:
{}",
                list(&types, "                    ")
            ),
        );
    }
    if !r.vulnerabilities.is_empty() {
        // Inspector's findings reach Reflex through Security Hub only; the severity threshold
        // is the policy's (a parameter), so every active vulnerability finding is routed.
        let ids: Vec<String> = r
            .vulnerabilities
            .iter()
            .map(|v| guardduty_item(v))
            .collect();
        let ids = list(&ids, "                      ");
        out += &rule(
            "SecurityHubVulnerabilities",
            "        # Inspector vulnerability findings (a CVE on a resource), new and active.
",
            &format!(
                "              source: [aws.securityhub]
              detail-type: [Security Hub Findings - Imported]
              detail:
                findings:
                  AwsAccountId: {account}
                  ProductArn: [{{wildcard: \"arn:aws*:securityhub:*::product/aws/inspector\"}}]
                  RecordState: [ACTIVE]
                  Workflow:
                    Status: [NEW]
                  Vulnerabilities:
                    Id:
{ids}"
            ),
        );
        out += &rule(
            "SecurityHubCustomActionVulnerabilities",
            "",
            &format!(
                "              source: [aws.securityhub]
              detail-type: [Security Hub Findings - Custom Action]
{CUSTOM_ACTIONS}              detail:
                findings:
                  AwsAccountId: {account}
                  ProductArn: [{{wildcard: \"arn:aws*:securityhub:*::product/aws/inspector\"}}]
                  RecordState: [ACTIVE]
                  Vulnerabilities:
                    Id:
{ids}"
            ),
        );
    }
    if r.config_rules {
        let cfn: Vec<String> = spec
            .config_resource_types
            .iter()
            .map(|t| t.to_string())
            .collect();
        let asff: Vec<String> = spec
            .config_resource_types
            .iter()
            .map(|t| ResourceKind::parse(t).as_str().to_string())
            .collect();
        let (cfn, asff) = (flow(&cfn), flow(&asff));
        out += &rule(
            "SecurityHubCustomActionConfig",
            "        # Custom actions on Config findings about the resource types the function changes.
",
            &format!(
                "              source: [aws.securityhub]
              detail-type: [Security Hub Findings - Custom Action]
{CUSTOM_ACTIONS}              detail:
                findings:
                  AwsAccountId: {account}
                  RecordState: [ACTIVE]
                  ProductArn: [{{wildcard: \"arn:aws*:securityhub:*::product/aws/config\"}}]
                  Resources:
                    Type: {asff}
"
            ),
        );
        out += &rule(
            "SecurityHubConfigFindings",
            "        # Config findings imported into Security Hub: routed by resource type, like Config's own
        # events (the function resolves the rule's identity).
",
            &format!(
                "              source: [aws.securityhub]
              detail-type: [Security Hub Findings - Imported]
              detail:
                findings:
                  AwsAccountId: {account}
                  ProductArn: [{{wildcard: \"arn:aws*:securityhub:*::product/aws/config\"}}]
                  RecordState: [ACTIVE]
                  Workflow:
                    Status: [NEW]
                  Compliance:
                    Status: [FAILED]
                  Resources:
                    Type: {asff}
"
            ),
        );
        out += &rule(
            "ConfigCompliance",
            "        # Config compliance changes about the resource types the function changes. Not filtered by
        # rule name: a name says nothing about what a rule is. The function resolves each rule's
        # identity (config:DescribeConfigRules) and acts only on AWS-managed rules it handles.
",
            &format!(
                "              source: [aws.config]
              detail-type: [Config Rules Compliance Change]
              detail:
                messageType: [ComplianceChangeNotification]
                awsAccountId: {account}
                newEvaluationResult:
                  complianceType: [NON_COMPLIANT]
                resourceType: {cfn}
"
            ),
        );
    }
    for e in spec.completion_events {
        out += &rule(
            &format!("Completion{}", pascal(e.detail_type)),
            "        # Ends a long operation this function started (Spec::completion_events).
",
            &format!(
                "              source: [{}]
              detail-type: [{}]
              account: {account}
",
                scalar(e.source),
                scalar(e.detail_type)
            ),
        );
    }
    if let Some(schedule) = spec.schedule {
        out += &format!(
            "        # The remediation's scheduled work (Spec::schedule): its sweep.
        Sweep:
          Type: Schedule
          Properties:
            Schedule: {}
{DELIVERY}",
            scalar(schedule)
        );
    }
    out
}

/// The role's statements for the remediation's own calls (`Spec::iam_actions`). Their
/// resources are whatever a finding names, unknown when the stack is deployed.
fn remediation_statement(spec: &Spec) -> String {
    if spec.iam_actions.is_empty() {
        return String::new();
    }
    let actions: Vec<String> = spec.iam_actions.iter().map(|a| scalar(a)).collect();
    format!(
        "        # Exactly the remediation's own IAM actions (Spec::iam_actions), on whatever
        # resource a finding names; tests/template.rs holds this list to them.
        - Version: \"2012-10-17\"
          Statement:
            - Sid: Remediation
              Effect: Allow
              Action:
{}              Resource: \"*\"
",
        list(&actions, "                ")
    )
}

/// The function's whole section (under `Resources:`).
pub fn section(spec: &Spec) -> String {
    let name = spec.name;
    let id = pascal(name);
    format!(
        "  # ---------------------------------------------------------------------------------------------
  # {name}: generated from its Spec by `reflex template`.
  {id}Function:
    Type: AWS::Serverless::Function
    Metadata:
      BuildMethod: rust-cargolambda
      BuildProperties:
        Binary: {name}
      checkov:
        skip:
          - id: CKV_AWS_116
            comment: Failed invocations go to the on-failure destination (FailedInvocations, alarmed) after Lambda's retries; a DLQ would duplicate it.
          - id: CKV_AWS_117
            comment: The function reaches only public AWS APIs; it reaches no private resource a VPC would give it.
    Properties:
      CodeUri: ../
      Description: {description}
      # Reflex's own roles live under this path, and no identity fix ever changes a role there.
      RolePath: {role_path}
      ReservedConcurrentExecutions: !Ref ReservedConcurrency
      KmsKeyArn: !If [UseKmsKey, !Ref KmsKeyArn, !Ref AWS::NoValue]
      LoggingConfig:
        LogGroup: !Ref {id}Logs
      # The pipeline's managed policy, and the statements that are this function's own.
      Policies:
        - !Ref {POLICY_ID}
{remediation}{table}      Events:
{events}
  {id}Logs:
    Type: AWS::Logs::LogGroup
    Properties:
      RetentionInDays: !Ref LogRetentionDays
      KmsKeyId: !If [UseKmsKey, !Ref KmsKeyArn, !Ref AWS::NoValue]

  # Real failures: outcomes stored `failed` or `verification-failed` (the EMF metric
  # `Failures`), not invocation errors. Those are mostly `Reflex.RecordBusy`, a duplicate told to
  # come back later on purpose; an invocation that still fails after Lambda's retries lands in
  # FailedInvocations, alarmed on its own.
{failures}
  # A notification SNS did not take (the EMF metric `NotificationsFailed`): the outcome stands
  # and is on record, but nobody was told. Its own alarm, so the console shows it even when the
  # topic itself is what fails.
{unheard}",
        description = scalar(&format!("Reflex remediation {name}")),
        role_path = reflex_shared::principal::REFLEX_ROLE_PATH,
        remediation = remediation_statement(spec),
        table = pipeline_policy::table_statements(name),
        events = events(spec),
        failures = metric_alarm(
            &id,
            name,
            "Failures",
            &format!("{name} stored a failed or verification-failed outcome; reflex audit --status failed"),
        ),
        unheard = metric_alarm(
            &id,
            name,
            "NotificationsFailed",
            &format!("{name} could not publish a notification (SNS refused it); the outcomes are on record: reflex audit --since 1h"),
        ),
    )
}

/// An alarm on one of the function's EMF metrics (namespace `Reflex/<stack>`, dimension
/// `Remediation`): any datum above 0 in 5 minutes notifies the stack's topic.
fn metric_alarm(id: &str, name: &str, metric: &str, description: &str) -> String {
    format!(
        "  {id}{metric}:
    Type: AWS::CloudWatch::Alarm
    Properties:
      AlarmDescription: {description}
      Namespace: !Sub Reflex/${{AWS::StackName}}
      MetricName: {metric}
      Dimensions:
        - Name: Remediation
          Value: {name}
      Statistic: Sum
      Period: 300
      EvaluationPeriods: 1
      Threshold: 0
      ComparisonOperator: GreaterThanThreshold
      TreatMissingData: notBreaching
      AlarmActions:
        - !Ref NotificationTopic
",
        description = scalar(description)
    )
}
