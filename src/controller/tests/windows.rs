//! Deployment windows: a closed window holds a rollout, abort still works.

use super::*;

fn closed_until(cluster: &Cluster, seconds: i64) -> WindowGate {
    WindowGate {
        open: false,
        message: "outside the allowed windows (Mon-Thu 09:00-16:00 Europe/Berlin)".into(),
        opens_at: Some(
            cluster
                .now
                .checked_add(k8s_openapi::jiff::SignedDuration::from_secs(seconds))
                .unwrap(),
        ),
        closes_at: None,
    }
}

#[test]
fn outside_its_window_a_new_revision_waits_before_its_first_canary_pod() {
    let mut cluster = deployed(Rollout::test());
    cluster.window = Some(closed_until(&cluster, 600));
    cluster.set_image("web:2").settle();
    let status = cluster.status();
    assert_eq!(status.phase, Some(Phase::Paused));
    assert!(status.message.unwrap().contains("deployment window closed"));
    assert_eq!(cluster.pods("web:2"), 0, "not a single canary pod");
    assert_eq!(status.window.map(|w| w.open), Some(false));
    assert!(
        cluster.plans.last().unwrap().requeue_after.as_secs() <= 600,
        "looks again when it opens"
    );
    cluster.window = None;
    cluster.settle();
    assert_eq!(cluster.pods("web:2"), 1, "starts once the window opens");
}

#[test]
fn a_window_closing_mid_rollout_holds_it_but_abort_still_works() {
    let mut cluster =
        deployed(Rollout::test().with_steps(vec![weight(10), pause(Some("1m")), weight(50)]));
    cluster.set_image("web:2").settle();
    cluster.window = Some(closed_until(&cluster, 3600));
    cluster.advance(120).settle();
    let status = cluster.status();
    assert_eq!(status.current_step_index, Some(1), "held at the pause");
    assert_eq!(status.phase, Some(Phase::Paused));
    cluster.request("abort").settle();
    assert_eq!(cluster.status().phase, Some(Phase::RolledBack));
    assert_eq!(cluster.pods("web:2"), 0);
}
