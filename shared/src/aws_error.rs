//! AWS SDK errors as one readable line (`Code: message` for an answer from the service, the
//! cause chain for anything else), and their class: transient (worth retrying later) or
//! permanent (retrying changes nothing).

use aws_runtime::retries::classifiers::{THROTTLING_ERRORS, TRANSIENT_ERRORS};
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_runtime_api::http::Response;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use serde::{Deserialize, Serialize};
use std::error::Error;

/// Whether an error is worth another try.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Fault {
    /// Throttling, a 5xx, a timeout, a broken connection: the same call may well succeed later.
    Transient,
    /// Access denied, not found, validation and the like: it will fail the same way again.
    Permanent,
}

/// Service error codes that are transient whatever their HTTP status, besides the SDK's own
/// throttling and transient lists.
const MORE_TRANSIENT_CODES: &[&str] = &[
    "InternalError",
    "InternalFailure",
    "InternalServerError",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "TransactionConflict",
];

/// Classify a service error code (and HTTP status, if known). Pure, for tables of cases.
pub fn classify_code(code: Option<&str>, status: Option<u16>) -> Fault {
    let transient_code = code.is_some_and(|c| {
        THROTTLING_ERRORS.contains(&c)
            || TRANSIENT_ERRORS.contains(&c)
            || MORE_TRANSIENT_CODES.contains(&c)
    });
    if transient_code || status.is_some_and(|s| s >= 500 || s == 429) {
        Fault::Transient
    } else {
        Fault::Permanent
    }
}

/// The class of an SDK error, from the SDK's own metadata: a request that could not be built is
/// permanent (our bug); a timeout, a dispatch failure (no connection, reset) or an unreadable
/// response is transient; a service answer is judged by its code and HTTP status.
pub fn classify<E>(err: &SdkError<E, Response>) -> Fault
where
    E: ProvideErrorMetadata,
{
    match err {
        SdkError::ConstructionFailure(_) => Fault::Permanent,
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            Fault::Transient
        }
        SdkError::ServiceError(e) => classify_code(e.err().code(), Some(e.raw().status().as_u16())),
        _ => Fault::Transient,
    }
}

pub fn describe<E, R>(err: &SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + Error + 'static,
    R: std::fmt::Debug,
{
    match err.as_service_error() {
        Some(e) => match (e.code(), e.message()) {
            (Some(code), Some(message)) => format!("{code}: {message}"),
            (Some(code), None) => code.to_string(),
            _ => chain(e),
        },
        None => chain(err),
    }
}

/// An error and its sources, joined: "dispatch failure: io error: … Connection refused".
fn chain(err: &dyn Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let part = s.to_string();
        if !text.ends_with(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = s.source();
    }
    text
}

/// The service's error code, if the service answered.
pub fn code<E, R>(err: &SdkError<E, R>) -> Option<&str>
where
    E: ProvideErrorMetadata,
{
    err.as_service_error().and_then(|e| e.code())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_statuses() {
        use Fault::*;
        let cases = [
            (Some("ThrottlingException"), Some(400), Transient),
            (
                Some("ProvisionedThroughputExceededException"),
                Some(400),
                Transient,
            ),
            (Some("SlowDown"), Some(503), Transient),
            (Some("RequestTimeout"), Some(400), Transient),
            (Some("TransactionConflict"), None, Transient),
            (None, Some(503), Transient),
            (None, Some(500), Transient),
            (None, Some(429), Transient),
            (Some("AccessDenied"), Some(403), Permanent),
            (Some("AccessDeniedException"), Some(400), Permanent),
            (Some("NoSuchBucket"), Some(404), Permanent),
            (Some("ValidationException"), Some(400), Permanent),
            (
                Some("ConditionalCheckFailedException"),
                Some(400),
                Permanent,
            ),
            (None, Some(404), Permanent),
            (None, None, Permanent),
        ];
        for (code, status, want) in cases {
            assert_eq!(classify_code(code, status), want, "{code:?} {status:?}");
        }
    }
}
