//! The status socket: one JSON document per connection, to the server's own user only.

use std::io::ErrorKind;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};

use super::Status;

/// The largest status read back (a server with thousands of tools is well under it).
const MAX_STATUS: u64 = 16 << 20;

/// How long a status may take to be written or read.
const TIMEOUT: Duration = Duration::from_secs(5);

/// Why the status socket could not be opened or read.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{} is not private to this user (owner uid {owner}, mode {mode:o}); \
         remove it, or fix it with `chmod 700 {}`",
        path.display(), path.display()
    )]
    Insecure {
        path: PathBuf,
        owner: u32,
        mode: u32,
    },
    #[error("{}: the server did not answer within {}s", path.display(), TIMEOUT.as_secs())]
    Timeout { path: PathBuf },
    #[error("{}: not a status: {source}", path.display())]
    Malformed {
        path: PathBuf,
        source: serde_json::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StatusError + '_ {
    move |source| StatusError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Where servers put their status sockets: `$XDG_RUNTIME_DIR/warden` when that variable is
/// an absolute path, else `warden-UID` in the temporary directory.
pub fn socket_dir() -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from) {
        Some(dir) if dir.is_absolute() => dir.join("warden"),
        // SAFETY: geteuid has no preconditions and cannot fail.
        _ => std::env::temp_dir().join(format!("warden-{}", unsafe { libc::geteuid() })),
    }
}

/// `dir`, created 0700 if missing, and checked to be this user's and closed to others.
fn private_dir(dir: &Path) -> Result<(), StatusError> {
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {}
        Err(error) if error.kind() == ErrorKind::AlreadyExists => {}
        Err(error) => return Err(io(dir)(error)),
    }
    let meta = std::fs::symlink_metadata(dir).map_err(io(dir))?;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    let mode = meta.permissions().mode() & 0o7777;
    if !meta.is_dir() || meta.uid() != euid || mode & 0o077 != 0 {
        return Err(StatusError::Insecure {
            path: dir.to_path_buf(),
            owner: meta.uid(),
            mode,
        });
    }
    Ok(())
}

/// A listening status socket; the socket file goes when this is dropped.
pub struct StatusSocket {
    path: PathBuf,
}

impl StatusSocket {
    /// Listen on `PID.sock` in `dir` and answer every connection from this user with
    /// `status()`. Must be called within a Tokio runtime.
    pub fn listen(
        dir: &Path,
        status: impl Fn() -> Status + Send + Sync + 'static,
    ) -> Result<StatusSocket, StatusError> {
        private_dir(dir)?;
        let path = dir.join(format!("{}.sock", std::process::id()));
        // A socket left by an earlier process with this pid.
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path).map_err(io(&path))?;
        let status = Arc::new(status);
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                };
                let status = status.clone();
                tokio::spawn(async move {
                    let _ = tokio::time::timeout(TIMEOUT, answer(stream, &*status)).await;
                });
            }
        });
        Ok(StatusSocket { path })
    }

    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for StatusSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Write the status to `stream` if its peer is this process's user or root.
async fn answer(mut stream: UnixStream, status: &(dyn Fn() -> Status + Send + Sync)) {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    match stream.peer_cred() {
        Ok(peer) if peer.uid() == euid || peer.uid() == 0 => {}
        _ => return,
    }
    let Ok(json) = serde_json::to_vec(&status()) else {
        return;
    };
    let _ = stream.write_all(&json).await;
    let _ = stream.shutdown().await;
}

/// The status of every server whose socket is in `dir`, by pid; sockets nobody listens on
/// any more (their server was killed) are removed.
pub async fn query_all(dir: &Path) -> Vec<Result<Status, StatusError>> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut sockets: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "sock"))
        .collect();
    sockets.sort();
    let mut statuses = Vec::new();
    for socket in sockets {
        match query(&socket).await {
            Err(StatusError::Io { source, .. })
                if matches!(
                    source.kind(),
                    ErrorKind::ConnectionRefused | ErrorKind::NotFound
                ) =>
            {
                let _ = std::fs::remove_file(&socket);
            }
            outcome => statuses.push(outcome),
        }
    }
    statuses
}

/// The status the server at `socket` answers.
async fn query(socket: &Path) -> Result<Status, StatusError> {
    let read = async {
        let stream = UnixStream::connect(socket).await.map_err(io(socket))?;
        let mut json = Vec::new();
        stream
            .take(MAX_STATUS)
            .read_to_end(&mut json)
            .await
            .map_err(io(socket))?;
        serde_json::from_slice(&json).map_err(|source| StatusError::Malformed {
            path: socket.to_path_buf(),
            source,
        })
    };
    tokio::time::timeout(TIMEOUT, read)
        .await
        .map_err(|_| StatusError::Timeout {
            path: socket.to_path_buf(),
        })?
}
