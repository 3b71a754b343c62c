//! A real `redis-server` for the tests that need one (one per test binary, on a free port of
//! 127.0.0.1, without persistence).

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The port of this test binary's `redis-server`, started on first use. It dies with the
/// test process (PR_SET_PDEATHSIG, from a thread that lives as long as the process).
pub fn redis_port() -> u16 {
    static PORT: OnceLock<u16> = OnceLock::new();
    *PORT.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let result = start_redis();
            let failed = result.is_err();
            let _ = tx.send(result);
            if !failed {
                // The server's parent thread must outlive every test: park until exit.
                loop {
                    std::thread::park();
                }
            }
        });
        match rx.recv() {
            Ok(Ok(port)) => port,
            Ok(Err(message)) => panic!("{message}"),
            Err(_) => panic!("the thread starting redis-server died"),
        }
    })
}

/// Start `redis-server` on a free loopback port in a temporary directory, and wait for it to
/// answer PING.
fn start_redis() -> Result<u16, String> {
    let dir = tempfile::tempdir().map_err(|e| format!("temporary directory: {e}"))?;
    for _attempt in 0..5 {
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("pick a free port: {e}"))?
            .port();
        let mut command = Command::new("redis-server");
        command
            .args(["--port", &port.to_string()])
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // SAFETY: prctl is async-signal-safe and touches nothing of the parent.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut command, || {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let mut child = command.spawn().map_err(|e| {
            format!(
                "cannot run redis-server ({e}): the Redis tests need it. Install it with \
                 `apt-get install redis-server` (Debian/Ubuntu) or `brew install redis`; \
                 .ci/run installs it on CI"
            )
        })?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                break; // the port was taken meanwhile: try another
            }
            if ping(port) {
                std::mem::forget(dir);
                return Ok(port);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
    Err("redis-server did not answer PING on 127.0.0.1 within 10s (5 attempts)".to_owned())
}

/// Whether a Redis server answers PING on `port`.
fn ping(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect((Ipv4Addr::LOCALHOST, port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    let mut reply = [0u8; 7];
    stream.write_all(b"PING\r\n").is_ok()
        && stream.read_exact(&mut reply).is_ok()
        && &reply == b"+PONG\r\n"
}
