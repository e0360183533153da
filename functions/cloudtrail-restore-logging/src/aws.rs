//! The CloudTrail calls. A trail is read and changed in its home region (a multi-region trail
//! answers `StartLogging`, `UpdateTrail` and `GetTrail` only there), through a client built
//! from the function's own SDK config with that region.

use aws_sdk_cloudtrail::config::Region;
use aws_sdk_cloudtrail::types::Trail;
use reflex_shared::aws_error::code;
use reflex_shared::remediation::{RemediationError, Tags};

pub const START_LOGGING: &str = "cloudtrail:StartLogging";
pub const STOP_LOGGING: &str = "cloudtrail:StopLogging";
pub const UPDATE_TRAIL: &str = "cloudtrail:UpdateTrail";

const NOT_FOUND: &str = "TrailNotFoundException";

/// A trail as `DescribeTrails` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrailInfo {
    pub arn: String,
    pub name: String,
    pub home_region: String,
    pub multi_region: bool,
}

fn info(t: &Trail, fallback_region: &str) -> Option<TrailInfo> {
    let arn = t.trail_arn()?.to_string();
    Some(TrailInfo {
        name: t.name().unwrap_or_default().to_string(),
        // A trail's ARN names its home region; DescribeTrails says it too.
        home_region: t
            .home_region()
            .map(str::to_string)
            .or_else(|| region_of(&arn))
            .unwrap_or_else(|| fallback_region.to_string()),
        multi_region: t.is_multi_region_trail().unwrap_or(false),
        arn,
    })
}

/// The region an ARN names (`arn:aws:cloudtrail:REGION:…`).
pub fn region_of(arn: &str) -> Option<String> {
    arn.split(':')
        .nth(3)
        .filter(|r| !r.is_empty())
        .map(str::to_string)
}

fn gone(arn: &str) -> RemediationError {
    RemediationError::Gone(format!("trail {arn} no longer exists"))
}

fn failed<E>(
    api: &'static str,
    arn: &str,
    e: aws_smithy_runtime_api::client::result::SdkError<E, aws_smithy_runtime_api::http::Response>,
) -> RemediationError
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + 'static,
{
    if code(&e) == Some(NOT_FOUND) {
        gone(arn)
    } else {
        RemediationError::aws(api, e)
    }
}

/// The CloudTrail adapter: the function's own client config, and one client per home region.
#[derive(Debug, Clone)]
pub struct CloudTrail {
    base: aws_sdk_cloudtrail::Config,
}

impl CloudTrail {
    pub fn new(base: aws_sdk_cloudtrail::Config) -> Self {
        CloudTrail { base }
    }

    fn own_region(&self) -> String {
        self.base
            .region()
            .map(|r| r.as_ref().to_string())
            .unwrap_or_default()
    }

    /// A client for `region`, with everything else of the function's own config.
    fn client_in(&self, region: &str) -> aws_sdk_cloudtrail::Client {
        aws_sdk_cloudtrail::Client::from_conf(
            self.base
                .to_builder()
                .region(Region::new(region.to_string()))
                .build(),
        )
    }

    /// Every trail this region sees, other regions' multi-region trails included.
    pub async fn list(&self) -> Result<Vec<TrailInfo>, RemediationError> {
        let own = self.own_region();
        let out = self
            .client_in(&own)
            .describe_trails()
            .include_shadow_trails(true)
            .send()
            .await
            .map_err(|e| RemediationError::aws("cloudtrail:DescribeTrails", e))?;
        Ok(out
            .trail_list()
            .iter()
            .filter_map(|t| info(t, &own))
            .collect())
    }

    /// The trail `arn` names, asked of the region its ARN names (its home); `None` if there is
    /// no such trail. Filtered by ARN here: moto answers a name list with every trail.
    pub async fn find(&self, arn: &str) -> Result<Option<TrailInfo>, RemediationError> {
        let region = region_of(arn).unwrap_or_else(|| self.own_region());
        let out = match self
            .client_in(&region)
            .describe_trails()
            .trail_name_list(arn)
            .include_shadow_trails(true)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) if code(&e) == Some(NOT_FOUND) => return Ok(None),
            Err(e) => return Err(RemediationError::aws("cloudtrail:DescribeTrails", e)),
        };
        Ok(out
            .trail_list()
            .iter()
            .filter_map(|t| info(t, &region))
            .find(|t| t.arn == arn))
    }

    /// Whether the trail logs (`GetTrailStatus`, in its home region).
    pub async fn logging(&self, arn: &str, home: &str) -> Result<bool, RemediationError> {
        let out = self
            .client_in(home)
            .get_trail_status()
            .name(arn)
            .send()
            .await
            .map_err(|e| failed("cloudtrail:GetTrailStatus", arn, e))?;
        Ok(out.is_logging().unwrap_or(false))
    }

    /// Whether log-file validation is on (`GetTrail`, in its home region).
    pub async fn validation(&self, arn: &str, home: &str) -> Result<bool, RemediationError> {
        let out = self
            .client_in(home)
            .get_trail()
            .name(arn)
            .send()
            .await
            .map_err(|e| failed("cloudtrail:GetTrail", arn, e))?;
        Ok(out
            .trail()
            .and_then(|t| t.log_file_validation_enabled())
            .unwrap_or(false))
    }

    pub async fn start(&self, arn: &str, home: &str) -> Result<(), RemediationError> {
        self.client_in(home)
            .start_logging()
            .name(arn)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| failed(START_LOGGING, arn, e))
    }

    pub async fn stop(&self, arn: &str, home: &str) -> Result<(), RemediationError> {
        self.client_in(home)
            .stop_logging()
            .name(arn)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| failed(STOP_LOGGING, arn, e))
    }

    pub async fn set_validation(
        &self,
        arn: &str,
        home: &str,
        on: bool,
    ) -> Result<(), RemediationError> {
        self.client_in(home)
            .update_trail()
            .name(arn)
            .enable_log_file_validation(on)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| failed(UPDATE_TRAIL, arn, e))
    }

    pub async fn tags(&self, arn: &str, home: &str) -> Result<Tags, RemediationError> {
        let out = self
            .client_in(home)
            .list_tags()
            .resource_id_list(arn)
            .send()
            .await
            .map_err(|e| failed("cloudtrail:ListTags", arn, e))?;
        Ok(out
            .resource_tag_list()
            .iter()
            .filter(|r| r.resource_id() == Some(arn))
            .flat_map(|r| r.tags_list())
            .map(|t| {
                (
                    t.key().to_string(),
                    t.value().unwrap_or_default().to_string(),
                )
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_of_arns() {
        assert_eq!(
            region_of("arn:aws:cloudtrail:eu-west-1:123456789012:trail/t").as_deref(),
            Some("eu-west-1")
        );
        assert_eq!(region_of("org-trail"), None);
        assert_eq!(region_of("arn:aws:cloudtrail::1:trail/t"), None);
    }
}
