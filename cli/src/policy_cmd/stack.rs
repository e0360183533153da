//! `--stack NAME`: a deployment found by its CloudFormation stack, whose outputs name its
//! outcome table and policy parameter (infra/base.yaml's `Outputs`).

use reflex_shared::aws_error;

/// The output naming the outcome table.
pub const TABLE_OUTPUT: &str = "OutcomeTableName";
/// The output naming the policy parameter.
pub const PARAMETER_OUTPUT: &str = "PolicyParameterName";

/// Where one deployment keeps its records and its policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployment {
    pub table: String,
    pub parameter: String,
}

/// The deployment from a stack's outputs (key, value). Pure.
pub fn from_outputs(stack: &str, outputs: &[(String, String)]) -> Result<Deployment, String> {
    let get = |key: &str| {
        outputs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .filter(|v| !v.is_empty())
            .ok_or_else(|| {
                format!("stack {stack} has no output {key}: is it a Reflex stack, deployed from this version's infra/template.yaml?")
            })
    };
    Ok(Deployment {
        table: get(TABLE_OUTPUT)?,
        parameter: get(PARAMETER_OUTPUT)?,
    })
}

/// Read the stack's outputs (CloudFormation `DescribeStacks`).
pub async fn resolve(
    cfn: &aws_sdk_cloudformation::Client,
    stack: &str,
) -> anyhow::Result<Deployment> {
    let out = cfn
        .describe_stacks()
        .stack_name(stack)
        .send()
        .await
        .map_err(|e| {
            let missing = e.as_service_error().is_some_and(|s| {
                s.meta().code() == Some("ValidationError")
                    && s.meta()
                        .message()
                        .is_some_and(|m| m.contains("does not exist"))
            });
            if missing {
                anyhow::anyhow!("no stack named {stack} in this account and region (--stack)")
            } else {
                anyhow::anyhow!("cannot read stack {stack}: {}", aws_error::describe(&e))
            }
        })?;
    let outputs: Vec<(String, String)> = out
        .stacks()
        .first()
        .map(|s| {
            s.outputs()
                .iter()
                .filter_map(|o| Some((o.output_key()?.to_string(), o.output_value()?.to_string())))
                .collect()
        })
        .unwrap_or_default();
    from_outputs(stack, &outputs).map_err(anyhow::Error::msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_names_come_from_the_outputs() {
        let o = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let cases = [
            (
                o(&[
                    ("OutcomeTableName", "staging-outcomes"),
                    ("PolicyParameterName", "/staging/policy"),
                    ("RemediateActionArn", "arn:…"),
                ]),
                Ok(("staging-outcomes", "/staging/policy")),
            ),
            (
                o(&[("OutcomeTableName", "staging-outcomes")]),
                Err("no output PolicyParameterName"),
            ),
            (
                o(&[("OutcomeTableName", ""), ("PolicyParameterName", "/p")]),
                Err("no output OutcomeTableName"),
            ),
            (o(&[]), Err("no output OutcomeTableName")),
        ];
        for (outputs, want) in cases {
            let got = from_outputs("staging", &outputs);
            match want {
                Ok((table, parameter)) => assert_eq!(
                    got,
                    Ok(Deployment {
                        table: table.into(),
                        parameter: parameter.into()
                    })
                ),
                Err(part) => {
                    let e = got.unwrap_err();
                    assert!(e.contains(part) && e.contains("stack staging"), "{e}");
                }
            }
        }
    }
}
