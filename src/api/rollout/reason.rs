//! Why things happened: the rollback [`Trigger`]s and the [`Reason`]s of timeline entries and
//! Events.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Why an automatic rollback (or a hold instead of one) happened: an Incident's trigger, the
/// rollback's timeline entry and Event reason, and the `trigger` label of
/// `firebreak_rollback_seconds`. Every variant but [`Trigger::CommonModeHold`] rolls back, and
/// every one of them notifies (`NotificationEvent::for_reason`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize, Serialize, JsonSchema)]
pub enum Trigger {
    /// The judge found the canary worse than the baseline (or past an absolute ceiling).
    AnalysisFailed,
    /// A user ran `firebreak abort`.
    Aborted,
    /// The canary's pods did not become available within `spec.progressDeadlineSeconds`.
    ProgressDeadlineExceeded,
    /// Analysis stayed inconclusive past the deadline with `analysis.onInconclusive: Rollback`.
    AnalysisInconclusive,
    /// The canary ran longer than `spec.strategy.canary.maxDuration`.
    MaxDurationExceeded,
    /// The promoted revision failed its bake (`spec.bake`): the previous revision is stable again.
    BakeFailed,
    /// The baseline is as bad as the canary: held at its step, nothing rolled back.
    CommonModeHold,
}

impl Trigger {
    /// Every trigger, for tests and documentation.
    pub const ALL: [Trigger; 7] = [
        Trigger::AnalysisFailed,
        Trigger::Aborted,
        Trigger::ProgressDeadlineExceeded,
        Trigger::AnalysisInconclusive,
        Trigger::MaxDurationExceeded,
        Trigger::BakeFailed,
        Trigger::CommonModeHold,
    ];

    /// Whether the trigger rolls the revision back (all but a common-mode hold).
    pub fn rolls_back(self) -> bool {
        match self {
            Trigger::AnalysisFailed
            | Trigger::Aborted
            | Trigger::ProgressDeadlineExceeded
            | Trigger::AnalysisInconclusive
            | Trigger::MaxDurationExceeded
            | Trigger::BakeFailed => true,
            Trigger::CommonModeHold => false,
        }
    }

    /// Whose problem the trigger points at, before anyone looked: the canary's measured behaviour
    /// (`change`), the baseline as bad as the canary (`common-mode`), or something outside the
    /// canary's metrics (`external`: a user's abort, a limit on time).
    pub fn triage(self) -> crate::api::Triage {
        use crate::api::Triage;
        match self {
            Trigger::AnalysisFailed | Trigger::ProgressDeadlineExceeded | Trigger::BakeFailed => {
                Triage::Change
            }
            Trigger::Aborted | Trigger::AnalysisInconclusive | Trigger::MaxDurationExceeded => {
                Triage::External
            }
            Trigger::CommonModeHold => Triage::CommonMode,
        }
    }

    /// The timeline entry and Event reason of the trigger.
    pub fn reason(self) -> Reason {
        match self {
            Trigger::AnalysisFailed => Reason::AnalysisFailed,
            Trigger::Aborted => Reason::Aborted,
            Trigger::ProgressDeadlineExceeded => Reason::ProgressDeadlineExceeded,
            Trigger::AnalysisInconclusive => Reason::AnalysisInconclusive,
            Trigger::MaxDurationExceeded => Reason::MaxDurationExceeded,
            Trigger::BakeFailed => Reason::BakeFailed,
            Trigger::CommonModeHold => Reason::CommonModeHold,
        }
    }

    /// Why it happened, in words that follow "rolled back" or "held": "after canary analysis
    /// failed".
    pub fn words(self) -> &'static str {
        match self {
            Trigger::AnalysisFailed => "after canary analysis failed",
            Trigger::Aborted => "on a user's request (`firebreak abort`)",
            Trigger::ProgressDeadlineExceeded => {
                "because its pods did not become available before the progress deadline"
            }
            Trigger::AnalysisInconclusive => {
                "because canary analysis stayed inconclusive past its deadline"
            }
            Trigger::MaxDurationExceeded => {
                "because the canary ran longer than its maximum duration (spec.strategy.canary.maxDuration)"
            }
            Trigger::BakeFailed => "because canary analysis failed during the bake after promotion",
            Trigger::CommonModeHold => {
                "because the baseline failed as badly as the canary (a common-mode problem)"
            }
        }
    }

    /// The name, as serialized: `AnalysisFailed`, `BakeFailed`, …
    pub fn as_str(self) -> &'static str {
        self.reason().as_str()
    }
}

display_as_str!(Trigger);

/// What happened to a Rollout: the reason of a timeline entry and of the Kubernetes Event
/// Firebreak publishes about it. Serialized as its CamelCase name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize, Serialize, JsonSchema)]
pub enum Reason {
    /// The first revision (or one whose stable ReplicaSet vanished) deployed straight to stable.
    Deployed,
    /// `firebreak retry`: a rolled-back revision is rolled out again.
    Retried,
    /// A newer template (or a revert) replaced the running canary.
    CanarySuperseded,
    /// The template went back to a previously stable revision: steps skipped.
    FastRollback,
    /// A new revision started as canary.
    CanaryStarted,
    /// A canary step finished.
    StepCompleted,
    /// `firebreak promote --full`: the remaining steps are skipped.
    PromotedFull,
    /// The canary became stable.
    Promoted,
    /// The bake watch started after a promotion.
    BakeStarted,
    /// A new revision ended the bake early.
    BakeSuperseded,
    /// The bake ended without trouble.
    BakeCompleted,
    /// Analysis could not get data for two looks in a row: the rollout holds.
    AnalysisUnavailable,
    /// Analysis has data again.
    AnalysisRecovered,
    /// Rolled back: analysis failed.
    AnalysisFailed,
    /// Rolled back: `firebreak abort`.
    Aborted,
    /// Rolled back: the canary missed the progress deadline.
    ProgressDeadlineExceeded,
    /// Rolled back: analysis inconclusive past the deadline.
    AnalysisInconclusive,
    /// Rolled back: the canary ran past `maxDuration`.
    MaxDurationExceeded,
    /// Rolled back during the bake.
    BakeFailed,
    /// Held, not rolled back: the baseline is as bad as the canary.
    CommonModeHold,
    /// The second-wave check after a rollback ended: the stable's error rate went back down.
    SecondWaveRecovered,
    /// The second-wave check ended: the stable's error rate is still up, so the problem is
    /// probably not the rolled-back change.
    SecondWaveNotRecovered,
    /// The second-wave check ended without an answer (no error-rate metric, or no data).
    SecondWaveUnknown,
    /// Someone else (a GitOps sync, `kubectl apply`) changed the weights of a route Firebreak
    /// routes with; they are put back, and the time at wrong weights does not count for the step.
    TrafficChanged,
}

impl Reason {
    /// The name, as serialized and as the Event reason.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Deployed => "Deployed",
            Reason::Retried => "Retried",
            Reason::CanarySuperseded => "CanarySuperseded",
            Reason::FastRollback => "FastRollback",
            Reason::CanaryStarted => "CanaryStarted",
            Reason::StepCompleted => "StepCompleted",
            Reason::PromotedFull => "PromotedFull",
            Reason::Promoted => "Promoted",
            Reason::BakeStarted => "BakeStarted",
            Reason::BakeSuperseded => "BakeSuperseded",
            Reason::BakeCompleted => "BakeCompleted",
            Reason::AnalysisUnavailable => "AnalysisUnavailable",
            Reason::AnalysisRecovered => "AnalysisRecovered",
            Reason::AnalysisFailed => "AnalysisFailed",
            Reason::Aborted => "Aborted",
            Reason::ProgressDeadlineExceeded => "ProgressDeadlineExceeded",
            Reason::AnalysisInconclusive => "AnalysisInconclusive",
            Reason::MaxDurationExceeded => "MaxDurationExceeded",
            Reason::BakeFailed => "BakeFailed",
            Reason::CommonModeHold => "CommonModeHold",
            Reason::SecondWaveRecovered => "SecondWaveRecovered",
            Reason::SecondWaveNotRecovered => "SecondWaveNotRecovered",
            Reason::SecondWaveUnknown => "SecondWaveUnknown",
            Reason::TrafficChanged => "TrafficChanged",
        }
    }

    /// The trigger, when this reason is an automatic rollback, an abort or a common-mode hold.
    pub fn trigger(self) -> Option<Trigger> {
        match self {
            Reason::AnalysisFailed => Some(Trigger::AnalysisFailed),
            Reason::Aborted => Some(Trigger::Aborted),
            Reason::ProgressDeadlineExceeded => Some(Trigger::ProgressDeadlineExceeded),
            Reason::AnalysisInconclusive => Some(Trigger::AnalysisInconclusive),
            Reason::MaxDurationExceeded => Some(Trigger::MaxDurationExceeded),
            Reason::BakeFailed => Some(Trigger::BakeFailed),
            Reason::CommonModeHold => Some(Trigger::CommonModeHold),
            Reason::Deployed
            | Reason::Retried
            | Reason::CanarySuperseded
            | Reason::FastRollback
            | Reason::CanaryStarted
            | Reason::StepCompleted
            | Reason::PromotedFull
            | Reason::Promoted
            | Reason::BakeStarted
            | Reason::BakeSuperseded
            | Reason::BakeCompleted
            | Reason::AnalysisUnavailable
            | Reason::AnalysisRecovered
            | Reason::SecondWaveRecovered
            | Reason::SecondWaveNotRecovered
            | Reason::SecondWaveUnknown
            | Reason::TrafficChanged => None,
        }
    }

    /// A condition that may come and go many times (data missing, data back): repeats are
    /// folded into one timeline entry with a count.
    pub fn is_condition(self) -> bool {
        match self {
            Reason::AnalysisUnavailable | Reason::AnalysisRecovered | Reason::TrafficChanged => {
                true
            }
            Reason::Deployed
            | Reason::Retried
            | Reason::CanarySuperseded
            | Reason::FastRollback
            | Reason::CanaryStarted
            | Reason::StepCompleted
            | Reason::PromotedFull
            | Reason::Promoted
            | Reason::BakeStarted
            | Reason::BakeSuperseded
            | Reason::BakeCompleted
            | Reason::AnalysisFailed
            | Reason::Aborted
            | Reason::ProgressDeadlineExceeded
            | Reason::AnalysisInconclusive
            | Reason::MaxDurationExceeded
            | Reason::BakeFailed
            | Reason::CommonModeHold
            | Reason::SecondWaveRecovered
            | Reason::SecondWaveNotRecovered
            | Reason::SecondWaveUnknown => false,
        }
    }

    /// An anchor of the rollout's story: never dropped from a bounded timeline while newer,
    /// lesser entries can go instead.
    pub fn is_anchor(self) -> bool {
        match self {
            Reason::Deployed
            | Reason::CanaryStarted
            | Reason::Promoted
            | Reason::PromotedFull
            | Reason::FastRollback
            | Reason::BakeStarted
            | Reason::BakeCompleted
            | Reason::Retried => true,
            Reason::CanarySuperseded
            | Reason::StepCompleted
            | Reason::BakeSuperseded
            | Reason::AnalysisUnavailable
            | Reason::AnalysisRecovered
            | Reason::TrafficChanged => false,
            Reason::AnalysisFailed
            | Reason::Aborted
            | Reason::ProgressDeadlineExceeded
            | Reason::AnalysisInconclusive
            | Reason::MaxDurationExceeded
            | Reason::BakeFailed
            | Reason::CommonModeHold
            | Reason::SecondWaveRecovered
            | Reason::SecondWaveNotRecovered
            | Reason::SecondWaveUnknown => true,
        }
    }

    /// The reason that records how a second-wave check ended in `state`; `None` while it runs.
    pub fn for_second_wave(state: crate::api::SecondWaveState) -> Option<Reason> {
        use crate::api::SecondWaveState;
        match state {
            SecondWaveState::Watching => None,
            SecondWaveState::Recovered => Some(Reason::SecondWaveRecovered),
            SecondWaveState::NotRecovered => Some(Reason::SecondWaveNotRecovered),
            SecondWaveState::Unknown => Some(Reason::SecondWaveUnknown),
        }
    }
}

display_as_str!(Reason);
