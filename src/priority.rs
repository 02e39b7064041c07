//! Background work yields the CPU to acknowledgements: the threads that run queries,
//! shape rows and render charts (tokio's blocking pool) run under Linux's `SCHED_IDLE`
//! policy (or, where that is refused, at nice 19, the lowest priority), so a `/kpi`
//! acknowledgement (Slack allows 3 s) never waits behind them. They still get the CPU
//! whenever the async workers do not want it, which is nearly always. (Other blocking
//! work on those threads, such as tokio's DNS lookups, shares the low priority.)

use std::cell::Cell;

/// The nice value blocking-pool threads take where `SCHED_IDLE` is refused (0 is normal,
/// 19 the lowest priority).
pub const BACKGROUND_NICE: i32 = 19;

thread_local! {
    static LOWERED: Cell<bool> = const { Cell::new(false) };
}

/// Runs `work` on the current (blocking-pool) thread after lowering its priority; the
/// thread keeps the lower priority for every later task it runs.
pub fn background<T>(work: impl FnOnce() -> T) -> T {
    LOWERED.with(|lowered| {
        if !lowered.get() {
            lower_this_thread();
            lowered.set(true);
        }
    });
    work()
}

#[cfg(target_os = "linux")]
fn lower_this_thread() {
    // On Linux the policy and the nice value belong to the thread: the async workers keep
    // theirs. SAFETY: `param` outlives the call; a failure only leaves the priority as it was.
    unsafe {
        // Zeroed: some C libraries' sched_param has more fields than the priority.
        let param: libc::sched_param = std::mem::zeroed();
        if libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) != 0 {
            let thread_id = libc::syscall(libc::SYS_gettid) as libc::id_t;
            libc::setpriority(libc::PRIO_PROCESS, thread_id, BACKGROUND_NICE);
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn lower_this_thread() {}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_os = "linux")]
    #[test]
    fn background_work_runs_at_idle_priority_and_the_caller_keeps_its_own() {
        // SAFETY: sched_getscheduler takes no pointers.
        let policy = || unsafe { libc::sched_getscheduler(0) };
        let before = policy();
        let inside = std::thread::spawn(move || background(policy))
            .join()
            .unwrap();
        assert_eq!(inside, libc::SCHED_IDLE);
        assert_eq!(policy(), before, "only the blocking thread changed");
    }
}
