//! `warden serve`: open the plugins, answer at once, compile in the background, reload on
//! SIGHUP (and with `--watch`, on changes).

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};

use warden::catalog::unacknowledged_warnings;
use warden::gate::Transport;
use warden::host::Host;
use warden::host::reload::{self, Served};
use warden::manifest::Manifest;
use warden::server::ServerInfo;
use warden::status::{ServerFacts, StatusSocket};

use super::{join, stdio_principal};

pub(super) fn serve(
    runtime: &tokio::runtime::Runtime,
    path: &Path,
    http: Option<SocketAddr>,
    insecure_no_auth: bool,
    watch: bool,
) -> Result<ExitCode> {
    let _context = runtime.enter();
    // Before anything slow: a SIGHUP from here on reloads instead of ending the process.
    let hangups = reload::hangups().context("cannot handle SIGHUP")?;
    let manifest = Manifest::load(path).map_err(|e| anyhow::anyhow!("invalid manifest:\n{e}"))?;
    let listen = http.or(manifest.http.listen);
    // Over stdio, standard output is the MCP channel: no audit records on it.
    if listen.is_none()
        && let Some(ship) = manifest
            .audit
            .iter()
            .flat_map(|a| &a.ship)
            .find(|s| matches!(s.sink, warden::manifest::ShipSink::Stdout))
    {
        anyhow::bail!(
            "invalid manifest:\n{}: audit sink {:?} ships to standard output, which is the MCP \
             channel when serving over stdio; serve over HTTP (`[http] listen` or `--http ADDR`) \
             or ship to `otlp` or `syslog`",
            ship.kind_location,
            ship.name
        );
    }
    // Every component is read and described now (errors end the start, as before); compiling
    // goes on in the background, and calls to a plugin still compiling wait for it.
    let (host, pending) =
        Host::open(&manifest, None).map_err(|errors| anyhow::anyhow!(join(&errors)))?;
    host.record_start()
        .context("cannot write the audit log's start record")?;
    let tools = host.gate.catalog().iter().count();
    for plugin in host.plugins() {
        for warning in unacknowledged_warnings(plugin) {
            tracing::warn!(
                plugin = %plugin.config.name,
                code = warning.code,
                "{} (`warden check` lists it; acknowledge = [\"{}\"] silences it)",
                warning.message,
                warning.code
            );
        }
    }
    pending.spawn();
    let metrics = host.metrics().cloned();
    // Shipping tails the audit log on threads of its own: nothing it does reaches a call.
    let shippers = match &manifest.audit {
        Some(audit) if !audit.ship.is_empty() => Some(Arc::new(
            warden::ship::Shippers::start(audit).context("cannot start audit shipping")?,
        )),
        _ => None,
    };
    let served = Arc::new(Served::new(path, host));
    // Over HTTP, reloads replace the authenticator too: it is known before the first reload.
    let auth = match listen {
        Some(listen) => {
            let may_be_none = listen.ip().is_loopback() || insecure_no_auth;
            Some(served.serve_auth(&manifest, may_be_none)?)
        }
        None => None,
    };
    reload::spawn(served.clone(), hangups, watch);
    let bound = Arc::default();
    let _status = status_socket(&served, listen.is_some(), &bound, shippers);
    let tasks = Arc::new(warden::tasks::Tasks::new(&manifest.tasks).context("[tasks] store")?);
    let info = ServerInfo {
        name: manifest.server.name.clone(),
        instructions: manifest.server.instructions.clone(),
        page_size: usize::try_from(manifest.server.page_size).unwrap_or(usize::MAX),
        tasks: Some(tasks.clone()),
    };

    let metrics = served_metrics(runtime, &manifest, metrics)?;
    if let (Some(listen), Some(auth)) = (listen, auth) {
        let options = warden::server::HttpOptions {
            info,
            listen,
            http: manifest.http.clone(),
            auth,
            local: stdio_principal(&manifest, Transport::Http),
            insecure_no_auth,
            bound,
            metrics: metrics.map(|metrics| warden::server::HttpMetrics {
                metrics,
                serve: manifest.metrics.as_ref().is_some_and(|m| m.on_http),
            }),
        };
        let ended = runtime.block_on(warden::server::serve_http(served.live(), options));
        // The tasks still running end with the server: cancelled, in the store too.
        runtime.block_on(tasks.shutdown());
        served.stop();
        ended?;
        return Ok(ExitCode::SUCCESS);
    }
    if std::io::stdin().is_terminal() {
        eprintln!(
            "warden: serving {tools} tool(s) over MCP on stdin/stdout, waiting for an MCP client. \
             Point a client at `warden serve --manifest {}` (README: Connecting agents), or \
             try a tool with `warden call TOOL '{{...}}'`. Ctrl-D quits.",
            std::fs::canonicalize(path)
                .unwrap_or_else(|_| path.to_path_buf())
                .display()
        );
    }
    if let Some(metrics) = &metrics {
        if manifest.metrics.as_ref().is_some_and(|m| m.on_http) {
            tracing::warn!(
                "[metrics] on_http has no effect over stdio: set [metrics] listen to scrape it"
            );
        }
        metrics.sessions("stdio", || 1);
    }
    let principal = stdio_principal(&manifest, Transport::Stdio);
    let ended = runtime.block_on(warden::server::serve_stdio(served.live(), info, principal));
    runtime.block_on(tasks.shutdown());
    served.stop();
    ended?;
    Ok(ExitCode::SUCCESS)
}

/// The metrics, when `[metrics]` is on, with their own listener started when it has
/// `listen`.
fn served_metrics(
    runtime: &tokio::runtime::Runtime,
    manifest: &Manifest,
    metrics: Option<Arc<warden::metrics::Metrics>>,
) -> Result<Option<Arc<warden::metrics::Metrics>>> {
    let (Some(settings), Some(metrics)) = (&manifest.metrics, metrics) else {
        return Ok(None);
    };
    if let Some(listen) = settings.listen {
        runtime.block_on(warden::server::metrics::serve_metrics(
            listen,
            metrics.clone(),
        ))?;
    }
    Ok(Some(metrics))
}

/// Answer `warden status` while serving. Without the socket the server still serves; the
/// log says why there is none.
fn status_socket(
    served: &Arc<Served>,
    http: bool,
    bound: &Arc<std::sync::OnceLock<SocketAddr>>,
    shipping: Option<Arc<warden::ship::Shippers>>,
) -> Option<StatusSocket> {
    let facts = ServerFacts {
        transport: if http { "http" } else { "stdio" },
        listen: bound.clone(),
        shipping,
    };
    let served = served.clone();
    let dir = warden::status::socket_dir();
    match StatusSocket::listen(&dir, move || warden::status::snapshot(&served, &facts)) {
        Ok(socket) => {
            tracing::debug!(socket = %socket.path().display(), "status socket open");
            Some(socket)
        }
        Err(error) => {
            tracing::info!("no status socket, `warden status` will not see this server: {error}");
            None
        }
    }
}
