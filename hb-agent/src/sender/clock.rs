//! Monotonic time and absolute sleeps for the timing thread.
//!
//! tokio's timer wheel has 1 ms granularity; at a 1 ms keepalive the sender
//! needs microseconds, so it sleeps with clock_nanosleep(TIMER_ABSTIME) on
//! CLOCK_MONOTONIC, the clock the XDP program stamps with (bpf_ktime_get_ns).

fn clock_ns(id: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid out pointer.
    unsafe { libc::clock_gettime(id, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// CLOCK_MONOTONIC in ns.
pub fn now_ns() -> u64 {
    clock_ns(libc::CLOCK_MONOTONIC)
}

/// CLOCK_REALTIME in ns: the incarnation number, which must grow across
/// agent restarts.
pub fn realtime_ns() -> u64 {
    clock_ns(libc::CLOCK_REALTIME)
}

/// Sleeps until CLOCK_MONOTONIC reaches `deadline_ns`.
pub fn sleep_until(deadline_ns: u64) {
    let ts = libc::timespec {
        tv_sec: (deadline_ns / 1_000_000_000) as libc::time_t,
        tv_nsec: (deadline_ns % 1_000_000_000) as libc::c_long,
    };
    loop {
        // SAFETY: valid timespec; remaining time unused with TIMER_ABSTIME.
        let r = unsafe {
            libc::clock_nanosleep(
                libc::CLOCK_MONOTONIC,
                libc::TIMER_ABSTIME,
                &ts,
                std::ptr::null_mut(),
            )
        };
        if r != libc::EINTR {
            return;
        }
    }
}

/// Puts the calling thread under SCHED_FIFO so CPU load cannot delay
/// it, with SCHED_RESET_ON_FORK (processes it starts run normally).
/// Returns the OS error if not permitted.
pub fn make_realtime(priority: i32) -> std::io::Result<()> {
    let p = libc::sched_param {
        sched_priority: priority,
    };
    // SAFETY: pid 0 is the calling thread; p is a valid struct.
    let r =
        unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO | libc::SCHED_RESET_ON_FORK, &p) };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Sleeps until `spin_ns` before the deadline, then spins on the clock.
/// Timer wake-ups in a VM have a tail of 100-200 us; spinning the last
/// stretch keeps send times within a few microseconds of schedule at a cost
/// of `spin_ns` of CPU per heartbeat.
pub fn sleep_until_precise(deadline_ns: u64, spin_ns: u64) {
    sleep_until(deadline_ns.saturating_sub(spin_ns));
    while now_ns() < deadline_ns {
        std::hint::spin_loop();
    }
}
