//! The server's end of the fork server ("zygote", see `harness.py`): one interpreter, started
//! and confined by the launcher exactly as a single run is, that has loaded the harness and
//! forks a child per job. Python's start-up is paid once per zygote, not per submission.
//!
//! Per job the server makes three pipes (input, output, stderr), sends their child ends over
//! the SOCK_SEQPACKET socket the zygote has as stdin, and gets back the child's pidfd, then its
//! wait status and CPU time. The wall clock and the output cap are enforced here as for a
//! single run; a kill goes to the pidfd, so it reaches exactly that child whatever PID
//! namespace it lives in.

use std::collections::HashMap;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::io::unix::AsyncFd;
use tokio::net::unix::pipe;
use tokio::sync::{oneshot, watch};

use super::sandbox::{Ending, Limits, RunOutput, Sandbox, ZygoteProcess, confine, read_capped};

/// Why a job got no verdict from this zygote.
#[derive(Debug)]
pub enum RunError {
    /// The zygote died (or stopped answering) before the child's ending was known: not the
    /// submission's doing (a child cannot reach it), so the job may be run again elsewhere.
    Lost(String),
    /// Something on the server's side failed (pipes, descriptors).
    Failed(String),
}

/// What the child's confinement needs from the Rust side: the per-child seccomp program (its
/// rules live in `confine.rs` with the launcher's), the Landlock system call numbers of this
/// architecture and the rlimits.
pub fn child_config(limits: &Limits, preload: &[String]) -> Result<String, String> {
    let filter = confine::child_filter().ok_or("cannot compile the per-child seccomp filter")?;
    let hex: String = filter.iter().map(|b| format!("{b:02x}")).collect();
    let mib = 1024 * 1024;
    Ok(serde_json::json!({
        "filter": hex,
        "preload": preload,
        "landlock_create_ruleset": libc::SYS_landlock_create_ruleset,
        "landlock_restrict_self": libc::SYS_landlock_restrict_self,
        "rlimits": [
            ["RLIMIT_CPU", limits.cpu_seconds],
            ["RLIMIT_AS", limits.memory_mib * mib],
            ["RLIMIT_NOFILE", limits.open_files],
            // No file can be written and no process made; these make it so twice over.
            ["RLIMIT_FSIZE", 0],
            ["RLIMIT_NPROC", 0],
            ["RLIMIT_CORE", 0],
        ],
    })
    .to_string())
}

struct Job {
    started: Option<oneshot::Sender<Arc<OwnedFd>>>,
    ended: Option<oneshot::Sender<(i32, Duration)>>,
    /// Kept for `Drop`: a stopping server kills every child it knows of.
    pidfd: Option<Arc<OwnedFd>>,
}

struct State {
    jobs: Mutex<HashMap<u64, Job>>,
    /// Set once the zygote's socket has closed.
    dead: watch::Sender<bool>,
}

pub struct Zygote {
    socket: Arc<AsyncFd<OwnedFd>>,
    state: Arc<State>,
    process: ZygoteProcess,
    reader: tokio::task::JoinHandle<()>,
    next: AtomicU64,
    limits: Limits,
}

impl Zygote {
    /// Starts a zygote and waits until it is ready for jobs.
    pub async fn start(sandbox: &Sandbox, script: &str, config: &str, args: &[String]) -> Result<Zygote, String> {
        let (ours, theirs) = socket_pair().map_err(|e| format!("cannot make the zygote's socket: {e}"))?;
        let mut process =
            sandbox.start_zygote(script, config, args, theirs).map_err(|e| format!("cannot start the sandbox: {e}"))?;
        // SAFETY: the descriptor is owned by the AsyncFd and never closed or replaced behind it.
        let socket = unsafe { AsyncFd::register(ours) }
            .map_err(|e| format!("cannot watch the zygote's socket: {}", e.into_parts().1))?;
        let socket = Arc::new(socket);
        let mut buf = [0u8; 16];
        let ready = tokio::time::timeout(sandbox.limits.wall, receive(&socket, &mut buf)).await;
        match ready {
            Ok(Ok((n, _))) if &buf[..n] == b"ready" => {}
            Ok(_) => {
                let mut err = Vec::new();
                if let Some(stderr) = process.stderr.as_mut() {
                    let _ =
                        tokio::time::timeout(Duration::from_secs(1), read_capped(stderr, 64 * 1024, false, &mut err))
                            .await;
                }
                return Err(format!("Python did not start in the sandbox: {}", String::from_utf8_lossy(&err).trim()));
            }
            Err(_) => {
                return Err(format!(
                    "Python did not start in the sandbox within {} s",
                    sandbox.limits.wall.as_secs_f64()
                ));
            }
        }
        // Unread from here on: a zygote that writes to stderr has broken, and dies of it.
        process.stderr = None;
        let state = Arc::new(State { jobs: Mutex::new(HashMap::new()), dead: watch::Sender::new(false) });
        let reader = tokio::spawn(read_messages(socket.clone(), state.clone()));
        Ok(Zygote { socket, state, process, reader, next: AtomicU64::new(0), limits: sandbox.limits.clone() })
    }

    /// The launcher's pid (also its process group).
    pub fn pid(&self) -> u32 {
        self.process.pid as u32
    }

    pub fn is_alive(&self) -> bool {
        !*self.state.dead.borrow()
    }

    /// Resolves once the zygote is gone.
    pub async fn died(&self) {
        let mut dead = self.state.dead.subscribe();
        let _ = dead.wait_for(|dead| *dead).await;
    }

    /// Runs one job in a child of its own; the wall-clock limit counts from the hand-over.
    pub async fn run(&self, input: &[u8]) -> Result<RunOutput, RunError> {
        let failed = |what: &str, e: std::io::Error| RunError::Failed(format!("{what}: {e}"));
        let (job_in, job_writer) = pipe_pair().map_err(|e| failed("cannot make a pipe", e))?;
        let (out_reader, out_writer) = pipe_pair().map_err(|e| failed("cannot make a pipe", e))?;
        let (err_reader, err_writer) = pipe_pair().map_err(|e| failed("cannot make a pipe", e))?;
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (started_tx, started_rx) = oneshot::channel();
        let (ended_tx, mut ended_rx) = oneshot::channel();
        {
            let mut jobs = self.state.jobs.lock().expect("zygote lock");
            if !self.is_alive() {
                return Err(RunError::Lost("the zygote had stopped".into()));
            }
            jobs.insert(id, Job { started: Some(started_tx), ended: Some(ended_tx), pidfd: None });
        }
        let _forget = Forget(&self.state, id);
        let started = Instant::now();
        let deadline = tokio::time::Instant::now() + self.limits.wall;
        let fds = [job_in.as_raw_fd(), out_writer.as_raw_fd(), err_writer.as_raw_fd()];
        send(&self.socket, format!("J {id}").as_bytes(), &fds)
            .await
            .map_err(|e| RunError::Lost(format!("cannot hand the job to the zygote: {e}")))?;
        // The child's ends are the child's alone: end-of-file on its output means it is done.
        drop((job_in, out_writer, err_writer));
        let mut job_writer = pipe::Sender::from_owned_fd(job_writer).map_err(|e| failed("cannot use a pipe", e))?;
        let out_reader = pipe::Receiver::from_owned_fd(out_reader).map_err(|e| failed("cannot use a pipe", e))?;
        let err_reader = pipe::Receiver::from_owned_fd(err_reader).map_err(|e| failed("cannot use a pipe", e))?;
        let input = input.to_vec();
        // A child that never reads its input must not block the server: write in the background.
        let feeder = tokio::spawn(async move {
            let _ = job_writer.write_all(&input).await;
        });
        let _stop_feeding = AbortOnDrop(feeder);
        let pidfd = match tokio::time::timeout_at(deadline, started_rx).await {
            Ok(Ok(pidfd)) => pidfd,
            Ok(Err(_)) => return Err(RunError::Lost("the zygote did not start the job".into())),
            Err(_) => return Err(RunError::Lost("the zygote did not start the job in time".into())),
        };
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let limits = &self.limits;
        let collect = async {
            tokio::join!(
                read_capped(out_reader, limits.stdout_bytes, true, &mut out),
                read_capped(err_reader, limits.stderr_bytes, false, &mut err)
            )
        };
        let stopped = match tokio::time::timeout_at(deadline, collect).await {
            Ok((true, _)) => Some(Ending::TooMuchOutput),
            Ok(_) => None,
            Err(_) => Some(Ending::WallClock),
        };
        let grace = tokio::time::Instant::now() + Duration::from_secs(2);
        let waited = match stopped {
            // Both pipes closed: the child is exiting; give it until the deadline.
            None => tokio::time::timeout_at(deadline, &mut ended_rx).await.ok(),
            Some(_) => None,
        };
        let (ending, cpu) = match (stopped, waited) {
            (None, Some(Ok((status, cpu)))) => (wait_status_ending(status), Some(cpu)),
            (None, Some(Err(_))) => return Err(RunError::Lost("the zygote stopped while the job ran".into())),
            (stopped, _) => {
                // The server's limit: the child dies now, and its ending is the limit.
                kill(&pidfd);
                let cpu = match tokio::time::timeout_at(grace, &mut ended_rx).await {
                    Ok(Ok((_, cpu))) => Some(cpu),
                    _ => None,
                };
                (stopped.unwrap_or(Ending::WallClock), cpu)
            }
        };
        Ok(RunOutput { stdout: out, stderr: err, ending, elapsed: started.elapsed(), cpu })
    }

    /// How many children run now.
    pub fn running(&self) -> usize {
        self.state.jobs.lock().expect("zygote lock").values().filter(|j| j.pidfd.is_some()).count()
    }
}

impl Zygote {
    /// Kills the zygote's process group and every child it runs. The children are in process
    /// groups of their own: each is killed by its pidfd (and dies with the zygote anyway, by its
    /// parent-death signal).
    pub fn kill_all(&self) {
        for job in self.state.jobs.lock().expect("zygote lock").values() {
            if let Some(pidfd) = &job.pidfd {
                kill(pidfd);
            }
        }
        unsafe { libc::killpg(self.process.pid, libc::SIGKILL) };
        let _ = self.state.dead.send(true);
    }
}

impl Drop for Zygote {
    fn drop(&mut self) {
        self.kill_all();
        self.reader.abort();
        let _ = self.process.child.start_kill();
    }
}

/// Forgets a job's entry when its run ends, however it ends.
struct Forget<'a>(&'a State, u64);

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        if let Some(job) = self.0.jobs.lock().expect("zygote lock").remove(&self.1)
            && let Some(pidfd) = job.pidfd
        {
            // A run abandoned half-way (its request was cancelled) leaves no child running.
            kill(&pidfd);
        }
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Reads the zygote's messages until its socket closes, then marks it dead (every job still
/// waiting learns so through its dropped channels).
async fn read_messages(socket: Arc<AsyncFd<OwnedFd>>, state: Arc<State>) {
    let mut buf = [0u8; 128];
    while let Ok((n, mut fds)) = receive(&socket, &mut buf).await {
        if n == 0 {
            break;
        }
        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
        let mut words = text.split(' ');
        let (Some(kind), Some(id)) = (words.next(), words.next().and_then(|w| w.parse::<u64>().ok())) else {
            continue;
        };
        let mut jobs = state.jobs.lock().expect("zygote lock");
        let Some(job) = jobs.get_mut(&id) else { continue };
        match kind {
            "S" => {
                if let Some(pidfd) = fds.pop().map(Arc::new) {
                    job.pidfd = Some(pidfd.clone());
                    if let Some(started) = job.started.take() {
                        let _ = started.send(pidfd);
                    }
                }
            }
            "E" => {
                let mut number = || words.next().and_then(|w| w.parse::<i64>().ok());
                if let (Some(status), Some(cpu_us)) = (number(), number()) {
                    // Reaped: its pid may be reused, so the pidfd is no longer to be signalled.
                    job.pidfd = None;
                    if let Some(ended) = job.ended.take() {
                        let _ = ended.send((status as i32, Duration::from_micros(cpu_us.max(0) as u64)));
                    }
                }
            }
            // It could not fork: the job's channels close, and its run reports the zygote lost.
            _ => {
                jobs.remove(&id);
            }
        }
    }
    let mut jobs = state.jobs.lock().expect("zygote lock");
    let _ = state.dead.send(true);
    for job in jobs.values_mut() {
        job.started = None;
        job.ended = None;
    }
}

fn wait_status_ending(status: i32) -> Ending {
    if libc::WIFSIGNALED(status) {
        Ending::Signaled(libc::WTERMSIG(status))
    } else if libc::WIFEXITED(status) {
        Ending::Exited(libc::WEXITSTATUS(status))
    } else {
        Ending::Exited(-1)
    }
}

fn kill(pidfd: &OwnedFd) {
    let null = std::ptr::null::<libc::siginfo_t>();
    unsafe { libc::syscall(libc::SYS_pidfd_send_signal, pidfd.as_raw_fd(), libc::SIGKILL, null, 0) };
}

/// (server's end, non-blocking; zygote's end, blocking), both close-on-exec (the launcher
/// gets its end as stdin, which `dup2` keeps open).
fn socket_pair() -> std::io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    let kind = libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC;
    if unsafe { libc::socketpair(libc::AF_UNIX, kind, 0, fds.as_mut_ptr()) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let (ours, theirs) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let flags = unsafe { libc::fcntl(ours.as_raw_fd(), libc::F_GETFL) };
    if flags < 0 || unsafe { libc::fcntl(ours.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok((ours, theirs))
}

/// (read end, write end), close-on-exec.
fn pipe_pair() -> std::io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Room for the ancillary data of up to 4 descriptors.
const CONTROL_BYTES: usize = 64;

async fn send(socket: &AsyncFd<OwnedFd>, data: &[u8], fds: &[RawFd]) -> std::io::Result<()> {
    loop {
        let mut guard = socket.writable().await?;
        match guard.try_io(|inner| send_now(inner.get_ref().as_raw_fd(), data, fds)) {
            Ok(result) => return result,
            Err(_would_block) => continue,
        }
    }
}

async fn receive(socket: &AsyncFd<OwnedFd>, buf: &mut [u8]) -> std::io::Result<(usize, Vec<OwnedFd>)> {
    loop {
        let mut guard = socket.readable().await?;
        match guard.try_io(|inner| receive_now(inner.get_ref().as_raw_fd(), buf)) {
            Ok(result) => return result,
            Err(_would_block) => continue,
        }
    }
}

fn send_now(socket: RawFd, data: &[u8], fds: &[RawFd]) -> std::io::Result<()> {
    assert!(fds.len() <= 4);
    let mut control = [0u64; CONTROL_BYTES / 8];
    let mut iov = libc::iovec { iov_base: data.as_ptr() as *mut libc::c_void, iov_len: data.len() };
    let mut message: libc::msghdr = unsafe { std::mem::zeroed() };
    message.msg_iov = &mut iov;
    message.msg_iovlen = 1;
    if !fds.is_empty() {
        let bytes = std::mem::size_of_val(fds) as u32;
        message.msg_control = control.as_mut_ptr().cast();
        message.msg_controllen = unsafe { libc::CMSG_SPACE(bytes) } as _;
        unsafe {
            let header = libc::CMSG_FIRSTHDR(&message);
            (*header).cmsg_level = libc::SOL_SOCKET;
            (*header).cmsg_type = libc::SCM_RIGHTS;
            (*header).cmsg_len = libc::CMSG_LEN(bytes) as _;
            std::ptr::copy_nonoverlapping(fds.as_ptr(), libc::CMSG_DATA(header).cast::<RawFd>(), fds.len());
        }
    }
    let sent = unsafe { libc::sendmsg(socket, &message, libc::MSG_NOSIGNAL) };
    if sent < 0 { Err(std::io::Error::last_os_error()) } else { Ok(()) }
}

fn receive_now(socket: RawFd, buf: &mut [u8]) -> std::io::Result<(usize, Vec<OwnedFd>)> {
    let mut control = [0u64; CONTROL_BYTES / 8];
    let mut iov = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
    let mut message: libc::msghdr = unsafe { std::mem::zeroed() };
    message.msg_iov = &mut iov;
    message.msg_iovlen = 1;
    message.msg_control = control.as_mut_ptr().cast();
    message.msg_controllen = CONTROL_BYTES as _;
    let received = unsafe { libc::recvmsg(socket, &mut message, libc::MSG_CMSG_CLOEXEC) };
    if received < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let mut fds = Vec::new();
    unsafe {
        let mut header = libc::CMSG_FIRSTHDR(&message);
        while !header.is_null() {
            if (*header).cmsg_level == libc::SOL_SOCKET && (*header).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(header).cast::<RawFd>();
                let count = ((*header).cmsg_len as usize - libc::CMSG_LEN(0) as usize) / size_of::<RawFd>();
                for i in 0..count {
                    fds.push(OwnedFd::from_raw_fd(std::ptr::read_unaligned(data.add(i))));
                }
            }
            header = libc::CMSG_NXTHDR(&message, header);
        }
    }
    Ok((received as usize, fds))
}
