//! How far this process's clock is from AWS's, learnt from the `Date` header of every DynamoDB
//! answer. Leases are compared with the local clock, so a process whose clock runs fast (a
//! laptop running `reflex approve`, say) would see a live lease as expired and take it over:
//! such a process refuses to take over a record or to act.

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeDeserializationInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;

/// The largest disagreement tolerated. `Date` has whole seconds, and an answer spends some
/// time on the way: a few seconds of slack, far below any lease (5 s at least, 120 s deployed).
pub const MAX_CLOCK_SKEW_SECONDS: i64 = 5;

/// The newest skew seen: AWS's time minus ours, in seconds.
#[derive(Debug, Clone, Default)]
pub struct ClockSkew {
    skew: Arc<AtomicI64>,
    known: Arc<AtomicBool>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "this machine's clock is {seconds} s off AWS's (by the Date of its last answer; at most \
     {MAX_CLOCK_SKEW_SECONDS} s is accepted): it may not take over a record or act, since leases \
     are judged by the clock; fix the clock and retry"
)]
pub struct SkewedClock {
    /// Ours minus AWS's: positive when this machine's clock runs fast.
    pub seconds: i64,
}

impl ClockSkew {
    /// AWS's time minus ours, if an answer has been seen.
    pub fn seconds(&self) -> Option<i64> {
        self.known
            .load(Ordering::Relaxed)
            .then(|| self.skew.load(Ordering::Relaxed))
    }

    /// `Err` when the last answer's `Date` disagrees with the local clock by more than
    /// [`MAX_CLOCK_SKEW_SECONDS`]. No answer seen yet: nothing to judge by, so no refusal.
    pub fn check(&self) -> Result<(), SkewedClock> {
        match self.seconds() {
            Some(s) if s.abs() > MAX_CLOCK_SKEW_SECONDS => Err(SkewedClock { seconds: -s }),
            _ => Ok(()),
        }
    }

    fn observe(&self, server_epoch: i64, local_epoch: i64) {
        self.skew
            .store(server_epoch - local_epoch, Ordering::Relaxed);
        self.known.store(true, Ordering::Relaxed);
    }
}

/// An HTTP `Date` (RFC 7231, `Wed, 02 Dec 2026 08:03:10 GMT`) as epoch seconds.
fn http_date(text: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc2822(text.trim())
        .ok()
        .map(|t| t.timestamp())
}

impl Intercept for ClockSkew {
    fn name(&self) -> &'static str {
        "ClockSkew"
    }

    fn read_before_deserialization(
        &self,
        ctx: &BeforeDeserializationInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(server) = ctx.response().headers().get("date").and_then(http_date) {
            self.observe(server, chrono::Utc::now().timestamp());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skew_is_judged_from_the_date_header() {
        assert_eq!(
            http_date("Wed, 02 Dec 2026 08:03:10 GMT"),
            Some(
                chrono::DateTime::parse_from_rfc3339("2026-12-02T08:03:10Z")
                    .unwrap()
                    .timestamp()
            )
        );
        assert_eq!(http_date("yesterday"), None);
        // (AWS's time, ours, refused?)
        let cases = [
            (1000, 1000, false),
            (1000, 1005, false),
            (1000, 995, false),
            (1000, 1006, true),
            (1000, 4600, true),
            (4600, 1000, true),
        ];
        for (server, local, refused) in cases {
            let c = ClockSkew::default();
            assert!(c.check().is_ok(), "nothing seen yet");
            c.observe(server, local);
            assert_eq!(c.check().is_err(), refused, "{server} vs {local}");
            if let Err(e) = c.check() {
                assert_eq!(e.seconds, local - server);
            }
        }
    }
}
