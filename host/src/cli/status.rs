//! `warden status`: the servers of this user, what they serve and what they answered.

use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;

use warden::status::{Status, query_all, socket_dir};

use super::write_stdout;

/// Print the status of every running server of this user (only those serving `manifest`,
/// when given), as text or as a JSON array.
pub(super) fn status(
    runtime: &tokio::runtime::Runtime,
    manifest: Option<&Path>,
    json: bool,
) -> Result<ExitCode> {
    let dir = socket_dir();
    let wanted = manifest.map(|m| std::fs::canonicalize(m).unwrap_or_else(|_| m.to_path_buf()));
    let mut statuses = Vec::new();
    for outcome in runtime.block_on(query_all(&dir)) {
        match outcome {
            Ok(status) => {
                if wanted.as_ref().is_none_or(|m| *m == status.manifest) {
                    statuses.push(status);
                }
            }
            Err(error) => eprintln!("warning: {error}"),
        }
    }
    if json {
        write_stdout(&format!("{}\n", serde_json::to_string_pretty(&statuses)?));
        return Ok(ExitCode::SUCCESS);
    }
    if statuses.is_empty() {
        let which = match &wanted {
            Some(manifest) => format!(" serving {}", manifest.display()),
            None => String::new(),
        };
        write_stdout(&format!(
            "no running warden server{which} (servers answer in {})\n",
            dir.display()
        ));
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = String::new();
    for status in &statuses {
        describe(&mut out, status)?;
    }
    write_stdout(&out);
    Ok(ExitCode::SUCCESS)
}

/// One server, a few lines per plugin.
fn describe(out: &mut String, status: &Status) -> std::fmt::Result {
    let over = match &status.listen {
        Some(listen) => format!("http {listen}"),
        None => status.transport.clone(),
    };
    writeln!(
        out,
        "warden {} (pid {}), {over}, up {}s since {}, manifest {}",
        status.version,
        status.pid,
        status.uptime_s,
        status.started,
        status.manifest.display()
    )?;
    if let Some(key) = &status.audit_key {
        writeln!(
            out,
            "  audit key   {key} (checkpoints signed; GET /audit/key)"
        )?;
    }
    if status.reloads + status.failed_reloads > 0 {
        writeln!(
            out,
            "  reloads     {} done, {} failed{}",
            status.reloads,
            status.failed_reloads,
            match &status.last_reload_error {
                Some(error) => format!("; the last failed: {}", error.replace('\n', " ")),
                None => String::new(),
            }
        )?;
    }
    if status.waiting_for_operator > 0 {
        writeln!(
            out,
            "  approvals   {} call(s) waiting for an operator (`warden approvals list`)",
            status.waiting_for_operator
        )?;
    }
    for ship in &status.shipping {
        writeln!(
            out,
            "  audit ship  {} ({}, {}) shipped to seq {} of {}, {} behind{}",
            ship.name,
            ship.kind,
            ship.state,
            ship.shipped,
            ship.written,
            ship.written.saturating_sub(ship.shipped),
            match &ship.last_error {
                Some(error) => format!("; last error: {}", error.replace('\n', " ")),
                None => String::new(),
            }
        )?;
    }
    for plugin in &status.plugins {
        let source = plugin
            .source
            .as_deref()
            .map(|s| format!(", from {s}"))
            .unwrap_or_default();
        writeln!(
            out,
            "  plugin      {} ({}{source}) {}",
            plugin.name,
            plugin.state,
            plugin.component.display()
        )?;
        for line in &plugin.grant_lines {
            writeln!(out, "    {line}")?;
        }
        for tool in &plugin.tools {
            writeln!(out, "    tool  {tool:<40} {}", counts(status, tool))?;
        }
        for (label, text) in plugin.serves.lines() {
            match label {
                "prompt" => writeln!(out, "    {label:<9} {text:<35} {}", counts(status, &text))?,
                _ => writeln!(out, "    {label:<9} {text}")?,
            }
        }
    }
    if let Some(other) = status.calls.get(warden::gate::STATS_OTHER) {
        let line: Vec<String> = other.iter().map(|(o, n)| format!("{o} {n}")).collect();
        writeln!(
            out,
            "  unknown tools and refused requests: {}",
            line.join(", ")
        )?;
    }
    let total: u64 = status.calls.values().flat_map(|o| o.values()).sum();
    writeln!(out, "  calls       {total} in all")
}

/// `ok 3, invalid 1`, or `no calls`.
fn counts(status: &Status, tool: &str) -> String {
    match status.calls.get(tool) {
        Some(outcomes) if !outcomes.is_empty() => outcomes
            .iter()
            .map(|(outcome, n)| format!("{outcome} {n}"))
            .collect::<Vec<_>>()
            .join(", "),
        _ => "no calls".to_owned(),
    }
}
