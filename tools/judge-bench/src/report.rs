//! The benchmark's outputs: `results.csv` (every cell and judge, with 95% Wilson intervals),
//! `report.md` (the targets of issue 5, summaries, and every cell) and one PNG plot of
//! detection probability against time for the 10 req/s, 1% baseline, R = 2 cell.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use plotters::prelude::*;

use super::judges::JudgeKind;
use super::run::{Cell, Results};
use super::sim::{HORIZON_SECONDS, Nuisance, Regression, Scenario, Traffic, Weights};
use super::stats::wilson;

/// File name of the plot.
pub const PLOT_FILE: &str = "detection-10rps-1pct-R2.png";

/// Environment variable naming a TrueType font for the plot's text (else Debian's DejaVu Sans
/// from `fonts-dejavu-core`, installed by `scripts/install-bench-fonts.sh`, or Liberation Sans).
pub const FONT_ENV: &str = "FIREBREAK_BENCH_FONT";

const FONT_PATHS: [&str; 3] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/truetype/freefont/FreeSans.ttf",
];

/// What [`write_all`] wrote.
#[derive(Clone, Debug, PartialEq)]
pub struct Written {
    /// `report.md`.
    pub report: PathBuf,
    /// `results.csv`.
    pub csv: PathBuf,
    /// The plot, when the grid has its cell; and whether it has text (a font was found).
    pub plot: Option<(PathBuf, bool)>,
}

/// Writes `report.md`, `results.csv` and the plot into `out` (created if missing). `command`
/// is the command line shown in the report.
pub fn write_all(results: &Results, out: &Path, command: &str) -> Result<Written, String> {
    std::fs::create_dir_all(out).map_err(|e| format!("creating {}: {e}", out.display()))?;
    let csv_path = out.join("results.csv");
    std::fs::write(&csv_path, csv(results))
        .map_err(|e| format!("writing {}: {e}", csv_path.display()))?;
    let plot_path = out.join(PLOT_FILE);
    let plot = match plot(results, &plot_path) {
        Ok(Some(text)) => Some((plot_path, text)),
        Ok(None) => None,
        Err(e) => return Err(format!("drawing {}: {e}", plot_path.display())),
    };
    let report_path = out.join("report.md");
    std::fs::write(&report_path, markdown(results, command, plot.as_ref()))
        .map_err(|e| format!("writing {}: {e}", report_path.display()))?;
    Ok(Written {
        report: report_path,
        csv: csv_path,
        plot,
    })
}

/// A column of a summary table: its title and the cells it pools.
type Column = (String, Box<dyn Fn(&Cell) -> bool>);

/// Is `cell` a stream without a regression beyond the margin (R ≤ maxRatio)? Rollbacks there
/// are false rollbacks; elsewhere they are detections and promotions are wrong.
pub fn is_null(results: &Results, cell: &Cell) -> bool {
    cell.scenario.regression().ratio() <= results.settings.margin(&cell.scenario) + 1e-9
}

fn labels(cell: &Cell) -> [String; 6] {
    match cell.scenario {
        Scenario::Errors {
            traffic,
            baseline,
            regression,
            weights,
            nuisance,
        } => [
            "errors".into(),
            traffic.label(),
            format!("{}%", baseline * 100.0),
            regression.label(),
            weights.label(),
            nuisance.label().into(),
        ],
        Scenario::Crashes {
            baseline_per_hour,
            regression,
            weights,
        } => [
            "crashes".into(),
            "-".into(),
            format!("{baseline_per_hour}/h"),
            regression.label(),
            weights.label(),
            "none".into(),
        ],
    }
}

/// A percentage with one decimal (two below 1%).
pub fn percent(x: f64) -> String {
    if x > 0.0 && x < 0.01 {
        format!("{:.2}%", x * 100.0)
    } else {
        format!("{:.1}%", x * 100.0)
    }
}

fn share(k: u64, n: u64) -> f64 {
    if n == 0 { 0.0 } else { k as f64 / n as f64 }
}

fn with_interval(k: u64, n: u64) -> String {
    if n == 0 {
        return "- (no runs)".into();
    }
    let (lo, hi) = wilson(k, n);
    format!(
        "{} [{}, {}]",
        percent(share(k, n)),
        percent(lo),
        percent(hi)
    )
}

fn minutes(seconds: u32) -> f64 {
    f64::from(seconds) / 60.0
}

/// `results.csv`: one row per cell and judge.
pub fn csv(results: &Results) -> String {
    let mut out = String::from(
        "family,traffic_rps,baseline,regression,weights,nuisance,cadence_s,judge,runs,\
         rollbacks,rollback_rate,rollback_lo,rollback_hi,\
         promotions,promotion_rate,promotion_lo,promotion_hi,\
         inconclusive,inconclusive_rate,inconclusive_lo,inconclusive_hi,\
         ttd_median_min,ttd_p90_min,canary_exposure_mean,excess_events_mean,null\n",
    );
    for (c, cell) in results.cells.iter().enumerate() {
        let l = labels(cell);
        for judge in JudgeKind::ALL {
            let t = results.tally(c, judge);
            let mut row = format!(
                "{},{},{},{},{},{},{},{},{}",
                l[0],
                l[1],
                l[2],
                l[3],
                l[4],
                l[5],
                cell.cadence,
                judge.name(),
                t.runs
            );
            for k in [t.rollbacks, t.promotions, t.inconclusive] {
                let (lo, hi) = wilson(k, t.runs);
                let _ = write!(row, ",{k},{:.5},{lo:.5},{hi:.5}", share(k, t.runs));
            }
            match t.detection_quantiles() {
                Some((m, p)) => {
                    let _ = write!(row, ",{:.2},{:.2}", minutes(m), minutes(p));
                }
                None => row.push_str(",,"),
            }
            let runs = t.runs.max(1) as f64;
            let _ = writeln!(
                row,
                ",{:.1},{:.2},{}",
                t.exposure / runs,
                t.excess / runs,
                is_null(results, cell)
            );
            out.push_str(&row);
        }
    }
    out
}

/// Rollbacks and runs of `judge` pooled over the cells `keep` selects.
fn pooled(results: &Results, judge: JudgeKind, keep: &dyn Fn(&Cell) -> bool) -> (u64, u64) {
    results
        .cells
        .iter()
        .enumerate()
        .filter(|(_, c)| keep(c))
        .fold((0, 0), |(k, n), (i, _)| {
            let t = results.tally(i, judge);
            (k + t.rollbacks, n + t.runs)
        })
}

fn errors_with(
    cell: &Cell,
    f: &dyn Fn(Traffic, f64, Regression, Weights, Nuisance) -> bool,
) -> bool {
    match cell.scenario {
        Scenario::Errors {
            traffic,
            baseline,
            regression,
            weights,
            nuisance,
        } => f(traffic, baseline, regression, weights, nuisance),
        Scenario::Crashes { .. } => false,
    }
}

fn ratio_is(r: Regression, value: f64) -> bool {
    matches!(r, Regression::Ratio(x) if (x - value).abs() < 1e-9)
}

fn cell_name(cell: &Cell) -> String {
    let l = labels(cell);
    match cell.scenario {
        Scenario::Errors { .. } => format!(
            "{} req/s, {} baseline, {}, weights {}, {} looks, nuisance {}",
            l[1],
            l[2],
            l[3],
            l[4],
            cadence_label(cell.cadence),
            l[5]
        ),
        Scenario::Crashes { .. } => format!(
            "crashes {} baseline, {}, weights {}, {} looks",
            l[2],
            l[3],
            l[4],
            cadence_label(cell.cadence)
        ),
    }
}

fn cadence_label(cadence: u32) -> String {
    if cadence.is_multiple_of(60) {
        format!("{}m", cadence / 60)
    } else {
        format!("{cadence}s")
    }
}

/// `report.md`.
pub fn markdown(results: &Results, command: &str, plot: Option<&(PathBuf, bool)>) -> String {
    let s = &results.settings;
    let alpha = s.alpha();
    let mut md = String::new();
    let _ = writeln!(md, "# Judge benchmark report\n");
    let _ = writeln!(
        md,
        "Command: `{command}`  \nSeed {}, {} runs per cell, {} cells ({} error, {} crash), {} \
         threads, wall time {:.1} s.\n",
        results.seed,
        results.runs,
        results.cells.len(),
        results
            .cells
            .iter()
            .filter(|c| matches!(c.scenario, Scenario::Errors { .. }))
            .count(),
        results
            .cells
            .iter()
            .filter(|c| matches!(c.scenario, Scenario::Crashes { .. }))
            .count(),
        results.threads,
        results.wall.as_secs_f64()
    );
    let _ = writeln!(
        md,
        "Settings: errorRate maxRatio {}, crashRate maxRatio {}, confidence {} (α = {}). The \
         peers' thresholds are 5× the baseline's configured rate (argo-2x-f3: 2×). Horizon 4 h. \
         Rates are shares of runs with 95% Wilson intervals; times are minutes from canary \
         start.\n",
        s.max_ratio,
        s.crash_max_ratio,
        s.confidence,
        round(alpha)
    );
    let _ = writeln!(md, "## Judges\n");
    for j in JudgeKind::ALL {
        let _ = writeln!(md, "- `{}`: {}", j.name(), j.describe());
    }
    md.push('\n');
    targets(&mut md, results);
    false_rollbacks(&mut md, results);
    detection(&mut md, results);
    slice(&mut md, results, Weights::Stepped, 60);
    blast(&mut md, results, Weights::Stepped, 60);
    crashes(&mut md, results);
    if let Some((path, text)) = plot {
        let _ = writeln!(md, "## Plot\n");
        let _ = writeln!(
            md,
            "`{}`: share of runs rolled back by each minute, 10 req/s, 1% baseline errors, \
             R = 2, weight 20%, looks every minute, no nuisance.{}\n",
            path.file_name()
                .and_then(|f| f.to_str())
                .unwrap_or(PLOT_FILE),
            if *text {
                ""
            } else {
                " No font was found, so the plot has no text: lines in the order of the \
                 judges above, colours red, blue, green, magenta, cyan, orange, brown, purple, \
                 black; x from 0 to 240 minutes, y from 0 to 1."
            }
        );
    }
    all_cells(&mut md, results);
    md
}

fn round(x: f64) -> f64 {
    (x * 1e9).round() / 1e9
}

fn targets(md: &mut String, results: &Results) {
    let alpha = results.settings.alpha();
    let fb = JudgeKind::Firebreak;
    let _ = writeln!(md, "## Targets of issue 5 (Firebreak)\n");
    // 1. False rollbacks at R = 1 and R = maxRatio in every cell.
    let nulls: Vec<usize> = (0..results.cells.len())
        .filter(|&i| is_null(results, &results.cells[i]))
        .collect();
    let mut above = Vec::new();
    let mut significant = Vec::new();
    let mut worst: Option<(f64, usize)> = None;
    for &i in &nulls {
        let t = results.tally(i, fb);
        let rate = share(t.rollbacks, t.runs);
        if rate > alpha {
            above.push(i);
        }
        if wilson(t.rollbacks, t.runs).0 > alpha {
            significant.push(i);
        }
        if worst.is_none_or(|(w, _)| rate > w) {
            worst = Some((rate, i));
        }
    }
    let (k1, n1) = pooled(results, fb, &|c| ratio_is(c.scenario.regression(), 1.0));
    let (km, nm) = pooled(results, fb, &|c| {
        is_null(results, c) && !ratio_is(c.scenario.regression(), 1.0)
    });
    let (kn, nn) = pooled(results, fb, &|c| {
        is_null(results, c) && errors_with(c, &|t, _, _, _, _| t == Traffic::Constant(1.0))
    });
    let _ = writeln!(
        md,
        "1. **False rollbacks ≤ 1 − confidence = {} in every cell (R = 1 and R = maxRatio).** \
         Pooled: R = 1 {}, R = maxRatio {}, all null cells at 1 req/s {}. Cells with an \
         observed rate above α: {} of {}; significantly above (95% Wilson lower bound > α): {}. \
         Worst cell: {}.{}",
        round(alpha),
        with_interval(k1, n1),
        with_interval(km, nm),
        with_interval(kn, nn),
        above.len(),
        nulls.len(),
        significant.len(),
        worst.map_or("-".into(), |(r, i)| format!(
            "{} ({})",
            percent(r),
            cell_name(&results.cells[i])
        )),
        verdict(significant.is_empty())
    );
    for &i in significant.iter().take(12) {
        let t = results.tally(i, fb);
        let _ = writeln!(
            md,
            "   - {}: {}",
            cell_name(&results.cells[i]),
            with_interval(t.rollbacks, t.runs)
        );
    }
    // 2. Detection relative to the oracle.
    let mut strong = (0, 0, Vec::new());
    let mut middle = (0, 0, Vec::new());
    for (i, cell) in results.cells.iter().enumerate() {
        if is_null(results, cell) {
            continue;
        }
        let o = results.tally(i, JudgeKind::Oracle);
        let f = results.tally(i, fb);
        let (po, pf) = (share(o.rollbacks, o.runs), share(f.rollbacks, f.runs));
        let bucket = if po >= 0.95 {
            Some((&mut strong, 0.95))
        } else if po >= 0.5 {
            Some((&mut middle, 0.7))
        } else {
            None
        };
        if let Some((b, factor)) = bucket {
            b.1 += 1;
            if pf >= factor * po {
                b.0 += 1;
            } else {
                b.2.push((i, po, pf));
            }
        }
    }
    let _ = writeln!(
        md,
        "2. **Detection ≥ 0.95× the oracle's where the oracle detects ≥ 95%:** {} of {} cells. \
         **≥ 0.7× where it detects 50–95%:** {} of {} cells.{}",
        strong.0,
        strong.1,
        middle.0,
        middle.1,
        verdict(strong.2.is_empty() && middle.2.is_empty())
    );
    let mut misses: Vec<_> = strong.2.iter().chain(&middle.2).collect();
    misses.sort_by(|a, b| (a.2 / a.1).total_cmp(&(b.2 / b.1)));
    if !misses.is_empty() {
        let _ = writeln!(md, "   Furthest below (Firebreak / oracle detection):");
    }
    for (i, po, pf) in misses.iter().take(12) {
        let _ = writeln!(
            md,
            "   - {}: {} vs {}",
            cell_name(&results.cells[*i]),
            percent(*pf),
            percent(*po)
        );
    }
    // 3. Median time to detect 5× at 10 req/s, 1% baseline.
    let mut rows = Vec::new();
    for (i, cell) in results.cells.iter().enumerate() {
        if errors_with(cell, &|t, b, r, _, n| {
            t == Traffic::Constant(10.0) && b == 0.01 && ratio_is(r, 5.0) && n == Nuisance::None
        }) {
            let f = results.tally(i, fb);
            let o = results.tally(i, JudgeKind::Oracle);
            rows.push((i, f.detection_quantiles(), share(o.rollbacks, o.runs)));
        }
    }
    let ok3 = rows
        .iter()
        .filter(|r| r.2 >= 0.99)
        .all(|r| r.1.is_some_and(|(m, _)| m <= 600));
    let _ = writeln!(
        md,
        "3. **Median time to detect a 5× regression ≤ 10 minutes at 10 req/s, 1% baseline \
         (oracle ≥ 99%):** {}.{}",
        rows.iter()
            .map(|(i, q, po)| format!(
                "weights {} / {} looks: {} (oracle {})",
                labels(&results.cells[*i])[4],
                cadence_label(results.cells[*i].cadence),
                q.map_or("never".into(), |(m, _)| format!("{:.1} min", minutes(m))),
                percent(*po)
            ))
            .collect::<Vec<_>>()
            .join("; "),
        verdict(ok3)
    );
    // 4. Blast radius at most a fifth of the oracle's where it detects ≥ 99%.
    let mut blast = (0, 0, Vec::new());
    for (i, cell) in results.cells.iter().enumerate() {
        if is_null(results, cell) {
            continue;
        }
        let o = results.tally(i, JudgeKind::Oracle);
        if share(o.rollbacks, o.runs) < 0.99 {
            continue;
        }
        let f = results.tally(i, fb);
        let ratio = if o.exposure > 0.0 {
            f.exposure / o.exposure
        } else {
            0.0
        };
        blast.1 += 1;
        if ratio <= 0.2 {
            blast.0 += 1;
        } else {
            blast.2.push((i, ratio));
        }
    }
    blast.2.sort_by(|a, b| b.1.total_cmp(&a.1));
    let _ = writeln!(
        md,
        "4. **Blast radius (mean canary exposure before rollback) ≤ 1/5 of the oracle's where \
         the oracle detects ≥ 99%:** {} of {} cells.{}",
        blast.0,
        blast.1,
        verdict(blast.2.is_empty())
    );
    for (i, ratio) in blast.2.iter().take(8) {
        let _ = writeln!(
            md,
            "   - {}: {:.2} of the oracle's",
            cell_name(&results.cells[*i]),
            ratio
        );
    }
    let _ = writeln!(
        md,
        "5. **Wall time:** {:.1} s on {} threads for {} runs per cell.\n",
        results.wall.as_secs_f64(),
        results.threads,
        results.runs
    );
}

fn verdict(met: bool) -> &'static str {
    if met { " **Met.**" } else { " **Not met.**" }
}

fn false_rollbacks(md: &mut String, results: &Results) {
    let margin = results.settings.max_ratio;
    let _ = writeln!(md, "## False rollbacks, error streams\n");
    let _ = writeln!(
        md,
        "Share of runs rolled back with no regression beyond the margin, pooled over cells.\n"
    );
    let columns: Vec<Column> = vec![
        (
            "R = 1, no nuisance".into(),
            Box::new(|c: &Cell| {
                errors_with(c, &|_, _, r, _, n| ratio_is(r, 1.0) && n == Nuisance::None)
            }),
        ),
        (
            "R = 1 at 1 req/s".into(),
            Box::new(|c: &Cell| {
                errors_with(c, &|t, _, r, _, n| {
                    ratio_is(r, 1.0) && n == Nuisance::None && t == Traffic::Constant(1.0)
                })
            }),
        ),
        (
            "R = 1 diurnal".into(),
            Box::new(|c: &Cell| {
                errors_with(c, &|t, _, r, _, n| {
                    ratio_is(r, 1.0) && n == Nuisance::None && t == Traffic::Diurnal
                })
            }),
        ),
        (
            "R = 1, burst".into(),
            Box::new(|c: &Cell| {
                errors_with(c, &|_, _, r, _, n| ratio_is(r, 1.0) && n == Nuisance::Burst)
            }),
        ),
        (
            "R = 1, missing scrapes".into(),
            Box::new(|c: &Cell| {
                errors_with(c, &|_, _, r, _, n| {
                    ratio_is(r, 1.0) && n == Nuisance::MissingScrapes
                })
            }),
        ),
        (
            format!("R = {margin} (= maxRatio), all nuisances"),
            Box::new(move |c: &Cell| errors_with(c, &|_, _, r, _, _| ratio_is(r, margin))),
        ),
    ];
    table_by_judge(md, results, &columns);
}

fn table_by_judge(md: &mut String, results: &Results, columns: &[Column]) {
    let _ = write!(md, "| judge |");
    for (name, _) in columns {
        let _ = write!(md, " {name} |");
    }
    let _ = write!(md, "\n|---|");
    for _ in columns {
        md.push_str("---|");
    }
    md.push('\n');
    for judge in JudgeKind::ALL {
        let _ = write!(md, "| {} |", judge.name());
        for (_, keep) in columns {
            let (k, n) = pooled(results, judge, keep.as_ref());
            if n == 0 {
                md.push_str(" - |");
            } else {
                let _ = write!(md, " {} |", with_interval(k, n));
            }
        }
        md.push('\n');
    }
    md.push('\n');
}

fn detection(md: &mut String, results: &Results) {
    let _ = writeln!(md, "## Detection, error streams (no nuisance)\n");
    let _ = writeln!(
        md,
        "Share of runs rolled back within the horizon, pooled over traffic, baseline, weights \
         and cadence; the last columns pool 10 and 100 req/s, where information is plentiful.\n"
    );
    let mut columns: Vec<Column> = Vec::new();
    for (name, r) in [
        ("R = 1.5", Regression::Ratio(1.5)),
        ("R = 2", Regression::Ratio(2.0)),
        ("R = 5", Regression::Ratio(5.0)),
        ("hard", Regression::Hard),
    ] {
        columns.push((
            name.into(),
            Box::new(move |c: &Cell| {
                errors_with(c, &|_, _, x, _, n| x == r && n == Nuisance::None)
            }),
        ));
    }
    for (name, r) in [
        ("R = 2, ≥ 10 req/s", Regression::Ratio(2.0)),
        ("R = 5, ≥ 10 req/s", Regression::Ratio(5.0)),
    ] {
        columns.push((
            name.into(),
            Box::new(move |c: &Cell| {
                errors_with(c, &|t, _, x, _, n| {
                    x == r && n == Nuisance::None && matches!(t, Traffic::Constant(v) if v >= 10.0)
                })
            }),
        ));
    }
    table_by_judge(md, results, &columns);
}

fn slice_cells(results: &Results, weights: Weights, cadence: u32) -> Vec<usize> {
    (0..results.cells.len())
        .filter(|&i| {
            let c = &results.cells[i];
            c.cadence == cadence
                && errors_with(c, &|_, _, _, w, n| w == weights && n == Nuisance::None)
        })
        .collect()
}

fn slice(md: &mut String, results: &Results, weights: Weights, cadence: u32) {
    let cells = slice_cells(results, weights, cadence);
    if cells.is_empty() {
        return;
    }
    let _ = writeln!(
        md,
        "## Error streams, weights {}, looks every {}, no nuisance\n",
        weights.label(),
        cadence_label(cadence)
    );
    let _ = writeln!(
        md,
        "Each entry: share of runs rolled back, and for regressions beyond maxRatio the median \
         minutes to rollback. Wrong promotions are the rest of the runs minus the \
         inconclusive ones (see `results.csv`).\n"
    );
    header(md, &["traffic", "baseline", "regression"]);
    for &i in &cells {
        let l = labels(&results.cells[i]);
        let _ = write!(md, "| {} | {} | {} |", l[1], l[2], l[3]);
        for judge in JudgeKind::ALL {
            let t = results.tally(i, judge);
            let mut entry = percent(share(t.rollbacks, t.runs));
            if !is_null(results, &results.cells[i])
                && let Some((m, _)) = t.detection_quantiles()
            {
                let _ = write!(entry, " · {:.0}m", minutes(m));
            }
            let _ = write!(md, " {entry} |");
        }
        md.push('\n');
    }
    md.push('\n');
}

fn header(md: &mut String, first: &[&str]) {
    md.push('|');
    for f in first {
        let _ = write!(md, " {f} |");
    }
    for judge in JudgeKind::ALL {
        let _ = write!(md, " {} |", judge.name());
    }
    md.push_str("\n|");
    for _ in 0..first.len() + JudgeKind::ALL.len() {
        md.push_str("---|");
    }
    md.push('\n');
}

fn blast(md: &mut String, results: &Results, weights: Weights, cadence: u32) {
    let cells: Vec<usize> = slice_cells(results, weights, cadence)
        .into_iter()
        .filter(|&i| !is_null(results, &results.cells[i]))
        .collect();
    if cells.is_empty() {
        return;
    }
    let _ = writeln!(
        md,
        "## Time to detect and blast radius, weights {}, looks every {}, no nuisance\n",
        weights.label(),
        cadence_label(cadence)
    );
    let _ = writeln!(
        md,
        "Each entry: median / p90 minutes to rollback among rolled-back runs; mean canary \
         requests served before rollback (or over the horizon without one); mean excess failed \
         requests (canary errors beyond the baseline's rate) in the same span. A judge that \
         rarely detects shows the whole horizon's exposure.\n"
    );
    header(md, &["traffic", "baseline", "regression"]);
    for &i in &cells {
        let l = labels(&results.cells[i]);
        let _ = write!(md, "| {} | {} | {} |", l[1], l[2], l[3]);
        for judge in JudgeKind::ALL {
            let t = results.tally(i, judge);
            let runs = t.runs.max(1) as f64;
            let q = t.detection_quantiles().map_or("-".into(), |(m, p)| {
                format!("{:.0}/{:.0}m", minutes(m), minutes(p))
            });
            let _ = write!(
                md,
                " {q}; {} req; {} err |",
                compact(t.exposure / runs),
                compact(t.excess / runs)
            );
        }
        md.push('\n');
    }
    md.push('\n');
}

fn compact(x: f64) -> String {
    if x.abs() >= 10_000.0 {
        format!("{:.0}k", x / 1000.0)
    } else if x.abs() >= 100.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.1}")
    }
}

fn crashes(md: &mut String, results: &Results) {
    let cells: Vec<usize> = (0..results.cells.len())
        .filter(|&i| matches!(results.cells[i].scenario, Scenario::Crashes { .. }))
        .collect();
    if cells.is_empty() {
        return;
    }
    let _ = writeln!(md, "## Crash streams\n");
    let _ = writeln!(
        md,
        "{} pods; the canary gets its weight's share (at least 1), the stable pods are the \
         baseline. Restarts follow CrashLoopBackOff (10 s doubling to 300 s). Each entry: share \
         of runs rolled back, with the median minutes to rollback beyond crashRate maxRatio {}.\n",
        super::sim::CRASH_PODS,
        results.settings.crash_max_ratio
    );
    header(md, &["baseline", "regression", "weights", "looks"]);
    for &i in &cells {
        let cell = &results.cells[i];
        let l = labels(cell);
        let _ = write!(
            md,
            "| {} | {} | {} | {} |",
            l[2],
            l[3],
            l[4],
            cadence_label(cell.cadence)
        );
        for judge in JudgeKind::ALL {
            let t = results.tally(i, judge);
            let mut entry = percent(share(t.rollbacks, t.runs));
            if !is_null(results, cell)
                && let Some((m, _)) = t.detection_quantiles()
            {
                let _ = write!(entry, " · {:.0}m", minutes(m));
            }
            let _ = write!(md, " {entry} |");
        }
        md.push('\n');
    }
    md.push('\n');
}

fn all_cells(md: &mut String, results: &Results) {
    let _ = writeln!(md, "## Every error cell: share of runs rolled back\n");
    header(
        md,
        &[
            "traffic",
            "baseline",
            "regression",
            "weights",
            "nuisance",
            "looks",
        ],
    );
    for (i, cell) in results.cells.iter().enumerate() {
        if !matches!(cell.scenario, Scenario::Errors { .. }) {
            continue;
        }
        let l = labels(cell);
        let _ = write!(
            md,
            "| {} | {} | {} | {} | {} | {} |",
            l[1],
            l[2],
            l[3],
            l[4],
            l[5],
            cadence_label(cell.cadence)
        );
        for judge in JudgeKind::ALL {
            let t = results.tally(i, judge);
            let _ = write!(md, " {} |", percent(share(t.rollbacks, t.runs)));
        }
        md.push('\n');
    }
    md.push('\n');
}

/// The cell the plot shows: 10 req/s, 1% baseline, R = 2, weight 20%, looks every minute, no
/// nuisance.
pub fn plot_cell(results: &Results) -> Option<usize> {
    results.cells.iter().position(|c| {
        c.cadence == 60
            && errors_with(c, &|t, b, r, w, n| {
                t == Traffic::Constant(10.0)
                    && b == 0.01
                    && ratio_is(r, 2.0)
                    && w == Weights::Fixed(20)
                    && n == Nuisance::None
            })
    })
}

/// Registers a TrueType font for the plot's text: `$FIREBREAK_BENCH_FONT`, else the first of
/// the usual Debian font files that exists. `false` when none loads.
fn load_font() -> bool {
    let candidates = std::env::var(FONT_ENV)
        .ok()
        .into_iter()
        .chain(FONT_PATHS.iter().map(|s| s.to_string()));
    for path in candidates {
        if let Ok(bytes) = std::fs::read(&path) {
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            if plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok() {
                return true;
            }
        }
    }
    false
}

/// Colour of judge `j` in the plot (the order the report lists when the plot has no text).
fn colour(j: usize) -> RGBColor {
    const COLOURS: [RGBColor; 9] = [
        RGBColor(220, 50, 47),
        RGBColor(38, 139, 210),
        RGBColor(60, 160, 60),
        RGBColor(200, 60, 200),
        RGBColor(42, 161, 152),
        RGBColor(240, 140, 20),
        RGBColor(140, 90, 40),
        RGBColor(108, 60, 196),
        RGBColor(0, 0, 0),
    ];
    COLOURS[j % COLOURS.len()]
}

/// Draws the detection plot to `path`: for each judge, the share of runs rolled back by each
/// minute of the horizon, in the cell of [`plot_cell`]. `Ok(None)` when the grid lacks the
/// cell; `Ok(Some(has_text))` when drawn.
pub fn plot(results: &Results, path: &Path) -> Result<Option<bool>, String> {
    let Some(cell) = plot_cell(results) else {
        return Ok(None);
    };
    let text = load_font();
    let err = |e: &dyn std::fmt::Display| e.to_string();
    let root = BitMapBackend::new(path, (1100, 700)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let horizon = f64::from(HORIZON_SECONDS) / 60.0;
    let mut builder = ChartBuilder::on(&root);
    builder.margin(20);
    if text {
        builder
            .caption(
                format!(
                    "Detection by time: 10 req/s, 1% baseline, R = 2, weight 20%, 1-minute \
                     looks ({} runs)",
                    results.runs
                ),
                ("sans-serif", 22),
            )
            .x_label_area_size(45)
            .y_label_area_size(60);
    }
    let mut chart = builder
        .build_cartesian_2d(0f64..horizon, 0f64..1.02f64)
        .map_err(|e| err(&e))?;
    let mut mesh = chart.configure_mesh();
    if text {
        mesh.x_desc("minutes since the canary started")
            .y_desc("share of runs rolled back")
            .label_style(("sans-serif", 15));
    } else {
        mesh.x_labels(0).y_labels(0);
    }
    mesh.draw().map_err(|e| err(&e))?;
    for (j, judge) in JudgeKind::ALL.iter().enumerate() {
        let tally = results.tally(cell, *judge);
        let points: Vec<(f64, f64)> = (0..=HORIZON_SECONDS / 60)
            .map(|m| (f64::from(m), tally.detected_by(m * 60)))
            .collect();
        let width = if matches!(judge, JudgeKind::Firebreak | JudgeKind::Oracle) {
            4
        } else {
            2
        };
        let style = colour(j).stroke_width(width);
        let series = chart
            .draw_series(LineSeries::new(points, style))
            .map_err(|e| err(&e))?;
        if text {
            let c = colour(j);
            series.label(judge.name()).legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(3))
            });
        }
    }
    if text {
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .position(SeriesLabelPosition::LowerRight)
            .label_font(("sans-serif", 15))
            .draw()
            .map_err(|e| err(&e))?;
    }
    root.present().map_err(|e| err(&e))?;
    Ok(Some(text))
}
