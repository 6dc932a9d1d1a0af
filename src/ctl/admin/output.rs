//! rabbitmqadmin's output: its `list_to_table` (nested objects flattened to
//! `a.b` columns, Python's `str()` and `json.dumps` for values), the ASCII
//! table and the tsv / kvp / long / bash / raw_json / pretty_json formats.
//! Pure text, except `format_list`, which prints.

use serde_json::{Map, Value};

use super::{die, usage_failure, AdminOptions, PROMOTE_COLUMNS};
use crate::ctl::Failure;
use crate::ctl::Io;

/// Python's `json.dumps` (separators `, ` and `: `, non-ASCII escaped).
pub fn py_json(v: &Value) -> String {
    match v {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => {
            let mut out = String::from("\"");
            for c in s.chars() {
                match c {
                    '"' => out.push_str("\\\""),
                    '\\' => out.push_str("\\\\"),
                    '\n' => out.push_str("\\n"),
                    '\r' => out.push_str("\\r"),
                    '\t' => out.push_str("\\t"),
                    c if (c as u32) < 0x20 || (c as u32) > 0x7e => {
                        let mut buf = [0u16; 2];
                        for unit in c.encode_utf16(&mut buf) {
                            out.push_str(&format!("\\u{unit:04x}"));
                        }
                    }
                    c => out.push(c),
                }
            }
            out.push('"');
            out
        }
        Value::Array(items) => format!("[{}]", items.iter().map(py_json).collect::<Vec<_>>().join(", ")),
        Value::Object(map) => format!(
            "{{{}}}",
            map.iter()
                .map(|(k, v)| format!("{}: {}", py_json(&Value::String(k.clone())), py_json(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// One value as rabbitmqadmin's `maybe_utf8` / `str()` shows it.
fn py_str(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::Bool(true) => "True".to_owned(),
        Value::Bool(false) => "False".to_owned(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        other => py_json(other),
    }
}

/// Walks one item as rabbitmqadmin's `list_to_table` does: nested objects
/// become `a.b` columns up to `max_depth`, JSON columns stay JSON, lists of
/// strings are joined with spaces.
fn flatten(
    prefix: &str,
    depth: usize,
    max_depth: usize,
    item: &Map<String, Value>,
    json_cols: &[&str],
    out: &mut Vec<(String, String)>,
) {
    for (key, sub) in item {
        let column = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
        match sub {
            Value::Object(map) => {
                if json_cols.contains(&key.as_str()) {
                    out.push((column, py_json(sub)));
                } else if depth < max_depth {
                    flatten(&column, depth + 1, max_depth, map, json_cols, out);
                }
            }
            Value::Array(items) => {
                let value = if items.iter().all(Value::is_string) {
                    items.iter().map(py_str).collect::<Vec<_>>().join(" ")
                } else {
                    py_json(sub)
                };
                out.push((column, value));
            }
            other => out.push((column, py_str(other))),
        }
    }
}

fn column_sort_key(col: &str) -> (usize, usize, String) {
    match PROMOTE_COLUMNS.iter().position(|c| *c == col) {
        Some(i) => (1, i, String::new()),
        None => (2, 0, col.to_owned()),
    }
}

/// The columns and rows rabbitmqadmin shows for a JSON list.
pub fn to_table(
    items: &[Value],
    columns: &[String],
    depth: usize,
    json_cols: &[&str],
) -> (Vec<String>, Vec<Vec<String>>) {
    let max_depth = if columns.is_empty() { depth } else { usize::MAX };
    let flat: Vec<Vec<(String, String)>> = items
        .iter()
        .map(|item| {
            let mut out = Vec::new();
            if let Value::Object(map) = item {
                flatten("", 1, max_depth, map, json_cols, &mut out);
            }
            out
        })
        .collect();
    let columns: Vec<String> = if columns.is_empty() {
        let mut seen: Vec<String> = Vec::new();
        for row in &flat {
            for (c, _) in row {
                if !seen.contains(c) {
                    seen.push(c.clone());
                }
            }
        }
        seen.sort_by_key(|c| column_sort_key(c));
        seen
    } else {
        columns.to_vec()
    };
    let rows = flat
        .iter()
        .map(|row| {
            columns
                .iter()
                .map(|c| row.iter().find(|(k, _)| k == c).map(|(_, v)| v.clone()).unwrap_or_default())
                .collect()
        })
        .collect();
    (columns, rows)
}

/// rabbitmqadmin's ASCII table: centred headers, left-aligned cells.
pub fn ascii_table(columns: &[String], rows: &[Vec<String>]) -> String {
    let width = |s: &str| s.chars().count();
    let mut widths: Vec<usize> = columns.iter().map(|c| width(c)).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(width(cell));
        }
    }
    let bar = format!("+{}\n", widths.iter().map(|w| format!("{}+", "-".repeat(w + 2))).collect::<String>());
    let mut out = bar.clone();
    out.push('|');
    for (c, w) in columns.iter().zip(&widths) {
        let pad = w - width(c);
        out.push_str(&format!(" {}{c}{} |", " ".repeat(pad / 2), " ".repeat(pad - pad / 2)));
    }
    out.push('\n');
    out.push_str(&bar);
    for row in rows {
        out.push('|');
        for (cell, w) in row.iter().zip(&widths) {
            out.push_str(&format!(" {cell}{} |", " ".repeat(w - width(cell))));
        }
        out.push('\n');
    }
    out.push_str(&bar);
    out
}

pub(super) fn format_list(
    io: &mut Io,
    o: &AdminOptions,
    body: &str,
    columns: &[String],
    json_cols: &[&str],
) -> Result<(), Failure> {
    if o.format == "raw_json" {
        io.println(body);
        return Ok(());
    }
    let parsed: Value = serde_json::from_str(body).map_err(|e| die(&format!("invalid JSON from the API: {e}")))?;
    if o.format == "pretty_json" {
        io.println(&serde_json::to_string_pretty(&parsed).unwrap_or_default());
        return Ok(());
    }
    let items = parsed.as_array().cloned().unwrap_or_default();
    let (columns, rows) = to_table(&items, columns, o.depth, json_cols);
    if rows.is_empty() {
        if o.verbose {
            io.println("No items");
        }
        return Ok(());
    }
    match o.format.as_str() {
        "table" => io.print(&ascii_table(&columns, &rows)),
        "tsv" => {
            if o.verbose {
                io.println(&columns.join("\t"));
            }
            for row in rows {
                io.println(&row.join("\t"));
            }
        }
        "kvp" => {
            for row in rows {
                let pairs: Vec<String> = columns.iter().zip(&row).map(|(c, v)| format!("{c}=\"{v}\"")).collect();
                io.println(&pairs.join(" "));
            }
        }
        "long" => {
            let sep = format!("\n{}\n", "-".repeat(80));
            let w = columns.iter().map(|c| c.chars().count()).max().unwrap_or(0);
            io.println(&sep);
            for row in rows {
                for (c, v) in columns.iter().zip(&row) {
                    io.println(&format!("{c:>w$}: {v}"));
                }
                io.println(&sep);
            }
        }
        "bash" => {
            if let Some(ix) = columns.iter().position(|c| c == "name") {
                io.println(&rows.iter().map(|r| r[ix].clone()).collect::<Vec<_>>().join(" "));
            }
        }
        other => return Err(usage_failure(&format!("Format {other} not recognised"))),
    }
    Ok(())
}
