//! The blast-radius budget: a unit reserved in the same round as the checkpoint, and a unit
//! that made no change given back.

use super::finding_run::{ledger_stop, Flow, Run, Work};
use crate::ledger::{self, BudgetUse};
use crate::policy::Mode;
use crate::remediation::Remediation;
use crate::status::{Reason, Status};
use chrono::{DateTime, Utc};
use tracing::warn;

impl<R: Remediation> Run<'_, R> {
    /// The checkpoint's write (the record, `acting`, as `checkpoint` made it) and the budget
    /// reservation, in one round.
    pub(super) async fn store_and_reserve(&self, w: &mut Work<R>, now: DateTime<Utc>) -> Flow {
        let ledger = &self.setup.ledger;
        let max = w.decision.max_changes_per_hour;
        let expires = now.timestamp() + 3600 + ledger::COUNTER_TTL_SECONDS;
        // A unit the record names (an earlier attempt's, for a change whose outcome it could
        // not know) is asked for again under its own token and window: the counter answers
        // from its token set whether it was really reserved (then it is this unit, not a
        // second one) or not (then it is reserved now, or the budget is spent). The record's
        // word alone never stands in for the counter's.
        let held = w.record.budget.clone().filter(|b| !b.given_back);
        let (window, token) = match &held {
            Some(b) => (b.window.clone(), b.token.clone()),
            // This attempt's token, written with the checkpoint in the same round as the
            // reservation; only this attempt ever gives it back.
            None => (ledger::window(now), w.budget_token.clone()),
        };
        let counter = ledger::counter_key(self.name(), &self.setup.account_id, &window);
        if held.is_none() {
            w.record.budget = Some(BudgetUse {
                window: window.clone(),
                count: 0,
                token: token.clone(),
                max,
                given_back: false,
            });
        }
        let reserve = ledger.reserve_change(&counter, &token, max, expires);
        let (stored, reserved) = tokio::join!(ledger.checkpoint(&w.record), reserve);
        match (&reserved, w.record.budget.as_mut()) {
            (Ok(Some(count)), Some(budget)) => budget.count = *count,
            // Spent: no unit was taken, so the record holds none.
            (Ok(None), _) => w.record.budget = None,
            _ => {}
        }
        if let Err(e) = stored {
            self.return_budget_unit(w).await;
            return Err(ledger_stop("checkpoint", e));
        }
        match reserved {
            Ok(Some(_)) => Ok(()),
            Ok(None) => {
                let detail = format!(
                    "the budget of {max} changes per hour is spent (window {window}); nothing was changed"
                );
                if w.approving() {
                    // The approval is not used up: the plan stays shown, to approve again once
                    // the budget allows.
                    w.record.status = Status::PendingApproval;
                    w.record.mode = Some(Mode::Approve);
                    w.record.approved_by = None;
                    w.record.approved_at = None;
                    // Its actions are the checkpoint's plan, still `planned`: nothing was made.
                    return Err(w.decide(
                        Status::PendingApproval,
                        Reason::AwaitingApproval,
                        format!("approved, but {detail}; approve again once the budget allows"),
                    ));
                }
                Err(w.decide(Status::Skipped, Reason::RateLimited, detail))
            }
            Err(e) => Err(ledger_stop("budget", e)),
        }
    }

    /// A reservation that made no change is given back (best effort: a unit kept by mistake
    /// only makes the budget stricter).
    pub(super) async fn return_budget_unit(&self, w: &mut Work<R>) {
        // Never a unit whose change may have been made, nor one another attempt reserved.
        let own = w
            .record
            .budget
            .as_ref()
            .is_some_and(|b| b.token == w.budget_token);
        if w.record.changed_anything() || w.outcome_unknown || !own || !w.holds_budget() {
            return;
        }
        let Some(budget) = w.record.budget.as_mut() else {
            return;
        };
        let counter = ledger::counter_key(self.name(), &self.setup.account_id, &budget.window);
        match self
            .setup
            .ledger
            .give_back_change(&counter, &budget.token)
            .await
        {
            Ok(()) => budget.given_back = true,
            Err(e) => warn!(error = %e, counter, "budget unit not given back"),
        }
    }
}
