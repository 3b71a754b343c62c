//! `warden call TOOL [ARGS]`: one call through the same gate and sandbox as `serve`; with
//! `--prompt`, one `prompts/get`, with `--read`, one `resources/read`.

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use rmcp::model::GetPromptResponse;
use serde_json::Value;

use warden::gate::{
    Asking, CallRequest, Gate, GateError, Principal, PromptRequest, ReadRequest, Reply, Transport,
};
use warden::manifest::{Manifest, check_principal, check_roles, edit_distance};
use warden::runtime::{CallEvents, ElicitFailure, ElicitFuture, Elicited, EventFuture, LogLevel};

use super::{load, write_stdout};

/// Who the call runs as: `--principal` and `--roles`, when given.
pub(super) struct Who {
    pub principal: Option<String>,
    pub roles: Option<Vec<String>>,
}

impl Who {
    /// The principal: the manifest's `[server]` one, with what the flags replace (checked as
    /// the manifest checks principals and roles). A new `--principal` without `--roles` holds
    /// no roles.
    fn principal(self, manifest: &Manifest) -> Result<Principal> {
        if let Some(name) = &self.principal
            && let Err(message) = check_principal(name)
        {
            bail!("--principal: {message}");
        }
        if let Some(roles) = &self.roles
            && let Some((_, message)) = check_roles(roles).into_iter().next()
        {
            bail!("--roles: {message}");
        }
        let roles = match (&self.principal, self.roles) {
            (_, Some(roles)) => roles,
            (Some(_), None) => Vec::new(),
            (None, None) => manifest.server.roles.clone(),
        };
        let name = self
            .principal
            .unwrap_or_else(|| manifest.server.principal.clone());
        Ok(Principal::new(name, roles, Transport::Cli))
    }
}

/// Prints a call's log and progress events on stderr.
struct TerminalEvents;

impl CallEvents for TerminalEvents {
    fn log(&self, level: LogLevel, message: String) -> EventFuture<'_> {
        eprintln!("[{level:?}] {message}");
        Box::pin(std::future::ready(()))
    }

    fn progress(&self, done: f64, total: Option<f64>, message: Option<String>) -> EventFuture<'_> {
        let total = total.map(|t| format!("/{t}")).unwrap_or_default();
        eprintln!("[progress {done}{total}] {}", message.unwrap_or_default());
        Box::pin(std::future::ready(()))
    }

    /// Asked only when stdin is a terminal: an approval is `y`/`n`; a form is answered with a
    /// JSON object on one line (an empty line declines).
    fn elicit(&self, message: String, schema: String) -> ElicitFuture<'_> {
        Box::pin(async move {
            let form: Value = serde_json::from_str(&schema).unwrap_or_default();
            let fields = form
                .get("properties")
                .and_then(Value::as_object)
                .is_some_and(|p| !p.is_empty());
            if fields {
                eprintln!(
                    "{message}\nForm: {schema}\nAnswer as a JSON object on one line (empty declines):"
                );
            } else {
                eprint!("{message}\n[y/N] ");
            }
            let line = tokio::task::spawn_blocking(|| {
                let mut line = String::new();
                std::io::stdin().read_line(&mut line).map(|_| line)
            })
            .await
            .map_err(|e| ElicitFailure::Failed(e.to_string()))?
            .map_err(|e| ElicitFailure::Failed(e.to_string()))?;
            let line = line.trim();
            Ok(match (fields, line) {
                (_, "") => Elicited::Decline,
                (false, "y" | "Y" | "yes") => Elicited::Accept("{}".to_owned()),
                (false, _) => Elicited::Decline,
                (true, answer) => match serde_json::from_str::<Value>(answer) {
                    Ok(object @ Value::Object(_)) => Elicited::Accept(object.to_string()),
                    _ => Elicited::Cancel,
                },
            })
        })
    }
}

/// What `warden call` asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum What {
    /// `tools/call`.
    Tool,
    /// `prompts/get` (`--prompt`).
    Prompt,
    /// `resources/read` (`--read`).
    Read,
}

/// `warden call [--principal NAME --roles a,b] [--prompt | --read] NAME [ARGS]`.
pub(super) async fn call(
    manifest: &Path,
    who: Who,
    what: What,
    tool: &str,
    arguments: &str,
) -> Result<ExitCode> {
    let arguments: Value =
        serde_json::from_str(arguments).context("the arguments are not valid JSON")?;
    let Value::Object(arguments) = arguments else {
        bail!("the arguments must be a JSON object, like '{{\"path\": \"/data/a.txt\"}}'");
    };
    if what == What::Read && !arguments.is_empty() {
        bail!("--read takes a URI and no arguments");
    }
    let (manifest, host) = load(manifest)?;
    let principal = who.principal(&manifest)?;
    // The call's record follows the start record of the plugins that run it.
    host.record_start()
        .context("cannot write the audit log's start record")?;
    // Someone at a terminal can answer approvals and the plugin's questions.
    let asking = || match std::io::stdin().is_terminal() {
        true => Asking::Live,
        false => Asking::Unable,
    };
    match what {
        What::Tool => {}
        What::Prompt => {
            let request = PromptRequest {
                principal: &principal,
                mcp_id: None,
                name: tool,
                arguments: Some(&arguments),
                events: Arc::new(TerminalEvents),
                asking: asking(),
            };
            let result = match host.gate.get_prompt(request).await {
                Ok(GetPromptResponse::Complete(result)) => result,
                Ok(_) => bail!("the prompt asked a question that cannot be put here"),
                Err(GateError::UnknownPrompt { .. }) => {
                    let needs = host
                        .gate
                        .catalog()
                        .prompt(tool)
                        .map(|p| p.plugin.config.policy.roles.clone());
                    let names = prompt_names(&host.gate);
                    bail!(explain_unknown(&principal, "prompt", tool, names, needs))
                }
                Err(error) => return Err(error.into()),
            };
            write_stdout(&format!("{}\n", serde_json::to_string_pretty(&result)?));
            return Ok(ExitCode::SUCCESS);
        }
        What::Read => {
            let request = ReadRequest {
                principal: &principal,
                mcp_id: None,
                uri: tool,
                events: Arc::new(TerminalEvents),
            };
            let result = match host.gate.read_resource(request).await {
                Ok(result) => result,
                Err(GateError::UnknownResource { .. }) => {
                    let names = host
                        .gate
                        .catalog()
                        .resources()
                        .resources()
                        .iter()
                        .map(|r| r.descriptor.uri.clone())
                        .collect();
                    let needs = host
                        .gate
                        .catalog()
                        .resources()
                        .plugin_for(tool)
                        .map(|p| p.config.policy.roles.clone());
                    bail!(explain_unknown(&principal, "resource", tool, names, needs))
                }
                Err(error) => return Err(error.into()),
            };
            write_stdout(&format!("{}\n", serde_json::to_string_pretty(&result)?));
            return Ok(ExitCode::SUCCESS);
        }
    }
    let request = CallRequest {
        principal: &principal,
        mcp_id: None,
        tool,
        arguments: Some(&arguments),
        events: Arc::new(TerminalEvents),
        asking: asking(),
    };
    let result = match host.gate.call(request).await {
        Ok(Reply::Done(result)) => result,
        Ok(Reply::InputRequired(_)) => bail!("the tool asked a question that cannot be put here"),
        Err(GateError::UnknownTool { .. }) => bail!(explain_refusal(&host.gate, &principal, tool)),
        Err(error) => return Err(error.into()),
    };
    write_stdout(&format!("{}\n", serde_json::to_string_pretty(&result)?));
    Ok(if result.is_error == Some(true) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Every prompt's served name.
fn prompt_names(gate: &Gate) -> Vec<String> {
    gate.catalog()
        .prompts()
        .map(|p| p.name().to_owned())
        .collect()
}

/// A refused prompt or resource, said plainly: served but not to this principal (`needs`:
/// `Some(roles)` of the plugin, `Some([])` for any role), or unknown (and what is close).
fn explain_unknown(
    principal: &Principal,
    kind: &str,
    name: &str,
    names: Vec<String>,
    needs: Option<Option<Vec<String>>>,
) -> String {
    let roles = match principal.roles.is_empty() {
        true => "none".to_owned(),
        false => principal.roles.join(", "),
    };
    if let Some(needs) = needs {
        let needs = needs.map_or_else(|| "any role".to_owned(), |roles| roles.join(", "));
        return format!(
            "{kind} {name} is not permitted for principal {:?} (roles: {roles}); it needs one of: {needs}",
            &*principal.name
        );
    }
    let mut close: Vec<(usize, String)> = names
        .into_iter()
        .map(|other| (edit_distance(name, &other), other))
        .collect();
    close.sort();
    let close: Vec<String> = close.into_iter().take(3).map(|(_, n)| n).collect();
    match close.is_empty() {
        true => format!("unknown {kind} {name}: the manifest serves none"),
        false => format!(
            "unknown {kind} {name}; the closest are: {} (`warden check` lists them all)",
            close.join(", ")
        ),
    }
}

/// What the protocol keeps vague, said plainly to the operator: the tool exists but the
/// principal may not call it (and who may), or it does not exist (and what is close).
fn explain_refusal(gate: &Gate, principal: &Principal, tool: &str) -> String {
    let roles = if principal.roles.is_empty() {
        "none".to_owned()
    } else {
        principal.roles.join(", ")
    };
    if let Some(access) = gate.access(tool) {
        if access.allows(principal) && gate.is_hidden(tool) {
            return format!(
                "tool {tool} is hidden (`hidden = true`): only a call of its plugin that reveals it makes it callable, for the principal of that call"
            );
        }
        let needs = access
            .roles()
            .map(|roles| roles.join(", "))
            .unwrap_or_else(|| "any role".to_owned());
        return format!(
            "tool {tool} is not permitted for principal {:?} (roles: {roles}); it needs one of: {needs}",
            &*principal.name
        );
    }
    let closest = closest_tools(gate, tool);
    if closest.is_empty() {
        return format!("unknown tool {tool}: the manifest serves no tools");
    }
    format!(
        "unknown tool {tool}; the closest tools are: {} (`warden check` lists them all)",
        closest.join(", ")
    )
}

/// Up to three tool names nearest to `tool`, nearest first.
fn closest_tools(gate: &Gate, tool: &str) -> Vec<String> {
    let mut names: Vec<(usize, &str)> = gate
        .catalog()
        .iter()
        .map(|entry| (edit_distance(tool, entry.name()), entry.name()))
        .collect();
    names.sort();
    names
        .into_iter()
        .take(3)
        .map(|(_, name)| name.to_owned())
        .collect()
}
