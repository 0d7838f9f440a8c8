//! The canary steps: weights, pauses, analysis gates, promotion and abort.

use super::*;
use crate::api::TrafficWeights;

impl<'a> Decider<'a> {
    pub(super) fn canary(&mut self, stable: &str, target: &str, requests: &Requests) {
        if self.status.canary_revision.as_deref() != Some(target)
            && let Some(why) = self.window_closed()
        {
            // Not even a first canary pod outside the window; the stable keeps serving.
            self.clear_canary();
            self.bake_or_steady(stable);
            self.status.phase = Some(Phase::Paused);
            self.status.message = Some(format!("revision {target} waits to start: {why}"));
            return;
        }
        if self.status.canary_revision.as_deref() != Some(target) {
            if let Some(bake) = self.status.bake.take() {
                self.record(
                    Reason::BakeSuperseded,
                    format!(
                        "bake of {} ended early: new revision {target} starts",
                        bake.revision
                    ),
                    Some(&bake.revision),
                    false,
                );
            }
            if let Some(old) = self.status.canary_revision.clone() {
                self.record(
                    Reason::CanarySuperseded,
                    format!("canary {old} superseded by new revision {target}"),
                    Some(&old),
                    false,
                );
            }
            self.status.rolled_back_revision = None;
            self.status.rollback_reason = None;
            self.status.canary_revision = Some(target.to_string());
            self.status.current_step_index = Some(0);
            self.status.step_started_at = Some(Time(self.now));
            self.status.canary_started_at = Some(Time(self.now));
            self.status.waiting_since = None;
            self.status.canary_weight = 0;
            self.status.analysis = None;
            self.renumber = Some(target.to_string());
            self.record(
                Reason::CanaryStarted,
                format!("new revision {target} started as canary next to stable {stable}"),
                Some(target),
                false,
            );
        }

        if requests.abort {
            return self.abort("aborted by user (`firebreak abort`)", Trigger::Aborted);
        }
        if let Some(Gate::Fail(why)) = self.take_analysis(target) {
            return self.abort(&format!("analysis failed: {why}"), Trigger::AnalysisFailed);
        }
        if let (Some(max), Some(started)) = (
            self.spec.max_duration,
            self.status.canary_started_at.clone(),
        ) {
            let ran = self.now.duration_since(started.0);
            let limit = SignedDuration::try_from(max).unwrap_or(SignedDuration::MAX);
            if ran >= limit {
                let reason = format!(
                    "the canary ran {}s, longer than spec.strategy.canary.maxDuration ({}s)",
                    ran.as_secs(),
                    max.as_secs()
                );
                return self.abort(&reason, Trigger::MaxDurationExceeded);
            }
            self.requeue_in((limit - ran).unsigned_abs());
        }
        if requests.promote_full {
            self.status.current_step_index = Some(self.spec.steps.len() as i32);
            self.status.step_started_at = Some(Time(self.now));
            self.record(
                Reason::PromotedFull,
                format!("full promotion requested: canary {target} skips its remaining steps"),
                Some(target),
                false,
            );
        }

        let replicas = self.replicas();
        let mut promote_requested = requests.promote;
        let paused = self.paused();
        // Walk the steps as far as they can go now; each iteration either advances or stops.
        for _ in 0..=self.spec.steps.len() {
            let index = self.status.current_step_index.unwrap_or(0).max(0) as usize;
            let weight = self.weight_at(index);
            self.status.canary_weight = weight;

            if index >= self.spec.steps.len() {
                // All steps done: grow the canary to full size, then promote it.
                self.status.canary_weight = 100;
                self.desired.insert(target.to_string(), replicas);
                self.keep_stable_for(stable, target, replicas, 100);
                let available = self.available(target);
                if available >= replicas {
                    // With a router all requests go to the canary before it becomes stable.
                    if !self.route(TrafficWeights::for_canary(100, false), None) {
                        return self.wait_for_gateway(index.saturating_sub(1));
                    }
                    return self.promote(stable, target);
                }
                self.wait_for_pods(
                    &format!("promoting canary {target}: {available}/{replicas} pods available"),
                    true,
                );
                return;
            }

            let canary_pods = self.canary_pods_at(index, weight);
            let weights = TrafficWeights::for_canary(weight, self.spec.baseline);
            let header = self.header_at(index);
            // A canary that already has more pods (a revision coming back after a revert) shrinks
            // only as far as the stable's available pods can carry the load.
            let carrying = self
                .revision(target)
                .map_or(0, |r| r.desired)
                .min((replicas - self.available(stable)).max(0));
            self.desired
                .insert(target.to_string(), canary_pods.max(carrying));
            self.keep_stable_for(stable, target, canary_pods, weight);
            if self.spec.baseline && canary_pods > 0 {
                self.baseline = Some((baseline_hash(stable), stable.to_string(), canary_pods));
            }

            // Whether the canary (and baseline) pods of the step are available; if not, waits
            // for them (rolling back past the progress deadline) with `step` in the message.
            let canary_ready = |d: &mut Self, step: &str| {
                let available = d.available(target);
                let baseline_ready = d.baseline.as_ref().is_none_or(|(hash, _, want)| {
                    d.revisions
                        .iter()
                        .find(|r| r.arm == Arm::Baseline && &r.hash == hash)
                        .is_some_and(|r| r.available >= *want)
                });
                if available >= canary_pods && baseline_ready {
                    return true;
                }
                let what = format!(
                    "step {}/{} {step}: canary {target} has {available}/{canary_pods} pods available",
                    index + 1,
                    d.spec.steps.len()
                );
                d.wait_for_pods(&what, true);
                false
            };
            match &self.spec.steps[index] {
                StepKind::SetCanaryScale(_) => {
                    if !canary_ready(self, "setCanaryScale") {
                        return;
                    }
                    self.status.waiting_since = None;
                    if let Some(why) = paused {
                        return self.hold(index, why);
                    }
                    self.advance(
                        index,
                        format!("canary {target} scaled to {canary_pods} pods at weight {weight}%"),
                    );
                }
                StepKind::SetHeaderRoute(route) => {
                    if !canary_ready(self, "setHeaderRoute") {
                        return;
                    }
                    if !self.route(weights, header) {
                        return self.wait_for_gateway(index);
                    }
                    self.status.waiting_since = None;
                    if let Some(why) = paused {
                        return self.hold(index, why);
                    }
                    let message = match route {
                        Some(route) => format!(
                            "header route {} sends matching requests to canary {target}",
                            route.name
                        ),
                        None => "header route removed".to_string(),
                    };
                    self.advance(index, message);
                }
                StepKind::SetWeight(w) => {
                    let w = *w;
                    if !canary_ready(self, &format!("setWeight {w}")) {
                        return;
                    }
                    if !self.route(weights, header) {
                        return self.wait_for_gateway(index);
                    }
                    self.status.waiting_since = None;
                    if let Some(why) = paused {
                        return self.hold(index, why);
                    }
                    if let Some(why) = self.window_closed() {
                        return self.hold(index, &why);
                    }
                    if index + 1 == self.spec.steps.len() && !self.analysis_allows(index) {
                        return;
                    }
                    self.advance(
                        index,
                        format!(
                            "canary {target} at weight {w}% with {} pods",
                            self.available(target)
                        ),
                    );
                }
                StepKind::Pause(duration) => {
                    let duration = *duration;
                    self.status.waiting_since = None;
                    if let Some(why) = paused {
                        return self.hold(index, why);
                    }
                    // The pause counts only while the gateway carries the step's routing.
                    if !self.route(weights, header) {
                        let why = self
                            .status
                            .traffic
                            .as_ref()
                            .and_then(|t| t.message.clone())
                            .unwrap_or_default();
                        return self.hold(
                            index,
                            &format!("the gateway does not carry {weights}: {why}"),
                        );
                    }
                    if promote_requested {
                        promote_requested = false;
                        self.advance(index, "pause ended by `firebreak promote`".into());
                        continue;
                    }
                    match duration {
                        None => {
                            self.status.phase = Some(Phase::Paused);
                            self.status.message = Some(format!(
                                "step {}/{}: paused at weight {weight}% until `firebreak promote`",
                                index + 1,
                                self.spec.steps.len()
                            ));
                            return;
                        }
                        Some(duration) => {
                            let started =
                                self.status.step_started_at.get_or_insert(Time(self.now)).0;
                            let elapsed = self.now.duration_since(started);
                            let total =
                                SignedDuration::try_from(duration).unwrap_or(SignedDuration::MAX);
                            if elapsed >= total {
                                if let Some(why) = self.window_closed() {
                                    return self.hold(index, &why);
                                }
                                if !self.analysis_allows(index) {
                                    return;
                                }
                                self.advance(
                                    index,
                                    format!("pause of {}s ended", duration.as_secs()),
                                );
                                continue;
                            }
                            let left = (total - elapsed).unsigned_abs();
                            self.requeue_in(left);
                            self.status.phase = Some(Phase::Paused);
                            self.status.message = Some(format!(
                                "step {}/{}: paused at weight {weight}%, {}s left",
                                index + 1,
                                self.spec.steps.len(),
                                left.as_secs()
                            ));
                            return;
                        }
                    }
                }
            }
        }
    }

    /// Takes in the analysis of `revision` (the canary, or the baked revision): records it in
    /// status, publishes transitions of its outcome, and returns its gate (None: no analysis).
    pub(super) fn take_analysis(&mut self, target: &str) -> Option<Gate> {
        let input = self.analysis.filter(|a| a.status.revision == target)?;
        let previous = self.status.analysis.as_ref();
        let before = previous.and_then(|a| a.outcome);
        let failures_before = previous.map_or(0, |a| a.consecutive_failures);
        let held_since = previous.and_then(|a| a.held_since.clone());
        self.status.analysis = Some(input.status.clone());
        if let Some(a) = self.status.analysis.as_mut() {
            a.held_since = held_since;
        }
        self.requeue_in(input.next_look);
        // One missing look is not an event (a scrape that landed late): data is reported missing
        // from the second failed look in a row, and back once a look succeeds after that.
        let missing = input.status.consecutive_failures >= UNAVAILABLE_AFTER_LOOKS;
        let was_missing = failures_before >= UNAVAILABLE_AFTER_LOOKS;
        match &input.gate {
            Gate::Unavailable(why) if missing && !was_missing => {
                self.record(
                    Reason::AnalysisUnavailable,
                    format!(
                        "analysis has had no data for {} looks, holding: {why}",
                        input.status.consecutive_failures
                    ),
                    Some(target),
                    true,
                );
            }
            Gate::CommonMode(why) if before != Some(crate::api::AnalysisOutcome::CommonMode) => {
                let why = why.clone();
                self.record(
                    Reason::CommonModeHold,
                    format!("holding canary {target}: {why}"),
                    Some(target),
                    true,
                );
                self.plan_incident(target, Trigger::CommonModeHold, &why);
            }
            Gate::Pass | Gate::Inconclusive(_) | Gate::Fail(_) if was_missing => {
                self.record(
                    Reason::AnalysisRecovered,
                    "analysis has data again".into(),
                    Some(target),
                    false,
                );
            }
            _ => {}
        }
        Some(input.gate.clone())
    }

    /// The deployment window is closed: returns why (and looks again when it opens).
    pub(super) fn window_closed(&mut self) -> Option<String> {
        let window = self.window.as_ref().filter(|w| !w.open)?.clone();
        if let Some(opens) = window.opens_at {
            let wait = opens.duration_since(self.now);
            self.requeue_in(wait.unsigned_abs());
        }
        let when = window.opens_at.map_or_else(
            || "no opening ahead".to_string(),
            |t| format!("opens at {t}"),
        );
        Some(format!(
            "deployment window closed: {} ({when})",
            window.message
        ))
    }

    /// The weight in force at step `index`: the last `setWeight` at or before it.
    pub(super) fn weight_at(&self, index: usize) -> i32 {
        self.spec.steps[..(index + 1).min(self.spec.steps.len())]
            .iter()
            .rev()
            .find_map(|s| match s {
                StepKind::SetWeight(w) => Some(*w),
                StepKind::Pause(_) | StepKind::SetCanaryScale(_) | StepKind::SetHeaderRoute(_) => {
                    None
                }
            })
            .unwrap_or(0)
    }

    /// Sizes the stable next to a canary of `canary_pods`: it shrinks to its share only once the
    /// canary's pods are available, so capacity never drops below `spec.replicas`.
    pub(super) fn keep_stable_for(
        &mut self,
        stable: &str,
        target: &str,
        canary_pods: i32,
        weight: i32,
    ) {
        let replicas = self.replicas();
        // With a router the weight does not depend on pods: the stable keeps its full size.
        let share = if self.routed() {
            replicas
        } else {
            stable_replicas(replicas, canary_pods, weight)
        };
        let canary_available = self.available(target).min(canary_pods);
        // Keep stable + available canary pods >= replicas: shrink only as canary pods arrive.
        let want = (replicas - canary_available)
            .max(share)
            .min(replicas.max(share));
        self.desired.insert(stable.to_string(), want);
        // Older revisions (a superseded canary, a previous stable) drain once the stable and the
        // canary can carry the load without them.
        let carried = self.available(stable) + canary_available >= replicas;
        for r in self
            .revisions
            .iter()
            .filter(|r| r.arm == Arm::Revision && r.hash != stable && r.hash != target)
        {
            self.desired
                .insert(r.hash.clone(), if carried { 0 } else { r.desired });
        }
    }

    /// Whether analysis lets the rollout advance past step `index`. If not, the rollout holds
    /// there (phase Paused, message with the reason); past the progress deadline,
    /// `analysis.onInconclusive: Rollback` rolls the canary back.
    pub(super) fn analysis_allows(&mut self, index: usize) -> bool {
        if self.rollout.spec.analysis.is_none() {
            return true;
        }
        let canary = self.status.canary_revision.clone();
        let gate = match self
            .analysis
            .filter(|a| Some(&a.status.revision) == canary.as_ref())
        {
            Some(input) => input.gate.clone(),
            None => Gate::Inconclusive("analysis has not looked at the canary yet".into()),
        };
        let now = self.now;
        let step_started = self.status.step_started_at.clone().map_or(now, |t| t.0);
        let since = match self.status.analysis.as_mut() {
            Some(status) if gate == Gate::Pass => {
                status.held_since = None;
                return true;
            }
            Some(status) => status.held_since.get_or_insert(Time(now)).0,
            None => step_started,
        };
        let held = now.duration_since(since);
        let deadline =
            SignedDuration::try_from(self.spec.progress_deadline).unwrap_or(SignedDuration::MAX);
        let on_inconclusive = self
            .rollout
            .spec
            .analysis
            .as_ref()
            .map(|a| a.on_inconclusive)
            .unwrap_or_default();
        let why = format!(
            "analysis {}: {}",
            gate.outcome().as_str().to_lowercase(),
            gate.message()
        );
        // A common-mode problem is not this change's fault: it holds, whatever onInconclusive says.
        let common_mode = matches!(gate, Gate::CommonMode(_));
        if held >= deadline && on_inconclusive == OnInconclusive::Rollback && !common_mode {
            self.abort(
                &format!(
                    "{why} for {}s (analysis.onInconclusive: Rollback)",
                    held.as_secs()
                ),
                Trigger::AnalysisInconclusive,
            );
            return false;
        }
        if held < deadline {
            self.requeue_in((deadline - held).unsigned_abs());
        }
        self.status.phase = Some(Phase::Paused);
        self.status.message = Some(format!(
            "holding at step {}/{} (weight {}%) until analysis passes: {why}",
            index + 1,
            self.spec.steps.len(),
            self.status.canary_weight
        ));
        false
    }

    pub(super) fn hold(&mut self, index: usize, why: &str) {
        self.status.phase = Some(Phase::Paused);
        self.status.message = Some(format!(
            "holding at step {}/{} (weight {}%): {why}",
            index + 1,
            self.spec.steps.len(),
            self.status.canary_weight
        ));
    }

    pub(super) fn advance(&mut self, index: usize, message: String) {
        let next = index + 1;
        self.status.current_step_index = Some(next as i32);
        self.status.step_started_at = Some(Time(self.now));
        let target = self.status.canary_revision.clone();
        self.record(
            Reason::StepCompleted,
            format!("step {next}/{} completed: {message}", self.spec.steps.len()),
            target.as_deref(),
            false,
        );
    }

    pub(super) fn promote(&mut self, old_stable: &str, target: &str) {
        self.status.stable_revision = Some(target.to_string());
        // The stable Service now selects the new revision: all requests go to it.
        self.route(TrafficWeights::all_stable(), None);
        self.clear_canary();
        self.baseline = None;
        self.promote_now = Some(target.to_string());
        self.record(
            Reason::Promoted,
            format!("canary {target} promoted to stable; previous stable {old_stable} scaled down"),
            Some(target),
            false,
        );
        let bake_slice = self.spec.bake.map(|_| old_stable);
        self.steady_keeping(target, bake_slice);
        if let Some(duration) = self.spec.bake {
            let until = self
                .now
                .checked_add(SignedDuration::try_from(duration).unwrap_or(SignedDuration::ZERO));
            let until = until.unwrap_or(self.now);
            self.status.bake = Some(crate::api::BakeStatus {
                revision: target.to_string(),
                previous: old_stable.to_string(),
                started_at: Time(self.now),
                until: Time(until),
            });
            self.record(
                Reason::BakeStarted,
                format!(
                    "baking {target} for {}s against one pod of {old_stable}",
                    duration.as_secs()
                ),
                Some(target),
                false,
            );
            self.requeue_in(duration);
        }
    }

    /// Rolls the canary back: weight 0, canary (and baseline) to zero pods, stable to full size,
    /// and the revision is remembered so it is not rolled out again.
    pub(super) fn abort(&mut self, reason: &str, trigger: Trigger) {
        let target = self.status.canary_revision.clone().unwrap_or_default();
        let stable = self.status.stable_revision.clone().unwrap_or_default();
        self.plan_incident(&target, trigger, reason);
        self.mitigating = true;
        self.baseline = None;
        self.clear_canary();
        self.route(TrafficWeights::all_stable(), None);
        self.status.rolled_back_revision = Some(target.clone());
        self.status.rollback_reason = Some(reason.to_string());
        self.status.waiting_since = None;
        self.desired.clear();
        self.desired.insert(stable.clone(), self.replicas());
        for r in self
            .revisions
            .iter()
            .filter(|r| r.arm == Arm::Revision && r.hash != stable)
        {
            // With a router the canary keeps its pods a little while after traffic has left it
            // (`abortScaleDownDelaySeconds`); the gateway's data plane may lag its status.
            let keep = if self.routed() && r.hash == target {
                r.desired
            } else {
                0
            };
            self.desired.insert(r.hash.clone(), keep);
        }
        self.record(
            trigger.reason(),
            format!(
                "canary {target} rolled back: {reason}; stable {stable} restored to {} replicas",
                self.replicas()
            ),
            Some(&target),
            true,
        );
        self.status.phase = Some(Phase::RolledBack);
        self.status.message = Some(format!(
            "revision {target} was rolled back ({reason}); stable revision {stable} serves all traffic. Change spec.template or run `firebreak retry` to roll it out again"
        ));
    }

    /// Prepares the Incident for the current canary (its name goes into status at once).
    pub(super) fn plan_incident(&mut self, revision: &str, trigger: Trigger, summary: &str) {
        let revision = revision.to_string();
        let name = incident_name(
            &self.rollout.name_any(),
            &revision,
            self.status.canary_started_at.as_ref(),
        );
        self.status.incident = Some(name.clone());
        self.incident = Some(IncidentPlan {
            name,
            trigger,
            summary: summary.to_string(),
            triage: trigger.triage(),
            pods: self.revision(&revision).map_or(0, |r| r.desired),
            revision,
            stable_revision: self.status.stable_revision.clone().unwrap_or_default(),
            canary_started_at: self.status.canary_started_at.clone(),
            max_weight: self.status.canary_weight,
            analysis: self.status.analysis.clone(),
            timeline: Vec::new(),
        });
    }
}
