//! [`RedisServer`]: a real Redis for tests, started by the test itself when possible.
//!
//! Redis-backed parts are tested against a real server, never a mock (DESIGN §6). When
//! `redis-server` is on `PATH`, [`RedisServer::start`] runs a private one on a free loopback port
//! with persistence off (`--save "" --appendonly no`), which the test can [`kill`] and
//! [`restart`] on the same port to play an outage. Otherwise it uses `REDIS_URL` (default
//! `redis://127.0.0.1:6379`) if that answers. Either way [`RedisServer::prefix`] hands each test
//! its own key prefix, so tests sharing one server never see each other's keys.
//!
//! [`kill`]: RedisServer::kill
//! [`restart`]: RedisServer::restart

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// Neither a `redis-server` binary nor a reachable `REDIS_URL`: what to do about it.
#[derive(Debug, thiserror::Error)]
#[error(
    "no Redis for this test: `redis-server` is not on PATH and {url} does not answer ({detail}); \
     install one with `apt-get install redis-server` (or set REDIS_URL)"
)]
pub struct RedisUnavailable {
    /// The URL that was tried.
    pub url: String,
    /// What failed.
    pub detail: String,
}

/// A Redis server for one test: owned (a child process on a free port) or external.
#[derive(Debug)]
pub struct RedisServer {
    url: String,
    addr: String,
    owned: Option<Owned>,
}

#[derive(Debug)]
struct Owned {
    binary: PathBuf,
    port: u16,
    child: Mutex<Option<Child>>,
    /// With persistence: the directory of the append-only file, kept across restarts.
    dir: Option<PathBuf>,
}

/// How long a fresh server may take to answer `PING`.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

static PREFIXES: AtomicU64 = AtomicU64::new(0);

impl RedisServer {
    /// A Redis for this test: a private `redis-server` when the binary is on `PATH`, else
    /// `REDIS_URL` (default `redis://127.0.0.1:6379`) when it answers.
    ///
    /// # Panics
    ///
    /// When neither is available, with a message saying how to install Redis. Blocks up to 10 s
    /// while a started server comes up.
    pub fn start() -> Self {
        match Self::try_start() {
            Ok(server) => server,
            Err(e) => panic!("{e}"),
        }
    }

    /// A private `redis-server` that persists every write before acknowledging it (append-only
    /// file, `appendfsync always`, in a fresh temporary directory removed on drop), so a
    /// [`restart`](RedisServer::restart) after a [`kill`](RedisServer::kill) comes back with
    /// every acknowledged write: what a durable queue's restart test needs.
    ///
    /// # Panics
    ///
    /// When `redis-server` is not on `PATH` (an external server cannot be restarted), or it does
    /// not come up within 10 s.
    pub fn start_persistent() -> Self {
        let Some(binary) = find_on_path("redis-server") else {
            panic!(
                "this test needs its own redis-server to restart; \
                 install one with `apt-get install redis-server`"
            );
        };
        let port = free_port().unwrap_or_else(|e| panic!("no free port: {e}"));
        let dir = std::env::temp_dir().join(format!(
            "ratewise-redis-{}-{port}-{:08x}",
            std::process::id(),
            fastrand::u32(..)
        ));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
        let server = Self {
            url: format!("redis://127.0.0.1:{port}"),
            addr: format!("127.0.0.1:{port}"),
            owned: Some(Owned {
                binary,
                port,
                child: Mutex::new(None),
                dir: Some(dir),
            }),
        };
        if let Err(e) = server.spawn() {
            panic!("{e}");
        }
        server
    }

    /// [`RedisServer::start`], returning the reason instead of panicking.
    pub fn try_start() -> Result<Self, RedisUnavailable> {
        if let Some(binary) = find_on_path("redis-server") {
            let port = free_port().map_err(|e| RedisUnavailable {
                url: "127.0.0.1:0".into(),
                detail: e.to_string(),
            })?;
            let owned = Owned {
                binary,
                port,
                child: Mutex::new(None),
                dir: None,
            };
            let server = Self {
                url: format!("redis://127.0.0.1:{port}"),
                addr: format!("127.0.0.1:{port}"),
                owned: Some(owned),
            };
            server.spawn()?;
            return Ok(server);
        }
        let url = std::env::var("REDIS_URL")
            .ok()
            .filter(|u| !u.trim().is_empty())
            .unwrap_or_else(|| "redis://127.0.0.1:6379".to_owned());
        let addr = host_port(&url);
        ping(&addr).map_err(|detail| RedisUnavailable {
            url: url.clone(),
            detail,
        })?;
        Ok(Self {
            url,
            addr,
            owned: None,
        })
    }

    /// The server's URL (`redis://127.0.0.1:<port>`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A key prefix no other test (in this process or another) uses: `rwtest:<pid>:<n>:<rand>:`.
    pub fn prefix(&self) -> String {
        let n = PREFIXES.fetch_add(1, Ordering::Relaxed);
        format!(
            "rwtest:{}:{n}:{:08x}:",
            std::process::id(),
            fastrand::u32(..)
        )
    }

    /// True when this helper started the server (so it can kill and restart it).
    pub fn is_owned(&self) -> bool {
        self.owned.is_some()
    }

    /// Stops the server (SIGKILL: no goodbye to clients). Data is lost unless the server was
    /// started with [`RedisServer::start_persistent`].
    ///
    /// # Panics
    ///
    /// When the server is external (`REDIS_URL`): only a started server can be killed.
    pub fn kill(&self) {
        let owned = self.owned_or_panic();
        let child = owned
            .child
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(mut child) = child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port and waits until it answers.
    ///
    /// # Panics
    ///
    /// When the server is external, or does not come back within 10 s.
    pub fn restart(&self) {
        self.kill();
        if let Err(e) = self.spawn() {
            panic!("{e}");
        }
    }

    /// How many times Redis has run the commands `names` (lower-case, as `INFO commandstats`
    /// names them: `evalsha`, `xadd`, `script|load`) since it started: to count round trips.
    ///
    /// # Panics
    ///
    /// When the server does not answer.
    pub fn command_calls(&self, names: &[&str]) -> u64 {
        let client = redis::Client::open(self.url.as_str())
            .unwrap_or_else(|e| panic!("redis url {}: {e}", self.url));
        let mut connection = client
            .get_connection()
            .unwrap_or_else(|e| panic!("connecting to {}: {e}", self.url));
        let info: String = redis::cmd("INFO")
            .arg("commandstats")
            .query(&mut connection)
            .unwrap_or_else(|e| panic!("INFO commandstats: {e}"));
        info.lines()
            .filter_map(|line| {
                let (name, stats) = line.strip_prefix("cmdstat_")?.split_once(':')?;
                if !names.contains(&name) {
                    return None;
                }
                stats
                    .split("calls=")
                    .nth(1)?
                    .split(',')
                    .next()?
                    .parse::<u64>()
                    .ok()
            })
            .sum()
    }

    /// True when the server answers `PING` now.
    pub fn is_up(&self) -> bool {
        ping(&self.addr).is_ok()
    }

    fn owned_or_panic(&self) -> &Owned {
        match &self.owned {
            Some(owned) => owned,
            None => panic!(
                "this test needs its own redis-server to kill and restart; \
                 install one with `apt-get install redis-server`"
            ),
        }
    }

    fn spawn(&self) -> Result<(), RedisUnavailable> {
        let owned = self.owned_or_panic();
        let failed = |detail: String| RedisUnavailable {
            url: self.url.clone(),
            detail,
        };
        let mut command = Command::new(&owned.binary);
        command
            .args(["--port", &owned.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--daemonize", "no"]);
        match &owned.dir {
            Some(dir) => command
                .args(["--appendonly", "yes", "--appendfsync", "always", "--dir"])
                .arg(dir),
            None => command.args(["--appendonly", "no"]),
        };
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| failed(format!("spawning {}: {e}", owned.binary.display())))?;
        *owned.child.lock().unwrap_or_else(PoisonError::into_inner) = Some(child);
        let mut waited = Duration::ZERO;
        let step = Duration::from_millis(10);
        loop {
            match ping(&self.addr) {
                Ok(()) => return Ok(()),
                Err(e) if waited >= READY_TIMEOUT => {
                    return Err(failed(format!("not ready after {READY_TIMEOUT:?}: {e}")));
                }
                Err(_) => {
                    std::thread::sleep(step);
                    waited += step;
                }
            }
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(owned) = &self.owned {
            self.kill();
            if let Some(dir) = &owned.dir {
                let _ = std::fs::remove_dir_all(dir);
            }
        }
    }
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// `host:port` of a `redis://[user:pass@]host[:port][/db]` URL.
fn host_port(url: &str) -> String {
    let rest = url
        .strip_prefix("redis://")
        .or_else(|| url.strip_prefix("rediss://"))
        .unwrap_or(url);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    let host = rest.split('/').next().unwrap_or(rest);
    if host.contains(':') {
        host.to_owned()
    } else {
        format!("{host}:6379")
    }
}

/// Sends `PING` and expects `+PONG` (or `-NOAUTH`: a password-protected server is up too).
fn ping(addr: &str) -> Result<(), String> {
    let timeout = Duration::from_millis(500);
    let target = addr
        .to_socket_addrs()
        .map_err(|e| e.to_string())?
        .next()
        .ok_or_else(|| format!("{addr} resolves to nothing"))?;
    let mut stream = TcpStream::connect_timeout(&target, timeout).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    stream.write_all(b"PING\r\n").map_err(|e| e.to_string())?;
    let mut reply = [0_u8; 64];
    let n = stream.read(&mut reply).map_err(|e| e.to_string())?;
    let reply = reply.get(..n).unwrap_or_default();
    if reply.starts_with(b"+PONG") || reply.starts_with(b"-NOAUTH") {
        Ok(())
    } else {
        Err(format!(
            "unexpected reply {:?}",
            String::from_utf8_lossy(reply)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_reads_every_url_shape() {
        assert_eq!(host_port("redis://127.0.0.1:6379"), "127.0.0.1:6379");
        assert_eq!(host_port("redis://:pw@cache:7000/2"), "cache:7000");
        assert_eq!(host_port("redis://cache"), "cache:6379");
    }

    #[test]
    fn a_started_server_answers_dies_and_comes_back_on_its_port() {
        let server = RedisServer::start();
        assert!(server.is_up());
        if server.is_owned() {
            server.kill();
            assert!(!server.is_up());
            server.restart();
            assert!(server.is_up());
        }
        assert_ne!(server.prefix(), server.prefix());
    }
}
