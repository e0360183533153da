//! The kill switch set or cleared in a policy document, keeping everything else as written
//! (comments included) wherever it can. Pure.

use reflex_shared::policy::Policy;

/// What `reflex policy kill-switch on` writes where no policy exists yet (the first-deploy
/// policy is in force): the same dry-run for every remediation, and the switch on. Turning the
/// switch off later leaves every remediation in dry-run, by its `defaults.mode` (an ordinary
/// policy now: a `mode` added to a remediation takes it out of dry-run).
pub fn first_deploy_with_kill_switch() -> String {
    "# Written by `reflex policy kill-switch on` where no policy existed (the first-deploy\n\
     # policy: every remediation in dry-run). Push your own with `reflex policy push FILE`.\n\
     version: 1\n\
     defaults:\n  mode: dry-run\n\
     kill_switch: true\n"
        .to_string()
}

/// What `reflex policy show` prints where no policy exists yet: the first-deploy policy as a
/// document to start from (`reflex policy show > policy.yaml`, edit, `reflex policy push`).
pub fn first_deploy_document() -> String {
    "# The first-deploy policy (no policy was pushed yet): every remediation in dry-run.\n\
     # Set a remediation's mode to enforce or approve, then `reflex policy push FILE`.\n\
     version: 1\n\
     defaults:\n  mode: dry-run\n\
     remediations: {}\n"
        .to_string()
}

/// `text` (a valid policy) with `kill_switch: on`. A top-level `kill_switch:` line is replaced,
/// else one is added at the end; the result must read as the same policy with only the switch
/// changed, or the document is rewritten from its parsed form (its comments are then lost).
pub fn set_kill_switch(text: &str, on: bool) -> Result<String, String> {
    let before = Policy::from_yaml(text).map_err(|e| e.to_string())?;
    let want = Policy {
        kill_switch: on,
        ..before
    };
    let line = format!("kill_switch: {on}");
    let mut replaced = false;
    let mut out: Vec<String> = text
        .lines()
        .map(|l| {
            if !replaced && l.starts_with("kill_switch:") {
                replaced = true;
                line.clone()
            } else {
                l.to_string()
            }
        })
        .collect();
    if !replaced {
        out.push(line);
    }
    let edited = out.join("\n") + "\n";
    if Policy::from_yaml(&edited).as_ref() == Ok(&want) {
        return Ok(edited);
    }
    // A document the line edit cannot reach (flow style, several documents…).
    let mut value: serde_norway::Value = serde_norway::from_str(text).map_err(|e| e.to_string())?;
    let map = value
        .as_mapping_mut()
        .ok_or("the policy is not a mapping at its top")?;
    map.insert("kill_switch".into(), on.into());
    let rewritten = serde_norway::to_string(&value).map_err(|e| e.to_string())?;
    match Policy::from_yaml(&rewritten) {
        Ok(p) if p == want => Ok(rewritten),
        other => Err(format!(
            "cannot set the kill switch in this document: {other:?}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_switch_changes_and_nothing_else() {
        // (document, on, the result must contain, the result must not contain)
        let cases: &[(&str, bool, &str, &str)] = &[
            (
                "version: 1 # mine\nremediations:\n  s3-block-public-access: {mode: enforce}\n",
                true,
                "# mine\nremediations:\n  s3-block-public-access: {mode: enforce}\nkill_switch: true\n",
                "kill_switch: false",
            ),
            (
                "version: 1\nkill_switch: true # on since the incident\n",
                false,
                "version: 1\nkill_switch: false\n",
                "kill_switch: true",
            ),
            (
                "version: 1\nkill_switch: false\n",
                true,
                "version: 1\nkill_switch: true\n",
                "kill_switch: false",
            ),
            // Flow style: the line edit would break it; rewritten from its parsed form.
            ("{version: 1, defaults: {mode: approve}}", true, "kill_switch: true", "{"),
        ];
        for (doc, on, has, lacks) in cases {
            let out = set_kill_switch(doc, *on).unwrap();
            assert!(out.contains(has), "{doc} → {out}");
            assert!(!out.contains(lacks), "{doc} → {out}");
            let (before, after) = (
                Policy::from_yaml(doc).unwrap(),
                Policy::from_yaml(&out).unwrap(),
            );
            assert_eq!(after.kill_switch, *on);
            assert_eq!(
                Policy {
                    kill_switch: *on,
                    ..before
                },
                after,
                "{doc}"
            );
        }
        assert!(set_kill_switch("version: 2\n", true).is_err());
    }

    #[test]
    fn the_first_deploy_kill_switch_document_keeps_everything_in_dry_run() {
        let p = Policy::from_yaml(&first_deploy_with_kill_switch()).unwrap();
        assert!(p.kill_switch);
        assert_eq!(p.defaults.mode, Some(reflex_shared::policy::Mode::DryRun));
        let off =
            Policy::from_yaml(&set_kill_switch(&first_deploy_with_kill_switch(), false).unwrap())
                .unwrap();
        assert!(!off.kill_switch);
        assert_eq!(off.defaults.mode, Some(reflex_shared::policy::Mode::DryRun));
    }

    #[test]
    fn the_first_deploy_document_is_a_dry_run_policy_to_push() {
        let p = Policy::from_yaml(&first_deploy_document()).unwrap();
        assert!(!p.kill_switch);
        assert_eq!(p.defaults.mode, Some(reflex_shared::policy::Mode::DryRun));
        assert!(p.remediations.is_empty());
    }
}
