//! The bake: the watch after a promotion, with one pod of the previous revision kept to
//! compare with, and its rollback.

use super::*;

impl<'a> Decider<'a> {
    /// The stable runs; during a bake the previous revision keeps a slice and the judge keeps
    /// comparing them until the bake ends or the new revision fails.
    pub(super) fn bake_or_steady(&mut self, stable: &str) {
        let Some(bake) = self.status.bake.clone() else {
            return self.steady(stable);
        };
        if bake.revision != stable {
            self.status.bake = None;
            return self.steady(stable);
        }
        if let Some(Gate::Fail(why)) = self.take_analysis(stable) {
            return self.bake_rollback(&bake.revision, &bake.previous, &why);
        }
        if self.now >= bake.until.0 {
            self.status.bake = None;
            self.record(
                Reason::BakeCompleted,
                format!(
                    "revision {stable} baked without trouble; previous revision {} scaled down",
                    bake.previous
                ),
                Some(stable),
                false,
            );
            return self.steady(stable);
        }
        self.steady_keeping(stable, Some(&bake.previous));
        let left = bake.until.0.duration_since(self.now).unsigned_abs();
        self.requeue_in(left);
        if self.status.phase == Some(Phase::Healthy) {
            let message = self.status.message.clone().unwrap_or_default();
            self.status.message = Some(format!(
                "{message}; baking against one pod of {} for {}s more",
                bake.previous,
                left.as_secs()
            ));
        }
    }

    /// Keeps at least one pod of the previous revision during a bake.
    pub(super) fn keep_bake_slice(&mut self, previous: &str) {
        if self.revision(previous).is_some() {
            let keep = self.desired.get(previous).copied().unwrap_or(0).max(1);
            self.desired.insert(previous.to_string(), keep);
        }
    }

    /// The baked revision failed: the previous revision becomes stable again (scaled up first;
    /// the bad one drains once it can carry the load), with an Incident.
    pub(super) fn bake_rollback(&mut self, bad: &str, previous: &str, why: &str) {
        let reason = format!("analysis failed during bake: {why}");
        let bake = self.status.bake.take();
        // The previous revision is the stable one again before the Incident is planned, so the
        // record names it as the stable that took the traffic back, diffs it against the bad
        // revision, and the second-wave check watches it.
        self.status.stable_revision = Some(previous.to_string());
        self.status.canary_started_at = bake.as_ref().map(|b| b.started_at.clone());
        self.status.canary_weight = 100;
        self.plan_incident(bad, Trigger::BakeFailed, &reason);
        let pods = self.revision(bad).map_or(0, |r| r.desired);
        if let Some(incident) = self.incident.as_mut() {
            incident.pods = pods;
        }
        self.status.canary_started_at = None;
        self.status.canary_weight = 0;
        self.flip_kill_switch = true;
        self.status.rolled_back_revision = Some(bad.to_string());
        self.status.rollback_reason = Some(reason.clone());
        self.renumber = Some(previous.to_string());
        self.record(
            Reason::BakeFailed,
            format!("revision {bad} rolled back to {previous} during bake: {reason}"),
            Some(bad),
            true,
        );
        self.steady(previous);
        self.status.phase = Some(Phase::RolledBack);
        self.status.message = Some(format!(
            "revision {bad} was rolled back during bake ({reason}); revision {previous} is stable again. Change spec.template or run `firebreak retry` to roll it out again"
        ));
    }
}
