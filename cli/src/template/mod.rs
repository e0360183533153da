//! `reflex template`: the whole SAM template. The fixed part (table, policy parameter, custom
//! actions, queues, alarms, globals, parameters) is `infra/base.yaml`, plain YAML; the pipeline's
//! managed policy and one section per function of [`crate::functions::FUNCTIONS`] are generated
//! from the code, so a new function needs no hand-written template. `infra/template.yaml` is this
//! output, committed (tests/template.rs holds them equal).

mod function;
mod pipeline_policy;
pub mod yaml;

pub use pipeline_policy::POLICY_ID;

use reflex_shared::remediation::Spec;

/// The fixed part; the generated sections replace its marker line.
const BASE: &str = include_str!("../../../infra/base.yaml");
const MARKER: &str = "  # @functions:";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TemplateError {
    #[error("infra/base.yaml has no line starting with {MARKER:?} where the functions go")]
    NoMarker,
    #[error("the pipeline action {0} has no statement in cli/src/template/pipeline_policy.rs")]
    UnknownPipelineAction(String),
}

/// The template for `specs`, as YAML text.
pub fn render<'a>(specs: impl IntoIterator<Item = &'a Spec>) -> Result<String, TemplateError> {
    let start = BASE
        .lines()
        .position(|l| l.starts_with(MARKER))
        .ok_or(TemplateError::NoMarker)?;
    let lines: Vec<&str> = BASE.lines().collect();
    // The marker's comment runs on while lines stay comments.
    let end = lines[start + 1..]
        .iter()
        .position(|l| !l.trim_start().starts_with('#'))
        .map_or(lines.len(), |n| start + 1 + n);
    let mut sections = vec![pipeline_policy::managed_policy()?];
    sections.extend(specs.into_iter().map(function::section));
    let mut out = String::new();
    for l in &lines[..start] {
        out.push_str(l);
        out.push('\n');
    }
    out.push_str(&sections.join("\n"));
    for l in &lines[end..] {
        out.push_str(l);
        out.push('\n');
    }
    Ok(out)
}

/// The template for every function this workspace builds.
pub fn generate() -> Result<String, TemplateError> {
    render(crate::functions::specs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_marker_is_replaced_and_the_rest_kept() {
        let out = generate().unwrap();
        assert!(!out.contains(MARKER));
        assert!(out.starts_with(BASE.lines().next().unwrap()));
        assert!(out
            .trim_end()
            .ends_with(BASE.trim_end().lines().last().unwrap()));
        for spec in crate::functions::specs() {
            assert!(
                out.contains(&format!("Binary: {}\n", spec.name)),
                "{}",
                spec.name
            );
        }
        // No function: the fixed part and the pipeline policy alone.
        let none = render([]).unwrap();
        assert!(!none.contains("AWS::Serverless::Function"));
        assert!(none.contains(&format!("  {POLICY_ID}:\n")));
    }
}
