//! The SNS adapter: one `Publish` to the stack's topic per notification. No retries beyond the
//! SDK's own: a notification that cannot be sent is logged and counted, never a reason to fail
//! an invocation or change an outcome.

use super::Message;
use crate::aws_error;

/// The topic's ARN, from the template (`!Ref NotificationTopic`). Unset: no notifications.
pub const TOPIC_ENV: &str = "REFLEX_NOTIFICATION_TOPIC";

/// Why a notification was not sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("SNS Publish to {topic} failed: {message}")]
pub struct PublishError {
    pub topic: String,
    pub message: String,
}

/// Where notifications go: the stack's topic, or nowhere (no topic configured: the CLI run by
/// an operator, the tests that do not test notifications).
#[derive(Debug, Clone, Default)]
pub struct Notifier {
    to: Option<(aws_sdk_sns::Client, String)>,
}

impl Notifier {
    /// No notifications: nothing is published, and no record is marked.
    pub fn none() -> Self {
        Notifier::default()
    }

    pub fn sns(client: aws_sdk_sns::Client, topic_arn: impl Into<String>) -> Self {
        Notifier {
            to: Some((client, topic_arn.into())),
        }
    }

    /// The topic, when notifications are on.
    pub fn topic(&self) -> Option<&str> {
        self.to.as_ref().map(|(_, t)| t.as_str())
    }

    /// Publish `message`; its attributes let a subscription filter by status and remediation
    /// (an SNS filter policy on `reflex.status`, say). The message id SNS gave it, if sent.
    pub async fn publish(
        &self,
        message: &Message,
        status: &str,
        remediation: &str,
    ) -> Result<Option<String>, PublishError> {
        let Some((client, topic)) = &self.to else {
            return Ok(None);
        };
        let attribute = |value: &str| {
            aws_sdk_sns::types::MessageAttributeValue::builder()
                .data_type("String")
                .string_value(value)
                .build()
        };
        let fail = |message: String| PublishError {
            topic: topic.clone(),
            message,
        };
        let status = attribute(status).map_err(|e| fail(e.to_string()))?;
        let remediation = attribute(remediation).map_err(|e| fail(e.to_string()))?;
        client
            .publish()
            .topic_arn(topic)
            .subject(&message.subject)
            .message(&message.body)
            .message_attributes("reflex.status", status)
            .message_attributes("reflex.remediation", remediation)
            .send()
            .await
            .map(|out| out.message_id().map(str::to_string))
            .map_err(|e| fail(aws_error::describe(&e)))
    }
}
