//! The judge's decision for one metric at one look: [`judge`] at every look, [`decide`] at the
//! planned decision look.

use crate::ceiling::{Breach, ceiling_breach};
use crate::confidence::Estimate;
use crate::eprocess::{ANCHOR, ln_e_above, ln_e_below};
use crate::error::JudgeError;
use crate::evidence::Evidence;
use crate::planned::PlannedTest;
use crate::policy::Policy;

/// Why there is no decision yet.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum InconclusiveReason {
    /// No interval had events in either arm while both arms were exposed: nothing to compare.
    /// (A quiet service looks like this for a long time; whether that may advance is the
    /// controller's call, a pass it is not.)
    NoEvents,
    /// The bounds already exclude the limit, but there is less evidence than the policy's
    /// minimum for a pass.
    TooLittleEvidence {
        /// Paired events so far.
        events: u64,
        /// Paired events required.
        min_events: u64,
        /// Intervals so far.
        intervals: u32,
        /// Intervals required.
        min_intervals: u32,
    },
    /// The confidence bounds still straddle `maxRatio`.
    Undecided,
}

/// The judge's decision for one metric at one look.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    /// The canary is within `maxRatio` of the baseline: `ratio.upper ≤ maxRatio`.
    Pass {
        /// The ratio estimate.
        ratio: Estimate,
    },
    /// The canary is worse than `maxRatio` allows: `e_value ≥ threshold = 1/α`, and
    /// `ratio.lower ≥ maxRatio`.
    Fail {
        /// The ratio estimate.
        ratio: Estimate,
        /// The failure e-value `E_t` (may be `+∞`).
        e_value: f64,
        /// `1/α` for the ratio test.
        threshold: f64,
    },
    /// An absolute ceiling broke. Checked before the ratio; the ratio test's outcome is kept so
    /// the caller can tell a bad change from a common-mode problem ([`Verdict::is_common_mode`]).
    CeilingBreached {
        /// The ceiling and both arms' numbers.
        breach: Breach,
        /// The ratio estimate.
        ratio: Estimate,
        /// The ratio test fails as well (the canary is also worse than the baseline).
        ratio_fails: bool,
    },
    /// The planned decision look's exact test found the canary worse than `maxRatio`.
    PlannedFail {
        /// The ratio estimate (anytime bounds, which need not exclude `maxRatio`).
        ratio: Estimate,
        /// The exact test.
        test: PlannedTest,
    },
    /// The planned decision look's exact test found the canary within `maxRatio`.
    PlannedPass {
        /// The ratio estimate.
        ratio: Estimate,
        /// The exact test.
        test: PlannedTest,
    },
    /// Not enough evidence either way; never a pass.
    Inconclusive {
        /// The ratio estimate so far.
        ratio: Estimate,
        /// Why.
        reason: InconclusiveReason,
    },
}

impl Verdict {
    /// The ratio estimate carried by every verdict.
    pub fn ratio(&self) -> &Estimate {
        match self {
            Verdict::Pass { ratio }
            | Verdict::Fail { ratio, .. }
            | Verdict::CeilingBreached { ratio, .. }
            | Verdict::PlannedFail { ratio, .. }
            | Verdict::PlannedPass { ratio, .. }
            | Verdict::Inconclusive { ratio, .. } => ratio,
        }
    }

    /// A ceiling broke in both arms while the canary is not worse than the baseline: the
    /// problem is not this change (triage `common-mode`: hold, do not roll back).
    pub fn is_common_mode(&self) -> bool {
        match self {
            Verdict::CeilingBreached {
                breach,
                ratio_fails,
                ..
            } => breach.common_mode() && !ratio_fails,
            _ => false,
        }
    }
}

/// Judges one metric: ceiling first (a hard stop), then the ratio test, then pass or
/// inconclusive. See the crate docs for the tests and their guarantees.
///
/// Errors with [`JudgeError::KindMismatch`] when the policy's ceiling is for another metric kind.
pub fn judge(evidence: &Evidence, policy: &Policy) -> Result<Verdict, JudgeError> {
    if let Some(ceiling) = policy.ceiling
        && ceiling.kind() != evidence.kind
    {
        return Err(JudgeError::KindMismatch {
            ceiling: ceiling.field(),
            kind: evidence.kind,
        });
    }
    let split = policy.split();
    let threshold = -split.ratio.ln();
    let mut ratio = evidence.estimate(split.ratio);
    let l = &evidence.log_likelihood;
    let ln_e_fail = ln_e_above(l, ANCHOR);
    let ratio_fails = ln_e_fail >= threshold;
    if ratio_fails {
        // Certified by the test itself; keeps the shown bound consistent with the decision.
        ratio.lower = ratio.lower.max(evidence.max_ratio);
        ratio.point = ratio.point.map(|p| p.max(ratio.lower));
    }

    if let Some(breach) = ceiling_breach(evidence, policy.ceiling, split.ceiling) {
        return Ok(Verdict::CeilingBreached {
            breach,
            ratio,
            ratio_fails,
        });
    }
    if ratio_fails {
        return Ok(Verdict::Fail {
            ratio,
            e_value: ln_e_fail.exp(),
            threshold: 1.0 / split.ratio,
        });
    }
    if evidence.paired_events == 0 {
        return Ok(Verdict::Inconclusive {
            ratio,
            reason: InconclusiveReason::NoEvents,
        });
    }
    if ln_e_below(l, ANCHOR) >= threshold {
        ratio.upper = ratio.upper.min(evidence.max_ratio);
        ratio.point = ratio.point.map(|p| p.min(ratio.upper));
        if policy.enough_for_a_pass(evidence) {
            return Ok(Verdict::Pass { ratio });
        }
        return Ok(Verdict::Inconclusive {
            ratio,
            reason: InconclusiveReason::TooLittleEvidence {
                events: evidence.paired_events,
                min_events: policy.min_events,
                intervals: evidence.intervals,
                min_intervals: policy.min_intervals,
            },
        });
    }
    Ok(Verdict::Inconclusive {
        ratio,
        reason: InconclusiveReason::Undecided,
    })
}

/// Judges one metric at the planned decision look: [`judge`] first (a fail or a ceiling breach
/// stands), then the exact test of [`Evidence::planned_test`] at the policy's planned α, which
/// fails the canary ([`Verdict::PlannedFail`]) or passes it ([`Verdict::PlannedPass`], only
/// with the policy's minimum evidence). Call it once per rollout, at the first successful look
/// at or after a time fixed before the data came in: the test is exact at one such look and
/// has no guarantee if it is repeated or timed by the data. Without a planned decision in the
/// policy it is [`judge`].
///
/// Errors as [`judge`].
pub fn decide(evidence: &Evidence, policy: &Policy) -> Result<Verdict, JudgeError> {
    let verdict = judge(evidence, policy)?;
    if !policy.planned
        || matches!(
            verdict,
            Verdict::Fail { .. } | Verdict::CeilingBreached { .. }
        )
    {
        return Ok(verdict);
    }
    let test = evidence.planned_test(policy.split().planned);
    let ratio = *verdict.ratio();
    if test.rejects_below() {
        return Ok(Verdict::PlannedFail { ratio, test });
    }
    if test.rejects_above()
        && policy.enough_for_a_pass(evidence)
        && !matches!(verdict, Verdict::Pass { .. })
    {
        return Ok(Verdict::PlannedPass { ratio, test });
    }
    Ok(verdict)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use crate::ceiling::Ceiling;
    use crate::fixtures::{counts, errors, observed, two_metric_policy};
    use crate::kind::MetricKind;
    use crate::policy::{DEFAULT_MIN_EVENTS, DEFAULT_MIN_INTERVALS};
    use crate::summary::{Round, sig};

    use super::*;

    #[test]
    fn decide_adds_the_planned_test_only_when_planned() {
        // 40 canary errors vs 48 baseline errors in 4× the requests: ratio 3.3 against 1.5.
        // At α = 0.01 the e-process needs more; the exact test at α/2 already rejects.
        let e = observed(1.5, 4, 10, 1000.0, 12, 4000.0);
        let plain = Policy::new(0.01, None).unwrap();
        let planned = plain.with_planned_decision();
        assert!(matches!(
            judge(&e, &planned).unwrap(),
            Verdict::Inconclusive { .. }
        ));
        assert_eq!(decide(&e, &plain).unwrap(), judge(&e, &plain).unwrap());
        let verdict = decide(&e, &planned).unwrap();
        let Verdict::PlannedFail { test, .. } = verdict else {
            panic!("{verdict:?}")
        };
        assert!(test.upper <= 0.005 && test.alpha == 0.005, "{test:?}");
        let text = verdict.summary(&e);
        assert!(
            text.contains("planned decision: 40 canary errors"),
            "{text}"
        );
        // The mirror image: 12 canary errors of 92 where 92 · 1.5/5.5 = 25 are expected at the
        // limit pass the exact test before the e-process.
        let good = observed(1.5, 4, 3, 1000.0, 20, 4000.0);
        assert!(matches!(
            judge(&good, &planned).unwrap(),
            Verdict::Inconclusive { .. }
        ));
        assert!(matches!(
            decide(&good, &planned).unwrap(),
            Verdict::PlannedPass { .. }
        ));
    }

    #[test]
    fn no_events_is_inconclusive_and_says_so() {
        let e = observed(1.5, 20, 0, 150.0, 0, 2_850.0);
        let verdict = judge(&e, &two_metric_policy()).unwrap();
        assert!(matches!(
            verdict,
            Verdict::Inconclusive {
                reason: InconclusiveReason::NoEvents,
                ..
            }
        ));
        assert_eq!(
            verdict.summary(&e),
            "no errors in either arm over 3,000 canary requests and 57,000 baseline requests: \
             inconclusive, nothing to compare yet"
        );
    }

    #[test]
    fn a_hard_regression_fails_with_the_numbers_in_the_sentence() {
        // 10 looks of 1,248 canary requests at 50% errors vs 1% of 11,232 baseline requests.
        let e = observed(1.5, 10, 624, 1_248.0, 112, 11_232.0);
        let verdict = judge(&e, &two_metric_policy()).unwrap();
        let Verdict::Fail {
            ratio,
            e_value,
            threshold,
        } = verdict
        else {
            panic!("expected a failure, got {verdict:?}");
        };
        assert!(e_value >= threshold && ratio.lower >= 30.0, "{ratio:?}");
        assert!((threshold - 200.0).abs() < 1e-9, "{threshold}");
        assert_eq!(
            verdict.summary(&e),
            format!(
                "canary error rate 50% vs baseline 1.0% (ratio 50, ≥ {} with 99.5% confidence, \
                 limit 1.5×; e-value {} ≥ 200) over 12,480 canary requests",
                sig(ratio.lower, 2, Round::Down),
                sig(e_value, 3, Round::Down)
            )
        );
        assert!(!verdict.is_common_mode());
    }

    #[test]
    fn a_healthy_canary_with_plenty_of_data_passes() {
        // 60 looks, canary 10% weight at the baseline's 1% error rate.
        let e = observed(1.5, 60, 3, 300.0, 27, 2_700.0);
        let verdict = judge(&e, &two_metric_policy()).unwrap();
        let Verdict::Pass { ratio } = verdict else {
            panic!("expected a pass, got {verdict:?}");
        };
        assert!(ratio.upper <= 1.5 && ratio.lower < 1.0, "{ratio:?}");
        assert_eq!(
            verdict.summary(&e),
            format!(
                "canary error rate 1.0% vs baseline 1.0% (ratio 1.0, ≤ {} with 99.5% confidence, \
                 limit 1.5×) over 18,000 canary requests",
                sig(ratio.upper, 2, Round::Up)
            )
        );
    }

    #[test]
    fn a_pass_needs_the_minimum_evidence() {
        // One look with 1,000 baseline errors and none from the canary: the bounds exclude 1.5
        // already, but one interval is not a rollout's worth of evidence.
        let e = observed(1.5, 1, 0, 10_000.0, 1_000, 10_000.0);
        let verdict = judge(&e, &two_metric_policy()).unwrap();
        assert_eq!(
            verdict,
            Verdict::Inconclusive {
                ratio: *verdict.ratio(),
                reason: InconclusiveReason::TooLittleEvidence {
                    events: 1_000,
                    min_events: DEFAULT_MIN_EVENTS,
                    intervals: 1,
                    min_intervals: DEFAULT_MIN_INTERVALS,
                }
            }
        );
        assert!(verdict.ratio().upper <= 1.5);
        let relaxed = two_metric_policy().with_min_evidence(10, 1);
        assert!(matches!(judge(&e, &relaxed).unwrap(), Verdict::Pass { .. }));
    }

    #[test]
    fn a_little_data_straddling_the_limit_is_undecided() {
        let e = observed(1.5, 5, 1, 100.0, 9, 900.0);
        let verdict = judge(&e, &two_metric_policy()).unwrap();
        assert!(
            matches!(
                verdict,
                Verdict::Inconclusive {
                    reason: InconclusiveReason::Undecided,
                    ..
                }
            ),
            "{verdict:?}"
        );
        let ratio = verdict.ratio();
        assert!(ratio.lower < 1.5 && ratio.upper > 1.5, "{ratio:?}");
        let text = verdict.summary(&e);
        assert!(
            text.starts_with("canary error rate 1.0% vs baseline 1.0% (ratio 1.0, between ")
                && text.ends_with(
                    "with 99% confidence, limit 1.5×) over 500 canary requests: inconclusive, \
                     the confidence bounds still straddle the limit"
                ),
            "{text}"
        );
    }

    #[test]
    fn daily_swings_in_traffic_and_error_rate_cancel_out() {
        // Night: little traffic, the canary holds half of it, and everyone errs at 10%.
        // Day: lots of traffic, the canary holds 5%, and everyone errs at 0.1%. Pooled, the
        // canary's rate is 6.9× the baseline's (Simpson's paradox); interval by interval the two
        // arms are identical, and that is what the judge sees.
        let mut e = errors(1.5);
        for _ in 0..10 {
            e.observe(&counts(50, 50, 500.0, 500.0)).unwrap();
            e.observe(&counts(5, 95, 5_000.0, 95_000.0)).unwrap();
        }
        let pooled = (e.canary_events() as f64 / e.canary_exposure())
            / (e.baseline_events() as f64 / e.baseline_exposure());
        assert!(pooled > 6.0, "{pooled}");
        let verdict = judge(&e, &two_metric_policy()).unwrap();
        assert!((verdict.ratio().point.unwrap() - 1.0).abs() < 1e-12);
        assert!(e.e_value() < 1.0, "{}", e.e_value());
        assert!(
            matches!(verdict, Verdict::Pass { .. }),
            "{}",
            verdict.summary(&e)
        );
    }

    #[test]
    fn fail_and_pass_agree_with_the_bounds() {
        let policy = two_metric_policy();
        for (x, y) in [(30u64, 270u64), (60, 270), (90, 270), (10, 270), (0, 30)] {
            let e = observed(1.5, 10, x, 1_000.0, y, 9_000.0);
            let verdict = judge(&e, &policy).unwrap();
            let ratio = verdict.ratio();
            assert!(ratio.lower <= ratio.upper, "{verdict:?}");
            match verdict {
                Verdict::Fail { .. } => assert!(ratio.lower >= 1.5),
                Verdict::Pass { .. } => assert!(ratio.upper <= 1.5),
                _ => assert!(ratio.lower < 1.5 || ratio.upper > 1.5),
            }
            let fails = e.e_value() >= 1.0 / policy.split().ratio;
            assert_eq!(fails, matches!(verdict, Verdict::Fail { .. }));
        }
    }

    proptest! {
        // No regression files: the cases are cheap to regenerate and the tree is shared.
        #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn observe_and_judge_never_panic(
            max_ratio in any::<f64>(),
            raw in proptest::collection::vec(
                (any::<u64>(), any::<u64>(), any::<f64>(), any::<f64>()), 0..6),
            small in proptest::collection::vec((0u64..10, 0u64..10, 0.0f64..20.0, 0.0f64..20.0), 0..6),
            alpha in any::<f64>(),
            max_rate in any::<f64>(),
        ) {
            for kind in [MetricKind::ErrorRate, MetricKind::CrashRate] {
                let Ok(mut e) = Evidence::new(kind, max_ratio) else { continue };
                for &(x, y, n, m) in raw.iter().chain(&small) {
                    let _ = e.observe(&counts(x, y, n, m));
                }
                prop_assert!(e.log_likelihood().iter().all(|l| l.is_finite()));
                let ceiling = match kind {
                    MetricKind::ErrorRate => Ceiling::ErrorRate { max_rate },
                    MetricKind::CrashRate => Ceiling::RestartsPerPod { max_restarts: 1 },
                };
                for policy in [Policy::new(alpha, Some(ceiling)), Policy::new(0.01, None)]
                    .into_iter()
                    .flatten()
                {
                    let verdict = judge(&e, &policy).unwrap();
                    let _ = verdict.summary(&e);
                }
                let _ = serde_json::to_string(&e).unwrap();
            }
        }
    }
}
