//! kstatus-compatible conditions derived from the phase, so Argo CD, Flux and `kubectl wait`-style
//! tools read a Rollout's health without custom scripts.
//!
//! kstatus (`sigs.k8s.io/cli-utils/pkg/kstatus/status.Compute`, checked in the cluster tests by
//! `tools/kstatus-check`) decides a custom resource's status in this order:
//! 1. `metadata.deletionTimestamp` set: `Terminating`;
//! 2. `status.observedGeneration` present and ≠ `metadata.generation`: `InProgress`;
//! 3. the first condition, in list order, that is `Reconciling=True` (`InProgress`) or
//!    `Stalled=True` (`Failed`), with that condition's message;
//! 4. since cli-utils v0.37, `Ready` (`True`: `Current`; `False`/`Unknown`: `InProgress`);
//! 5. otherwise `Current`.
//!
//! So a Rollout carries `Reconciling=True` while a revision moves or is held (phases
//! `Progressing`, `Paused`), `Stalled=True` when it needs a person (`RolledBack`, `Degraded`), and
//! never both. Both follow kstatus's "abnormal-true" convention, where `False` means the same as
//! absent; Firebreak writes them `False` rather than leaving them out so that their
//! `lastTransitionTime` tells when the rollout settled. `Ready`, `Progressing` and `Paused` are for
//! people and Argo CD's health scripts.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;

use crate::api::{Phase, RolloutStatus};

/// The condition types a Rollout carries, in the order they appear in `status.conditions`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// True when the desired revision is stable and all its pods are available.
    Ready,
    /// True while a revision is rolled out (also while held at a pause).
    Progressing,
    /// True while held by a pause step, `spec.paused` or `firebreak pause`.
    Paused,
    /// kstatus: True while the controller moves or holds a revision (reads `InProgress`).
    Reconciling,
    /// kstatus: True when the rollout cannot go on without a person (reads `Failed`).
    Stalled,
}

impl Kind {
    /// The condition's `type`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Ready => "Ready",
            Kind::Progressing => "Progressing",
            Kind::Paused => "Paused",
            Kind::Reconciling => "Reconciling",
            Kind::Stalled => "Stalled",
        }
    }
}

/// Every `reason` a Rollout condition can carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// Phase Healthy.
    RolloutHealthy,
    /// Phase Progressing: pods are created or a canary moves through its steps.
    RolloutProgressing,
    /// Phase Paused, or (on `Paused`) held whatever the phase.
    RolloutPaused,
    /// `Paused=False`: nothing holds the rollout.
    RolloutResumed,
    /// `Progressing=True` during a canary, moving or held.
    CanaryProgressing,
    /// `Progressing=False`: the desired revision is stable.
    RolloutComplete,
    /// `Ready=False` of a Degraded rollout whose pods missed the progress deadline.
    RolloutDegraded,
    /// The stable revision's pods were not available by `spec.progressDeadlineSeconds`.
    ProgressDeadlineExceeded,
    /// The canary was aborted or failed and rolled back.
    RolledBack,
    /// The spec fails the controller's validation (what the CRD schema cannot check).
    InvalidSpec,
    /// The API server refused an object the rollout needs (e.g. its ReplicaSet).
    ObjectRefused,
    /// The traffic router could not write or read a route or Service.
    RouterFailed,
}

impl Reason {
    /// The condition's `reason`, CamelCase.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::RolloutHealthy => "RolloutHealthy",
            Reason::RolloutProgressing => "RolloutProgressing",
            Reason::RolloutPaused => "RolloutPaused",
            Reason::RolloutResumed => "RolloutResumed",
            Reason::CanaryProgressing => "CanaryProgressing",
            Reason::RolloutComplete => "RolloutComplete",
            Reason::RolloutDegraded => "RolloutDegraded",
            Reason::ProgressDeadlineExceeded => "ProgressDeadlineExceeded",
            Reason::RolledBack => "RolledBack",
            Reason::InvalidSpec => "InvalidSpec",
            Reason::ObjectRefused => "ObjectRefused",
            Reason::RouterFailed => "RouterFailed",
        }
    }
}

/// Why a Rollout is Degraded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Degraded {
    /// The stable revision's pods were not available by the progress deadline.
    ProgressDeadline,
    /// The spec fails validation.
    InvalidSpec,
    /// The API server refused an object the rollout needs as invalid.
    ObjectRefused,
    /// The traffic router failed: a route or Service could not be written (every route it
    /// had changed was put back).
    RouterFailed,
}

/// What the conditions describe: the phase, with the cause when Degraded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Progressing,
    Paused,
    Healthy,
    RolledBack,
    Degraded(Degraded),
}

impl State {
    fn of(phase: Phase) -> State {
        match phase {
            Phase::Progressing => State::Progressing,
            Phase::Paused => State::Paused,
            Phase::Healthy => State::Healthy,
            Phase::RolledBack => State::RolledBack,
            // Every Degraded phase decide.rs sets is the progress deadline; an invalid spec or a
            // refused object goes through `set_degraded` with its cause.
            Phase::Degraded => State::Degraded(Degraded::ProgressDeadline),
        }
    }

    /// `(type, status, reason)` of each condition but `Paused`, which follows the hold instead.
    fn conditions(self) -> [(Kind, bool, Reason); 4] {
        let ready = match self {
            State::Healthy => (true, Reason::RolloutHealthy),
            State::Progressing => (false, Reason::RolloutProgressing),
            State::Paused => (false, Reason::RolloutPaused),
            State::RolledBack => (false, Reason::RolledBack),
            State::Degraded(Degraded::ProgressDeadline) => (false, Reason::RolloutDegraded),
            State::Degraded(Degraded::InvalidSpec) => (false, Reason::InvalidSpec),
            State::Degraded(Degraded::ObjectRefused) => (false, Reason::ObjectRefused),
            State::Degraded(Degraded::RouterFailed) => (false, Reason::RouterFailed),
        };
        let progressing = match self {
            State::Progressing | State::Paused => (true, Reason::CanaryProgressing),
            State::Healthy => (false, Reason::RolloutComplete),
            State::RolledBack => (false, Reason::RolledBack),
            State::Degraded(cause) => (false, cause.reason()),
        };
        // kstatus: Reconciling=True reads InProgress, Stalled=True reads Failed; never both.
        let (reconciling, stalled) = match self {
            State::Progressing => (
                (true, Reason::RolloutProgressing),
                (false, Reason::RolloutProgressing),
            ),
            State::Paused => (
                (true, Reason::RolloutPaused),
                (false, Reason::RolloutPaused),
            ),
            State::Healthy => (
                (false, Reason::RolloutHealthy),
                (false, Reason::RolloutHealthy),
            ),
            State::RolledBack => ((false, Reason::RolledBack), (true, Reason::RolledBack)),
            State::Degraded(cause) => ((false, cause.reason()), (true, cause.reason())),
        };
        [
            (Kind::Ready, ready.0, ready.1),
            (Kind::Progressing, progressing.0, progressing.1),
            (Kind::Reconciling, reconciling.0, reconciling.1),
            (Kind::Stalled, stalled.0, stalled.1),
        ]
    }
}

impl Degraded {
    /// The conditions' reason, also the Warning Event's reason.
    pub fn reason(self) -> Reason {
        match self {
            Degraded::ProgressDeadline => Reason::ProgressDeadlineExceeded,
            Degraded::InvalidSpec => Reason::InvalidSpec,
            Degraded::ObjectRefused => Reason::ObjectRefused,
            Degraded::RouterFailed => Reason::RouterFailed,
        }
    }
}

/// Sets the conditions of `status` from its phase and message (every condition's message is
/// `status.message`, which kstatus shows for `Reconciling`/`Stalled`). `generation` is the
/// `metadata.generation` they describe; `paused`: whether something holds the rollout. A
/// condition whose status did not change keeps its `lastTransitionTime`.
pub fn set(status: &mut RolloutStatus, generation: Option<i64>, now: Timestamp, paused: bool) {
    let state = State::of(status.phase.unwrap_or_default());
    write(status, state, generation, now, paused);
}

/// Sets the conditions of a Rollout Degraded for `cause` (an invalid spec, a refused object):
/// its reason on `Ready=False`, `Progressing=False` and `Stalled=True` (kstatus: `Failed`, with
/// `status.message`). Expects `status.phase` Degraded and the explanation in `status.message`,
/// as the controller's `record_degraded` writes them.
pub fn set_degraded(
    status: &mut RolloutStatus,
    generation: Option<i64>,
    now: Timestamp,
    cause: Degraded,
) {
    write(status, State::Degraded(cause), generation, now, false);
}

fn write(
    status: &mut RolloutStatus,
    state: State,
    generation: Option<i64>,
    now: Timestamp,
    paused: bool,
) {
    let message = status.message.clone().unwrap_or_default();
    let [ready, progressing, reconciling, stalled] = state.conditions();
    let paused = (
        Kind::Paused,
        paused,
        if paused {
            Reason::RolloutPaused
        } else {
            Reason::RolloutResumed
        },
    );
    for (kind, value, reason) in [ready, progressing, paused, reconciling, stalled] {
        upsert(
            &mut status.conditions,
            kind,
            value,
            reason,
            &message,
            generation,
            now,
        );
    }
}

fn upsert(
    conditions: &mut Vec<Condition>,
    kind: Kind,
    value: bool,
    reason: Reason,
    message: &str,
    generation: Option<i64>,
    now: Timestamp,
) {
    let status = if value { "True" } else { "False" }.to_string();
    let fresh = Condition {
        type_: kind.as_str().to_string(),
        status: status.clone(),
        reason: reason.as_str().to_string(),
        message: message.to_string(),
        observed_generation: generation,
        last_transition_time: Time(now),
    };
    match conditions.iter_mut().find(|c| c.type_ == kind.as_str()) {
        Some(existing) => {
            let since = if existing.status == status {
                existing.last_transition_time.clone()
            } else {
                Time(now)
            };
            *existing = Condition {
                last_transition_time: since,
                ..fresh
            };
        }
        None => conditions.push(fresh),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_700_000_000;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(seconds).unwrap()
    }

    fn status(phase: Phase, message: &str) -> RolloutStatus {
        RolloutStatus {
            phase: Some(phase),
            message: Some(message.to_string()),
            ..RolloutStatus::default()
        }
    }

    /// `(type, status, reason)` of every condition, in order.
    fn summary(status: &RolloutStatus) -> Vec<(String, String, String)> {
        status
            .conditions
            .iter()
            .map(|c| (c.type_.clone(), c.status.clone(), c.reason.clone()))
            .collect()
    }

    fn expect(rows: &[(&str, &str, &str)]) -> Vec<(String, String, String)> {
        rows.iter()
            .map(|(t, s, r)| (t.to_string(), s.to_string(), r.to_string()))
            .collect()
    }

    /// What kstatus's `Compute` makes of these conditions when the generation is observed
    /// (steps 3–5 of the module doc), to state each test's expectation in kstatus's words. The
    /// cluster test `tests/e2e/kstatus.rs` checks the same with the real library.
    fn kstatus(status: &RolloutStatus) -> &'static str {
        for c in status.conditions.iter().filter(|c| c.status == "True") {
            if c.type_ == "Reconciling" {
                return "InProgress";
            }
            if c.type_ == "Stalled" {
                return "Failed";
            }
        }
        match status.conditions.iter().find(|c| c.type_ == "Ready") {
            Some(c) if c.status == "True" => "Current",
            Some(_) => "InProgress",
            None => "Current",
        }
    }

    #[test]
    fn healthy_is_ready_and_neither_reconciling_nor_stalled() {
        let mut s = status(Phase::Healthy, "stable revision abc: 3/3 pods available");
        set(&mut s, Some(1), at(T0), false);
        assert_eq!(
            summary(&s),
            expect(&[
                ("Ready", "True", "RolloutHealthy"),
                ("Progressing", "False", "RolloutComplete"),
                ("Paused", "False", "RolloutResumed"),
                ("Reconciling", "False", "RolloutHealthy"),
                ("Stalled", "False", "RolloutHealthy"),
            ])
        );
        assert_eq!(kstatus(&s), "Current");
    }

    #[test]
    fn a_moving_canary_is_reconciling() {
        let mut s = status(Phase::Progressing, "canary at 10%: waiting for pods");
        set(&mut s, Some(2), at(T0), false);
        assert_eq!(
            summary(&s),
            expect(&[
                ("Ready", "False", "RolloutProgressing"),
                ("Progressing", "True", "CanaryProgressing"),
                ("Paused", "False", "RolloutResumed"),
                ("Reconciling", "True", "RolloutProgressing"),
                ("Stalled", "False", "RolloutProgressing"),
            ])
        );
        assert_eq!(kstatus(&s), "InProgress");
    }

    #[test]
    fn a_canary_held_at_a_pause_is_reconciling_and_paused() {
        let mut s = status(
            Phase::Paused,
            "paused at step 2 of 4: run `firebreak promote`",
        );
        set(&mut s, Some(2), at(T0), true);
        assert_eq!(
            summary(&s),
            expect(&[
                ("Ready", "False", "RolloutPaused"),
                ("Progressing", "True", "CanaryProgressing"),
                ("Paused", "True", "RolloutPaused"),
                ("Reconciling", "True", "RolloutPaused"),
                ("Stalled", "False", "RolloutPaused"),
            ])
        );
        assert_eq!(kstatus(&s), "InProgress");
    }

    #[test]
    fn a_rolled_back_rollout_is_stalled() {
        let mut s = status(Phase::RolledBack, "revision b was rolled back (aborted)");
        set(&mut s, Some(2), at(T0), false);
        assert_eq!(
            summary(&s),
            expect(&[
                ("Ready", "False", "RolledBack"),
                ("Progressing", "False", "RolledBack"),
                ("Paused", "False", "RolloutResumed"),
                ("Reconciling", "False", "RolledBack"),
                ("Stalled", "True", "RolledBack"),
            ])
        );
        assert_eq!(kstatus(&s), "Failed");
    }

    #[test]
    fn a_rollout_past_its_progress_deadline_is_stalled() {
        let mut s = status(Phase::Degraded, "progress deadline exceeded: 0/3 pods");
        set(&mut s, Some(1), at(T0), false);
        assert_eq!(
            summary(&s),
            expect(&[
                ("Ready", "False", "RolloutDegraded"),
                ("Progressing", "False", "ProgressDeadlineExceeded"),
                ("Paused", "False", "RolloutResumed"),
                ("Reconciling", "False", "ProgressDeadlineExceeded"),
                ("Stalled", "True", "ProgressDeadlineExceeded"),
            ])
        );
        assert_eq!(kstatus(&s), "Failed");
    }

    #[test]
    fn an_invalid_spec_is_stalled_with_its_own_reason_and_message() {
        let message = "invalid spec: spec.selector.matchExpressions: is not supported";
        let mut s = status(Phase::Degraded, message);
        set_degraded(&mut s, Some(3), at(T0), Degraded::InvalidSpec);
        assert_eq!(
            summary(&s),
            expect(&[
                ("Ready", "False", "InvalidSpec"),
                ("Progressing", "False", "InvalidSpec"),
                ("Paused", "False", "RolloutResumed"),
                ("Reconciling", "False", "InvalidSpec"),
                ("Stalled", "True", "InvalidSpec"),
            ])
        );
        assert_eq!(kstatus(&s), "Failed");
        assert!(
            s.conditions
                .iter()
                .all(|c| c.message == message && c.observed_generation == Some(3))
        );
    }

    #[test]
    fn no_phase_is_both_reconciling_and_stalled() {
        let states = [
            State::Progressing,
            State::Paused,
            State::Healthy,
            State::RolledBack,
            State::Degraded(Degraded::ProgressDeadline),
            State::Degraded(Degraded::InvalidSpec),
            State::Degraded(Degraded::ObjectRefused),
            State::Degraded(Degraded::RouterFailed),
        ];
        for state in states {
            let [_, _, reconciling, stalled] = state.conditions();
            assert!(!(reconciling.1 && stalled.1), "{state:?}");
        }
    }

    #[test]
    fn a_condition_keeps_its_transition_time_until_its_status_changes() {
        let mut s = status(Phase::Progressing, "canary at 10%");
        set(&mut s, Some(2), at(T0), false);
        s.phase = Some(Phase::Paused);
        set(&mut s, Some(2), at(T0 + 30), true);
        s.phase = Some(Phase::RolledBack);
        set(&mut s, Some(2), at(T0 + 90), false);
        let since = |kind: &str| {
            s.conditions
                .iter()
                .find(|c| c.type_ == kind)
                .map(|c| c.last_transition_time.0.as_second() - T0)
                .unwrap()
        };
        // Reconciling was True from T0 to T0+90; Stalled False from T0 and True since T0+90;
        // Paused True at T0+30 and False again at T0+90; Ready False throughout.
        assert_eq!(
            [
                since("Ready"),
                since("Reconciling"),
                since("Stalled"),
                since("Paused")
            ],
            [0, 90, 90, 90]
        );
    }

    #[test]
    fn fixing_an_invalid_spec_clears_stalled() {
        let mut s = status(
            Phase::Degraded,
            "invalid spec: spec.replicas: must be 0 or more",
        );
        set_degraded(&mut s, Some(1), at(T0), Degraded::InvalidSpec);
        s.phase = Some(Phase::Progressing);
        s.message = Some("waiting for pods".into());
        set(&mut s, Some(2), at(T0 + 5), false);
        assert_eq!(kstatus(&s), "InProgress");
        let stalled = s.conditions.iter().find(|c| c.type_ == "Stalled").unwrap();
        assert_eq!(
            (stalled.status.as_str(), stalled.reason.as_str()),
            ("False", "RolloutProgressing")
        );
    }
}
