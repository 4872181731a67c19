//! The JSON lines the node program prints on stdout, one per event.

use std::io::{self, Write};
use std::time::{SystemTime, UNIX_EPOCH};

pub(crate) fn json_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Prints one JSON line on stdout: the node's current knowledge, then `extra` fields.
pub(crate) fn print_line(id: &str, term: u64, leader: Option<&str>, extra: &str) {
    let ts = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis();
    let leader = leader.map_or("null".to_owned(), json_string);
    let mut out = io::stdout().lock();
    let _ = writeln!(
        out,
        "{{\"ts_ms\":{ts},\"node\":{},\"term\":{term},\"leader\":{leader}{extra}}}",
        json_string(id)
    );
    let _ = out.flush();
}
