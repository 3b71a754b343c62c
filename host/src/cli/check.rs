//! `warden check [--json]`: validate a manifest and the components it names, and show the
//! whole security posture: plugins, grants, limits, the gate, tools, warnings.

use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use serde_json::{Value, json};

use warden::capabilities;
use warden::catalog::{GrantWarning, grant_warnings, unacknowledged_warnings};
use warden::host::{Host, Provenance};
use warden::lock::LockCheck;
use warden::manifest::{Approval, ByteSize, LockMode, Manifest, format_duration};
use warden::runtime::Plugin;

use super::{load, write_stdout};

/// `warden check [MANIFEST] [--json]`. With `--json`, a manifest that does not load is a
/// JSON report too (`"ok": false` and its `errors`), still with exit status 2.
pub(super) fn check(path: &Path, as_json: bool) -> Result<ExitCode> {
    if as_json && let Err(error) = Manifest::load(path) {
        let errors = error.errors.iter().map(diagnostic_json).collect();
        return Ok(refused(
            path,
            errors,
            &anyhow::anyhow!("invalid manifest:\n{error}"),
        ));
    }
    let loaded = load(path).and_then(|(manifest, host)| {
        if let Some(tls) = &manifest.http.tls {
            warden::server::http::server_config(tls)
                .with_context(|| format!("{}: [http] tls", path.display()))?;
        }
        Ok((manifest, host))
    });
    let (manifest, host) = match loaded {
        Ok(loaded) => loaded,
        Err(error) if as_json => {
            let errors = format!("{error:#}")
                .lines()
                .skip_while(|line| line.ends_with(':'))
                .map(|line| json!({ "message": line }))
                .collect();
            return Ok(refused(path, errors, &error));
        }
        Err(error) => return Err(error),
    };
    let plugins: Vec<PluginReport> = host
        .plugins()
        .iter()
        .map(|plugin| PluginReport::new(plugin, &host))
        .collect();
    let refused: Vec<&str> = host.lock.refused().collect();
    if as_json {
        let mut report = json_report(path, &manifest, &host, &plugins);
        report["lock"] = lock_json(&host.lock);
        if !refused.is_empty() {
            report["ok"] = json!(false);
        }
        write_stdout(&format!("{}\n", serde_json::to_string_pretty(&report)?));
    } else {
        let mut text = text_report(path, &manifest, &host, &plugins)?;
        text.insert_str(
            text.find('\n').map_or(0, |at| at + 1),
            &format!("{}\n", lock_summary(&host.lock)),
        );
        write_stdout(&text);
    }
    let review_refused = host.gate.catalog().refused();
    if !review_refused.is_empty() {
        eprintln!(
            "error: [server] review = \"refuse\" leaves out plugin(s) {}: their descriptions have unaccepted review findings",
            review_refused.join(", ")
        );
    }
    if refused.is_empty() {
        return Ok(if review_refused.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        });
    }
    eprintln!(
        "error: not served, what they serve differs from {} (the diff is above): {}; review with \
         `warden lock --diff`, then run `warden lock` to accept",
        host.lock.path.display(),
        refused
            .iter()
            .map(|name| format!("plugin `{name}`"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(ExitCode::from(1))
}

/// One line on `warden.lock`: its mode and what it refused.
fn lock_summary(check: &LockCheck) -> String {
    let path = check.path.display();
    let refused: Vec<&str> = check.refused().collect();
    match check.mode {
        LockMode::Off => "lock        off (`warden lock` pins the tools)".to_owned(),
        LockMode::Enforce if !refused.is_empty() => format!(
            "lock        {path} (enforce): REFUSED {}",
            refused.join(", ")
        ),
        LockMode::Warn if !check.drift.is_empty() => format!(
            "lock        {path} (warn): {} plugin(s) differ, served anyway",
            check.drift.len()
        ),
        LockMode::Enforce => format!("lock        {path} (enforce): the tools match"),
        LockMode::Warn => format!("lock        {path} (warn): the tools match"),
    }
}

/// `check --json`'s `lock`: the mode, the file, the drifting plugins and their diffs.
fn lock_json(check: &LockCheck) -> Value {
    let mode = match check.mode {
        LockMode::Enforce => "enforce",
        LockMode::Warn => "warn",
        LockMode::Off => "off",
    };
    json!({
        "mode": mode,
        "path": check.path.display().to_string(),
        "refused": check.refused().collect::<Vec<_>>(),
        "unpinned": check.unpinned,
        "drift": check
            .drift
            .iter()
            .map(|d| json!({ "plugin": d.plugin, "diff": d.to_string() }))
            .collect::<Vec<_>>(),
    })
}

/// A manifest problem as JSON: `file`, `line`, `column`, `key` (when it has a place) and
/// `message`.
fn diagnostic_json(diagnostic: &warden::manifest::Diagnostic) -> Value {
    let mut value = json!({ "message": diagnostic.message });
    if let Some(location) = &diagnostic.location {
        value["file"] = json!(location.file.display().to_string());
        value["line"] = json!(location.line);
        value["column"] = json!(location.column);
        value["key"] = json!(location.key);
    }
    value
}

/// `check --json` of a manifest that does not load: the report on stdout, the usual message on
/// stderr, exit status 2 (as without `--json`).
fn refused(path: &Path, errors: Vec<Value>, error: &anyhow::Error) -> ExitCode {
    let report = json!({
        "manifest": path.display().to_string(),
        "ok": false,
        "errors": errors,
    });
    write_stdout(&format!("{report:#}\n"));
    eprintln!("error: {error:#}");
    ExitCode::from(2)
}

/// What `check` says about one plugin beyond its manifest entry.
struct PluginReport<'a> {
    plugin: &'a Arc<Plugin>,
    /// Warnings not acknowledged in the manifest.
    warnings: Vec<GrantWarning>,
    /// Acknowledgements that match no warning: (code, line).
    stale: Vec<(String, usize)>,
    /// The plugin's tools: (name, roles that may call it, annotations).
    tools: Vec<(String, Option<Vec<String>>, Value)>,
}

impl<'a> PluginReport<'a> {
    fn new(plugin: &'a Arc<Plugin>, host: &Host) -> Self {
        let all = grant_warnings(plugin);
        let acknowledged = &plugin.config.acknowledge;
        let stale = acknowledged
            .iter()
            .filter(|ack| !all.iter().any(|w| w.code == ack.code))
            .map(|ack| (ack.code.clone(), ack.location.line))
            .collect();
        let warnings = unacknowledged_warnings(plugin);
        let tools = host
            .gate
            .catalog()
            .iter()
            .filter(|t| Arc::ptr_eq(&t.plugin, plugin))
            .map(|tool| {
                let roles = host
                    .gate
                    .access(tool.name())
                    .and_then(|a| a.roles())
                    .map(<[String]>::to_vec);
                let annotations =
                    serde_json::to_value(&tool.descriptor.annotations).unwrap_or(Value::Null);
                (tool.name().to_owned(), roles, annotations)
            })
            .collect();
        PluginReport {
            plugin,
            warnings,
            stale,
            tools,
        }
    }

    /// Every warning line: the unacknowledged ones, then the stale acknowledgements, then the
    /// description review's unaccepted findings and stale acceptances.
    fn warning_lines(&self, host: &Host) -> Vec<(&'static str, String)> {
        let mut lines: Vec<(&'static str, String)> = self
            .warnings
            .iter()
            .map(|w| (w.code, format!("{} [{}]", w.message, w.code)))
            .collect();
        for (code, line) in &self.stale {
            lines.push((
                "stale-acknowledgement",
                format!(
                    "acknowledge lists {code:?} (line {line}) but there is no such warning: remove it"
                ),
            ));
        }
        let name = &self.plugin.config.name;
        let catalog = host.gate.catalog();
        for finding in catalog.findings() {
            if finding.plugin == *name && !finding.accepted {
                lines.push((finding.hit.rule, format!("review: {finding}")));
            }
        }
        for stale in catalog.stale_acceptances() {
            if stale.plugin == *name {
                lines.push((
                    "stale-acceptance",
                    format!(
                        "accept_review of {} `{}` lists {:?} (line {}) but it has no such finding: remove it",
                        stale.kind.noun(), stale.function, stale.rule, stale.location.line
                    ),
                ));
            }
        }
        lines
    }
}

/// The text report.
fn text_report(
    path: &Path,
    manifest: &Manifest,
    host: &Host,
    plugins: &[PluginReport<'_>],
) -> Result<String> {
    let mut out = String::new();
    writeln!(
        out,
        "{}: ok, {} plugin(s), {} tool(s)",
        path.display(),
        manifest.plugins.len(),
        host.gate.catalog().iter().count()
    )?;
    writeln!(out, "{}", audit_summary(manifest))?;
    if let Some(line) = checkpoint_summary(manifest, host) {
        writeln!(out, "{line}")?;
    }
    writeln!(out, "{}", cache_summary(manifest))?;
    writeln!(out, "{}", http_summary(manifest))?;
    writeln!(out, "{}", approval_summary(manifest, host))?;
    let catalog = host.gate.catalog();
    writeln!(
        out,
        "review: {}; {} finding(s), {} accepted{}",
        manifest.server.review.as_str(),
        catalog.findings().len(),
        catalog.findings().iter().filter(|f| f.accepted).count(),
        match catalog.refused() {
            [] => String::new(),
            refused => format!("; not served: {}", refused.join(", ")),
        }
    )?;
    for warning in host
        .gate
        .catalog()
        .flow_warnings(manifest.approval.after_private)
    {
        writeln!(out, "warning: {} [{}]", warning.message, warning.code)?;
    }
    if let Some(warning) = operators_warning(manifest) {
        writeln!(out, "warning: {warning} [{OPERATORS_WITHOUT_AUTH}]")?;
    }
    if let Some(warning) = replica_key_warning(manifest) {
        writeln!(out, "warning: {warning} [{REPLICAS_PER_PROCESS_KEY}]")?;
    }
    if !host.lock.unpinned.is_empty() {
        let warning = host.lock.unpinned_warning();
        writeln!(out, "warning: {warning} [{UNPINNED_PROMPTS}]")?;
    }
    for warning in unpinned_warnings(manifest) {
        writeln!(out, "warning: {warning} [{UNPINNED_COMPONENT}]")?;
    }
    for report in plugins {
        let config = &report.plugin.config;
        writeln!(
            out,
            "\nplugin {} ({})",
            config.name,
            match &config.oci {
                Some(_) => format!(
                    "{} -> {}",
                    config.component_source,
                    config.component.display()
                ),
                None => config.component.display().to_string(),
            }
        )?;
        if let Some(provenance) = provenance_of(host, &config.name) {
            for line in provenance.lines(12) {
                writeln!(out, "  {line}")?;
            }
        }
        for line in capabilities::grants_summary(config) {
            writeln!(out, "  {line}")?;
        }
        let limits = &config.limits;
        writeln!(
            out,
            "  limits      fuel {}, memory {} MiB, timeout {:?}, output {} KiB",
            limits.fuel,
            limits.memory >> 20,
            limits.timeout,
            limits.max_output >> 10
        )?;
        writeln!(out, "  gate        {}", config.policy.summary())?;
        for (_, warning) in report.warning_lines(host) {
            writeln!(out, "  warning     {warning}")?;
        }
        if host.gate.catalog().refused().contains(&config.name) {
            writeln!(
                out,
                "  refused     not served: [server] review = \"refuse\" and its descriptions have unaccepted review findings"
            )?;
        }
        for (name, roles, _) in &report.tools {
            let roles = match roles {
                Some(roles) => format!(" (roles: {})", roles.join(", ")),
                None => String::new(),
            };
            let asks = match host.gate.catalog().get(name) {
                Some(tool) if tool.approval == Approval::Ask => ", asks a human",
                _ => "",
            };
            let private = match host.gate.catalog().get(name) {
                Some(tool) if tool.private => ", private data",
                _ => "",
            };
            let tool = host.gate.catalog().get(name);
            let task = match tool.and_then(|tool| tool.task) {
                Some((mode, timeout)) => {
                    let after = match tool.and_then(|tool| tool.task_after) {
                        Some(after) => format!(", after {}", format_duration(after)),
                        None => String::new(),
                    };
                    format!(
                        ", task {} (limit {}{after})",
                        mode.as_str(),
                        format_duration(timeout)
                    )
                }
                None => String::new(),
            };
            writeln!(out, "  tool        {name}{roles}{asks}{private}{task}")?;
        }
        for (label, text) in host.gate.catalog().surface(report.plugin).lines() {
            writeln!(out, "  {label:<11} {text}")?;
        }
    }
    Ok(out)
}

/// The JSON report: the same facts as the text, as data.
fn json_report(
    path: &Path,
    manifest: &Manifest,
    host: &Host,
    plugins: &[PluginReport<'_>],
) -> Value {
    let mut warnings: Vec<Value> = host
        .gate
        .catalog()
        .flow_warnings(manifest.approval.after_private)
        .into_iter()
        .map(|w| json!({ "code": w.code, "message": w.message }))
        .collect();
    let plugins: Vec<Value> = plugins
        .iter()
        .map(|report| {
            let config = &report.plugin.config;
            let plugin_warnings: Vec<Value> = report
                .warning_lines(host)
                .into_iter()
                .map(|(code, message)| json!({ "code": code, "message": message }))
                .collect();
            for warning in &plugin_warnings {
                let mut warning = warning.clone();
                warning["plugin"] = json!(config.name);
                warnings.push(warning);
            }
            let limits = &config.limits;
            json!({
                "name": config.name,
                "component": config.component.display().to_string(),
                "provenance": provenance_of(host, &config.name),
                "grants": capabilities::grants_report(config),
                "limits": {
                    "fuel": limits.fuel,
                    "memory": limits.memory,
                    "timeout_ms": limits.timeout.as_millis() as u64,
                    "max_output": limits.max_output,
                },
                "gate": config.policy.summary(),
                "roles": config.policy.roles,
                "acknowledged": config.acknowledge.iter().map(|a| &a.code).collect::<Vec<_>>(),
                "warnings": plugin_warnings,
                "review": {
                    "refused": host.gate.catalog().refused().contains(&config.name),
                    "findings": host.gate.catalog().findings().iter()
                        .filter(|f| f.plugin == config.name)
                        .collect::<Vec<_>>(),
                    "stale": host.gate.catalog().stale_acceptances().iter()
                        .filter(|s| s.plugin == config.name)
                        .map(|s| json!({
                            "kind": s.kind.noun(),
                            "function": s.function,
                            "rule": s.rule,
                            "line": s.location.line,
                        }))
                        .collect::<Vec<_>>(),
                },
                "serves": host.gate.catalog().surface(report.plugin),
                "tools": report.tools.iter().map(|(name, roles, annotations)| {
                    let tool = host.gate.catalog().get(name);
                    json!({
                        "name": name,
                        "roles": roles,
                        "annotations": annotations,
                        "approval": tool.map(|t| t.approval.as_str()),
                        "private": tool.is_some_and(|t| t.private),
                        "task": tool.and_then(|t| t.task).map(|(mode, timeout)| json!({
                            "mode": mode.as_str(),
                            "timeout_ms": timeout.as_millis() as u64,
                            "after_ms": tool
                                .and_then(|t| t.task_after)
                                .map(|after| after.as_millis() as u64),
                        })),
                    })
                }).collect::<Vec<_>>(),
            })
        })
        .collect();
    if let Some(warning) = operators_warning(manifest) {
        warnings.push(json!({ "code": OPERATORS_WITHOUT_AUTH, "message": warning }));
    }
    if let Some(warning) = replica_key_warning(manifest) {
        warnings.push(json!({ "code": REPLICAS_PER_PROCESS_KEY, "message": warning }));
    }
    if !host.lock.unpinned.is_empty() {
        let warning = host.lock.unpinned_warning();
        warnings.push(json!({ "code": UNPINNED_PROMPTS, "message": warning }));
    }
    for warning in unpinned_warnings(manifest) {
        warnings.push(json!({ "code": UNPINNED_COMPONENT, "message": warning }));
    }
    json!({
        "manifest": path.display().to_string(),
        "ok": true,
        "plugin_count": manifest.plugins.len(),
        "tool_count": host.gate.catalog().iter().count(),
        "audit": manifest.audit.as_ref().map(|audit| json!({
            "path": audit.path.display().to_string(),
            "rotate": audit.rotate,
            "fsync": audit.fsync,
            "replica": audit.replica,
            "checkpoints": host.gate.audit_key().map(|key| json!({
                "key_id": key.id(),
                "public_key": key.base64(),
                "public_key_pem": key.pem(),
                "every": audit.checkpoint_every,
                "interval_ms": u64::try_from(audit.checkpoint_interval.as_millis()).unwrap_or(u64::MAX),
            })),
            "ship": audit.ship.iter().map(|ship| json!({
                "name": ship.name,
                "kind": ship.sink.kind(),
                "to": ship_destination(ship),
            })).collect::<Vec<_>>(),
        })),
        "cache": { "dir": manifest.cache_dir.display().to_string() },
        "http": {
            "listen": manifest.http.listen.map(|a| a.to_string()),
            "tls": manifest.http.tls.is_some(),
            "max_body": manifest.http.max_body,
            "allowed_hosts": manifest.http.allowed_hosts,
            "api_keys": manifest.auth.api_keys.iter().map(|k| &k.principal).collect::<Vec<_>>(),
            "oauth": manifest.auth.oauth.as_ref().map(|o| &o.issuer),
        },
        "approval": {
            "after_private": manifest.approval.after_private.as_str(),
            "window_ms": manifest.approval.window.as_millis() as u64,
            "timeout_ms": manifest.approval.timeout.as_millis() as u64,
            "expiry_ms": manifest.approval.expiry.as_millis() as u64,
            "shared_key": manifest.approval.key.is_some(),
            "operators": manifest.approval.operators,
            "asking_tools": host.gate.catalog().iter()
                .filter(|t| t.approval == Approval::Ask)
                .map(|t| t.name())
                .collect::<Vec<_>>(),
        },
        "review": {
            "mode": manifest.server.review.as_str(),
            "refused": host.gate.catalog().refused(),
        },
        "plugins": plugins,
        "warnings": warnings,
    })
}

/// The provenance of plugin `name` as the host computed it when it loaded.
fn provenance_of<'h>(host: &'h Host, name: &str) -> Option<&'h Provenance> {
    host.provenance.iter().find(|p| p.plugin == name)
}

/// Which tools ask a human, and how the gate asks.
fn approval_summary(manifest: &Manifest, host: &Host) -> String {
    let settings = &manifest.approval;
    let asking: Vec<&str> = host
        .gate
        .catalog()
        .iter()
        .filter(|t| t.approval == Approval::Ask)
        .map(|t| t.name())
        .collect();
    let asking = if asking.is_empty() {
        "no tool asks".to_owned()
    } else {
        format!("{} ask(s) a human: {}", asking.len(), asking.join(", "))
    };
    let operators = if settings.operators.is_empty() {
        "no operator channel".to_owned()
    } else {
        format!("operators: {}", settings.operators.join(", "))
    };
    format!(
        "approval: {asking}; after private data: {} for {}; answers wait {}, stateless \
         approvals last {} ({}); {operators}",
        settings.after_private.as_str(),
        format_duration(settings.window),
        format_duration(settings.timeout),
        format_duration(settings.expiry),
        if settings.key.is_some() {
            "shared key"
        } else {
            "per-process key"
        },
    )
}

/// The warning code of a version 1 `warden.lock` that does not pin a plugin's prompts,
/// resources and templates.
const UNPINNED_PROMPTS: &str = "unpinned-prompts";

/// The warning code of `[approval] operators` without `[auth]` credentials.
const OPERATORS_WITHOUT_AUTH: &str = "operators-without-auth";

/// `[approval] operators` names roles but `[auth]` has no credentials: the approval channel
/// refuses everyone (an operator must be authenticated), so calls that wait for an operator
/// time out. A warning, not an error: the manifest loads and serves, and the calls still
/// fail closed.
/// The code of the warning about an `oci://` tag that neither the manifest nor the lock pins.
const UNPINNED_COMPONENT: &str = "unpinned-component";

/// One warning per plugin whose `oci://` component is a tag with no digest, that `warden.lock`
/// does not hold to a digest either: each start pulls whatever the tag names then.
fn unpinned_warnings(manifest: &Manifest) -> Vec<String> {
    let lock = match manifest.server.lock {
        Some(LockMode::Off | LockMode::Warn) => None,
        _ => warden::lock::Lock::read(&warden::lock::path_for(manifest))
            .ok()
            .flatten(),
    };
    manifest
        .plugins
        .iter()
        .filter(|p| p.oci.as_ref().is_some_and(|r| r.digest.is_none()))
        .filter(|p| {
            !lock
                .as_ref()
                .and_then(|l| l.plugins.get(&p.name))
                .is_some_and(|e| e.source == p.component_source && e.resolved.is_some())
        })
        .map(|p| {
            format!(
                "plugin `{}`: `{}` is a tag pinned by neither a digest nor warden.lock: each start pulls what it names then; run `warden lock` or add @sha256:...",
                p.name, p.component_source
            )
        })
        .collect()
}

/// The warning code of `[limits] store` (replicas) with approvals sealed by a per-process key.
const REPLICAS_PER_PROCESS_KEY: &str = "replicas-per-process-key";

/// `[limits] store` says replicas share the limits, but `[approval] key` is unset: each
/// process seals approval and input-request states with its own random key, so a state issued
/// by one replica is refused by the others (the client must start the call again).
fn replica_key_warning(manifest: &Manifest) -> Option<String> {
    (manifest.limit_store.is_some() && manifest.approval.key.is_none()).then(|| {
        "[limits] store is set (replicas share limits) but [approval] key is not: each process \
         seals approval and input-request states (requestState) with its own random key, so \
         another replica refuses them; set [approval] key = \"${WARDEN_APPROVAL_KEY}\" to the \
         same secret on every replica"
            .to_owned()
    })
}

fn operators_warning(manifest: &Manifest) -> Option<String> {
    (!manifest.approval.operators.is_empty() && !manifest.auth.is_configured()).then(|| {
        format!(
            "[approval] operators = [{}] but [auth] has no credentials: `warden approvals` \
             (GET/POST /approvals) refuses everyone, so calls waiting for an operator time out; \
             add [[auth.api_keys]] (`warden keygen --roles ROLE`) or [auth.oauth]",
            manifest.approval.operators.join(", ")
        )
    })
}

/// `cache: DIR (private; entries authenticated with KEY)`.
fn cache_summary(manifest: &Manifest) -> String {
    let key = match &manifest.cache_key {
        warden::manifest::CacheKey::File(file) => format!("the key in {}", file.display()),
        warden::manifest::CacheKey::Secret(_) => "the [cache] key".to_owned(),
    };
    format!(
        "cache: {} (private; entries authenticated with {key})",
        manifest.cache_dir.display()
    )
}

/// `audit PATH (rotate at SIZE)`, or that there is none; then a line per `[[audit.ship]]`.
fn audit_summary(manifest: &Manifest) -> String {
    let Some(audit) = &manifest.audit else {
        return "audit: off (no [audit] section)".to_owned();
    };
    let mut summary = format!(
        "audit: {} (rotate at {}{})",
        audit.path.display(),
        ByteSize(audit.rotate),
        if audit.fsync { ", fsync" } else { "" }
    );
    for ship in &audit.ship {
        summary.push_str(&format!(
            "\naudit ship: {} ({}) to {}",
            ship.name,
            ship.sink.kind(),
            ship_destination(ship)
        ));
    }
    summary
}

/// Where a `[[audit.ship]]` sink sends records, for `check` (never a header's value).
fn ship_destination(ship: &warden::manifest::Ship) -> String {
    use warden::manifest::{ShipSink, SyslogFormat, SyslogTransport};
    match &ship.sink {
        ShipSink::Stdout => "standard output (HTTP transport only)".to_owned(),
        ShipSink::Otlp { url, headers, json } => format!(
            "{url} ({}{})",
            if *json { "JSON" } else { "protobuf" },
            if headers.is_empty() {
                String::new()
            } else {
                let names: Vec<&str> = headers.iter().map(|(name, _)| name.as_str()).collect();
                format!(", headers {}", names.join(", "))
            }
        ),
        ShipSink::Syslog {
            transport,
            host,
            port,
            format,
            ..
        } => format!(
            "{}://{host}:{port} ({})",
            match transport {
                SyslogTransport::Tcp => "tcp",
                SyslogTransport::Tls => "tls",
                SyslogTransport::Udp => "udp",
            },
            match format {
                SyslogFormat::Json => "json",
                SyslogFormat::Cef => "cef",
                SyslogFormat::Ocsf => "ocsf",
            }
        ),
    }
}

/// `audit checkpoints: signed by key ID (PUBLIC KEY) every N records or T, replica R`, or
/// that they are not signed; nothing without `[audit]`.
fn checkpoint_summary(manifest: &Manifest, host: &Host) -> Option<String> {
    let audit = manifest.audit.as_ref()?;
    Some(match host.gate.audit_key() {
        Some(key) => format!(
            "audit checkpoints: signed by key {} (public key {}) every {} records or {}, replica {}",
            key.id(),
            key.base64(),
            audit.checkpoint_every,
            warden::manifest::format_duration(audit.checkpoint_interval),
            audit.replica
        ),
        None => format!(
            "audit checkpoints: not signed (no signing_key), replica {}",
            audit.replica
        ),
    })
}

/// How the manifest serves HTTP and who may use it, in two lines.
fn http_summary(manifest: &Manifest) -> String {
    let http = &manifest.http;
    let listen = match http.listen {
        Some(addr) => format!("http: listen {addr}"),
        None => "http: off unless `serve --http ADDR`".to_owned(),
    };
    let tls = match &http.tls {
        Some(tls) => format!("TLS ({})", tls.cert.display()),
        None => "no TLS".to_owned(),
    };
    let auth = &manifest.auth;
    let mut who = Vec::new();
    if !auth.api_keys.is_empty() {
        let principals: Vec<&str> = auth.api_keys.iter().map(|k| k.principal.as_str()).collect();
        who.push(format!(
            "{} API key(s) ({})",
            auth.api_keys.len(),
            principals.join(", ")
        ));
    }
    if let Some(oauth) = &auth.oauth {
        let jwks = match &oauth.jwks {
            warden::manifest::JwksSource::Url(url) => url.clone(),
            warden::manifest::JwksSource::File(file) => file.display().to_string(),
        };
        who.push(format!(
            "OAuth bearer JWTs from {} for {} (keys: {jwks})",
            oauth.issuer,
            oauth.audience.join(", ")
        ));
    }
    let auth = if who.is_empty() {
        format!(
            "auth: none (HTTP requests run as `{}`; loopback addresses only)",
            manifest.server.principal
        )
    } else {
        format!("auth: {}", who.join("; "))
    };
    // The caps `serve --http` would apply under this process's descriptor limit.
    let (connections, per_client) =
        warden::server::http::connection_caps(http, warden::server::http::descriptor_limit());
    format!(
        "{listen}, {tls}, max body {}, hosts {}\n\
         http limits: connections {} ({} per client), sessions {} ({} per principal), \
         client info {}; timeouts: header {}, idle {}, TLS handshake {}\n{auth}",
        ByteSize(http.max_body),
        http.allowed_hosts.join(", "),
        connections,
        per_client,
        http.max_sessions,
        http.max_sessions_per_principal,
        ByteSize(http.max_client_info),
        format_duration(http.header_timeout),
        format_duration(http.idle_timeout),
        format_duration(http.tls_handshake_timeout),
    )
}
