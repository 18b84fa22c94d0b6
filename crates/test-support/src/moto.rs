//! A private moto with authentication enforced, for the keyless end-to-end tests.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::env::unavailable;

/// `python3 -m moto.server` on a free loopback port, started with
/// `INITIAL_NO_AUTH_ACTION_COUNT`: the first `free_actions` requests are let through unsigned
/// (the set-up), every later one must carry a known key and a valid signature. Killed on drop.
pub struct EnforcedMoto {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub url: String,
}

impl Drop for EnforcedMoto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl EnforcedMoto {
    /// Starts one, or returns `None` after [`unavailable`] reported that python3 cannot import
    /// moto's server (and `extra_modules`, e.g. `"boto3"`; empty for none). Waits up to 60 s for
    /// the port with TCP connects only: an HTTP probe would use up one of the free actions.
    pub fn start(free_actions: usize, extra_modules: &str) -> Option<EnforcedMoto> {
        let mut import = "import moto.server, flask, flask_cors".to_owned();
        if !extra_modules.is_empty() {
            import.push_str(", ");
            import.push_str(extra_modules);
        }
        let importable = Command::new("python3")
            .args(["-c", &import])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !importable {
            return unavailable(&format!(
                "python3 cannot `{import}` (`pip install 'moto[server]'`, or run `cargo xtask \
                 test`, which installs it)"
            ));
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let child = Command::new("python3")
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .env("INITIAL_NO_AUTH_ACTION_COUNT", free_actions.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto");
        let mut moto = EnforcedMoto {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            if let Ok(Some(status)) = moto.child.try_wait() {
                panic!("moto exited during start-up: {status}");
            }
            assert!(Instant::now() < deadline, "moto did not listen within 60 s");
            std::thread::sleep(Duration::from_millis(100));
        }
        Some(moto)
    }
}
