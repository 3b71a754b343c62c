//! `warden inspect COMPONENT`: a component's provenance (its path and SHA-256; a lone file has
//! no lock and no signature checked), tools, schemas, prompts, resources and templates
//! (listed by running its `list` and `templates` in a sandbox granted nothing, as a load
//! would), whether it completes them, and the grants its imports need.

use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use warden::capabilities::{self, Imports};
use warden::catalog::{Finding, FindingKind, Surface, review};
use warden::host::{LockState, Provenance};
use warden::manifest::{is_valid_tool_name, prefixed_tool_name};
use warden::schema::{self, json_name};

use super::write_stdout;

/// `warden inspect COMPONENT [--json]`.
pub(super) fn inspect(path: &Path, as_json: bool) -> Result<ExitCode> {
    let mut out = String::new();
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let description = schema::describe_component(&bytes)
        .with_context(|| format!("{} is not a usable component", path.display()))?;
    let prefix = path
        .file_stem()
        .and_then(|s| s.to_str())
        .map(|s| json_name(s).replace('.', "_"))
        .unwrap_or_default();
    let tools: Vec<Value> = description
        .functions
        .iter()
        .map(|f| {
            let name = prefixed_tool_name(&prefix, &json_name(&f.name));
            let input = f.input_schema();
            // Reviewed as if granted nothing, and alone: no directory, host or other tool.
            let findings: Vec<Value> = review::texts(f.docs.as_deref(), &input, None)
                .into_iter()
                .flat_map(|(field, text)| {
                    review::review(text, &review::Scope::default())
                        .into_iter()
                        .map(move |hit| {
                            let mut value = json!(hit);
                            value["field"] = json!(field);
                            value
                        })
                })
                .collect();
            json!({
                "review": findings,
                "name": name,
                "name_is_valid": is_valid_tool_name(&name),
                "function": f.name,
                "interface": f.interface,
                "description": f.docs,
                "inputSchema": f.input_schema(),
            })
        })
        .collect();
    let grants: Vec<&str> = grants_needed(&description.imports);
    let listed = match description.prompts.is_some() || description.resources.is_some() {
        true => Some(list_texts(path, &prefix)),
        false => None,
    };
    let (serves, text_findings, list_error) = match listed {
        None => (Surface::default(), Vec::new(), None),
        Some(Ok((serves, findings))) => (serves, findings, None),
        Some(Err(error)) => (Surface::default(), Vec::new(), Some(error)),
    };
    // A file on its own: no manifest, so no lock, and no signature checked.
    let provenance = Provenance {
        plugin: prefix.clone(),
        source: path.display().to_string(),
        sha256: hex::encode(Sha256::digest(&bytes)),
        resolved: None,
        signer: None,
        lock: LockState::NoLock,
    };
    if as_json {
        let report = json!({
            "component": path.display().to_string(),
            "provenance": provenance,
            "tools": tools,
            "serves": serves,
            "review": text_findings,
            "list_error": list_error,
            "imports": description.imports,
            "grants": grants,
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
        write_stdout(&out);
        return Ok(ExitCode::SUCCESS);
    }
    writeln!(
        out,
        "{}: {} tool(s) (descriptions reviewed as if granted nothing)",
        path.display(),
        tools.len()
    )?;
    for line in provenance.lines(9) {
        writeln!(out, "  {line}")?;
    }
    for tool in &tools {
        writeln!(out, "\n{}", tool["name"].as_str().unwrap_or_default())?;
        if let Some(description) = tool["description"].as_str() {
            for line in description.lines() {
                writeln!(out, "  {line}")?;
            }
        }
        writeln!(out, "  input schema: {}", tool["inputSchema"])?;
        for finding in tool["review"].as_array().into_iter().flatten() {
            writeln!(
                out,
                "  review: {}: [{}] chars {}..{} (bytes {}..{}): {}",
                finding["field"].as_str().unwrap_or_default(),
                finding["rule"].as_str().unwrap_or_default(),
                finding["char_start"],
                finding["char_end"],
                finding["start"],
                finding["end"],
                finding["text"],
            )?;
        }
    }
    let lines = serves.lines();
    if !lines.is_empty() || list_error.is_some() {
        writeln!(
            out,
            "\nprompts and resources (listed in a sandbox granted nothing):"
        )?;
    }
    for (label, text) in lines {
        writeln!(out, "  {label:<11} {text}")?;
    }
    for finding in &text_findings {
        writeln!(out, "  review: {finding}")?;
    }
    if let Some(error) = &list_error {
        writeln!(out, "  could not be listed: {error}")?;
    }
    writeln!(out, "\nimports:")?;
    for import in &description.imports {
        writeln!(out, "  {import}")?;
    }
    writeln!(out, "\ngrants its imports can use:")?;
    if grants.is_empty() {
        writeln!(out, "  none (pure computation)")?;
    }
    for grant in grants {
        writeln!(out, "  {grant}")?;
    }
    write_stdout(&out);
    Ok(ExitCode::SUCCESS)
}

/// The prompts, resources and templates of the component at `path`, listed as a load lists
/// them (its `list` and `templates` run in a sandbox granted nothing, under the default
/// limits), and the description review's findings in their texts.
fn list_texts(path: &Path, prefix: &str) -> Result<(Surface, Vec<Finding>), String> {
    let component = std::fs::canonicalize(path).map_err(|e| e.to_string())?;
    let dir = component.parent().unwrap_or(Path::new("/")).to_path_buf();
    let source = toml::Value::String(component.display().to_string());
    let manifest = |prefix: Option<&str>| {
        let prefix = prefix
            .map(|p| format!("prefix = {}\n", toml::Value::String(p.to_owned())))
            .unwrap_or_default();
        let text = format!("[plugins.inspected]\ncomponent = {source}\n{prefix}");
        warden::manifest::Manifest::parse(&text, &dir.join("inspect.toml"))
    };
    // A file name that is no valid prefix names the prompts after `inspected`.
    let manifest = manifest(Some(prefix))
        .or_else(|_| manifest(None))
        .map_err(|e| e.to_string())?;
    let mut catalog = warden::host::describe(&manifest).map_err(|errors| {
        errors
            .iter()
            .map(|e| e.message.clone())
            .collect::<Vec<_>>()
            .join("; ")
    })?;
    catalog.review(warden::manifest::ReviewMode::Warn);
    let serves = catalog
        .plugins()
        .first()
        .map(|plugin| catalog.surface(plugin))
        .unwrap_or_default();
    let findings = catalog
        .findings()
        .iter()
        .filter(|f| f.kind != FindingKind::Tool)
        .cloned()
        .collect();
    Ok((serves, findings))
}

/// Which manifest grants would give a component's imports something to act on.
fn grants_needed(imports: &[String]) -> Vec<&'static str> {
    capabilities::described()
        .iter()
        .flat_map(|c| c.offers(Imports(imports)))
        .collect()
}
