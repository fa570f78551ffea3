//! Runs Python in a separate, confined process and collects what it printed.
//!
//! The server never confines itself: it starts `moa-workshop sandbox-exec` (the launcher),
//! which confines its own fresh process (`confine.rs`) and then `execve`s the interpreter
//! with an empty environment inside a private working directory that is deleted afterwards.
//! Gradings use it once per fork server ([`Sandbox::start_zygote`], see `grader/zygote.rs`),
//! whose children confine themselves further. A single run ([`Sandbox::start_python`], then
//! [`Started::run`]: the probe, tests and the bench) gets its input once, its wall clock counts
//! from then, and the server enforces that limit, the output cap and the watched quota of its
//! working directory, and kills the process group.

pub mod confine;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::{ChildStderr, ChildStdin, ChildStdout, Command};

pub use confine::Layers;

/// Resource limits for one sandboxed run.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    pub wall: Duration,
    pub cpu_seconds: u64,
    pub memory_mib: u64,
    pub file_size_kib: u64,
    pub open_files: u64,
    pub processes: u64,
    /// Bytes of stdout kept before the run is stopped as "too much output".
    pub stdout_bytes: usize,
    /// Bytes of stderr kept (the rest is read and dropped).
    pub stderr_bytes: usize,
    /// Size and file-count cap of the working directory (a tmpfs, where namespaces are on).
    pub workdir_kib: u64,
    pub workdir_files: u64,
    /// Give each run its own user, PID, IPC, network and mount namespaces where the kernel
    /// allows it (`MOA_SANDBOX_NAMESPACES=off` switches them off; the seccomp allow-list
    /// holds either way).
    pub namespaces: bool,
    /// The uid and gid every sandbox runs as where the server may switch to them (it has
    /// CAP_SETUID, CAP_SETGID, CAP_CHOWN and CAP_KILL, as root does); None keeps the server's
    /// (`MOA_SANDBOX_UID`).
    pub uid: Option<(u32, u32)>,
    /// Set when the uid was asked for by name: a Python it cannot read is then an error
    /// rather than a reason to keep the server's uid.
    pub uid_required: bool,
}

/// The sandbox's uid (and gid) unless told otherwise: outside what Debian's and systemd's
/// conventions hand out (regular users stop at 60000, systemd's dynamic users start at
/// 61184, subordinate uid ranges at 100000), so no login, service or container owns it.
pub const DEFAULT_SANDBOX_UID: u32 = 61000;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            wall: Duration::from_secs(10),
            cpu_seconds: 10,
            memory_mib: 512,
            file_size_kib: 1024,
            open_files: 64,
            processes: 16,
            stdout_bytes: 4 * 1024 * 1024,
            stderr_bytes: 64 * 1024,
            workdir_kib: 16 * 1024,
            workdir_files: 256,
            namespaces: true,
            uid: Some((DEFAULT_SANDBOX_UID, DEFAULT_SANDBOX_UID)),
            uid_required: false,
        }
    }
}

/// Where the interpreter lives, learned once by asking it (outside the sandbox).
#[derive(Debug, Clone, Deserialize)]
pub struct Interpreter {
    pub executable: PathBuf,
    pub version: String,
    /// Directories it reads at start-up and import time.
    pub paths: Vec<PathBuf>,
    /// `sys.path` of an ordinary isolated start (`-I`, with `site`), in order.
    pub import_path: Vec<String>,
    /// The dynamic loader named in the executable (the kernel executes it too).
    #[serde(skip)]
    pub loader: Option<PathBuf>,
}

const INTERPRETER_PROBE: &str = r#"
import json, os, sys, sysconfig
dirs = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
dirs.update(p for p in sys.path if p)
dirs.update(v for k, v in sysconfig.get_paths().items() if k in ("stdlib", "platstdlib", "purelib", "platlib"))
dirs.add(sysconfig.get_config_var("LIBDIR") or "/usr/lib")
print(json.dumps({"executable": os.path.realpath(sys.executable),
                  "version": sys.version.split()[0],
                  "import_path": sys.path,
                  "paths": sorted(os.path.realpath(d) for d in dirs if os.path.isdir(d))}))
"#;

/// System paths the dynamic loader and the interpreter read, whatever the distribution.
const SYSTEM_READ_PATHS: &[&str] =
    &["/lib", "/lib64", "/usr/lib", "/usr/lib64", "/etc/ld.so.cache", "/etc/localtime", "/usr/share/zoneinfo"];

impl Interpreter {
    /// Asks `program` (e.g. `python3`) where it is installed.
    pub async fn discover(program: &str) -> Result<Interpreter, String> {
        let output = Command::new(program)
            .args(["-I", "-c", INTERPRETER_PROBE])
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output()
            .await
            .map_err(|e| format!("cannot run the Python interpreter {program:?}: {e}"))?;
        if !output.status.success() {
            return Err(format!(
                "the Python interpreter {program:?} failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
        let mut found: Interpreter = serde_json::from_slice(&output.stdout)
            .map_err(|e| format!("the Python interpreter {program:?} answered oddly: {e}"))?;
        found.paths.retain(|p| p != Path::new("/"));
        found.loader = elf_interpreter(&found.executable);
        Ok(found)
    }

    /// Everything the sandbox lets Python read.
    pub fn read_paths(&self) -> Vec<PathBuf> {
        let mut paths = self.paths.clone();
        paths.extend(SYSTEM_READ_PATHS.iter().map(PathBuf::from).filter(|p| p.exists()));
        paths.sort();
        paths.dedup();
        paths
    }
}

/// How the sandbox is started: the launcher binary, the interpreter and the limits.
#[derive(Debug, Clone)]
pub struct Sandbox {
    pub launcher: PathBuf,
    pub interpreter: Interpreter,
    pub limits: Limits,
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Ending {
    /// The process exited on its own with this code.
    Exited(i32),
    /// The process died of this signal (a crash, or the CPU limit's SIGKILL/SIGXCPU).
    Signaled(i32),
    /// The wall-clock limit passed; the server killed the process group.
    WallClock,
    /// More than `Limits::stdout_bytes` were printed; the server killed the process group.
    TooMuchOutput,
    /// The working directory held more than `Limits::workdir_files` entries or
    /// `Limits::workdir_kib`; the server killed the process group. (Where it is a tmpfs, the
    /// kernel refuses the excess first, and the run goes on.)
    TooMuchWritten,
}

#[derive(Debug)]
pub struct RunOutput {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub ending: Ending,
    pub elapsed: Duration,
    /// The process's own CPU time (user + system), where it was reaped by someone who could
    /// tell (the zygote, from `wait4`); None for a single run.
    pub cpu: Option<Duration>,
}

/// A launcher started as the fork server (`--zygote`), with `socket` as its stdin.
pub struct ZygoteProcess {
    pub child: tokio::process::Child,
    /// The launcher's pid, also its process group.
    pub pid: i32,
    pub stderr: Option<ChildStderr>,
    /// Its working directory; children write nothing, so it stays empty.
    _workdir: WorkDir,
}

impl Sandbox {
    /// Starts `python -I -S -B -c <script> <args>…` confined, in a fresh private working
    /// directory. It gets its input, and its time starts counting, at [`Started::run`].
    ///
    /// `-S`: no `site`; whoever needs site-packages sets `sys.path` itself (the harness does,
    /// from [`Interpreter::import_path`]): `.pth` processing is the slowest part of start-up.
    pub fn start_python(&self, script: &str, args: &[String]) -> std::io::Result<Started> {
        let workdir = WorkDir(Some(tempfile::Builder::new().prefix("moa-grade-").tempdir()?.keep()));
        let mut command = self.launcher_command(workdir.path(), false);
        command
            .arg(&self.interpreter.executable)
            .args(["-I", "-S", "-B", "-c", script])
            .args(args)
            .current_dir(workdir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn()?;
        let pid = child.id().map(|p| p as i32);
        Ok(Started {
            stdin: child.stdin.take(),
            stdout: child.stdout.take(),
            stderr: child.stderr.take(),
            child,
            pid,
            early_stdout: Vec::new(),
            workdir,
            limits: self.limits.clone(),
        })
    }

    /// Starts the launcher as the fork server: `python -I -S -B -c <script> --zygote <config>
    /// <args>…` with `socket` as its stdin. Its own CPU, process and descriptor limits are
    /// loose (it forks and holds a descriptor per running job, and never runs submitted code);
    /// each child sets the real ones on itself, from `config`.
    pub fn start_zygote(
        &self,
        script: &str,
        config: &str,
        args: &[String],
        socket: std::os::fd::OwnedFd,
    ) -> std::io::Result<ZygoteProcess> {
        let workdir = WorkDir(Some(tempfile::Builder::new().prefix("moa-grade-").tempdir()?.keep()));
        let limits = Limits {
            cpu_seconds: u32::MAX as u64,
            processes: self.limits.processes.max(4096),
            open_files: self.limits.open_files.max(1024),
            ..self.limits.clone()
        };
        let mut command = self.launcher_command_with(&limits, workdir.path(), false, true);
        command
            .arg(&self.interpreter.executable)
            .args(["-I", "-S", "-B", "-c", script, "--zygote", config])
            .args(args)
            .current_dir(workdir.path())
            .stdin(Stdio::from(socket))
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = command.spawn()?;
        let pid = child.id().map(|p| p as i32).ok_or_else(|| std::io::Error::other("the launcher exited at once"))?;
        Ok(ZygoteProcess { stderr: child.stderr.take(), child, pid, _workdir: workdir })
    }

    /// Runs `script` confined, feeding `stdin` to it: [`Sandbox::start_python`], then [`Started::run`].
    pub async fn run_python(&self, script: &str, stdin: &[u8]) -> std::io::Result<RunOutput> {
        self.start_python(script, &[])?.run(stdin).await
    }

    /// Confines a throw-away launcher and reports which layers took effect.
    pub async fn probe_layers(&self) -> Result<Layers, String> {
        let workdir = tempfile::Builder::new()
            .prefix("moa-probe-")
            .tempdir()
            .map_err(|e| format!("cannot create a temporary directory: {e}"))?;
        // As the fork server is confined (its seccomp filter differs a little from a single run's).
        let output = self
            .launcher_command_with(&self.limits, workdir.path(), true, true)
            .stdin(Stdio::null())
            .output()
            .await
            .map_err(|e| format!("cannot start the sandbox launcher: {e}"))?;
        serde_json::from_slice(&output.stdout).map_err(|e| {
            format!("the sandbox launcher answered oddly ({e}): {}", String::from_utf8_lossy(&output.stderr))
        })
    }

    fn launcher_command(&self, workdir: &Path, probe: bool) -> Command {
        self.launcher_command_with(&self.limits, workdir, probe, false)
    }

    fn launcher_command_with(&self, l: &Limits, workdir: &Path, probe: bool, zygote: bool) -> Command {
        let mut command = Command::new(&self.launcher);
        command.env_clear().kill_on_drop(true).arg("sandbox-exec");
        if probe {
            command.arg("--probe");
        }
        if zygote {
            command.arg("--zygote");
        }
        for (flag, value) in [
            ("--cpu-seconds", l.cpu_seconds),
            ("--memory-mib", l.memory_mib),
            ("--file-size-kib", l.file_size_kib),
            ("--open-files", l.open_files),
            ("--processes", l.processes),
            ("--workdir-kib", l.workdir_kib),
            ("--workdir-files", l.workdir_files),
        ] {
            command.arg(flag).arg(value.to_string());
        }
        if !l.namespaces {
            command.arg("--no-namespaces");
        }
        if let Some((uid, gid)) = l.uid {
            command.arg("--uid").arg(uid.to_string()).arg("--gid").arg(gid.to_string());
        }
        for path in self.interpreter.read_paths() {
            command.arg("--read").arg(path);
        }
        command.arg("--write").arg(workdir);
        command.arg("--exec").arg(&self.interpreter.executable);
        if let Some(loader) = &self.interpreter.loader {
            command.arg("--exec").arg(loader);
        }
        command.arg("--");
        command
    }
}

/// A confined interpreter that has started but not yet received its input. Dropping it kills
/// its process group and deletes its working directory: one that is never used leaves nothing.
pub struct Started {
    child: tokio::process::Child,
    /// Also its process group (the launcher called `setsid`); None once reaped.
    pid: Option<i32>,
    /// Piped; taken by `run`, which closes each as soon as it is done with it (a writer to a
    /// closed stdout dies instead of blocking).
    stdin: Option<ChildStdin>,
    stdout: Option<ChildStdout>,
    stderr: Option<ChildStderr>,
    /// Bytes read from stdout before the hand-over, past the line that was awaited.
    early_stdout: Vec<u8>,
    /// Deleted at the end of `run`, or on drop, after the process is dead.
    workdir: WorkDir,
    limits: Limits,
}

impl Started {
    pub fn pid(&self) -> Option<u32> {
        self.pid.map(|p| p as u32)
    }

    /// Waits until the process prints the line `announcement` (consumed, not part of the
    /// run's output). The explanation on failure includes what it wrote to stderr.
    pub async fn wait_for_line(&mut self, announcement: &[u8], within: Duration) -> Result<(), String> {
        let (Some(stdout), Some(stderr)) = (self.stdout.as_mut(), self.stderr.as_mut()) else {
            return Err("the sandboxed process was already used".into());
        };
        let mut line = Vec::new();
        let read = async {
            let mut buf = [0u8; 256];
            loop {
                if let Some(end) = line.iter().position(|&b| b == b'\n') {
                    self.early_stdout = line.split_off(end + 1);
                    line.truncate(end);
                    return true;
                }
                match stdout.read(&mut buf).await {
                    Ok(0) | Err(_) => return false,
                    Ok(n) => line.extend_from_slice(&buf[..n]),
                }
            }
        };
        match tokio::time::timeout(within, read).await {
            Ok(true) if line == announcement => Ok(()),
            Ok(true) => Err(format!(
                "Python in the sandbox printed {:?} instead of {:?}",
                String::from_utf8_lossy(&line),
                String::from_utf8_lossy(announcement)
            )),
            Ok(false) => {
                let mut err = Vec::new();
                let _ = tokio::time::timeout(Duration::from_secs(1), async {
                    read_capped(stderr, self.limits.stderr_bytes, false, &mut err).await;
                })
                .await;
                let ending = match tokio::time::timeout(Duration::from_secs(1), self.child.wait()).await {
                    Ok(Ok(status)) => {
                        self.pid = None;
                        format!("{:?}", exit_ending(status))
                    }
                    _ => "still running".into(),
                };
                Err(format!("Python did not start in the sandbox ({ending}): {}", String::from_utf8_lossy(&err).trim()))
            }
            Err(_) => Err(format!("Python did not start in the sandbox within {} s", within.as_secs_f64())),
        }
    }

    /// Whether the process has already ended (it is then reaped).
    pub fn has_exited(&mut self) -> bool {
        match self.child.try_wait() {
            Ok(None) => false,
            Ok(Some(_)) | Err(_) => {
                self.pid = None;
                true
            }
        }
    }

    /// Hands `stdin` over and collects the output; the wall-clock limit counts from now.
    pub async fn run(mut self, stdin: &[u8]) -> std::io::Result<RunOutput> {
        let started = Instant::now();
        let deadline = tokio::time::Instant::now() + self.limits.wall;
        let (Some(mut input), Some(stdout), Some(stderr)) = (self.stdin.take(), self.stdout.take(), self.stderr.take())
        else {
            return Err(std::io::Error::other("the sandboxed process was already used"));
        };
        let stdin = stdin.to_vec();
        // A process that never reads its input must not block the server: write in the background.
        let feeder = tokio::spawn(async move {
            let _ = input.write_all(&stdin).await;
        });
        // Read into buffers that outlive the timeout, so a run cut short keeps what it reported.
        let mut out = std::mem::take(&mut self.early_stdout);
        let mut err = Vec::new();
        let limits = self.limits.clone();
        let collect = async {
            tokio::join!(
                read_capped(stdout, limits.stdout_bytes, true, &mut out),
                read_capped(stderr, limits.stderr_bytes, false, &mut err)
            )
        };
        // The watched quota of a working directory on disk (a tmpfs one stays empty here).
        let dir = self.workdir.path().to_path_buf();
        let (max_entries, max_bytes) = (limits.workdir_files, limits.workdir_kib * 1024);
        let quota = async move {
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + QUOTA_CHECK, QUOTA_CHECK);
            loop {
                tick.tick().await;
                let dir = dir.clone();
                let over = tokio::task::spawn_blocking(move || over_quota(&dir, max_entries, max_bytes)).await;
                if over.unwrap_or(false) {
                    return;
                }
            }
        };
        let watched = async {
            tokio::select! {
                collected = collect => Some(collected),
                () = quota => None,
            }
        };
        let ending = match tokio::time::timeout_at(deadline, watched).await {
            Ok(Some((true, _))) => Some(Ending::TooMuchOutput),
            Ok(Some(_)) => None,
            Ok(None) => Some(Ending::TooMuchWritten),
            Err(_) => Some(Ending::WallClock),
        };
        let ending = match ending {
            Some(ending) => ending,
            // Both pipes closed: the process is exiting; give it until the deadline.
            None => match tokio::time::timeout_at(deadline, self.child.wait()).await {
                Ok(Ok(status)) => exit_ending(status),
                Ok(Err(e)) => return Err(e),
                Err(_) => Ending::WallClock,
            },
        };
        // Whatever happened, nothing the submission started outlives the run.
        self.kill_group();
        let _ = self.child.kill().await;
        feeder.abort();
        // Nothing it built is left behind, and the grading waits for that (off the runtime).
        if let Some(dir) = self.workdir.0.take() {
            let _ = tokio::task::spawn_blocking(move || remove_tree(&dir)).await;
        }
        Ok(RunOutput { stdout: out, stderr: err, ending, elapsed: started.elapsed(), cpu: None })
    }

    fn kill_group(&mut self) {
        if let Some(pid) = self.pid.take() {
            unsafe { libc::killpg(pid, libc::SIGKILL) };
        }
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        // `kill_on_drop` then kills the interpreter itself, and Tokio reaps it.
        self.kill_group();
    }
}

/// How often a working directory on disk is measured against its quota.
const QUOTA_CHECK: Duration = Duration::from_millis(200);

/// Whether the tree under `root` holds more than `max_entries` entries or `max_bytes` of
/// allocated blocks. Depth first, holding one directory open at a time (entered by name, left
/// through ".."; no long paths), and never above `root`; stops as soon as a cap is passed, so
/// the work is bounded by the caps. It runs while the submission may still be changing the
/// tree, so it is an approximation (moving a directory it is in cannot hide what is below);
/// a tmpfs (with namespaces) makes the caps exact.
pub fn over_quota(root: &Path, max_entries: u64, max_bytes: u64) -> bool {
    use rustix::fs::{AtFlags, FileType, Mode, OFlags};
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let Ok(mut current) = rustix::fs::open(root, flags, Mode::empty()) else { return false };
    // Per level from `root` down to `current`: the subdirectories not visited yet.
    let mut pending: Vec<Vec<std::ffi::CString>> = Vec::new();
    let (mut entries, mut bytes) = (0u64, 0u64);
    loop {
        let mut subdirectories = Vec::new();
        if let Ok(listing) = rustix::fs::Dir::read_from(&current) {
            for entry in listing.flatten() {
                let name = entry.file_name();
                if name == c"." || name == c".." {
                    continue;
                }
                entries += 1;
                if let Ok(stat) = rustix::fs::statat(&current, name, AtFlags::SYMLINK_NOFOLLOW) {
                    bytes += stat.st_blocks as u64 * 512;
                    if FileType::from_raw_mode(stat.st_mode) == FileType::Directory {
                        subdirectories.push(name.to_owned());
                    }
                }
                if entries > max_entries || bytes > max_bytes {
                    return true;
                }
            }
        }
        pending.push(subdirectories);
        // The next directory to list: a pending one here, or go back up.
        loop {
            let Some(level) = pending.last_mut() else { return false };
            if let Some(name) = level.pop() {
                if let Ok(inner) = rustix::fs::openat(&current, name.as_c_str(), flags, Mode::empty()) {
                    current = inner;
                    break;
                }
                continue;
            }
            pending.pop();
            if pending.is_empty() {
                return false;
            }
            match rustix::fs::openat(&current, c"..", flags, Mode::empty()) {
                Ok(parent) => current = parent,
                Err(_) => return false,
            }
        }
    }
}

/// A run's working directory, removed (off the async runtime) when dropped.
struct WorkDir(Option<PathBuf>);

impl WorkDir {
    fn path(&self) -> &Path {
        self.0.as_deref().unwrap_or(Path::new("/nonexistent"))
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let Some(dir) = self.0.take() else { return };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn_blocking(move || remove_tree(&dir))),
            Err(_) => remove_tree(&dir),
        }
    }
}

/// Deletes `root` and everything under it, whatever a submission made of it: any depth (a
/// loop over one open directory at a time, never recursion; names relative to it, so no path
/// grows past PATH_MAX), unreadable or unwritable directories (permissions restored first),
/// symbolic links (removed, never followed). Gives up quietly on what it cannot delete.
pub fn remove_tree(root: &Path) {
    use rustix::fs::{AtFlags, Mode, OFlags};
    let open = |at: &rustix::fd::OwnedFd, name: &std::ffi::CStr| {
        rustix::fs::openat(
            at,
            name,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
    };
    let owner_only = Mode::RWXU;
    let _ = rustix::fs::chmod(root, owner_only);
    let Ok(mut current) =
        rustix::fs::open(root, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC, Mode::empty())
    else {
        let _ = std::fs::remove_file(root);
        return;
    };
    // Names of the directories entered, from `root` down to `current`.
    let mut entered: Vec<std::ffi::CString> = Vec::new();
    // Bounds the work on a tree that changes under it (it should not: the process is dead).
    let mut budget: u64 = 10_000_000;
    loop {
        budget -= 1;
        if budget == 0 {
            return;
        }
        let mut subdirectory = None;
        let mut removed = false;
        if let Ok(entries) = rustix::fs::Dir::read_from(&current) {
            for entry in entries.flatten() {
                let name = entry.file_name();
                if name == c"." || name == c".." {
                    continue;
                }
                let is_dir = match entry.file_type() {
                    rustix::fs::FileType::Directory => true,
                    rustix::fs::FileType::Unknown => rustix::fs::statat(&current, name, AtFlags::SYMLINK_NOFOLLOW)
                        .is_ok_and(|st| {
                            rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Directory
                        }),
                    _ => false,
                };
                if !is_dir {
                    removed |= rustix::fs::unlinkat(&current, name, AtFlags::empty()).is_ok();
                } else if rustix::fs::unlinkat(&current, name, AtFlags::REMOVEDIR).is_ok() {
                    removed = true;
                } else {
                    subdirectory = Some(name.to_owned());
                    break;
                }
            }
        }
        if let Some(name) = subdirectory {
            let _ = rustix::fs::chmodat(&current, name.as_c_str(), owner_only, AtFlags::empty());
            match open(&current, &name) {
                Ok(child) => {
                    current = child;
                    entered.push(name);
                }
                // Cannot enter it: nothing more can be done below here.
                Err(_) => return,
            }
            continue;
        }
        if removed {
            // Entries removed while listing may hide others: list again until a pass is empty.
            continue;
        }
        // `current` is empty: go back up and remove it.
        let Some(name) = entered.pop() else { break };
        match open(&current, c"..") {
            Ok(parent) => current = parent,
            Err(_) => return,
        }
        if rustix::fs::unlinkat(&current, name.as_c_str(), AtFlags::REMOVEDIR).is_err() {
            return;
        }
    }
    drop(current);
    let _ = std::fs::remove_dir(root);
}

/// The PT_INTERP path of a 64-bit little-endian ELF file, canonicalized; None for static
/// binaries or anything unreadable.
fn elf_interpreter(path: &Path) -> Option<PathBuf> {
    let bytes = std::fs::read(path).ok()?;
    let u16_at = |at: usize| Some(u16::from_le_bytes(bytes.get(at..at + 2)?.try_into().ok()?) as usize);
    let u32_at = |at: usize| Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?));
    let u64_at = |at: usize| Some(u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?) as usize);
    if bytes.get(..6)? != b"\x7fELF\x02\x01" {
        return None;
    }
    let (table, entry_size, entries) = (u64_at(0x20)?, u16_at(0x36)?, u16_at(0x38)?);
    const PT_INTERP: u32 = 3;
    (0..entries).find_map(|i| {
        let header = table + i * entry_size;
        if u32_at(header)? != PT_INTERP {
            return None;
        }
        let (offset, size) = (u64_at(header + 8)?, u64_at(header + 32)?);
        let raw = bytes.get(offset..offset + size)?;
        let name = std::str::from_utf8(raw).ok()?.trim_end_matches('\0');
        std::fs::canonicalize(name).ok()
    })
}

fn exit_ending(status: std::process::ExitStatus) -> Ending {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => Ending::Exited(code),
        (None, Some(signal)) => Ending::Signaled(signal),
        (None, None) => Ending::Exited(-1),
    }
}

/// Reads a pipe to its end into `kept`, keeping at most `cap` bytes; true when more came.
/// With `stop_at_cap`, returns as soon as the cap is passed (the caller kills the writer);
/// otherwise drains and drops the rest so the writer never blocks.
pub(crate) async fn read_capped(
    mut pipe: impl AsyncRead + Unpin,
    cap: usize,
    stop_at_cap: bool,
    kept: &mut Vec<u8>,
) -> bool {
    let mut buf = vec![0u8; 64 * 1024];
    let mut overflow = false;
    loop {
        match pipe.read(&mut buf).await {
            Ok(0) | Err(_) => return overflow,
            Ok(n) => {
                let room = cap.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
                if n > room {
                    overflow = true;
                    if stop_at_cap {
                        return overflow;
                    }
                }
            }
        }
    }
}

/// `moa-workshop sandbox-exec [--probe] [limits] [--uid U [--gid G]] [--read P]… [--write D] [--exec X] -- PROGRAM ARGS…`
///
/// Confines this process and replaces it with PROGRAM. Returns the exit code on failure.
pub fn launcher_main(args: &[String]) -> i32 {
    let mut c = confine::Confinement::default();
    let mut probe = false;
    let mut rest = args.iter();
    let number = |v: Option<&String>| v.and_then(|v| v.parse::<u64>().ok());
    let mut program = Vec::new();
    let (mut uid, mut gid) = (None, None);
    while let Some(arg) = rest.next() {
        let ok = match arg.as_str() {
            "--probe" => {
                probe = true;
                true
            }
            "--cpu-seconds" => number(rest.next()).map(|v| c.limits.cpu_seconds = v).is_some(),
            "--memory-mib" => number(rest.next()).map(|v| c.limits.memory_mib = v).is_some(),
            "--file-size-kib" => number(rest.next()).map(|v| c.limits.file_size_kib = v).is_some(),
            "--open-files" => number(rest.next()).map(|v| c.limits.open_files = v).is_some(),
            "--processes" => number(rest.next()).map(|v| c.limits.processes = v).is_some(),
            "--workdir-kib" => number(rest.next()).map(|v| c.limits.workdir_kib = v).is_some(),
            "--workdir-files" => number(rest.next()).map(|v| c.limits.workdir_files = v).is_some(),
            "--no-namespaces" => {
                c.limits.namespaces = false;
                true
            }
            "--zygote" => {
                c.zygote = true;
                true
            }
            "--uid" => number(rest.next()).and_then(|v| u32::try_from(v).ok()).map(|v| uid = Some(v)).is_some(),
            "--gid" => number(rest.next()).and_then(|v| u32::try_from(v).ok()).map(|v| gid = Some(v)).is_some(),
            "--read" => rest.next().map(|v| c.read_only.push(v.into())).is_some(),
            "--write" => rest.next().map(|v| c.read_write = Some(v.into())).is_some(),
            "--exec" => rest.next().map(|v| c.executables.push(v.into())).is_some(),
            "--" => {
                program = rest.by_ref().cloned().collect();
                true
            }
            _ => false,
        };
        if !ok {
            eprintln!("sandbox-exec: bad argument {arg:?}");
            return 2;
        }
    }
    c.identity = uid.map(|uid| (uid, gid.unwrap_or(uid)));
    let identity = match confine::own_identity(&c) {
        Ok(identity) => identity,
        Err(error) => {
            eprintln!("sandbox-exec: refusing to run: cannot switch to the sandbox's own uid: {error}");
            return 126;
        }
    };
    if !confine::die_with_parent() {
        eprintln!("sandbox-exec: refusing to run: the server that started it is gone");
        return 125;
    }
    let mut layers = confine::prepare(&c);
    (layers.own_uid, layers.own_uid_off) = match identity {
        Ok(uid) => (Some(uid), String::new()),
        Err(why) => (None, why),
    };
    if layers.pid_namespace
        && let Err(error) = confine::fork_into_pid_namespace()
    {
        eprintln!("sandbox-exec: cannot start the sandbox's first process: {error}");
        return 125;
    }
    confine::confine(&c, &mut layers);
    if probe {
        layers.python_unreadable = confine::first_unreadable(&c);
        println!("{}", serde_json::to_string(&layers).unwrap_or_default());
        return 0;
    }
    if let Some(missing) = layers.missing_required() {
        eprintln!("sandbox-exec: refusing to run: {missing} could not be applied");
        return 126;
    }
    let error = confine::exec(&program);
    eprintln!("sandbox-exec: cannot start {:?}: {error}", program.first());
    127
}
