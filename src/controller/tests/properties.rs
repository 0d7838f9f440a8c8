//! Properties over random sequences of user and world actions: capacity, aborted revisions,
//! idempotence, notifications.

use super::*;
use proptest::prelude::*;

/// A user or the world doing something between two decisions.
#[derive(Clone, Debug)]
enum Op {
    NewImage(u8),
    Promote,
    PromoteFull,
    Abort,
    Retry,
    Scale(i32),
    Wait(i64),
    PodsStart,
    Break(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (1u8..5).prop_map(Op::NewImage),
        Just(Op::Promote),
        Just(Op::PromoteFull),
        Just(Op::Abort),
        Just(Op::Retry),
        (0i32..15).prop_map(Op::Scale),
        (1i64..700).prop_map(Op::Wait),
        Just(Op::PodsStart),
        Just(Op::PodsStart),
        (1u8..5).prop_map(Op::Break),
    ]
}

fn apply(cluster: &mut Cluster, op: &Op) {
    match op {
        Op::NewImage(n) => {
            cluster.set_image(&format!("web:{n}"));
        }
        Op::Promote => {
            cluster.request("promote");
        }
        Op::PromoteFull => {
            cluster.request("promote-full");
        }
        Op::Abort => {
            cluster.request("abort");
        }
        Op::Retry => {
            cluster.request("retry");
        }
        Op::Scale(n) => cluster.rollout.spec.replicas = *n,
        Op::Wait(s) => {
            cluster.advance(*s);
        }
        Op::PodsStart => cluster.pods_start(),
        Op::Break(n) => cluster.broken.push(Cluster::hash_of(&format!("web:{n}"))),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Outside a rollback, a plan never takes away available pods the Rollout needs: the pods
    /// that stay available (planned ∧ available) are at least min(replicas, available before).
    #[test]
    fn capacity_never_drops_below_replicas(ops in proptest::collection::vec(op(), 1..40)) {
        let mut cluster = deployed(Rollout::test().with_steps(vec![weight(20), pause(Some("1m")), weight(60), pause(None)]));
        for op in &ops {
            apply(&mut cluster, op);
            let before: Vec<_> = cluster.revisions.clone();
            let replicas = cluster.rollout.spec.replicas;
            let available_before: i32 = before.iter().map(|r| r.available).sum();
            let plan = cluster.decide();
            let mitigation = plan.transitions.iter().any(|t| {
                matches!(t.reason.as_str(), "Aborted" | "ProgressDeadlineExceeded" | "CanarySuperseded")
            });
            if mitigation || !cluster.broken.is_empty() {
                continue;
            }
            let kept: i32 = before
                .iter()
                .map(|r| {
                    let planned = plan
                        .replica_sets
                        .iter()
                        .find(|d| d.hash == r.hash && d.arm == r.arm)
                        .map_or(r.desired, |d| d.replicas);
                    r.available.min(planned)
                })
                .sum();
            prop_assert!(
                kept >= replicas.min(available_before),
                "after {op:?}: {kept} pods stay available, {replicas} replicas wanted, {available_before} were available"
            );
        }
    }

    /// A revision that was rolled back is never promoted nor given pods again while the template
    /// stays the same, unless the user retries.
    #[test]
    fn an_aborted_revision_is_never_re_promoted(ops in proptest::collection::vec(op(), 1..40)) {
        let mut cluster = deployed(Rollout::test());
        cluster.set_image("web:9").settle().request("abort").settle();
        let bad = Cluster::hash_of("web:9");
        prop_assert_eq!(cluster.status().rolled_back_revision, Some(bad.clone()));
        for op in ops.iter().filter(|op| !matches!(op, Op::NewImage(_) | Op::Retry)) {
            apply(&mut cluster, op);
            cluster.settle();
            prop_assert_ne!(cluster.status().stable_revision, Some(bad.clone()));
            prop_assert_eq!(cluster.pods("web:9"), 0);
        }
    }

    /// Whatever happens, the decision never panics and re-deciding on its own result changes nothing.
    #[test]
    fn decisions_are_idempotent(ops in proptest::collection::vec(op(), 1..30)) {
        let mut cluster = deployed(Rollout::test());
        for op in &ops {
            apply(&mut cluster, op);
            cluster.decide();
            let status = cluster.status();
            let revisions = cluster.revisions.clone();
            let again = cluster.decide();
            prop_assert!(again.transitions.is_empty(), "second decision made transitions: {:?}", again.transitions);
            prop_assert_eq!(&status.stable_revision, &cluster.status().stable_revision);
            let desired = |rs: &Vec<crate::controller::revisions::Revision>| rs.iter().map(|r| (r.hash.clone(), r.desired)).collect::<Vec<_>>();
            prop_assert_eq!(desired(&revisions), desired(&cluster.revisions));
        }
    }

    /// Every transition that notifies puts exactly one notification per receiver in the outbox,
    /// with a key no other notification has, and nothing else does; re-deciding adds none.
    #[test]
    fn each_notifying_transition_queues_one_notification_per_receiver(ops in proptest::collection::vec(op(), 1..30)) {
        let mut rollout = Rollout::test();
        rollout.spec.notifications = ["oncall", "audit"]
            .iter()
            .map(|name| {
                serde_json::from_value(serde_json::json!({"name": name, "webhook": {"format": "json",
                    "urlFrom": {"secretKeyRef": {"name": "hook", "key": "url"}}}}))
                .unwrap()
            })
            .collect();
        let mut cluster = deployed(rollout);
        let mut seen = std::collections::BTreeSet::new();
        for op in &ops {
            apply(&mut cluster, op);
            let before = cluster.status().pending_notifications.len();
            let plan = cluster.decide();
            let notifying = plan
                .transitions
                .iter()
                .filter(|t| NotificationEvent::for_reason(t.reason).is_some())
                .count();
            let pending = &plan.status.pending_notifications;
            prop_assert_eq!(pending.len() + plan.given_up.len(), before + 2 * notifying);
            for p in pending.iter().rev().take(2 * notifying) {
                prop_assert!(seen.insert(p.id.clone()), "key {} used twice", p.id);
            }
            prop_assert!(pending.len() <= crate::controller::outbox::MAX_PENDING);
            let again = cluster.decide();
            prop_assert_eq!(again.status.pending_notifications.len(), pending.len());
            // The shell delivers between decisions: the outbox empties.
            if let Some(status) = cluster.rollout.status.as_mut() {
                status.pending_notifications.clear();
            }
            cluster.advance(1);
        }
    }
}
