//! `judge-bench`: the judge benchmark of issue 5 (see the `judge_bench` library and
//! `docs/judge-benchmark.md`).
//!
//! ```text
//! cargo run --release -p judge-bench -- [--runs N] [--seed S] [--out DIR] [--quick] [--threads T]
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use judge_bench::judges::Settings;
use judge_bench::{report, run};

/// Compares Firebreak's judge with the peers' rules and an oracle on seeded simulated streams.
#[derive(Debug, Parser)]
#[command(name = "judge-bench")]
struct Args {
    /// Runs per cell (default 200; 20 with --quick).
    #[arg(long)]
    runs: Option<u64>,
    /// Seed of every stream.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Directory for report.md, results.csv and the plot.
    #[arg(long, default_value = "target/judge-bench")]
    out: PathBuf,
    /// A small grid, for smoke tests.
    #[arg(long)]
    quick: bool,
    /// Worker threads (default: available cores).
    #[arg(long)]
    threads: Option<usize>,
    /// errorRate maxRatio for Firebreak, the oracle and the naive test (a ratio ≥ 1).
    #[arg(long, default_value_t = 1.2)]
    max_ratio: f64,
    /// crashRate maxRatio for crash streams (a ratio ≥ 1).
    #[arg(long, default_value_t = 2.0)]
    crash_max_ratio: f64,
    /// analysis.confidence (strictly between 0 and 1).
    #[arg(long, default_value_t = 0.99)]
    confidence: f64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let ratio_ok = |r: f64| r.is_finite() && r >= 1.0;
    if !(args.confidence > 0.0 && args.confidence < 1.0) {
        eprintln!(
            "--confidence must be strictly between 0 and 1, got {}",
            args.confidence
        );
        return ExitCode::from(2);
    }
    if !ratio_ok(args.max_ratio) || !ratio_ok(args.crash_max_ratio) {
        eprintln!("--max-ratio and --crash-max-ratio must be finite ratios of at least 1");
        return ExitCode::from(2);
    }
    let runs = args.runs.unwrap_or(if args.quick { 20 } else { 200 });
    if runs == 0 {
        eprintln!("--runs must be at least 1");
        return ExitCode::from(2);
    }
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let cells = if args.quick {
        run::quick_grid()
    } else {
        run::full_grid()
    };
    let settings = Settings {
        max_ratio: args.max_ratio,
        crash_max_ratio: args.crash_max_ratio,
        confidence: args.confidence,
    };
    eprintln!(
        "judge-bench: {} cells × {runs} runs on {threads} threads, seed {}",
        cells.len(),
        args.seed
    );
    let results = run::run(&cells, runs, args.seed, settings, threads, &|done, all| {
        eprintln!("  {done}/{all} streams");
    });
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    match report::write_all(&results, &args.out, &command) {
        Ok(written) => {
            eprintln!(
                "judge-bench: {:.1} s; wrote {} and {}",
                results.wall.as_secs_f64(),
                written.report.display(),
                written.csv.display()
            );
            if let Some((plot, text)) = written.plot {
                eprintln!(
                    "  plot {}{}",
                    plot.display(),
                    if text {
                        ""
                    } else {
                        " (no font found: no text; see report.md)"
                    }
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("judge-bench: {e}");
            ExitCode::FAILURE
        }
    }
}
