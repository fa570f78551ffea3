//! The confinement the launcher applies before it becomes the Python interpreter.
//!
//! This runs in a fresh, single-threaded process (`moa-workshop sandbox-exec`), never in the
//! server, so it may allocate and fail freely. Order matters: the sandbox's own uid first
//! (where the server may arrange one; a change of uid clears the parent-death signal, which
//! is armed after it), new session (so the server can kill the whole group), inherited
//! descriptors closed, then namespaces (the
//! launcher forks once so that Python is the first process of its own PID namespace), the
//! working directory's tmpfs and a private `/proc`, limits, capabilities, Landlock, and
//! seccomp last, because seccomp forbids some of the calls the earlier steps need.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::path::PathBuf;

use landlock::{
    ABI, Access, AccessFs, AccessNet, CompatLevel, Compatible, PathBeneath, PathFd, Ruleset, RulesetAttr,
    RulesetCreatedAttr, RulesetStatus, Scope,
};
use rustix::mount::{MountFlags, MountPropagationFlags};
use rustix::thread::UnshareFlags;
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter, SeccompRule,
};
use serde::Serialize;

use super::Limits;

/// What the launcher was told to enforce (parsed from its command line).
#[derive(Debug, Default)]
pub struct Confinement {
    pub limits: Limits,
    /// Readable (not writable) paths: the interpreter's installation and system libraries.
    pub read_only: Vec<PathBuf>,
    /// The one writable directory: the run's private working directory.
    pub read_write: Option<PathBuf>,
    /// The only files that may be executed: the interpreter and its ELF loader.
    pub executables: Vec<PathBuf>,
    /// The interpreter becomes the fork server (`harness.py --zygote`): it may fork children
    /// (which confine themselves further before any submission runs, see [`child_filter`]),
    /// talk over the socket it inherited as stdin, and name processes by pid only as 0.
    pub zygote: bool,
    /// The uid and gid the sandbox runs as, where the launcher may switch to them
    /// (CAP_SETUID and CAP_SETGID); None keeps the server's.
    pub identity: Option<(u32, u32)>,
}

/// Which layers actually took effect, reported by `sandbox-exec --probe`.
#[derive(Debug, Default, Serialize, serde::Deserialize, Clone, PartialEq)]
#[serde(default)]
pub struct Layers {
    pub new_session: bool,
    pub rlimits: bool,
    pub capabilities_dropped: bool,
    /// "full", "partial" or "off", with the kernel's Landlock ABI.
    pub landlock: String,
    pub landlock_abi: i32,
    pub seccomp: bool,
    /// The filter denies every system call it does not list (always so when `seccomp` is on).
    pub seccomp_allow_list: bool,
    /// Descriptors above 2 inherited from the server were closed before Python started.
    pub inherited_fds_closed: bool,
    /// Own user namespace (the same uid, no privilege outside it).
    pub user_namespace: bool,
    /// Own PID namespace: Python is its process 1 and sees no other process.
    pub pid_namespace: bool,
    /// Own SysV IPC namespace: segments die with the run.
    pub ipc_namespace: bool,
    /// Own network namespace: no interface but a down loopback.
    pub network_namespace: bool,
    /// Own mount namespace, with a `/proc` that shows only the sandbox's own processes.
    pub mount_namespace: bool,
    /// The working directory is a size- and file-count-capped tmpfs, gone with the run.
    pub workdir_tmpfs: bool,
    /// The uid the sandbox runs as when it is not the server's (no process of the server's
    /// uid is reachable by the kernel's same-uid rules, no file only that uid reads is readable).
    pub own_uid: Option<u32>,
    /// Why the sandbox keeps the server's uid (empty when `own_uid` is set).
    pub own_uid_off: String,
    /// A path of the interpreter's the sandbox could not open (then Python cannot run there).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub python_unreadable: Option<String>,
}

impl Layers {
    pub fn summary(&self) -> String {
        let namespaces: Vec<&str> = [
            (self.user_namespace, "user"),
            (self.pid_namespace, "pid"),
            (self.ipc_namespace, "ipc"),
            (self.network_namespace, "net"),
            (self.mount_namespace, "mount"),
        ]
        .iter()
        .filter_map(|&(on, name)| on.then_some(name))
        .collect();
        format!(
            "process group: {}, rlimits: {}, capabilities dropped: {}, landlock: {} (ABI {}), seccomp: {}, \
             inherited fds closed: {}, namespaces: {}, workdir: {}, own uid: {}",
            on_off(self.new_session),
            on_off(self.rlimits),
            on_off(self.capabilities_dropped),
            self.landlock,
            self.landlock_abi,
            match (self.seccomp, self.seccomp_allow_list) {
                (true, true) => "allow-list",
                (true, false) => "on",
                (false, _) => "off",
            },
            on_off(self.inherited_fds_closed),
            if namespaces.is_empty() { "none (seccomp allow-list only)".to_string() } else { namespaces.join("+") },
            if self.workdir_tmpfs { "capped tmpfs" } else { "directory on disk" },
            match self.own_uid {
                Some(uid) => uid.to_string(),
                None => format!("off ({})", self.own_uid_off),
            },
        )
    }

    /// A layer the kernel offers but that could not be applied: running anyway would be
    /// running unconfined, so the launcher refuses. Namespaces are not required: where they
    /// are refused (Docker's default seccomp profile), the allow-list holds on its own.
    pub fn missing_required(&self) -> Option<&'static str> {
        if !self.new_session {
            Some("a new process group")
        } else if !self.rlimits {
            Some("resource limits")
        } else if !self.inherited_fds_closed {
            Some("closing inherited descriptors")
        } else if !self.seccomp || !self.seccomp_allow_list {
            Some("the seccomp filter")
        } else if self.landlock_abi > 0 && self.landlock == "off" {
            Some("Landlock")
        } else {
            None
        }
    }

    /// Files, network and signals are contained only when both kernel layers are on.
    pub fn fully_contained(&self) -> bool {
        self.new_session
            && self.rlimits
            && self.inherited_fds_closed
            && self.landlock == "full"
            && self.seccomp
            && self.seccomp_allow_list
    }

    /// Every namespace is on (the kernel allowed them and they were not switched off).
    pub fn namespaced(&self) -> bool {
        self.user_namespace
            && self.pid_namespace
            && self.ipc_namespace
            && self.network_namespace
            && self.mount_namespace
            && self.workdir_tmpfs
    }
}

fn on_off(b: bool) -> &'static str {
    if b { "on" } else { "off" }
}

/// The first steps, in the launcher before it forks: a new session (the server kills the
/// group), no inherited descriptor, and the namespaces when wanted and allowed.
pub fn prepare(c: &Confinement) -> Layers {
    let mut layers = Layers { new_session: unsafe { libc::setsid() } != -1, ..Layers::default() };
    layers.inherited_fds_closed = close_inherited_fds();
    if c.limits.namespaces {
        enter_namespaces(&mut layers);
    }
    layers
}

/// The rest, in the process that becomes Python (after the fork, when there is one).
pub fn confine(c: &Confinement, layers: &mut Layers) {
    if layers.mount_namespace {
        let (proc_private, tmpfs) = mount_private(c);
        layers.mount_namespace = proc_private;
        layers.workdir_tmpfs = tmpfs;
    }
    layers.rlimits = set_rlimits(&c.limits);
    layers.capabilities_dropped = drop_capabilities();
    (layers.landlock, layers.landlock_abi) = apply_landlock(c);
    // Landlock's own descriptors are closed by now; nothing but 0-2 reaches Python.
    layers.inherited_fds_closed &= close_inherited_fds();
    layers.seccomp = apply_seccomp(c.zygote);
    layers.seccomp_allow_list = layers.seccomp;
}

/// The sandbox's own uid and gid, taken first, while the launcher is still as privileged as
/// the server: the working directory on disk becomes theirs, then the gid, no supplementary
/// group, the uid (real, effective and saved, so there is no way back). The capabilities
/// survive the switch for the namespaces and mounts that follow; `confine` drops them all.
/// Ok(Ok(uid)) once switched, Ok(Err(why)) where the server's uid is kept, Err when a switch
/// that was possible failed half-way (the launcher then refuses to run).
pub fn own_identity(c: &Confinement) -> Result<Result<u32, String>, String> {
    use rustix::fs::{Mode, OFlags};
    use rustix::process::{Gid, Uid};
    use rustix::thread::{CapabilitySet, CapabilitySets, capabilities, set_capabilities};
    let Some((uid, gid)) = c.identity else { return Ok(Err("MOA_SANDBOX_UID=off".into())) };
    let held = capabilities(None).map_or(CapabilitySet::empty(), |sets| sets.effective);
    // Switching needs the first two, handing over the working directory the third, and the
    // server (as privileged as its launcher) needs the last to still kill a sandbox of
    // another uid at the wall clock.
    let needed = CapabilitySet::SETUID | CapabilitySet::SETGID | CapabilitySet::CHOWN | CapabilitySet::KILL;
    if !held.contains(needed) {
        let why = if rustix::process::geteuid().is_root() {
            "no CAP_SETUID, CAP_SETGID, CAP_CHOWN and CAP_KILL"
        } else {
            "not root"
        };
        return Ok(Err(why.into()));
    }
    let failed = |what: &str, e: rustix::io::Errno| format!("{what}: {e}");
    let (u, g) = (Uid::from_raw(uid), Gid::from_raw(gid));
    if let Some(dir) = &c.read_write {
        // Used without namespaces (with them, a tmpfs of the sandbox's own covers it). The
        // server made it; opened without following a link.
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd =
            rustix::fs::open(dir, flags, Mode::empty()).map_err(|e| failed("cannot open the working directory", e))?;
        rustix::fs::fchown(&fd, Some(u), Some(g)).map_err(|e| failed("cannot hand over the working directory", e))?;
    }
    let before = capabilities(None).map_err(|e| failed("cannot read the capabilities", e))?;
    rustix::thread::set_keep_capabilities(true).map_err(|e| failed("cannot keep the capabilities", e))?;
    // Per thread: the launcher has one.
    rustix::thread::set_thread_res_gid(g, g, g).map_err(|e| failed("setresgid", e))?;
    rustix::thread::set_thread_groups(&[]).map_err(|e| failed("setgroups", e))?;
    rustix::thread::set_thread_res_uid(u, u, u).map_err(|e| failed("setresuid", e))?;
    let _ = rustix::thread::set_keep_capabilities(false);
    // Leaving uid 0 emptied the effective set (the permitted one was kept).
    let restored = CapabilitySets {
        effective: before.permitted,
        permitted: before.permitted,
        inheritable: CapabilitySet::empty(),
    };
    set_capabilities(None, restored).map_err(|e| failed("cannot restore the capabilities", e))?;
    // The change of uid made the process non-dumpable, which hands /proc/self to root (its uid
    // map could not be written); Python, being an ordinary execve of the same uid, would be
    // dumpable again anyway.
    rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::Dumpable)
        .map_err(|e| failed("cannot restore dumpability", e))?;
    let (mut r, mut e, mut s) = (0, 0, 0);
    let (mut rg, mut eg, mut sg) = (0, 0, 0);
    let switched =
        unsafe { libc::getresuid(&mut r, &mut e, &mut s) == 0 && libc::getresgid(&mut rg, &mut eg, &mut sg) == 0 }
            && [r, e, s] == [uid; 3]
            && [rg, eg, sg] == [gid; 3]
            && rustix::process::getgroups().is_ok_and(|groups| groups.is_empty());
    if !switched {
        return Err(format!("the uid and gid are not {uid} and {gid} after the switch"));
    }
    Ok(Ok(uid))
}

/// The first of the interpreter's files and directories that this (confined) process cannot
/// open: a Python installed where the sandbox's uid cannot read it (under `/root`, say).
pub fn first_unreadable(c: &Confinement) -> Option<String> {
    use rustix::fs::{Mode, OFlags};
    c.executables
        .iter()
        .chain(&c.read_only)
        .find(|path| rustix::fs::open(path.as_path(), OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()).is_err())
        .map(|path| path.display().to_string())
}

fn close_inherited_fds() -> bool {
    // close_range(2) (Linux 5.9); on failure, close one by one up to the descriptor limit.
    if unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) } == 0 {
        return true;
    }
    let max = unsafe { libc::sysconf(libc::_SC_OPEN_MAX) }.clamp(1024, 1 << 20) as i32;
    for fd in 3..max {
        unsafe { libc::close(fd) };
    }
    true
}

/// User (same uid and gid inside), PID, IPC, network, mount and UTS namespaces, all or none.
/// With CAP_SYS_ADMIN (root, or the sandbox's own uid with the capabilities it kept) without a
/// user namespace where one is refused (plain unshare may not be).
fn enter_namespaces(layers: &mut Layers) {
    let (uid, gid) = (rustix::process::geteuid().as_raw(), rustix::process::getegid().as_raw());
    let others =
        UnshareFlags::NEWPID | UnshareFlags::NEWIPC | UnshareFlags::NEWNET | UnshareFlags::NEWNS | UnshareFlags::NEWUTS;
    // SAFETY: the launcher is single-threaded and owns its whole process.
    let with_user = unsafe { rustix::thread::unshare_unsafe(others | UnshareFlags::NEWUSER) }.is_ok();
    if with_user {
        let mapped = std::fs::write("/proc/self/setgroups", "deny").is_ok()
            && std::fs::write("/proc/self/uid_map", format!("{uid} {uid} 1")).is_ok()
            && std::fs::write("/proc/self/gid_map", format!("{gid} {gid} 1")).is_ok();
        if !mapped {
            // Unmapped, the process would be "nobody" and could not read the interpreter:
            // the user namespace is already entered, so the others are of no use either way.
            return;
        }
        layers.user_namespace = true;
    } else if unsafe { rustix::thread::unshare_unsafe(others) }.is_err() {
        return;
    }
    layers.pid_namespace = true;
    layers.ipc_namespace = true;
    layers.network_namespace = true;
    layers.mount_namespace = true;
}

/// In the mount namespace: nothing propagates back to the host, the working directory
/// becomes a capped tmpfs and `/proc` shows only this PID namespace: (private /proc, tmpfs).
fn mount_private(c: &Confinement) -> (bool, bool) {
    let secure = MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC;
    if rustix::mount::mount_change("/", MountPropagationFlags::REC | MountPropagationFlags::PRIVATE).is_err() {
        return (false, false);
    }
    // A fresh procfs needs a PID namespace of its own (we are its process 1 now); where the
    // kernel refuses (a masked /proc in a container), an empty read-only tmpfs hides it.
    let proc_mounted = rustix::mount::mount("proc", "/proc", "proc", secure, None::<&std::ffi::CStr>).is_ok()
        || rustix::mount::mount("none", "/proc", "tmpfs", secure | MountFlags::RDONLY, c"size=4k,nr_inodes=1").is_ok();
    let Some(dir) = &c.read_write else { return (proc_mounted, false) };
    let options = format!("size={}k,nr_inodes={},mode=0700", c.limits.workdir_kib, c.limits.workdir_files);
    let Ok(options) = CString::new(options) else { return (proc_mounted, false) };
    let tmpfs = rustix::mount::mount("none", dir.as_path(), "tmpfs", secure, options.as_c_str()).is_ok()
        // The launcher's current directory is the directory underneath; step into the tmpfs.
        && std::env::set_current_dir(dir).is_ok();
    (proc_mounted, tmpfs)
}

/// Asks the kernel to kill this process (and, across `execve`, the program it becomes) when
/// the server dies: a killed server can no longer enforce its wall clock. The signal is tied to
/// the thread that spawned us; the server spawns from its runtime's worker threads, which live
/// as long as it does. False when the server is already gone.
pub fn die_with_parent() -> bool {
    let parent = unsafe { libc::getppid() };
    let armed = unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) } == 0;
    // The parent may have died before the request took effect; then nobody would signal us.
    armed && unsafe { libc::getppid() } == parent
}

/// In a new PID namespace, only the launcher's children are inside. The launcher forks its
/// process 1 there, which forks Python: process 1 of a namespace ignores every signal it has
/// no handler for when it comes from inside, so Python must not be it (a submission killing
/// its own process group must die of it, as outside a namespace). Both forks wait and pass
/// the ending up, so the server still learns the exit code or signal; all share the
/// launcher's process group (the server's group kill reaches them), process 1 dies with the
/// launcher (PR_SET_PDEATHSIG) and everything in the namespace dies with process 1.
/// Returns in Python's process; never in the other two. Err when a fork fails.
pub fn fork_into_pid_namespace() -> std::io::Result<()> {
    // Process 1 cannot die of the signal that ended Python; it reports the status here.
    let mut report = [0; 2];
    if unsafe { libc::pipe2(report.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let first = fork_watched()?;
    if first != 0 {
        unsafe { libc::close(report[1]) };
        let status = wait_for(first);
        let mut reported = [0u8; 4];
        let read = unsafe { libc::read(report[0], reported.as_mut_ptr().cast(), 4) };
        end_as(if read == 4 { i32::from_ne_bytes(reported) } else { status });
    }
    unsafe { libc::close(report[0]) };
    // Process 1 of the namespace from here on.
    let python = unsafe { libc::fork() };
    if python < 0 {
        return Err(std::io::Error::last_os_error());
    }
    if python == 0 {
        unsafe { libc::close(report[1]) };
        return Ok(());
    }
    release_standard_streams();
    let status = wait_for(python).to_ne_bytes();
    unsafe {
        libc::write(report[1], status.as_ptr().cast(), 4);
        libc::_exit(0)
    }
}

/// Forks a child that dies with this process; in the parent, hands the standard streams
/// to the child alone (the server sees end-of-file when the child is done with them).
fn fork_watched() -> std::io::Result<libc::pid_t> {
    let mut alive = [0; 2];
    // The child watches the read end: end-of-file once this process is gone.
    if unsafe { libc::pipe2(alive.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let child = unsafe { libc::fork() };
    if child < 0 {
        return Err(std::io::Error::last_os_error());
    }
    if child == 0 {
        unsafe { libc::close(alive[1]) };
        let armed = unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) } == 0;
        let mut poll = libc::pollfd { fd: alive[0], events: libc::POLLIN, revents: 0 };
        let parent_gone = unsafe { libc::poll(&mut poll, 1, 0) } != 0;
        unsafe { libc::close(alive[0]) };
        if !armed || parent_gone {
            unsafe { libc::_exit(125) };
        }
        return Ok(0);
    }
    unsafe { libc::close(alive[0]) };
    release_standard_streams();
    Ok(child)
}

/// Points 0-2 at /dev/null: Python's pipes belong to Python alone.
fn release_standard_streams() {
    let null = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
    for fd in 0..3 {
        unsafe { libc::dup2(null, fd) };
    }
}

/// Waits for `child` and returns its wait status.
fn wait_for(child: libc::pid_t) -> i32 {
    let mut status = 0;
    loop {
        let waited = unsafe { libc::waitpid(child, &mut status, 0) };
        if waited == child {
            return status;
        }
        if waited < 0 && std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            unsafe { libc::_exit(125) };
        }
    }
}

/// Ends this process as a child with wait status `status` ended: same code, or same signal.
fn end_as(status: i32) -> ! {
    if libc::WIFSIGNALED(status) {
        let signal = libc::WTERMSIG(status);
        let none = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        unsafe {
            // No core file of the launcher, and nothing may block or catch the signal.
            libc::setrlimit(libc::RLIMIT_CORE, &none);
            libc::signal(signal, libc::SIG_DFL);
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, signal);
            libc::sigprocmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
            libc::kill(libc::getpid(), signal);
            libc::_exit(128 + signal)
        }
    }
    unsafe { libc::_exit(libc::WEXITSTATUS(status)) }
}

/// Replaces this process with `argv`; returns only on failure.
pub fn exec(argv: &[String]) -> std::io::Error {
    let args: Vec<CString> = match argv.iter().map(|a| CString::new(a.as_bytes())).collect() {
        Ok(args) => args,
        Err(_) => return std::io::Error::other("an argument contains a NUL byte"),
    };
    let Some(program) = args.first() else {
        return std::io::Error::other("nothing to execute");
    };
    let mut ptrs: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
    ptrs.push(std::ptr::null());
    let env: [*const libc::c_char; 1] = [std::ptr::null()];
    unsafe { libc::execve(program.as_ptr(), ptrs.as_ptr(), env.as_ptr()) };
    std::io::Error::last_os_error()
}

fn set_rlimits(l: &Limits) -> bool {
    let mib = 1024 * 1024;
    let limits = [
        (libc::RLIMIT_AS, l.memory_mib * mib),
        (libc::RLIMIT_CPU, l.cpu_seconds),
        (libc::RLIMIT_FSIZE, l.file_size_kib * 1024),
        (libc::RLIMIT_NOFILE, l.open_files),
        (libc::RLIMIT_NPROC, l.processes),
        (libc::RLIMIT_CORE, 0),
    ];
    limits.iter().all(|&(resource, value)| {
        let limit = libc::rlimit { rlim_cur: value as libc::rlim_t, rlim_max: value as libc::rlim_t };
        unsafe { libc::setrlimit(resource, &limit) == 0 }
    })
}

/// Root inside a container or on a laptop keeps no privilege in the sandbox: empty
/// effective, permitted, inheritable, ambient and bounding sets.
fn drop_capabilities() -> bool {
    use rustix::thread::{CapabilitySet, CapabilitySets, set_capabilities};
    use rustix::thread::{clear_ambient_capability_set, remove_capability_from_bounding_set};
    // By number rather than by rustix's list, so capabilities newer than it go too.
    for cap in 0..64 {
        // Fails with EINVAL past the last capability the kernel knows; that is fine.
        let _ = remove_capability_from_bounding_set(CapabilitySet::from_bits_retain(1 << cap));
    }
    let _ = clear_ambient_capability_set();
    // capset acts on the calling thread, which is the whole process: the launcher has one.
    let none = CapabilitySets {
        effective: CapabilitySet::empty(),
        permitted: CapabilitySet::empty(),
        inheritable: CapabilitySet::empty(),
    };
    set_capabilities(None, none).is_ok()
}

fn apply_landlock(c: &Confinement) -> (String, i32) {
    let abi = ABI::V6;
    let result = (|| -> Result<RulesetStatus, String> {
        let fd = |path: &PathBuf| PathFd::new(path).map_err(|e| e.to_string());
        let mut ruleset = Ruleset::default()
            .set_compatibility(CompatLevel::BestEffort)
            .handle_access(AccessFs::from_all(abi))
            .and_then(|r| r.handle_access(AccessNet::from_all(abi)))
            .and_then(|r| r.scope(Scope::from_all(abi)))
            .and_then(|r| r.create())
            .map_err(|e| e.to_string())?;
        for path in &c.read_only {
            if let Ok(fd) = PathFd::new(path) {
                let access = if path.is_dir() { AccessFs::from_read(abi) } else { AccessFs::ReadFile.into() };
                // Executing is allowed for the interpreter only, never for a whole directory.
                let access = access & !AccessFs::Execute;
                ruleset = ruleset.add_rule(PathBeneath::new(fd, access)).map_err(|e| e.to_string())?;
            }
        }
        for exe in &c.executables {
            let access = AccessFs::ReadFile | AccessFs::Execute;
            ruleset = ruleset.add_rule(PathBeneath::new(fd(exe)?, access)).map_err(|e| e.to_string())?;
        }
        if let Some(dir) = &c.read_write {
            let all = AccessFs::from_all(abi) & !AccessFs::Execute;
            ruleset = ruleset.add_rule(PathBeneath::new(fd(dir)?, all)).map_err(|e| e.to_string())?;
        }
        // No network rule is added: every TCP bind and connect is denied.
        Ok(ruleset.restrict_self().map_err(|e| e.to_string())?.ruleset)
    })();
    let kernel_abi = landlock_abi();
    let state = match result {
        Ok(RulesetStatus::FullyEnforced) => "full",
        Ok(RulesetStatus::PartiallyEnforced) => "partial",
        Ok(RulesetStatus::NotEnforced) | Err(_) => "off",
    };
    (state.to_string(), kernel_abi)
}

/// The kernel's Landlock ABI version, or 0 when Landlock is missing or disabled.
pub fn landlock_abi() -> i32 {
    const LANDLOCK_CREATE_RULESET_VERSION: libc::c_long = 1;
    let null = std::ptr::null::<libc::c_void>();
    let version = unsafe { libc::syscall(libc::SYS_landlock_create_ruleset, null, 0, LANDLOCK_CREATE_RULESET_VERSION) };
    version.max(0) as i32
}

/// Two filters. The first is an allow-list: what CPython and the harness call, each acting on
/// the process itself or on its own files; anything else fails with ENOSYS (as if the kernel
/// were older, which libraries handle). The second turns the dangerous calls into EPERM,
/// including those the first allows only towards the calling process itself.
fn apply_seccomp(zygote: bool) -> bool {
    let Ok(arch) = std::env::consts::ARCH.try_into() else { return false };
    let Some(allowed) = allow_list(zygote) else { return false };
    let Some(denied) = deny_list(zygote) else { return false };
    let compile = |rules, mismatch, matched| -> Option<BpfProgram> {
        SeccompFilter::new(rules, mismatch, matched, arch).ok()?.try_into().ok()
    };
    let (Some(allow), Some(deny)) = (
        compile(allowed, SeccompAction::Errno(libc::ENOSYS as u32), SeccompAction::Allow),
        compile(denied, SeccompAction::Allow, SeccompAction::Errno(libc::EPERM as u32)),
    ) else {
        return false;
    };
    unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
    // Installed last, the deny filter decides between the two errors (EPERM over ENOSYS).
    seccompiler::apply_filter(&allow).is_ok() && seccompiler::apply_filter(&deny).is_ok()
}

/// Denies the calls that can reach another process (resource limits, scheduling, priority,
/// signals) unless they name the caller: as 0, or as `me` (its pid; 0 when it cannot be
/// known). Shared by the launcher's filter and the fork server's per-child filter.
fn only_on_itself(rules: &mut BTreeMap<i64, Vec<SeccompRule>>, me: u64) -> Option<()> {
    use libc::*;
    let not_me = |arg: u8| rule(&[(arg, SeccompCmpOp::Ne, 0), (arg, SeccompCmpOp::Ne, me)]);
    for call in [
        SYS_prlimit64,
        SYS_sched_getaffinity,
        SYS_sched_setaffinity,
        SYS_sched_getscheduler,
        SYS_sched_setscheduler,
        SYS_sched_getparam,
        SYS_sched_setparam,
        SYS_sched_getattr,
        SYS_sched_setattr,
    ] {
        rules.insert(call, vec![not_me(0)?]);
    }
    // PRIO_PROCESS (0) / IOPRIO_WHO_PROCESS (1) of itself only: "who = 0" with PRIO_USER
    // would mean every process of the server's uid.
    for (call, process) in [
        (SYS_setpriority, PRIO_PROCESS as u64),
        (SYS_getpriority, PRIO_PROCESS as u64),
        (SYS_ioprio_set, 1),
        (SYS_ioprio_get, 1),
    ] {
        rules.insert(call, vec![rule(&[(0, SeccompCmpOp::Ne, process)])?, not_me(1)?]);
    }
    // Signals only to its own process group (pid 0).
    rules.insert(SYS_kill, vec![rule(&[(0, SeccompCmpOp::Ne, 0)])?]);
    Some(())
}

fn rule(conditions: &[(u8, SeccompCmpOp, u64)]) -> Option<SeccompRule> {
    let conditions = conditions
        .iter()
        .map(|(arg, op, value)| SeccompCondition::new(*arg, SeccompCmpArgLen::Dword, op.clone(), *value).ok())
        .collect::<Option<Vec<_>>>()?;
    SeccompRule::new(conditions).ok()
}

fn allow_list(zygote: bool) -> Option<BTreeMap<i64, Vec<SeccompRule>>> {
    use libc::*;
    let unconditional: &[c_long] = &[
        // Files: the interpreter's own installation (read-only through Landlock) and the
        // working directory; descriptors it holds.
        SYS_read,
        SYS_write,
        SYS_readv,
        SYS_writev,
        SYS_pread64,
        SYS_pwrite64,
        SYS_open,
        SYS_openat,
        SYS_close,
        SYS_close_range,
        SYS_lseek,
        SYS_fstat,
        SYS_stat,
        SYS_lstat,
        SYS_newfstatat,
        SYS_statx,
        SYS_access,
        SYS_faccessat,
        SYS_faccessat2,
        SYS_readlink,
        SYS_readlinkat,
        SYS_getdents64,
        SYS_getcwd,
        SYS_chdir,
        SYS_fchdir,
        SYS_mkdir,
        SYS_mkdirat,
        SYS_rmdir,
        SYS_unlink,
        SYS_unlinkat,
        SYS_rename,
        SYS_renameat,
        SYS_renameat2,
        SYS_chmod,
        SYS_fchmod,
        SYS_fchmodat,
        SYS_truncate,
        SYS_ftruncate,
        SYS_fsync,
        SYS_fdatasync,
        SYS_utimensat,
        SYS_umask,
        SYS_fcntl,
        SYS_flock,
        SYS_dup,
        SYS_dup2,
        SYS_dup3,
        SYS_pipe,
        SYS_pipe2,
        SYS_statfs,
        SYS_fstatfs,
        SYS_sendfile,
        SYS_copy_file_range,
        SYS_poll,
        SYS_ppoll,
        SYS_select,
        SYS_pselect6,
        SYS_epoll_create1,
        SYS_epoll_ctl,
        SYS_epoll_wait,
        SYS_epoll_pwait,
        SYS_eventfd2,
        // Memory.
        SYS_brk,
        SYS_mmap,
        SYS_mprotect,
        SYS_munmap,
        SYS_mremap,
        SYS_madvise,
        SYS_msync,
        SYS_mincore,
        // Signals and timers of its own (the harness's time limit is SIGALRM).
        SYS_rt_sigaction,
        SYS_rt_sigprocmask,
        SYS_rt_sigreturn,
        SYS_rt_sigpending,
        SYS_rt_sigsuspend,
        SYS_rt_sigtimedwait,
        SYS_sigaltstack,
        SYS_setitimer,
        SYS_getitimer,
        SYS_alarm,
        SYS_pause,
        // Who and where it is, the time, randomness.
        SYS_getpid,
        SYS_getppid,
        SYS_gettid,
        SYS_getuid,
        SYS_geteuid,
        SYS_getgid,
        SYS_getegid,
        SYS_getresuid,
        SYS_getresgid,
        SYS_getgroups,
        SYS_getpgrp,
        SYS_uname,
        SYS_sysinfo,
        SYS_getcpu,
        SYS_getrandom,
        SYS_clock_gettime,
        SYS_clock_getres,
        SYS_gettimeofday,
        SYS_time,
        SYS_nanosleep,
        SYS_clock_nanosleep,
        SYS_getrusage,
        SYS_times,
        SYS_getrlimit,
        SYS_sched_yield,
        // Process start-up and exit (glibc, threads it never gets to create).
        SYS_futex,
        SYS_set_tid_address,
        SYS_set_robust_list,
        SYS_rseq,
        SYS_arch_prctl,
        SYS_execve,
        SYS_exit,
        SYS_exit_group,
        SYS_wait4,
        SYS_waitid,
        // Only so that the deny filter can be installed after this one; it then refuses it.
        SYS_seccomp,
        // Only towards itself: the deny filter refuses any other target.
        SYS_kill,
        SYS_prlimit64,
        SYS_setpriority,
        SYS_getpriority,
        SYS_sched_getaffinity,
        SYS_sched_setaffinity,
        SYS_sched_getscheduler,
        SYS_sched_setscheduler,
        SYS_sched_getparam,
        SYS_sched_setparam,
        SYS_sched_getattr,
        SYS_sched_setattr,
        SYS_ioprio_get,
        SYS_ioprio_set,
    ];
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = unconditional.iter().map(|&n| (n, Vec::new())).collect();
    if zygote {
        // The fork server: jobs and pidfds over its socket, a fork per job (the deny filter
        // refuses threads and namespaces), and what a child needs to confine itself further
        // (its own filter then refuses all of these).
        for call in [
            SYS_sendmsg,
            SYS_recvmsg,
            SYS_clone,
            SYS_pidfd_open,
            SYS_setpgid,
            SYS_landlock_create_ruleset,
            SYS_landlock_restrict_self,
        ] {
            rules.insert(call, Vec::new());
        }
    }
    // Terminal queries only (isatty, window size, readable bytes, close-on-exec): never
    // TIOCSTI or anything that drives a device.
    let ioctls = [TCGETS, TIOCGWINSZ, FIONREAD, FIOCLEX, FIONCLEX]
        .iter()
        // The requests' type differs between libcs (c_ulong on glibc, c_int on musl).
        .map(|&request| {
            #[allow(clippy::unnecessary_cast)]
            let request = request as u64;
            rule(&[(1, SeccompCmpOp::Eq, request)])
        })
        .collect::<Option<Vec<_>>>()?;
    rules.insert(SYS_ioctl, ioctls);
    // Setting no_new_privs again (already set) is how the deny filter gets installed; a
    // zygote's child also sets its own filter, dumpability and parent-death signal.
    let mut options = vec![PR_SET_NO_NEW_PRIVS];
    if zygote {
        options.extend([PR_SET_SECCOMP, PR_SET_DUMPABLE, PR_SET_PDEATHSIG]);
    }
    let prctl = options.iter().map(|&o| rule(&[(0, SeccompCmpOp::Eq, o as u64)])).collect::<Option<Vec<_>>>()?;
    rules.insert(SYS_prctl, prctl);
    Some(rules)
}

fn deny_list(zygote: bool) -> Option<BTreeMap<i64, Vec<SeccompRule>>> {
    use libc::*;
    let always: &[c_long] = &[
        // No network of any kind, not even local sockets.
        SYS_socket,
        SYS_socketpair,
        SYS_connect,
        SYS_bind,
        SYS_listen,
        SYS_accept,
        SYS_accept4,
        // No new processes or threads, no escape from the process group the server kills.
        SYS_fork,
        SYS_vfork,
        SYS_clone,
        SYS_clone3,
        SYS_setsid,
        SYS_setpgid,
        // No SysV IPC: its objects outlive the process that made them.
        SYS_shmget,
        SYS_shmat,
        SYS_shmdt,
        SYS_shmctl,
        SYS_semget,
        SYS_semop,
        SYS_semtimedop,
        SYS_semctl,
        SYS_msgget,
        SYS_msgsnd,
        SYS_msgrcv,
        SYS_msgctl,
        // No reaching into other processes.
        SYS_ptrace,
        SYS_process_vm_readv,
        SYS_process_vm_writev,
        SYS_pidfd_open,
        SYS_pidfd_getfd,
        SYS_pidfd_send_signal,
        SYS_tkill,
        SYS_tgkill,
        SYS_rt_sigqueueinfo,
        SYS_rt_tgsigqueueinfo,
        SYS_kcmp,
        SYS_process_madvise,
        // Kernel surfaces ordinary Python never needs.
        SYS_unshare,
        SYS_setns,
        SYS_mount,
        SYS_umount2,
        SYS_pivot_root,
        SYS_chroot,
        SYS_keyctl,
        SYS_add_key,
        SYS_request_key,
        SYS_bpf,
        SYS_perf_event_open,
        SYS_userfaultfd,
        SYS_io_uring_setup,
        SYS_io_uring_enter,
        SYS_io_uring_register,
        SYS_personality,
        SYS_mknod,
        SYS_mknodat,
        SYS_seccomp,
    ];
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = always.iter().map(|&n| (n, Vec::new())).collect();
    // A zygote's children inherit this filter with the zygote's pid baked in: there, the
    // caller may name itself only as 0, or a child could reach the zygote by its pid.
    let me = if zygote { 0 } else { (unsafe { getpid() }) as u64 };
    if zygote {
        for call in [SYS_clone, SYS_pidfd_open, SYS_setpgid] {
            rules.remove(&call);
        }
        // fork() only: any flag that would make a thread, share state or enter a namespace.
        let sharing = CLONE_VM
            | CLONE_FS
            | CLONE_FILES
            | CLONE_SIGHAND
            | CLONE_PTRACE
            | CLONE_VFORK
            | CLONE_PARENT
            | CLONE_THREAD
            | CLONE_NEWNS
            | CLONE_SYSVSEM
            | CLONE_SETTLS
            | CLONE_NEWCGROUP
            | CLONE_NEWUTS
            | CLONE_NEWIPC
            | CLONE_NEWUSER
            | CLONE_NEWPID
            | CLONE_NEWNET
            | CLONE_IO;
        rules.insert(SYS_clone, bits(0, sharing as u32 as u64)?);
        // Only a new process group of its own (a child, before its own filter refuses it).
        rules.insert(SYS_setpgid, vec![rule(&[(0, SeccompCmpOp::Ne, 0)])?, rule(&[(1, SeccompCmpOp::Ne, 0)])?]);
    }
    only_on_itself(&mut rules, me)?;
    Some(rules)
}

/// One rule per bit set in `mask`: matches when argument `arg` has any of them.
fn bits(arg: u8, mask: u64) -> Option<Vec<SeccompRule>> {
    (0..64).map(|i| 1u64 << i).filter(|b| mask & b != 0).map(|b| rule(&[(arg, SeccompCmpOp::MaskedEq(b), b)])).collect()
}

/// The filter a zygote's child stacks on the zygote's before any submitted code runs, as the
/// bytes of a `sock_filter` array (native endianness). Siblings share the zygote's namespaces
/// and uid, so this is what keeps one submission from the others and from the zygote: no new
/// processes or programs, signals only to its own process group (pid 0), resource and
/// scheduling calls only on itself as 0, no sockets or socket I/O, nothing written or created
/// on any file system (opening for reading only), no way to change its own confinement.
pub fn child_filter() -> Option<Vec<u8>> {
    use libc::*;
    let arch = std::env::consts::ARCH.try_into().ok()?;
    let always: &[c_long] = &[
        SYS_fork,
        SYS_vfork,
        SYS_clone,
        SYS_clone3,
        SYS_execve,
        SYS_execveat,
        SYS_socket,
        SYS_socketpair,
        SYS_connect,
        SYS_bind,
        SYS_listen,
        SYS_accept,
        SYS_accept4,
        SYS_sendmsg,
        SYS_recvmsg,
        SYS_sendto,
        SYS_recvfrom,
        SYS_sendmmsg,
        SYS_recvmmsg,
        SYS_setpgid,
        SYS_setsid,
        SYS_prctl,
        SYS_seccomp,
        SYS_landlock_create_ruleset,
        SYS_landlock_add_rule,
        SYS_landlock_restrict_self,
        SYS_pidfd_open,
        SYS_pidfd_getfd,
        SYS_pidfd_send_signal,
        SYS_tkill,
        SYS_tgkill,
        SYS_rt_sigqueueinfo,
        SYS_rt_tgsigqueueinfo,
        SYS_ptrace,
        SYS_process_vm_readv,
        SYS_process_vm_writev,
        SYS_kcmp,
        SYS_openat2,
        SYS_creat,
        SYS_mkdir,
        SYS_mkdirat,
        SYS_rmdir,
        SYS_unlink,
        SYS_unlinkat,
        SYS_rename,
        SYS_renameat,
        SYS_renameat2,
        SYS_link,
        SYS_linkat,
        SYS_symlink,
        SYS_symlinkat,
        SYS_truncate,
        SYS_ftruncate,
        SYS_fallocate,
        SYS_chmod,
        SYS_fchmod,
        SYS_fchmodat,
        SYS_chown,
        SYS_fchown,
        SYS_lchown,
        SYS_fchownat,
        SYS_utimensat,
        SYS_mknod,
        SYS_mknodat,
    ];
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = always.iter().map(|&n| (n, Vec::new())).collect();
    let writing = (O_WRONLY | O_RDWR | O_CREAT | O_TRUNC | O_APPEND | (O_TMPFILE & !O_DIRECTORY)) as u64;
    rules.insert(SYS_open, bits(1, writing)?);
    rules.insert(SYS_openat, bits(2, writing)?);
    // A child's pid is not known when this is compiled: it may name itself only as 0.
    only_on_itself(&mut rules, 0)?;
    let filter = SeccompFilter::new(rules, SeccompAction::Allow, SeccompAction::Errno(EPERM as u32), arch).ok()?;
    let program: BpfProgram = filter.try_into().ok()?;
    let mut bytes = Vec::with_capacity(program.len() * 8);
    for instruction in program {
        bytes.extend_from_slice(&instruction.code.to_ne_bytes());
        bytes.push(instruction.jt);
        bytes.push(instruction.jf);
        bytes.extend_from_slice(&instruction.k.to_ne_bytes());
    }
    Some(bytes)
}
