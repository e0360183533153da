//! Planning, pure: start a patch run, or follow the Reflex run already under way on the
//! instance so that N findings for one instance make one run.

use crate::model::{InFlight, PatchState, PatchStep, DOCUMENT};
use crate::params::Params;

/// Every Reflex patch command's comment starts so, then names the record that started it.
pub const COMMENT_PREFIX: &str = "Reflex record ";
/// SSM refuses a comment longer than this.
pub const COMMENT_MAX: usize = 100;

/// The command's comment: which record started it (a record id is far shorter than the limit;
/// cut at a character boundary all the same).
pub fn comment(record_id: &str) -> String {
    let full = format!("{COMMENT_PREFIX}{record_id}");
    match full.char_indices().nth(COMMENT_MAX) {
        Some((end, _)) => full[..end].to_string(),
        None => full,
    }
}

/// A patch command on the instance as `ssm:ListCommands` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub command_id: String,
    pub document: String,
    /// The command's status (`Pending`, `InProgress`, `Success`…).
    pub status: String,
    pub comment: String,
    /// When it was requested (epoch milliseconds), to choose the earliest of several.
    pub requested_at: i64,
}

/// The Reflex patch run under way on the instance, if any: a patch-baseline command Reflex sent
/// (its comment) that is still pending or in progress. (The listing is asked for patch-baseline
/// commands only; checked here again, so an answer that ignores the filter changes nothing.) Of several (two runs that raced before the instance
/// lease existed), the earliest, so every follower joins the same one.
pub fn in_flight(listed: &[Listed]) -> Option<InFlight> {
    listed
        .iter()
        .filter(|c| c.document == DOCUMENT)
        .filter(|c| matches!(c.status.as_str(), "Pending" | "InProgress"))
        .filter(|c| c.comment.starts_with(COMMENT_PREFIX))
        .min_by(|a, b| (a.requested_at, &a.command_id).cmp(&(b.requested_at, &b.command_id)))
        .map(|c| InFlight {
            command_id: c.command_id.clone(),
            comment: c.comment.clone(),
        })
}

/// One step, never none: an unpatched CVE has no cheap "compliant" state to read (Inspector
/// closes the finding once the package is fixed), and a long-running step is ended by its
/// progress, not by planning again.
pub fn plan(state: &PatchState, params: &Params) -> Vec<PatchStep> {
    match &state.in_flight {
        Some(run) => vec![PatchStep::Follow {
            command_id: run.command_id.clone(),
        }],
        None => vec![PatchStep::RunPatchBaseline {
            reboot: params.reboot,
        }],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::Reboot;

    fn listed(id: &str, status: &str, comment: &str, at: i64) -> Listed {
        Listed {
            command_id: id.into(),
            document: DOCUMENT.into(),
            status: status.into(),
            comment: comment.into(),
            requested_at: at,
        }
    }

    const OURS: &str = "Reflex record ec2-patch-instance#aa";

    #[test]
    fn which_run_is_under_way() {
        let cases: Vec<(Vec<Listed>, Option<&str>)> = vec![
            (vec![], None),
            (vec![listed("a", "InProgress", OURS, 1)], Some("a")),
            (vec![listed("a", "Pending", OURS, 1)], Some("a")),
            // finished runs are not followed
            (
                vec![
                    listed("a", "Success", OURS, 1),
                    listed("b", "Failed", OURS, 2),
                    listed("c", "Cancelled", OURS, 3),
                    listed("d", "TimedOut", OURS, 4),
                    listed("e", "Cancelling", OURS, 5),
                ],
                None,
            ),
            // someone else's patch run is not Reflex's to report on
            (vec![listed("a", "InProgress", "nightly patching", 1)], None),
            (vec![listed("a", "InProgress", "", 1)], None),
            // another document's command, even with a Reflex comment
            (
                vec![Listed {
                    document: "AWS-RunShellScript".into(),
                    ..listed("a", "InProgress", OURS, 1)
                }],
                None,
            ),
            // of two, the earliest, whatever the listing order
            (
                vec![
                    listed("late", "InProgress", OURS, 20),
                    listed("early", "Pending", OURS, 10),
                ],
                Some("early"),
            ),
            (
                vec![
                    listed("y", "InProgress", OURS, 10),
                    listed("x", "InProgress", OURS, 10),
                ],
                Some("x"),
            ),
        ];
        for (commands, want) in cases {
            let got = in_flight(&commands);
            assert_eq!(
                got.as_ref().map(|r| r.command_id.as_str()),
                want,
                "{commands:?}"
            );
        }
    }

    #[test]
    fn plans() {
        let idle = PatchState::default();
        let busy = PatchState {
            in_flight: Some(InFlight {
                command_id: "c-1".into(),
                comment: OURS.into(),
            }),
        };
        let no_reboot = Params {
            reboot: Reboot::NoReboot,
            ..Params::default()
        };
        let cases = [
            (
                &idle,
                Params::default(),
                PatchStep::RunPatchBaseline {
                    reboot: Reboot::RebootIfNeeded,
                },
            ),
            (
                &idle,
                no_reboot.clone(),
                PatchStep::RunPatchBaseline {
                    reboot: Reboot::NoReboot,
                },
            ),
            (
                &busy,
                no_reboot,
                PatchStep::Follow {
                    command_id: "c-1".into(),
                },
            ),
        ];
        for (state, params, want) in cases {
            assert_eq!(plan(state, &params), vec![want], "{state:?}");
        }
    }

    #[test]
    fn comments_name_the_record_within_ssm_limit() {
        let id = "ec2-patch-instance#93058f4da62be81a2aed4ca43754e35d";
        assert_eq!(comment(id), format!("Reflex record {id}"));
        let long = "é".repeat(200);
        let c = comment(&long);
        assert_eq!(c.chars().count(), COMMENT_MAX);
        assert!(c.starts_with(COMMENT_PREFIX));
    }
}
