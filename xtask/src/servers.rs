//! Local S3-compatible servers for the tests: a one-node Ceph RGW (memstore OSD, so nothing touches
//! the disk but logs) and moto. Each is started on 127.0.0.1 with fresh random keys in its own
//! directory under `target/servers/`, on ports chosen free at start-up — the Ceph monitor included,
//! so several clusters (a developer's and a CI run's) can run on one machine side by side.
//!
//! Two lifetimes:
//! - attached (conformance/test runs): the processes are xtask's children, die with it
//!   (`PR_SET_PDEATHSIG`, so even a killed xtask leaves nothing behind) and are stopped by
//!   [`Server`]'s `Drop` on every return path, errors included;
//! - detached (`cargo xtask servers up`): own session, outlive xtask, recorded in a state file
//!   that `servers env` and `servers down` read.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

use crate::runner::check_interrupted;

/// Which server implementation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Ceph RADOS Gateway: verifies v2 and v4 signatures; the "real server" runs.
    Rgw,
    /// moto: no signature checks, but reports the SSE/class/ACL headers it received.
    Moto,
}

impl Kind {
    /// The name used in `REGSTORE_S3_SERVER`, directory names and the CLI.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Rgw => "rgw",
            Kind::Moto => "moto",
        }
    }

    fn parse(s: &str) -> Option<Kind> {
        match s {
            "rgw" => Some(Kind::Rgw),
            "moto" => Some(Kind::Moto),
            _ => None,
        }
    }
}

/// How to reach one server. `Debug` is not derived: the secret must never reach a log.
#[derive(Clone)]
pub struct ServerInfo {
    pub kind: Kind,
    pub endpoint: String,
    pub access_key: String,
    pub secret_key: String,
    pub region: String,
}

impl ServerInfo {
    /// The server a developer started by hand and announced through the environment contract
    /// (`REGSTORE_S3_ENDPOINT` and friends), if any.
    pub fn from_s3_env() -> Result<Option<ServerInfo>> {
        let Some(endpoint) = env_nonempty("REGSTORE_S3_ENDPOINT") else {
            return Ok(None);
        };
        let access_key = env_nonempty("REGSTORE_S3_ACCESS_KEY").ok_or_else(|| {
            anyhow!("REGSTORE_S3_ENDPOINT is set but REGSTORE_S3_ACCESS_KEY is not")
        })?;
        let secret_key = env_nonempty("REGSTORE_S3_SECRET_KEY").ok_or_else(|| {
            anyhow!("REGSTORE_S3_ENDPOINT is set but REGSTORE_S3_SECRET_KEY is not")
        })?;
        let kind = match env_nonempty("REGSTORE_S3_SERVER") {
            Some(s) => Kind::parse(&s)
                .ok_or_else(|| anyhow!("REGSTORE_S3_SERVER={s:?}: expected rgw or moto"))?,
            None => Kind::Rgw,
        };
        Ok(Some(ServerInfo {
            kind,
            endpoint,
            access_key,
            secret_key,
            region: env_nonempty("REGSTORE_S3_REGION").unwrap_or_else(|| "us-east-1".into()),
        }))
    }

    /// A moto server announced through `REGSTORE_MOTO_ENDPOINT` (moto accepts any keys).
    pub fn from_moto_env() -> Option<ServerInfo> {
        env_nonempty("REGSTORE_MOTO_ENDPOINT").map(|endpoint| ServerInfo {
            kind: Kind::Moto,
            endpoint,
            access_key: "moto-access".into(),
            secret_key: "moto-secret".into(),
            region: "us-east-1".into(),
        })
    }

    /// The `REGSTORE_S3_*` variables of the test environment contract for this server.
    pub fn s3_env(&self, v4auth: bool, bucket: &str) -> Vec<(&'static str, String)> {
        vec![
            ("REGSTORE_S3_ENDPOINT", self.endpoint.clone()),
            ("REGSTORE_S3_ACCESS_KEY", self.access_key.clone()),
            ("REGSTORE_S3_SECRET_KEY", self.secret_key.clone()),
            ("REGSTORE_S3_REGION", self.region.clone()),
            ("REGSTORE_S3_BUCKET", bucket.to_string()),
            ("REGSTORE_S3_V4AUTH", v4auth.to_string()),
            ("REGSTORE_S3_SERVER", self.kind.name().to_string()),
        ]
    }
}

fn env_nonempty(key: &str) -> Option<String> {
    std::env::var(key).ok().filter(|v| !v.is_empty())
}

/// Whether the processes belong to this xtask run or outlive it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Attached,
    Detached,
}

struct Proc {
    /// A string of the process's command line, checked against `/proc/<pid>/cmdline` before
    /// signalling a recorded pid so a reused pid of an unrelated process is never killed.
    marker: String,
    pid: i32,
    child: Option<Child>,
    /// Where the daemon explains itself when it dies.
    log: PathBuf,
}

/// A running server and the processes behind it. Dropping it stops them (unless it was made
/// persistent with [`Server::persist`]) and removes a run directory.
pub struct Server {
    pub info: ServerInfo,
    dir: PathBuf,
    mode: Mode,
    procs: Vec<Proc>,
    keep: bool,
    remove_dir: bool,
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.keep {
            return;
        }
        // A throw-away server's data does not matter: a short grace keeps test runs quick.
        stop_procs(&mut self.procs, Duration::from_secs(3));
        if self.remove_dir {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

impl Server {
    fn new(kind: Kind, dir: PathBuf, mode: Mode, remove_dir: bool) -> Server {
        Server {
            info: ServerInfo {
                kind,
                endpoint: String::new(),
                access_key: random_hex(10).to_uppercase(),
                secret_key: random_hex(20),
                region: "us-east-1".into(),
            },
            dir,
            mode,
            procs: Vec::new(),
            keep: false,
            remove_dir,
        }
    }

    fn log_dir(&self) -> PathBuf {
        self.dir.join("log")
    }

    /// Configures a command for this server: no stdin, output into a log file, and the lifetime
    /// rule of `self.mode`.
    fn prepare(&self, cmd: &mut Command, log_name: &str) -> Result<(PathBuf, PathBuf)> {
        let out = self.log_dir().join(format!("{log_name}.out"));
        let err = self.log_dir().join(format!("{log_name}.err"));
        cmd.stdin(Stdio::null())
            .stdout(File::create(&out).with_context(|| format!("create {}", out.display()))?)
            .stderr(File::create(&err).with_context(|| format!("create {}", err.display()))?);
        let detached = self.mode == Mode::Detached;
        // SAFETY: only async-signal-safe calls (prctl/setsid) between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                if detached {
                    // Own session: no terminal Ctrl-C, survives xtask.
                    libc::setsid();
                } else {
                    // Die with xtask even when it is killed and cannot run `Drop`.
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                }
                Ok(())
            });
        }
        Ok((out, err))
    }

    /// Starts a long-running daemon process whose command line contains `marker` and which logs
    /// to `log` (its stderr when `None`).
    fn spawn(&mut self, marker: &str, mut cmd: Command, log: Option<PathBuf>) -> Result<()> {
        let (_, err) = self.prepare(&mut cmd, marker)?;
        let child = cmd
            .spawn()
            .with_context(|| format!("could not start {marker}"))?;
        self.procs.push(Proc {
            marker: marker.to_string(),
            pid: child.id() as i32,
            child: Some(child),
            log: log.unwrap_or(err),
        });
        Ok(())
    }

    /// Runs a set-up command to completion within `timeout`, returning its stdout. Fails early if
    /// one of the daemons started so far has died (their log tail says why).
    fn tool(&mut self, label: &str, mut cmd: Command, timeout: Duration) -> Result<String> {
        let log_name = label.replace(' ', "-");
        let (out, err) = self.prepare(&mut cmd, &log_name)?;
        // A one-shot tool dies with xtask in both modes.
        let mut child = cmd
            .spawn()
            .with_context(|| format!("could not run {label}"))?;
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(status) = child.try_wait()? {
                break status;
            }
            let failure = if let Err(e) = check_interrupted() {
                Some(e)
            } else if let Err(e) = self.check_alive() {
                Some(e)
            } else if Instant::now() > deadline {
                Some(anyhow!(
                    "{label} did not finish within {}s",
                    timeout.as_secs()
                ))
            } else {
                None
            };
            if let Some(e) = failure {
                let _ = child.kill();
                let _ = child.wait();
                return Err(e.context(format!("{label} output:\n{}", tail(&err, 15))));
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        if !status.success() {
            bail!(
                "{label} exited with {status}; its output ({}):\n{}",
                err.display(),
                tail(&err, 15)
            );
        }
        fs::read_to_string(&out).with_context(|| format!("read {}", out.display()))
    }

    /// Fails if a daemon has exited, with the tail of its log.
    fn check_alive(&mut self) -> Result<()> {
        let log_dir = self.log_dir();
        for p in &mut self.procs {
            if let Some(child) = &mut p.child {
                if let Some(status) = child.try_wait()? {
                    let end = tail(&p.log, 15);
                    let hint = if end.contains("Address already in use") {
                        "\nhint: a port chosen free for this server was taken by another \
                         process before the server bound it; run the command again"
                            .to_string()
                    } else if status.code() == Some(libc::ENOSPC) {
                        // ceph-mon exits with ENOSPC when its data directory's file system
                        // has under `mon data avail crit` percent free, before it logs why.
                        format!(
                            "\nhint: exit status {} is ENOSPC (no space left on device): {}",
                            libc::ENOSPC,
                            disk_space(&log_dir)
                        )
                    } else {
                        String::new()
                    };
                    bail!(
                        "{} exited early with {status}; logs in {}; the end of {}:\n{end}{hint}",
                        p.marker,
                        log_dir.display(),
                        p.log.display(),
                    );
                }
            }
        }
        Ok(())
    }

    /// Waits until `GET /` on the endpoint answers with any HTTP status.
    fn wait_http(&mut self, port: u16, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if http_answers(port) {
                return Ok(());
            }
            check_interrupted()?;
            self.check_alive()?;
            if Instant::now() > deadline {
                bail!(
                    "no HTTP answer on 127.0.0.1:{port} within {}s; logs in {}",
                    timeout.as_secs(),
                    self.log_dir().display()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Keeps the processes running after this value is dropped and records them in the state
    /// directory, for `servers env` / `servers down`.
    pub fn persist(mut self) -> Result<ServerInfo> {
        let mut state = String::new();
        for (k, v) in [
            ("kind", self.info.kind.name()),
            ("endpoint", &self.info.endpoint),
            ("access_key", &self.info.access_key),
            ("secret_key", &self.info.secret_key),
            ("region", &self.info.region),
        ] {
            state.push_str(&format!("{k}={v}\n"));
        }
        write_private(&self.dir.join("state"), &state)?;
        let pids: String = self
            .procs
            .iter()
            .map(|p| format!("{} {} {}\n", p.pid, p.marker, p.log.display()))
            .collect();
        fs::write(self.dir.join("pids"), pids)?;
        self.keep = true;
        Ok(self.info.clone())
    }
}

fn write_private(path: &Path, contents: &str) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("write {}", path.display()))?;
    f.write_all(contents.as_bytes())?;
    Ok(())
}

/// SIGTERM in reverse start order (RGW before OSD before monitor), `grace` to exit, then SIGKILL;
/// children are reaped.
fn stop_procs(procs: &mut [Proc], grace: Duration) {
    for p in procs.iter().rev() {
        if is_ours(p) {
            // SAFETY: plain syscall; the pid was checked to still be the program we started.
            unsafe {
                libc::kill(p.pid, libc::SIGTERM);
            }
        }
    }
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline && procs.iter_mut().any(still_running) {
        std::thread::sleep(Duration::from_millis(100));
    }
    for p in procs.iter_mut() {
        if still_running(p) {
            // SAFETY: as above.
            unsafe {
                libc::kill(p.pid, libc::SIGKILL);
            }
        }
        if let Some(child) = &mut p.child {
            let _ = child.wait();
        }
    }
}

fn still_running(p: &mut Proc) -> bool {
    match &mut p.child {
        Some(child) => matches!(child.try_wait(), Ok(None)),
        None => is_ours(p),
    }
}

/// Whether `p.pid` is alive, not a zombie, and still runs the program that was recorded.
fn is_ours(p: &Proc) -> bool {
    let stat = fs::read_to_string(format!("/proc/{}/stat", p.pid)).unwrap_or_default();
    // Field 3 (after the parenthesised command name) is the state; Z = zombie.
    let state = stat.rsplit(')').next().unwrap_or("").trim_start();
    if stat.is_empty() || state.starts_with('Z') {
        return false;
    }
    let cmdline = fs::read(format!("/proc/{}/cmdline", p.pid)).unwrap_or_default();
    let cmdline = String::from_utf8_lossy(&cmdline);
    cmdline.contains(&p.marker)
}

/// "N GiB free of M GiB on the file system holding `path`" (MiB below 1 GiB), for errors that
/// may mean a full disk.
fn disk_space(path: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let human = |blocks: u64, size: u64| {
        let bytes = blocks.saturating_mul(size);
        if bytes >= 1 << 30 {
            format!("{:.1} GiB", bytes as f64 / (1u64 << 30) as f64)
        } else {
            format!("{} MiB", bytes >> 20)
        }
    };
    let Ok(c_path) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return format!("{} has a NUL byte", path.display());
    };
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c_path` is a valid C string and `st` a properly sized, writable statvfs.
    if unsafe { libc::statvfs(c_path.as_ptr(), &mut st) } != 0 {
        return format!(
            "statvfs {}: {}",
            path.display(),
            std::io::Error::last_os_error()
        );
    }
    let size = st.f_frsize as u64;
    format!(
        "{} free of {} on the file system holding {}",
        human(st.f_bavail as u64, size),
        human(st.f_blocks as u64, size),
        path.display()
    )
}

fn http_answers(port: u16) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(1)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut buf = [0u8; 8];
    s.read_exact(&mut buf).is_ok() && buf.starts_with(b"HTTP/1.")
}

/// `n` distinct free loopback ports. The listeners are held until all are chosen so the same port
/// is never returned twice; another process could still take one before the server binds it,
/// which start-up reports as a bind error.
fn free_ports(n: usize) -> Result<Vec<u16>> {
    let listeners = (0..n)
        .map(|_| TcpListener::bind((Ipv4Addr::LOCALHOST, 0)))
        .collect::<std::io::Result<Vec<_>>>()
        .context("no free port on 127.0.0.1")?;
    listeners
        .iter()
        .map(|l| Ok(l.local_addr()?.port()))
        .collect()
}

/// `bytes` random bytes from the kernel, hex-encoded (keys for a throw-away server).
pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    let ok = File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .is_ok();
    if !ok {
        // Only throw-away local test keys; time-derived bytes are good enough if urandom is gone.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        for (i, b) in buf.iter_mut().enumerate() {
            *b = (nanos >> ((i % 16) * 8)) as u8 ^ (std::process::id() as u8).wrapping_add(i as u8);
        }
    }
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

fn tail(path: &Path, lines: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    let start = all.len().saturating_sub(lines);
    all[start..]
        .iter()
        .map(|l| format!("    | {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

pub(crate) fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

static APT_UPDATED: AtomicBool = AtomicBool::new(false);

pub(crate) fn apt_get(args: &[&str]) -> Result<()> {
    // SAFETY: plain syscall.
    if unsafe { libc::geteuid() } != 0 {
        bail!(
            "installing packages needs root; run as root or install them yourself: apt-get {}",
            args.join(" ")
        );
    }
    if !APT_UPDATED.swap(true, Ordering::SeqCst) {
        run_install(
            Command::new("apt-get")
                .arg("update")
                .env("DEBIAN_FRONTEND", "noninteractive"),
        )?;
    }
    run_install(
        Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )
}

fn run_install(cmd: &mut Command) -> Result<()> {
    let shown = crate::runner::display_command(cmd);
    eprintln!("    installing: {shown}");
    let status = cmd
        .stdin(Stdio::null())
        .status()
        .with_context(|| format!("could not run {shown}"))?;
    if !status.success() {
        bail!("`{shown}` exited with {status}");
    }
    Ok(())
}

const CEPH_PROGRAMS: [&str; 5] = ["ceph-mon", "ceph-osd", "ceph", "radosgw", "radosgw-admin"];

/// Installs Debian's Ceph pieces (about 20 s) when any of them is missing.
pub fn ensure_rgw_installed() -> Result<()> {
    if CEPH_PROGRAMS.iter().all(|p| which(p).is_some()) {
        return Ok(());
    }
    apt_get(&["install", "-y", "radosgw"])?;
    apt_get(&[
        "install",
        "-y",
        "--no-install-recommends",
        "ceph-mon",
        "ceph-osd",
    ])?;
    if let Some(missing) = CEPH_PROGRAMS.iter().find(|p| which(p).is_none()) {
        bail!("{missing} is still not on PATH after installing radosgw, ceph-mon and ceph-osd");
    }
    Ok(())
}

fn moto_importable() -> bool {
    Command::new("python3")
        .args(["-c", "import moto.server, flask, flask_cors"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Installs moto's server from PyPI (about 35 s) when it is not importable by `python3`. The
/// server is started as `python3 -m moto.server`, so no console-script shim has to be on PATH.
pub fn ensure_moto_installed() -> Result<()> {
    if moto_importable() {
        return Ok(());
    }
    run_install(Command::new("python3").args([
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "moto[server]",
    ]))?;
    if !moto_importable() {
        bail!("moto is still not importable by python3 after `pip install 'moto[server]'`");
    }
    Ok(())
}

/// Installs Debian's tinyproxy (`tinyproxy-bin`: the program without a system service) when it
/// is missing; the driver's proxy tests (crates/driver-s3/tests/network.rs) start their own.
pub fn ensure_tinyproxy_installed() -> Result<()> {
    let present = || {
        ["/usr/bin/tinyproxy", "/usr/sbin/tinyproxy"]
            .iter()
            .any(|p| Path::new(p).is_file())
            || which("tinyproxy").is_some()
    };
    if present() {
        return Ok(());
    }
    apt_get(&["install", "-y", "--no-install-recommends", "tinyproxy-bin"])?;
    if !present() {
        bail!("tinyproxy is still missing after `apt-get install tinyproxy-bin`");
    }
    Ok(())
}

/// `target/servers` of the workspace.
pub fn servers_root() -> PathBuf {
    crate::workspace_root().join("target").join("servers")
}

/// A fresh directory for a server of this xtask process; leftovers of runs whose xtask is gone
/// (killed before its `Drop` ran) are removed first.
fn run_dir(kind: Kind) -> Result<PathBuf> {
    let root = servers_root();
    fs::create_dir_all(&root).with_context(|| format!("create {}", root.display()))?;
    if let Ok(entries) = fs::read_dir(&root) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let pid = name
                .strip_prefix("run-")
                .and_then(|rest| rest.split('-').next())
                .and_then(|p| p.parse::<i32>().ok());
            if let Some(pid) = pid {
                if !Path::new(&format!("/proc/{pid}")).exists() {
                    let _ = fs::remove_dir_all(e.path());
                }
            }
        }
    }
    Ok(root.join(format!("run-{}-{}", std::process::id(), kind.name())))
}

/// Starts a server of `kind` in the given lifetime mode; attached servers get a per-run directory,
/// detached ones `target/servers/<kind>`.
pub fn start(kind: Kind, mode: Mode) -> Result<Server> {
    let (dir, remove_dir) = match mode {
        Mode::Attached => (run_dir(kind)?, true),
        Mode::Detached => (servers_root().join(kind.name()), false),
    };
    if dir.exists() {
        fs::remove_dir_all(&dir).with_context(|| format!("remove {}", dir.display()))?;
    }
    fs::create_dir_all(dir.join("log")).with_context(|| format!("create {}", dir.display()))?;
    let mut server = Server::new(kind, dir, mode, remove_dir);
    match kind {
        Kind::Rgw => start_rgw(&mut server)?,
        Kind::Moto => start_moto(&mut server)?,
    }
    Ok(server)
}

fn start_moto(s: &mut Server) -> Result<()> {
    ensure_moto_installed()?;
    let port = free_ports(1)?[0];
    let mut cmd = Command::new("python3");
    cmd.args([
        "-m",
        "moto.server",
        "-H",
        "127.0.0.1",
        "-p",
        &port.to_string(),
    ])
    .current_dir(&s.dir);
    s.spawn("moto.server", cmd, None)?;
    s.wait_http(port, Duration::from_secs(60))?;
    s.info.endpoint = format!("http://127.0.0.1:{port}");
    Ok(())
}

fn start_rgw(s: &mut Server) -> Result<()> {
    ensure_rgw_installed()?;
    let dir = s.dir.clone();
    for sub in ["mon", "osd", "run"] {
        fs::create_dir_all(dir.join(sub))?;
    }
    // RGW's HTTP port, and the monitor's msgr2 and legacy ports: choosing the monitor's ports
    // (instead of Ceph's fixed 3300/6789) is what lets several clusters share a machine.
    let ports = free_ports(3)?;
    let (port, mon_v2, mon_v1) = (ports[0], ports[1], ports[2]);
    let conf = dir.join("ceph.conf");
    fs::write(&conf, ceph_conf(&dir, port, mon_v2, mon_v1)).context("write ceph.conf")?;
    let ceph = |program: &str, args: &[&str]| {
        let mut c = Command::new(program);
        c.args(args).env("CEPH_CONF", &conf).current_dir(&dir);
        c
    };
    let t = Duration::from_secs(60);

    s.tool(
        "ceph-mon-mkfs",
        ceph(
            "ceph-mon",
            &["--id", "a", "--mkfs", "--keyring", "/dev/null"],
        ),
        t,
    )?;
    File::create(dir.join("mon").join("keyring"))?;
    s.spawn(
        "ceph-mon",
        ceph("ceph-mon", &["--id", "a", "-f"]),
        Some(dir.join("log").join("mon.a.log")),
    )?;
    let id = s.tool("ceph-osd-create", ceph("ceph", &["osd", "create"]), t)?;
    let id = id.trim().to_string();
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_digit()) {
        bail!("`ceph osd create` printed {id:?}, expected an OSD id");
    }
    let osd = format!("osd.{id}");
    s.tool(
        "ceph-crush-add",
        ceph("ceph", &["osd", "crush", "add", &osd, "1", "root=default"]),
        t,
    )?;
    s.tool(
        "ceph-osd-mkfs",
        ceph("ceph-osd", &["--id", &id, "--mkfs"]),
        t,
    )?;
    s.spawn(
        "ceph-osd",
        ceph("ceph-osd", &["--id", &id, "-f"]),
        Some(dir.join("log").join(format!("{osd}.log"))),
    )?;
    let access = format!("--access-key={}", s.info.access_key);
    let secret = format!("--secret-key={}", s.info.secret_key);
    s.tool(
        "radosgw-admin-user",
        ceph(
            "radosgw-admin",
            &[
                "user",
                "create",
                "--uid=xtask",
                "--display-name=xtask",
                &access,
                &secret,
            ],
        ),
        t,
    )?;
    // Storage classes the conformance and header tests use, each with its own data pool.
    for class in ["STANDARD_IA", "REDUCED_REDUNDANCY"] {
        let pool = format!(
            "default.rgw.{}.data",
            class.to_lowercase().replace('_', "-")
        );
        s.tool(
            "radosgw-admin-zonegroup-placement",
            ceph(
                "radosgw-admin",
                &[
                    "zonegroup",
                    "placement",
                    "add",
                    "--rgw-zonegroup",
                    "default",
                    "--placement-id",
                    "default-placement",
                    "--storage-class",
                    class,
                ],
            ),
            t,
        )?;
        s.tool(
            "radosgw-admin-zone-placement",
            ceph(
                "radosgw-admin",
                &[
                    "zone",
                    "placement",
                    "add",
                    "--rgw-zone",
                    "default",
                    "--placement-id",
                    "default-placement",
                    "--storage-class",
                    class,
                    "--data-pool",
                    &pool,
                ],
            ),
            t,
        )?;
    }
    s.spawn(
        "radosgw",
        ceph("radosgw", &["-n", "client.rgw.a", "-f"]),
        Some(dir.join("log").join("client.rgw.a.log")),
    )?;
    s.wait_http(port, Duration::from_secs(90))?;
    s.info.endpoint = format!("http://127.0.0.1:{port}");
    Ok(())
}

/// A one-node cluster without authentication between daemons (loopback only), a memstore OSD
/// (data in RAM, nothing to clean on disk), pool size 1, a KMS "testing" backend with the key ids
/// the SSE-KMS tests use.
fn ceph_conf(dir: &Path, port: u16, mon_v2: u16, mon_v1: u16) -> String {
    let d = dir.display();
    let fsid = fs::read_to_string("/proc/sys/kernel/random/uuid")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "5b1e8a4e-5d0e-4f49-9a51-2f1a0c7d9e31".into());
    let mon_addrs = format!("[v2:127.0.0.1:{mon_v2},v1:127.0.0.1:{mon_v1}]");
    format!(
        "[global]
fsid = {fsid}
mon host = {mon_addrs}
public addr = 127.0.0.1
public network = 127.0.0.0/8
cluster network = 127.0.0.0/8
run dir = {d}/run
admin socket = {d}/run/$name.asok
pid file = {d}/run/$type.pid
log file = {d}/log/$name.log
keyring = /dev/null
auth cluster required = none
auth service required = none
auth client required = none
ms mon client mode = crc
ms client mode = crc
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd crush chooseleaf type = 0
mon allow pool size one = true
mon warn on pool no redundancy = false
mon data avail crit = 0
mon data avail warn = 1
[mon.a]
mon data = {d}/mon
public addrv = {mon_addrs}
[osd.0]
osd data = {d}/osd
osd objectstore = memstore
memstore device bytes = 4294967296
osd class load list = *
osd class default list = *
[client.rgw.a]
rgw frontends = beast endpoint=127.0.0.1:{port}
rgw dns name = s3.localhost
rgw crypt require ssl = false
rgw crypt s3 kms backend = testing
rgw crypt s3 kms encryption keys = testkey-1=YmluCmJvb3N0CmJvb3N0LWJ1aWxkCmNlcGguY29uZgo= testkey-2=aWIKTWFrZWZpbGUKbWFuCm91dApzcmMKVGVzdGluZwo=
rgw gc obj min wait = 60
rgw gc processor period = 60
"
    )
}

/// A server started earlier by `servers up`, read back from its state directory.
pub struct Persisted {
    pub info: ServerInfo,
    procs: Vec<Proc>,
    dir: PathBuf,
}

impl Persisted {
    /// Whether every recorded process is still running.
    pub fn alive(&self) -> bool {
        !self.procs.is_empty() && self.procs.iter().all(is_ours)
    }

    /// Stops the recorded processes and removes the state directory.
    pub fn stop(mut self) -> Result<()> {
        stop_procs(&mut self.procs, Duration::from_secs(10));
        fs::remove_dir_all(&self.dir).with_context(|| format!("remove {}", self.dir.display()))
    }
}

/// Reads `target/servers/<kind>/state` and `pids`, if `servers up` left them.
pub fn load_persisted(kind: Kind) -> Result<Option<Persisted>> {
    let dir = servers_root().join(kind.name());
    let Ok(state) = fs::read_to_string(dir.join("state")) else {
        return Ok(None);
    };
    let get = |key: &str| {
        state
            .lines()
            .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
            .map(str::to_string)
            .ok_or_else(|| anyhow!("{}: no `{key}` line", dir.join("state").display()))
    };
    let info = ServerInfo {
        kind,
        endpoint: get("endpoint")?,
        access_key: get("access_key")?,
        secret_key: get("secret_key")?,
        region: get("region")?,
    };
    let pids = fs::read_to_string(dir.join("pids")).unwrap_or_default();
    let procs = pids
        .lines()
        .filter_map(|l| {
            let mut fields = l.splitn(3, ' ');
            let pid = fields.next()?.parse().ok()?;
            let marker = fields.next()?.to_string();
            let log = PathBuf::from(fields.next().unwrap_or_default());
            Some(Proc {
                marker,
                pid,
                child: None,
                log,
            })
        })
        .collect();
    Ok(Some(Persisted { info, procs, dir }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceph_conf_uses_the_chosen_ports_for_monitor_and_gateway() {
        let conf = ceph_conf(Path::new("/tmp/x"), 18080, 13300, 16789);
        assert!(conf.contains("mon host = [v2:127.0.0.1:13300,v1:127.0.0.1:16789]"));
        assert!(conf.contains("public addrv = [v2:127.0.0.1:13300,v1:127.0.0.1:16789]"));
        assert!(conf.contains("rgw frontends = beast endpoint=127.0.0.1:18080"));
        assert!(conf.contains("run dir = /tmp/x/run"));
        // Loopback only: no address other than 127.0.0.1 may be configured.
        assert!(!conf.contains("0.0.0.0"));
    }

    #[test]
    fn free_ports_are_distinct() {
        let ports = free_ports(3).unwrap();
        assert_eq!(ports.len(), 3);
        assert!(ports[0] != ports[1] && ports[1] != ports[2] && ports[0] != ports[2]);
    }

    #[test]
    fn random_keys_are_hex_of_the_asked_length_and_differ() {
        let a = random_hex(20);
        let b = random_hex(20);
        assert_eq!(a.len(), 40);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn recorded_pid_of_another_program_is_not_ours() {
        // Our own pid runs the test binary, not "radosgw": it must never be signalled.
        let p = Proc {
            marker: "radosgw".into(),
            pid: std::process::id() as i32,
            child: None,
            log: PathBuf::new(),
        };
        assert!(!is_ours(&p));
    }
}
