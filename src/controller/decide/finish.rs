//! The end of a decision: the second-wave check, the notifications its transitions call for,
//! and the ReplicaSets, counts and conditions of the plan.

use super::*;

impl<'a> Decider<'a> {
    /// The second-wave check's next step (see [`second_wave::step`]): the state to record in
    /// the Incident, and a transition when the check ends (once: a decision retried after a
    /// crash finds the end already in the timeline and only records it again in the Incident).
    pub(super) fn second_wave(
        &mut self,
        incident: Option<&Incident>,
        measured: Option<&Result<Counts, String>>,
    ) -> Option<SecondWave> {
        match second_wave::step(self.rollout, incident, self.now) {
            second_wave::Step::Idle => None,
            second_wave::Step::Start { until } => {
                let incident = incident?;
                let length = second_wave::window(self.rollout);
                self.requeue_in(length);
                Some(second_wave::watching(incident, until, length))
            }
            second_wave::Step::Wait(wait) => {
                self.requeue_in(wait);
                None
            }
            second_wave::Step::Measure { until, window } => {
                let incident = incident?;
                let wave = second_wave::conclude(self.rollout, incident, until, window, measured);
                let since = incident
                    .metadata
                    .creation_timestamp
                    .as_ref()
                    .map_or(Timestamp::UNIX_EPOCH, |t| t.0);
                let recorded = self.status.timeline.iter().any(|e| {
                    e.time.0 >= since
                        && matches!(
                            e.reason,
                            Reason::SecondWaveRecovered
                                | Reason::SecondWaveNotRecovered
                                | Reason::SecondWaveUnknown
                        )
                });
                if let Some(reason) = Reason::for_second_wave(wave.state)
                    && !recorded
                {
                    self.record(
                        reason,
                        format!("second-wave check: {}", wave.message),
                        Some(&incident.spec.stable_revision),
                        wave.state == SecondWaveState::NotRecovered,
                    );
                }
                Some(wave)
            }
        }
    }

    /// The notifications this decision's transitions call for, added to the outbox in status.
    pub(super) fn plan_notifications(&mut self) -> Vec<PendingNotification> {
        let incident = self
            .incident
            .as_ref()
            .map(|i| i.name.clone())
            .or_else(|| self.status.incident.clone());
        let revision = self
            .status
            .canary_revision
            .clone()
            .or_else(|| self.status.rolled_back_revision.clone())
            .or_else(|| self.status.stable_revision.clone());
        let fresh = outbox::plan(
            self.rollout,
            &self.transitions,
            revision.as_deref(),
            incident.as_deref(),
            self.now,
        );
        let given_up = outbox::enqueue(&mut self.status.pending_notifications, fresh);
        if let Some(wait) = outbox::next_due(&self.status.pending_notifications, self.now) {
            self.requeue_in(wait);
        }
        given_up
    }

    pub(super) fn finish(mut self, second_wave: Option<SecondWave>) -> Plan {
        let given_up = self.plan_notifications();
        let rollout_name = self.rollout.name_any();
        let max_number = self.revisions.iter().map(|r| r.number).max().unwrap_or(0);
        let now_text = self.now.to_string();
        let target = template_hash(&self.rollout.name_any(), &self.spec.template);
        let mut replica_sets = Vec::new();
        let mut next_number = max_number;

        for (hash, replicas) in &self.desired {
            let existing = self.revision(hash);
            let number = match existing {
                Some(r)
                    if self.renumber.as_deref() != Some(hash.as_str())
                        || r.number == max_number =>
                {
                    r.number
                }
                _ => {
                    next_number += 1;
                    next_number
                }
            };
            let template = match existing {
                // The spec's template is the truth for its own revision.
                _ if *hash == target => self.spec.template.clone(),
                Some(r) => r.template.clone(),
                None => continue,
            };
            let promoted_at = existing.and_then(|r| r.promoted_at.clone()).or_else(|| {
                (self.promote_now.as_deref() == Some(hash.as_str())).then(|| now_text.clone())
            });
            replica_sets.push(DesiredReplicaSet {
                name: existing
                    .map_or_else(|| replica_set_name(&rollout_name, hash), |r| r.name.clone()),
                hash: hash.clone(),
                number,
                replicas: *replicas,
                template,
                promoted_at,
                arm: Arm::Revision,
            });
        }

        let mut delete = Vec::new();
        if let Some((hash, source, replicas)) = &self.baseline {
            let existing = self
                .revisions
                .iter()
                .find(|r| r.arm == Arm::Baseline && &r.hash == hash);
            if let Some(source) = self.revision(source) {
                let mut template = source.template.clone();
                if let Some(labels) = template.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
                    labels.remove(crate::api::POD_TEMPLATE_HASH_LABEL);
                }
                replica_sets.push(DesiredReplicaSet {
                    name: existing
                        .map_or_else(|| replica_set_name(&rollout_name, hash), |r| r.name.clone()),
                    hash: hash.clone(),
                    number: source.number,
                    replicas: *replicas,
                    template,
                    promoted_at: None,
                    arm: Arm::Baseline,
                });
            }
        }
        for r in self.revisions.iter().filter(|r| r.arm == Arm::Baseline) {
            if self
                .baseline
                .as_ref()
                .is_none_or(|(hash, _, _)| *hash != r.hash)
            {
                delete.push(r.name.clone());
            }
        }

        // Growth first so capacity never drops; in a rollback, shrinking the canary comes first.
        let current = |hash: &str| {
            self.revisions
                .iter()
                .find(|r| r.hash == hash)
                .map_or(0, |r| r.desired)
        };
        replica_sets.sort_by_key(|d| {
            let shrinking = d.replicas < current(&d.hash);
            if self.mitigating {
                !shrinking
            } else {
                shrinking
            }
        });

        // History: keep the newest `revisionHistoryLimit` idle revisions, delete older ones.
        let live: Vec<&str> = [
            self.status.stable_revision.as_deref(),
            self.status.canary_revision.as_deref(),
            Some(target.as_str()),
        ]
        .into_iter()
        .flatten()
        .collect();
        let mut idle: Vec<&Revision> = self
            .revisions
            .iter()
            .filter(|r| {
                r.arm == Arm::Revision && !live.contains(&r.hash.as_str()) && r.current == 0
            })
            .filter(|r| self.desired.get(&r.hash).copied().unwrap_or(0) == 0)
            .collect();
        idle.sort_by_key(|r| std::cmp::Reverse(r.number));
        for r in idle.into_iter().skip(self.spec.revision_history_limit) {
            delete.push(r.name.clone());
            replica_sets.retain(|d| d.hash != r.hash);
        }

        self.fill_counts(&target);
        self.status.observed_generation = self.rollout.metadata.generation;
        let paused = self.status.phase == Some(Phase::Paused);
        conditions::set(
            &mut self.status,
            self.rollout.metadata.generation,
            self.now,
            paused,
        );

        if let Some(incident) = self.incident.as_mut() {
            incident.timeline = self.status.timeline.clone();
        }
        Plan {
            replica_sets,
            delete,
            status: self.status,
            transitions: self.transitions,
            requeue_after: self.requeue,
            incident: self.incident,
            flip_kill_switch: self.flip_kill_switch || self.mitigating,
            mitigating: self.mitigating,
            second_wave,
            given_up,
            header_route: self.header_route,
        }
    }

    pub(super) fn fill_counts(&mut self, target: &str) {
        let revisions = self.revisions.iter().filter(|r| r.arm == Arm::Revision);
        self.status.replicas = revisions.clone().map(|r| r.current).sum();
        self.status.ready_replicas = revisions.clone().map(|r| r.ready).sum();
        self.status.available_replicas = revisions.clone().map(|r| r.available).sum();
        self.status.updated_replicas = self.revision(target).map_or(0, |r| r.current);
        self.status.stable_available_replicas = self
            .status
            .stable_revision
            .as_deref()
            .map_or(0, |s| self.available(s));
        self.status.canary_available_replicas = self
            .status
            .canary_revision
            .as_deref()
            .map_or(0, |c| self.available(c));
        self.status.selector = Some(self.spec.selector_string.clone());
    }
}
