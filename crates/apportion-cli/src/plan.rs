//! `apportion plan`: solve a problem given as JSON, offline, and print the plan as JSON.
//!
//! Useful to see what the allocator would do with a cluster's state before it does it,
//! and to reproduce a solver decision from a captured state.

use std::io::Read;
use std::time::Instant;

use apportion::core::solver::input::PlanInput;
use apportion::core::solver::{default_budget, solve_within};

/// Arguments of `apportion plan`.
#[derive(clap::Args, Debug)]
pub struct PlanArgs {
    /// JSON problem to read; `-` reads standard input.
    #[arg(long, default_value = "-")]
    input: String,
    /// Indent the output JSON.
    #[arg(long)]
    pretty: bool,
}

/// Reads, validates and solves the problem and prints the plan; the error is one line
/// naming what is wrong and where.
pub fn run(args: &PlanArgs) -> Result<(), String> {
    let text = if args.input == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| format!("reading standard input: {e}"))?;
        text
    } else {
        std::fs::read_to_string(&args.input).map_err(|e| format!("reading {}: {e}", args.input))?
    };
    let input = PlanInput::parse(&text).map_err(|e| e.to_string())?;
    let problem = input.to_problem().map_err(|e| e.to_string())?;
    let start = Instant::now();
    let solution = solve_within(&problem, default_budget(&problem)).map_err(|e| e.to_string())?;
    let solve_ms = start.elapsed().as_secs_f64() * 1000.0;
    let output = input.output(&solution, solve_ms);
    let json = if args.pretty {
        serde_json::to_string_pretty(&output)
    } else {
        serde_json::to_string(&output)
    }
    .map_err(|e| format!("writing the plan: {e}"))?;
    println!("{json}");
    Ok(())
}
