//! CPU time as the benchmarks read it: this process's and its reaped children's (getrusage),
//! a process group's from /proc (the grader's fork server and the children it reaped), and
//! the calling thread's alone; and how the benchmarks print a duration.

use std::time::Duration;

/// CPU time (user + system) of the processes in process group `group` (the fork server's
/// launcher, with namespaces its init, and the fork server), each with the children it reaped:
/// the sandbox's whole CPU, the gradings' children included.
pub fn group_cpu(group: u32) -> Duration {
    let tick = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    let mut ticks = 0u64;
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
        let Some((_, rest)) = stat.rsplit_once(") ") else { continue };
        let fields: Vec<&str> = rest.split(' ').collect();
        // After the name: state ppid pgrp … utime (12th) stime cutime cstime.
        if fields.len() > 14 && fields[2].parse::<u32>().ok() == Some(group) {
            ticks += fields[11..15].iter().filter_map(|f| f.parse::<u64>().ok()).sum::<u64>();
        }
    }
    Duration::from_micros(ticks * 1_000_000 / tick)
}

/// CPU time (user + system) of this process and of its reaped children.
pub fn cpu_time() -> (Duration, Duration) {
    let of = |who| {
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        unsafe { libc::getrusage(who, &mut usage) };
        let time = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
        time(usage.ru_utime) + time(usage.ru_stime)
    };
    (of(libc::RUSAGE_SELF), of(libc::RUSAGE_CHILDREN))
}

/// CPU time (user + system) of the calling thread so far.
#[allow(dead_code)]
pub fn thread_cpu() -> Duration {
    let mut now: libc::timespec = unsafe { std::mem::zeroed() };
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
}

/// `d` in milliseconds with one decimal, as the benchmarks print durations.
pub fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}
