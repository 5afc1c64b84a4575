//! `apportion plan`: solve a problem given as JSON, offline, and print the plan as JSON.
//!
//! Useful to see what the allocator would do with a cluster's state before it does it,
//! and to reproduce a solver decision from a captured state.

use std::io::Read;
use std::time::Instant;

use apportion::core::solver::input::{AssignmentJson, ItemJson, MemberJson, PlanInput};
use apportion::core::solver::{default_budget, solve_within};
use serde_json::{json, Map, Value};

/// Every field of the input, with what it means: the one description behind both
/// `plan --schema` and the input section of `plan --help`, so they cannot disagree.
const INPUT_FIELDS: &[(&str, &str)] = &[
    ("members", "the members that may hold items; optional, none by default"),
    ("members[].zone", "the member's failure zone; an id as in the store's keys (no '/', nothing up to '#', not '.' or '..', at most 256 bytes)"),
    ("members[].suffix", "what tells the member apart within its zone; the same rules; zone and suffix together appear once"),
    ("members[].item_limit", "the most copies the member may hold"),
    ("members[].exiting", "whether the member is draining (takes nothing new, gives its copies away); optional, false by default"),
    ("items", "the items to place; optional, none by default"),
    ("items[].id", "the item id; the same rules as a zone; each id appears once"),
    ("items[].replication", "how many copies the item wants, on distinct members, spread over zones; at most 255, as the store accepts"),
    ("assignments", "the copies placed now, which the plan keeps where it can; optional, none by default"),
    ("assignments[].item", "a listed item"),
    ("assignments[].zone", "the zone of a listed member"),
    ("assignments[].suffix", "the suffix of that member"),
    ("assignments[].slot", "the copy's slot, 0 for the primary; an item is on a member once and in a slot once, else the input is refused naming both"),
    ("assignments[].consistent", "whether the copy has caught up (is ready); optional, true by default"),
];

/// Arguments of `apportion plan`.
#[derive(clap::Args, Debug)]
#[command(after_long_help = input_help())]
pub struct PlanArgs {
    /// JSON problem to read; `-` reads standard input.
    #[arg(long, default_value = "-")]
    input: String,
    /// Indent the output JSON.
    #[arg(long)]
    pretty: bool,
    /// Print an example input and what each of its fields means, as JSON, and exit.
    #[arg(long, conflicts_with_all = ["input", "pretty"])]
    schema: bool,
}

/// The input section of `plan --help`: the fields and their meaning, and where the
/// example is.
fn input_help() -> String {
    let width = INPUT_FIELDS
        .iter()
        .map(|(field, _)| field.len())
        .max()
        .unwrap_or(0);
    let mut help = String::from(
        "Input: one JSON object (unknown fields are refused); `apportion plan --schema` \
         prints an example.\n",
    );
    for (field, meaning) in INPUT_FIELDS {
        help.push_str(&format!("  {field:width$}  {meaning}\n"));
    }
    help.push_str(
        "\nOutput: `assignments` (the desired copies, primary first), `added`, `removed` \
         (copies placed now that the plan drops) and `summary`.",
    );
    help
}

/// What `plan --schema` prints: a small valid input, and every field with its meaning.
fn schema() -> Value {
    let member = |zone: &str, suffix: &str, exiting| MemberJson {
        zone: zone.into(),
        suffix: suffix.into(),
        item_limit: 2,
        exiting,
    };
    let example = PlanInput {
        members: vec![member("eu", "h1", false), member("us", "h1", true)],
        items: vec![ItemJson {
            id: "orders".into(),
            replication: 2,
        }],
        assignments: vec![AssignmentJson {
            item: "orders".into(),
            zone: "us".into(),
            suffix: "h1".into(),
            slot: 0,
            consistent: true,
        }],
    };
    let fields: Map<String, Value> = INPUT_FIELDS
        .iter()
        .map(|(field, meaning)| ((*field).to_owned(), Value::from(*meaning)))
        .collect();
    json!({"example": example, "fields": fields})
}

/// Reads, validates and solves the problem and prints the plan (or, with `--schema`, the
/// input's description); the error is one line naming what is wrong and where.
pub fn run(args: &PlanArgs) -> Result<(), String> {
    if args.schema {
        let text = serde_json::to_string_pretty(&schema())
            .map_err(|e| format!("writing the schema: {e}"))?;
        println!("{text}");
        return Ok(());
    }
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// The field paths of `value`: `members`, `members[].zone`, ...
    fn paths(value: &Value, at: &str, into: &mut BTreeSet<String>) {
        match value {
            Value::Object(map) => {
                for (key, inner) in map {
                    let path = if at.is_empty() {
                        key.clone()
                    } else {
                        format!("{at}.{key}")
                    };
                    into.insert(path.clone());
                    paths(inner, &path, into);
                }
            }
            Value::Array(list) => {
                for inner in list {
                    paths(inner, &format!("{at}[]"), into);
                }
            }
            _ => {}
        }
    }

    #[test]
    fn the_schema_explains_every_field_of_its_example_and_the_example_is_valid() {
        let schema = schema();
        let mut shown = BTreeSet::new();
        paths(&schema["example"], "", &mut shown);
        let explained: BTreeSet<String> = INPUT_FIELDS
            .iter()
            .map(|(field, _)| (*field).to_owned())
            .collect();
        assert_eq!(shown, explained);
        let input: PlanInput = serde_json::from_value(schema["example"].clone()).unwrap();
        input.to_problem().unwrap();
    }
}
