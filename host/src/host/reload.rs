//! Live changes: reload the manifest on SIGHUP or when a watched file changes.
//!
//! A reload loads the new manifest completely (every component opened and compiled, from the
//! cache when unchanged) before anything changes. If anything fails, the old gate keeps
//! serving and the log says why. Otherwise the new gate replaces the old one at once
//! ([`LiveGate::replace`]): calls in flight finish on the old plugins, and every session is
//! told the tool list changed. Over HTTP, `[auth]` is replaced with the gate (keys added and
//! revoked without a restart). Rate-limit and concurrency counters start afresh with the new
//! gate. `[server]` and `[http]` are read at start only.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::signal::unix::{Signal, SignalKind, signal};

use super::{Host, HostError};
use crate::auth::{Authenticator, LiveAuth};
use crate::gate::LiveGate;
use crate::manifest::Manifest;

/// How often `--watch` looks at the manifest and the components.
pub const WATCH_INTERVAL: Duration = Duration::from_secs(1);

/// Why a reload kept the old manifest.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("invalid manifest:\n{0}")]
    Manifest(#[from] crate::manifest::ManifestError),
    #[error("cannot load the plugins:\n{}", join(.0))]
    Plugins(Vec<HostError>),
    #[error(transparent)]
    Auth(#[from] crate::auth::AuthError),
    #[error(
        "[auth] configures no credential, but this server listens on a non-loopback address: \
         it would serve anyone. Keep at least one credential (restart with --insecure-no-auth \
         if something in front of warden authenticates)"
    )]
    AuthRequired,
    #[error("the reload was interrupted")]
    Interrupted,
    #[error("cannot write the audit log's start record: {0}")]
    Audit(#[from] crate::audit::AuditError),
}

fn join(errors: &[HostError]) -> String {
    let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
    lines.join("\n")
}

/// What a successful reload put in force.
#[derive(Debug)]
pub struct Reloaded {
    pub plugins: usize,
    pub tools: usize,
}

/// The reloads so far, for `warden status`.
#[derive(Clone, Debug, Default)]
pub struct History {
    /// Reloads that put a new manifest in force.
    pub done: u64,
    /// Reloads that kept the old one.
    pub failed: u64,
    /// The last reload: when, and its error if it failed.
    pub last: Option<(SystemTime, Option<String>)>,
}

/// The HTTP authenticator a reload replaces too, and whether it may become none.
struct ServedAuth {
    live: Arc<LiveAuth>,
    /// `false` on a non-loopback address without `--insecure-no-auth`.
    may_be_none: bool,
}

/// A served manifest: the gate in force (and over HTTP the authenticator), and the host
/// behind it, to reload from.
pub struct Served {
    path: PathBuf,
    live: Arc<LiveGate>,
    auth: std::sync::OnceLock<ServedAuth>,
    host: Arc<Mutex<Host>>,
    history: Mutex<History>,
}

impl Served {
    /// Serve `host`, loaded from the manifest at `path`.
    pub fn new(path: &Path, host: Host) -> Self {
        Self {
            path: path.to_path_buf(),
            live: Arc::new(LiveGate::new(host.gate.clone())),
            host: Arc::new(Mutex::new(host)),
            history: Mutex::default(),
            auth: std::sync::OnceLock::new(),
        }
    }

    /// The authenticator of `[auth]`, for an HTTP server, which reloads replace too (API keys
    /// added and revoked without a restart). `may_be_none`: whether a reload may remove every
    /// credential (on a loopback address, or with `--insecure-no-auth`).
    pub fn serve_auth(
        &self,
        manifest: &Manifest,
        may_be_none: bool,
    ) -> Result<Arc<LiveAuth>, ReloadError> {
        let live = Arc::new(LiveAuth::new(Authenticator::new(&manifest.auth)?));
        let _ = self.auth.set(ServedAuth {
            live: live.clone(),
            may_be_none,
        });
        Ok(live)
    }

    /// The manifest served.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The reloads so far.
    pub fn history(&self) -> History {
        self.history
            .lock()
            .map(|history| history.clone())
            .unwrap_or_default()
    }

    /// The server stops: [`Host::stop`] on the host in force (after a reload in progress).
    pub fn stop(&self) {
        match self.host.lock() {
            Ok(host) => host.stop(),
            Err(poisoned) => poisoned.into_inner().stop(),
        }
    }

    /// The gate the transports serve.
    pub fn live(&self) -> Arc<LiveGate> {
        self.live.clone()
    }

    /// Load the manifest again and, if all of it loads, put it in force. One reload runs at
    /// a time; the work runs off the async threads.
    pub async fn reload(&self) -> Result<Reloaded, ReloadError> {
        let outcome = self.load_again().await;
        if let Ok(mut history) = self.history.lock() {
            match &outcome {
                Ok(_) => history.done += 1,
                Err(_) => history.failed += 1,
            }
            let error = outcome.as_ref().err().map(ToString::to_string);
            history.last = Some((SystemTime::now(), error));
        }
        outcome
    }

    async fn load_again(&self) -> Result<Reloaded, ReloadError> {
        let path = self.path.clone();
        let live = self.live.clone();
        let host = self.host.clone();
        let auth = self
            .auth
            .get()
            .map(|auth| (auth.live.clone(), auth.may_be_none));
        tokio::task::spawn_blocking(move || {
            let manifest = Manifest::load(&path)?;
            // `[auth]` first: it is cheap, and nothing changes if it fails.
            let next_auth = match &auth {
                Some((_, may_be_none)) => {
                    let next = Authenticator::new(&manifest.auth)?;
                    if next.is_none() && !may_be_none {
                        return Err(ReloadError::AuthRequired);
                    }
                    next
                }
                None => None,
            };
            let mut current = host.lock().map_err(|_| ReloadError::Interrupted)?;
            let (next, pending) =
                Host::open(&manifest, Some(&current)).map_err(ReloadError::Plugins)?;
            let errors = pending.compile(&super::log_progress);
            if !errors.is_empty() {
                return Err(ReloadError::Plugins(errors));
            }
            // The start record goes in before the first call the new plugins could run.
            next.record_start()?;
            let reloaded = Reloaded {
                plugins: next.plugins().len(),
                tools: next.gate.catalog().iter().count(),
            };
            live.replace(next.gate.clone());
            if let Some((auth, _)) = &auth {
                auth.replace(next_auth);
            }
            *current = next;
            Ok(reloaded)
        })
        .await
        .map_err(|_| ReloadError::Interrupted)?
    }

    /// Reload and log the outcome.
    async fn reload_and_log(&self, why: &str) {
        tracing::info!("reloading {} ({why})", self.path.display());
        match self.reload().await {
            Ok(reloaded) => tracing::info!(
                plugins = reloaded.plugins,
                tools = reloaded.tools,
                "reloaded {}",
                self.path.display()
            ),
            Err(error) => {
                tracing::error!("reload failed; still serving the previous manifest. {error}")
            }
        }
    }

    /// The files a change to which means a reload: the manifest, its `warden.lock` (so
    /// `warden lock` accepts a change in a running server) and every component served.
    /// Read from the gate in force, not the host: a reload holds the host while it compiles.
    fn watched(&self) -> Vec<PathBuf> {
        let gate = self.live.current();
        let components = gate.catalog().plugins().iter();
        std::iter::once(self.path.clone())
            .chain(std::iter::once(
                self.path.with_file_name(crate::lock::FILE_NAME),
            ))
            .chain(components.map(|p| p.config.component.clone()))
            .collect()
    }
}

/// SIGHUP, registered now: from here on a hangup reloads instead of ending the process.
/// Register it before loading anything, so a SIGHUP during start-up does no harm.
pub fn hangups() -> std::io::Result<Signal> {
    signal(SignalKind::hangup())
}

/// Reload `served` on every SIGHUP in `hangups`, and with `watch`, whenever the manifest or
/// a component it names changes (checked every [`WATCH_INTERVAL`]; a change is acted on once
/// the file has stayed the same for one more interval, so a file being written is not read
/// half-way).
pub fn spawn(served: Arc<Served>, mut hangups: Signal, watch: bool) {
    let on_signal = served.clone();
    tokio::spawn(async move {
        while hangups.recv().await.is_some() {
            on_signal.reload_and_log("SIGHUP").await;
        }
    });
    if watch {
        tokio::spawn(async move {
            let mut seen = fingerprint(&served.watched());
            let mut changed = false;
            loop {
                tokio::time::sleep(WATCH_INTERVAL).await;
                let now = fingerprint(&served.watched());
                if now != seen {
                    seen = now;
                    changed = true;
                } else if changed {
                    changed = false;
                    served.reload_and_log("a watched file changed").await;
                    seen = fingerprint(&served.watched());
                }
            }
        });
    }
}

/// What `--watch` compares: each file's modification time, size and inode (`None` while it
/// does not exist).
fn fingerprint(files: &[PathBuf]) -> Vec<Option<(SystemTime, u64, u64)>> {
    use std::os::unix::fs::MetadataExt;
    files
        .iter()
        .map(|file| {
            let meta = std::fs::metadata(file).ok()?;
            Some((meta.modified().ok()?, meta.len(), meta.ino()))
        })
        .collect()
}
