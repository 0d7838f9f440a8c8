//! Deployment windows as the controller applies them: the Rollout's own `spec.windows`, or the
//! cluster-wide default given to the controller (`--default-windows FILE`).

use std::path::Path;

use k8s_openapi::jiff::Timestamp;

use crate::api::{Rollout, Windows};
use crate::schedule::windows::{WindowState, compile, merge_default};

use super::plan::WindowGate;

/// The windows in force: a cluster-wide default for Rollouts without their own.
#[derive(Clone, Debug, Default)]
pub struct WindowDefaults {
    default: Option<Windows>,
}

impl WindowDefaults {
    /// No default: Rollouts without `spec.windows` may start and advance at any time.
    pub fn none() -> WindowDefaults {
        WindowDefaults { default: None }
    }

    /// Reads the default from a YAML file shaped like `spec.windows`. Errors name the file and
    /// what is wrong in it.
    pub fn load(path: &Path) -> anyhow::Result<WindowDefaults> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            anyhow::anyhow!(
                "cannot read the default windows file {}: {e}",
                path.display()
            )
        })?;
        let windows: Windows = serde_yaml::from_str(&text).map_err(|e| {
            anyhow::anyhow!(
                "{} is not a valid windows document (the shape of spec.windows): {e}",
                path.display()
            )
        })?;
        compile(&windows).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        Ok(WindowDefaults {
            default: Some(windows),
        })
    }

    /// The window gate for `rollout` at `now`; `None` when no windows apply. Invalid windows
    /// close the gate, with the error (naming the field) as the reason.
    pub fn gate(&self, rollout: &Rollout, now: Timestamp) -> Option<WindowGate> {
        let windows = merge_default(rollout.spec.windows.as_ref(), self.default.as_ref())?;
        Some(match compile(windows) {
            Ok(policy) => match policy.state(now) {
                WindowState::Open { closes_at } => WindowGate {
                    open: true,
                    message: "inside the allowed deployment window".into(),
                    opens_at: None,
                    closes_at,
                },
                WindowState::Closed { reason, opens_at } => WindowGate {
                    open: false,
                    message: reason,
                    opens_at,
                    closes_at: None,
                },
            },
            Err(e) => WindowGate {
                open: false,
                message: format!("invalid windows: {e}"),
                opens_at: None,
                closes_at: None,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::sim::TestRollout;

    #[test]
    fn the_cluster_default_applies_to_rollouts_without_their_own_windows() {
        let dir = std::env::temp_dir().join(format!("firebreak-windows-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("windows.yaml");
        std::fs::write(
            &file,
            "timeZone: UTC\ndeny: [{from: \"2026-12-20T00:00:00\", to: \"2027-01-04T00:00:00\"}]\n",
        )
        .unwrap();
        let defaults = WindowDefaults::load(&file).unwrap();
        let rollout = Rollout::test();
        let christmas: Timestamp = "2026-12-24T12:00:00Z".parse().unwrap();
        let gate = defaults
            .gate(&rollout, christmas)
            .expect("the default applies");
        assert!(!gate.open);
        assert_eq!(gate.opens_at, Some("2027-01-04T00:00:00Z".parse().unwrap()));
        assert!(
            defaults
                .gate(&rollout, "2026-11-24T12:00:00Z".parse().unwrap())
                .unwrap()
                .open
        );
        assert_eq!(WindowDefaults::none().gate(&rollout, christmas), None);

        std::fs::write(&file, "timeZone: Mars/Olympus\n").unwrap();
        let err = WindowDefaults::load(&file).unwrap_err().to_string();
        assert!(
            err.contains("windows.yaml") && err.contains("Mars/Olympus"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
