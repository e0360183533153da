//! Test support: every request an SDK client put on the wire, attempt by attempt, as sent (after
//! signing and after every interceptor that modifies the request).
//!
//! Tests only (`#[cfg(test)] mod sent;` in lib.rs): the lock is poisoned only by a test that
//! already panicked, so `unwrap` on it adds no failure of its own.

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::SensitiveOutput;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use std::sync::{Arc, Mutex};

/// One attempt's request.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub uri: String,
    pub body: String,
    pub headers: Vec<(String, String)>,
    /// Whether the answer is marked sensitive (redacted from SDK trace logs).
    pub sensitive: bool,
}

impl Attempt {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// An interceptor keeping every attempt's request; clones share what they keep.
#[derive(Debug, Default, Clone)]
pub struct Sent(Arc<Mutex<Vec<Attempt>>>);

impl Sent {
    pub fn attempts(&self) -> Vec<Attempt> {
        self.0.lock().unwrap().clone()
    }

    pub fn clear(&self) {
        self.0.lock().unwrap().clear();
    }
}

impl Intercept for Sent {
    fn name(&self) -> &'static str {
        "Sent"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let r = context.request();
        let attempt = Attempt {
            uri: r.uri().to_string(),
            body: String::from_utf8_lossy(r.body().bytes().unwrap_or_default()).to_string(),
            headers: r
                .headers()
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            sensitive: cfg.load::<SensitiveOutput>().is_some(),
        };
        self.0.lock().unwrap().push(attempt);
        Ok(())
    }
}
