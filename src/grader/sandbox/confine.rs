//! The confinement the launcher applies to itself before it becomes the Python interpreter.
//!
//! This runs in a fresh, single-threaded process (`moa-workshop sandbox-exec`), never in the
//! server, so it may allocate and fail freely. Order matters: new session first (so the
//! server can kill the whole group), then limits, capabilities, Landlock, and seccomp last,
//! because seccomp forbids some of the calls the earlier steps need.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::path::PathBuf;

use landlock::{
    ABI, Access, AccessFs, AccessNet, CompatLevel, Compatible, PathBeneath, PathFd, Ruleset, RulesetAttr,
    RulesetCreatedAttr, RulesetStatus, Scope,
};
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
}

/// Which layers actually took effect, reported by `sandbox-exec --probe`.
#[derive(Debug, Default, Serialize, serde::Deserialize, Clone, PartialEq)]
pub struct Layers {
    pub new_session: bool,
    pub rlimits: bool,
    pub capabilities_dropped: bool,
    /// "full", "partial" or "off", with the kernel's Landlock ABI.
    pub landlock: String,
    pub landlock_abi: i32,
    pub seccomp: bool,
}

impl Layers {
    pub fn summary(&self) -> String {
        format!(
            "process group: {}, rlimits: {}, capabilities dropped: {}, landlock: {} (ABI {}), seccomp: {}",
            on_off(self.new_session),
            on_off(self.rlimits),
            on_off(self.capabilities_dropped),
            self.landlock,
            self.landlock_abi,
            on_off(self.seccomp)
        )
    }

    /// A layer the kernel offers but that could not be applied: running anyway would be
    /// running unconfined, so the launcher refuses.
    pub fn missing_required(&self) -> Option<&'static str> {
        if !self.new_session {
            Some("a new process group")
        } else if !self.rlimits {
            Some("resource limits")
        } else if !self.seccomp {
            Some("the seccomp filter")
        } else if self.landlock_abi > 0 && self.landlock == "off" {
            Some("Landlock")
        } else {
            None
        }
    }

    /// Files, network and signals are contained only when both kernel layers are on.
    pub fn fully_contained(&self) -> bool {
        self.new_session && self.rlimits && self.landlock == "full" && self.seccomp
    }
}

fn on_off(b: bool) -> &'static str {
    if b { "on" } else { "off" }
}

/// Applies every layer the kernel offers and reports which took effect.
pub fn confine(c: &Confinement) -> Layers {
    let mut layers = Layers { new_session: unsafe { libc::setsid() } != -1, ..Layers::default() };
    layers.rlimits = set_rlimits(&c.limits);
    layers.capabilities_dropped = drop_capabilities();
    (layers.landlock, layers.landlock_abi) = apply_landlock(c);
    layers.seccomp = apply_seccomp();
    layers
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
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const VERSION_3: u32 = 0x2008_0522;
    unsafe {
        for cap in 0..64 {
            // Fails with EINVAL past the last capability the kernel knows; that is fine.
            libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0);
        }
        libc::prctl(libc::PR_CAP_AMBIENT, libc::PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
        let header = Header { version: VERSION_3, pid: 0 };
        let data = [Data { effective: 0, permitted: 0, inheritable: 0 }; 2];
        libc::syscall(libc::SYS_capset, &header as *const Header, data.as_ptr()) == 0
    }
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

/// A deny-list: the interpreter may do ordinary computing, nothing that reaches outside.
fn apply_seccomp() -> bool {
    let Ok(arch) = std::env::consts::ARCH.try_into() else { return false };
    let always = |names: &[i64]| names.iter().map(|&n| (n, Vec::<SeccompRule>::new())).collect::<Vec<_>>();
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = always(&[
        // No network of any kind, not even local sockets.
        libc::SYS_socket,
        libc::SYS_socketpair,
        libc::SYS_connect,
        libc::SYS_bind,
        libc::SYS_listen,
        libc::SYS_accept,
        libc::SYS_accept4,
        // No new processes (threads included: the harness needs none), no escape from the
        // process group the server kills when grading ends.
        libc::SYS_fork,
        libc::SYS_vfork,
        libc::SYS_clone3,
        libc::SYS_setsid,
        libc::SYS_setpgid,
        // No reaching into other processes.
        libc::SYS_ptrace,
        libc::SYS_process_vm_readv,
        libc::SYS_process_vm_writev,
        libc::SYS_pidfd_open,
        libc::SYS_pidfd_getfd,
        libc::SYS_pidfd_send_signal,
        libc::SYS_tkill,
        libc::SYS_tgkill,
        libc::SYS_rt_sigqueueinfo,
        libc::SYS_rt_tgsigqueueinfo,
        // Kernel surfaces ordinary Python never needs.
        libc::SYS_unshare,
        libc::SYS_setns,
        libc::SYS_mount,
        libc::SYS_umount2,
        libc::SYS_pivot_root,
        libc::SYS_chroot,
        libc::SYS_keyctl,
        libc::SYS_add_key,
        libc::SYS_request_key,
        libc::SYS_bpf,
        libc::SYS_perf_event_open,
        libc::SYS_userfaultfd,
        libc::SYS_io_uring_setup,
        libc::SYS_io_uring_enter,
        libc::SYS_io_uring_register,
        libc::SYS_personality,
    ])
    .into_iter()
    .collect();
    let conditional = |arg, op, value| {
        SeccompCondition::new(arg, SeccompCmpArgLen::Qword, op, value).and_then(|c| SeccompRule::new(vec![c]))
    };
    // kill() only towards the caller's own process group (pid 0).
    // clone() only for threads would still be a new task; the harness needs none, so any
    // clone without CLONE_THREAD is denied and thread creation fails through clone3 above.
    let (Ok(kill_others), Ok(clone_process)) =
        (conditional(0, SeccompCmpOp::Ne, 0), conditional(0, SeccompCmpOp::MaskedEq(libc::CLONE_THREAD as u64), 0))
    else {
        return false;
    };
    rules.insert(libc::SYS_kill, vec![kill_others]);
    rules.insert(libc::SYS_clone, vec![clone_process]);
    let filter = match SeccompFilter::new(rules, SeccompAction::Allow, SeccompAction::Errno(libc::EPERM as u32), arch) {
        Ok(filter) => filter,
        Err(_) => return false,
    };
    let Ok(program): Result<BpfProgram, _> = filter.try_into() else { return false };
    unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
    seccompiler::apply_filter(&program).is_ok()
}
