//! Writing results: aligned text tables for people, JSON documents for scripts.
//!
//! Tables are printed by hand: the columns are few and known, and a table crate would add
//! more code to the build than this module has lines.

use std::io::Write;

use clap::{Args, ValueEnum};
use serde::Serialize;

use crate::error::Result;

/// How a column's cells line up: text to the left, numbers to the right so digits align.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Align {
    /// Pad on the right.
    Left,
    /// Pad on the left.
    Right,
}

/// A text table with a header row; columns are as wide as their widest cell.
#[derive(Debug)]
pub struct Table {
    /// Header and alignment of each column.
    columns: Vec<(&'static str, Align)>,
    /// The cells, one vector per row.
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column headers and alignments and no rows yet.
    pub fn new(columns: &[(&'static str, Align)]) -> Self {
        Table {
            columns: columns.to_vec(),
            rows: Vec::new(),
        }
    }

    /// Adds a row; it must have one cell per column.
    pub fn row(&mut self, cells: Vec<String>) {
        debug_assert_eq!(cells.len(), self.columns.len(), "one cell per column");
        self.rows.push(cells);
    }

    /// Writes the header and the rows, two spaces between columns, no trailing spaces.
    pub fn write(&self, out: &mut impl Write) -> Result<()> {
        let mut widths: Vec<usize> = self.columns.iter().map(|(h, _)| h.len()).collect();
        for row in &self.rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let header: Vec<String> = self.columns.iter().map(|(h, _)| h.to_string()).collect();
        for cells in std::iter::once(&header).chain(&self.rows) {
            let mut line = String::new();
            for (index, ((cell, width), (_, align))) in
                cells.iter().zip(&widths).zip(&self.columns).enumerate()
            {
                if index > 0 {
                    line.push_str("  ");
                }
                let padding = " ".repeat(width - cell.chars().count());
                match align {
                    Align::Left => {
                        line.push_str(cell);
                        line.push_str(&padding);
                    }
                    Align::Right => {
                        line.push_str(&padding);
                        line.push_str(cell);
                    }
                }
            }
            writeln!(out, "{}", line.trim_end())?;
        }
        Ok(())
    }
}

/// How a command prints its result: `-o table|wide|json` as with kubectl, or the `--json`
/// and `--wide` shorthands, the same flags on every command that prints something, so a
/// script or a habit carries from one command to the next.
#[derive(Args, Debug, Clone, Copy, Default)]
pub struct FormatArgs {
    /// Output format: `table` (the default), `wide` (the table with every column the
    /// command has: `items list` adds the members holding each item) or `json`.
    #[arg(short = 'o', long = "output", value_enum, value_name = "FORMAT")]
    output: Option<Format>,
    /// Same as `-o json`.
    #[arg(long, conflicts_with_all = ["output", "wide"])]
    json: bool,
    /// Same as `-o wide`.
    #[arg(long, conflicts_with = "output")]
    wide: bool,
}

/// The forms a result can take; see [`FormatArgs`].
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// Aligned text for people.
    #[default]
    Table,
    /// Text with every column.
    Wide,
    /// JSON for scripts.
    Json,
}

impl FormatArgs {
    /// The format the flags ask for.
    pub fn format(&self) -> Format {
        match (self.output, self.json, self.wide) {
            (Some(format), _, _) => format,
            (None, true, _) => Format::Json,
            (None, false, true) => Format::Wide,
            (None, false, false) => Format::Table,
        }
    }

    /// Whether the result is JSON.
    pub fn json(&self) -> bool {
        self.format() == Format::Json
    }

    /// Whether a table gets every column.
    pub fn wide(&self) -> bool {
        self.format() == Format::Wide
    }
}

/// Writes `value` as one pretty-printed JSON document followed by a newline.
pub fn write_json(out: &mut impl Write, value: &impl Serialize) -> Result<()> {
    serde_json::to_writer_pretty(&mut *out, value).map_err(std::io::Error::from)?;
    writeln!(out)?;
    Ok(())
}

/// Writes a listing: the rows as a JSON array, or as a table, or `none` when there are none.
pub fn write_rows<R: Serialize>(
    out: &mut impl Write,
    json: bool,
    rows: &[R],
    none: impl std::fmt::Display,
    table: impl FnOnce(&[R]) -> Table,
) -> Result<()> {
    if json {
        write_json(out, &rows)
    } else if rows.is_empty() {
        writeln!(out, "{none}")?;
        Ok(())
    } else {
        table(rows).write(out)
    }
}

/// Writes `value` as one JSON document on a single line, for streams of documents.
pub fn write_json_line(out: &mut impl Write, value: &impl Serialize) -> Result<()> {
    serde_json::to_writer(&mut *out, value).map_err(std::io::Error::from)?;
    writeln!(out)?;
    Ok(())
}

/// `n` followed by `word`, with an `s` unless `n` is 1: "1 item", "3 items".
pub fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("{n} {word}")
    } else {
        format!("{n} {word}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_aligned_and_lines_have_no_trailing_spaces() {
        let mut table = Table::new(&[("NAME", Align::Left), ("N", Align::Right)]);
        table.row(vec!["a".into(), "10".into()]);
        table.row(vec!["long-name".into(), "7".into()]);
        let mut out = Vec::new();
        table.write(&mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "NAME        N\na          10\nlong-name   7\n"
        );
    }
}
