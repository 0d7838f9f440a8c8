//! Who receives how many requests: grouping pods as a Service would see them, splitting a group's
//! request rate among its ready pods, and sampling one tick's requests, errors and latencies.
//!
//! Everything here is a pure function of its inputs and a random number generator.

use std::collections::BTreeMap;

use k8s_openapi::jiff::Timestamp;
use rand::Rng;
use rand_distr::{Binomial, Distribution, Exp, Poisson};

/// The label that names a Rollout's pods; pods carrying it are grouped by it.
pub const ROLLOUT_LABEL: &str = "firebreak.dev/rollout";
/// The label that groups pods that belong to no Rollout, as a Service selector usually does.
pub const APP_LABEL: &str = "app";

/// Which label put a pod in its group.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum GroupLabel {
    /// `firebreak.dev/rollout`.
    Rollout,
    /// `app`.
    App,
}

/// The pods a Service would load-balance over: one namespace, one value of the grouping label.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GroupKey {
    /// The pods' namespace.
    pub namespace: String,
    /// The label the group is keyed by.
    pub label: GroupLabel,
    /// The label's value.
    pub name: String,
}

/// The group of a pod: by label `firebreak.dev/rollout`, else by label `app`; `None` (the pod
/// receives no traffic) when it has neither.
pub fn group_of(namespace: &str, labels: &BTreeMap<String, String>) -> Option<GroupKey> {
    let (label, name) = labels
        .get(ROLLOUT_LABEL)
        .map(|name| (GroupLabel::Rollout, name))
        .or_else(|| labels.get(APP_LABEL).map(|name| (GroupLabel::App, name)))?;
    Some(GroupKey {
        namespace: namespace.to_string(),
        label,
        name: name.clone(),
    })
}

/// One pod, as traffic splitting sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct Member {
    /// The pod's group.
    pub group: GroupKey,
    /// The pod's name (breaks ties between pods created in the same second).
    pub name: String,
    /// When the pod was created.
    pub created: Option<Timestamp>,
    /// Whether a Service would send it requests: Running, Ready=True and not being deleted.
    pub serving: bool,
    /// The group's total request rate this pod states (annotation), in requests/second.
    pub requests_per_second: Option<f64>,
}

/// Each member's request rate in requests/second, in the order of `members`.
///
/// A group's total rate is the one stated by its newest pod that states one (pods carry their
/// template's annotations, so the newest revision's template decides), else `default_rps`. It is
/// split equally among the group's serving pods, as a Service's round robin would; pods that do not
/// serve get 0, and so does a group in which no pod serves (its requests fail elsewhere, unseen).
pub fn split(members: &[Member], default_rps: f64) -> Vec<f64> {
    struct Group<'a> {
        newest_stated: Option<&'a Member>,
        serving: usize,
    }
    let mut groups: BTreeMap<&GroupKey, Group> = BTreeMap::new();
    for member in members {
        let group = groups.entry(&member.group).or_insert(Group {
            newest_stated: None,
            serving: 0,
        });
        if member.serving {
            group.serving += 1;
        }
        if member.requests_per_second.is_some()
            && group.newest_stated.is_none_or(|newest| {
                (&member.created, &member.name) > (&newest.created, &newest.name)
            })
        {
            group.newest_stated = Some(member);
        }
    }
    members
        .iter()
        .map(|member| {
            let Some(group) = groups.get(&member.group) else {
                return 0.0;
            };
            if !member.serving || group.serving == 0 {
                return 0.0;
            }
            let total = group
                .newest_stated
                .and_then(|m| m.requests_per_second)
                .unwrap_or(default_rps);
            total / group.serving as f64
        })
        .collect()
}

/// The number of requests that arrive in an interval where `expected` arrive on average: Poisson.
/// Zero when `expected` is not a positive finite number.
pub fn sample_requests<R: Rng + ?Sized>(rng: &mut R, expected: f64) -> u64 {
    if !(expected > 0.0 && expected.is_finite()) {
        return 0;
    }
    match Poisson::new(expected.min(Poisson::<f64>::MAX_LAMBDA)) {
        // A Poisson sample is a whole number; `as` saturates.
        Ok(poisson) => poisson.sample(rng) as u64,
        Err(_) => 0,
    }
}

/// How many of `requests` fail when each fails independently with probability `error_rate`
/// (a fraction 0–1): Binomial. Values outside 0–1 are clamped.
pub fn sample_errors<R: Rng + ?Sized>(rng: &mut R, requests: u64, error_rate: f64) -> u64 {
    let p = if error_rate.is_nan() {
        0.0
    } else {
        error_rate.clamp(0.0, 1.0)
    };
    Binomial::new(requests, p).map_or(0, |b| b.sample(rng))
}

/// An exponentially distributed value with mean `mean` (a request's latency in seconds, the time
/// to a container's next crash in seconds); 0 when the mean is not a positive finite number.
pub fn sample_exponential<R: Rng + ?Sized>(rng: &mut R, mean: f64) -> f64 {
    if !(mean > 0.0 && mean.is_finite()) {
        return 0.0;
    }
    Exp::new(1.0 / mean).map_or(0.0, |exp| exp.sample(rng))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::Xoshiro256PlusPlus;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn group(name: &str) -> GroupKey {
        GroupKey {
            namespace: "shop".into(),
            label: GroupLabel::App,
            name: name.into(),
        }
    }

    fn pod(name: &str, group_name: &str, created_second: i64) -> Member {
        Member {
            group: group(group_name),
            name: name.into(),
            created: Some(Timestamp::from_second(created_second).unwrap()),
            serving: true,
            requests_per_second: None,
        }
    }

    impl Member {
        fn not_serving(mut self) -> Self {
            self.serving = false;
            self
        }
        fn stating(mut self, rps: f64) -> Self {
            self.requests_per_second = Some(rps);
            self
        }
    }

    #[test]
    fn pods_are_grouped_by_rollout_then_by_app() {
        let by_rollout = group_of(
            "ns",
            &labels(&[("firebreak.dev/rollout", "checkout"), ("app", "web")]),
        )
        .unwrap();
        assert_eq!(by_rollout.label, GroupLabel::Rollout);
        assert_eq!(by_rollout.name, "checkout");
        assert_eq!(by_rollout.namespace, "ns");

        let by_app = group_of("ns", &labels(&[("app", "checkout")])).unwrap();
        assert_eq!(by_app.label, GroupLabel::App);
        // Same name, other label: a different group.
        assert_ne!(by_rollout, by_app);

        assert_eq!(group_of("ns", &labels(&[("tier", "web")])), None);
        // Same label value in another namespace: another group.
        assert_ne!(
            group_of("other", &labels(&[("app", "checkout")])),
            Some(by_app)
        );
    }

    #[test]
    fn a_group_rate_is_split_equally_among_serving_pods() {
        let members = [
            pod("a", "shop", 1).stating(90.0),
            pod("b", "shop", 2),
            pod("c", "shop", 3),
            pod("d", "shop", 4).not_serving(),
        ];
        assert_eq!(split(&members, 50.0), [30.0, 30.0, 30.0, 0.0]);
    }

    #[test]
    fn groups_without_a_stated_rate_get_the_default() {
        let members = [
            pod("a", "shop", 1),
            pod("b", "shop", 2),
            pod("x", "cart", 1),
        ];
        assert_eq!(split(&members, 50.0), [25.0, 25.0, 50.0]);
    }

    #[test]
    fn the_newest_pod_that_states_a_rate_decides_the_group_total() {
        // The new revision's template says 200 requests/second, the old one's 100.
        let members = [
            pod("old-1", "shop", 10).stating(100.0),
            pod("new-1", "shop", 20).stating(200.0),
            pod("newest-silent", "shop", 30),
            pod("old-2", "shop", 11).stating(100.0),
        ];
        assert_eq!(split(&members, 50.0), [50.0; 4]);
        // Even when the newest pod does not serve yet.
        let members = [
            pod("old", "shop", 10).stating(100.0),
            pod("new", "shop", 20).stating(10.0).not_serving(),
        ];
        assert_eq!(split(&members, 50.0), [10.0, 0.0]);
    }

    #[test]
    fn a_group_with_no_serving_pod_receives_nothing() {
        let members = [
            pod("a", "shop", 1).not_serving(),
            pod("b", "shop", 2).not_serving(),
        ];
        assert_eq!(split(&members, 50.0), [0.0, 0.0]);
    }

    #[test]
    fn poisson_requests_have_the_expected_mean_and_variance() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(7);
        for expected in [0.5, 6.7, 20.0, 400.0] {
            let n = 20_000;
            let samples: Vec<f64> = (0..n)
                .map(|_| sample_requests(&mut rng, expected) as f64)
                .collect();
            let mean = samples.iter().sum::<f64>() / n as f64;
            let variance = samples.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / n as f64;
            // The standard error of the mean is sqrt(expected / n); allow 5 of them.
            let tolerance = 5.0 * (expected / n as f64).sqrt();
            assert!(
                (mean - expected).abs() < tolerance,
                "{expected}: mean {mean}"
            );
            // A Poisson variable's variance equals its mean.
            assert!(
                (variance / expected - 1.0).abs() < 0.1,
                "{expected}: variance {variance}"
            );
        }
    }

    #[test]
    fn degenerate_rates_give_no_requests() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
        for expected in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert_eq!(sample_requests(&mut rng, expected), 0, "{expected}");
        }
    }

    #[test]
    fn binomial_errors_have_the_expected_share() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(3);
        let (mut requests, mut errors) = (0u64, 0u64);
        for _ in 0..10_000 {
            let n = sample_requests(&mut rng, 20.0);
            let e = sample_errors(&mut rng, n, 0.2);
            assert!(e <= n);
            requests += n;
            errors += e;
        }
        let share = errors as f64 / requests as f64;
        // About 200,000 requests: the standard error of the share is about 0.0009.
        assert!((share - 0.2).abs() < 0.005, "error share {share}");
        assert_eq!(sample_errors(&mut rng, 1000, 0.0), 0);
        assert_eq!(sample_errors(&mut rng, 1000, 1.0), 1000);
        assert_eq!(sample_errors(&mut rng, 1000, 7.0), 1000);
        assert_eq!(sample_errors(&mut rng, 1000, f64::NAN), 0);
    }

    #[test]
    fn latencies_are_exponential_with_the_given_mean() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(5);
        let n = 50_000;
        let samples: Vec<f64> = (0..n)
            .map(|_| sample_exponential(&mut rng, 0.020))
            .collect();
        let mean = samples.iter().sum::<f64>() / n as f64;
        assert!((mean - 0.020).abs() < 0.0005, "mean {mean}");
        assert!(samples.iter().all(|s| *s >= 0.0));
        // For an exponential distribution, P(X > mean) = 1/e.
        let above = samples.iter().filter(|s| **s > 0.020).count() as f64 / n as f64;
        assert!(
            (above - (-1.0f64).exp()).abs() < 0.01,
            "share above mean {above}"
        );
        assert_eq!(sample_exponential(&mut rng, 0.0), 0.0);
    }

    #[test]
    fn sampling_is_reproducible_from_a_seed() {
        let draw = |seed| {
            let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
            (0..100)
                .map(|_| sample_requests(&mut rng, 6.7))
                .collect::<Vec<_>>()
        };
        assert_eq!(draw(1), draw(1));
        assert_ne!(draw(1), draw(2));
    }
}
