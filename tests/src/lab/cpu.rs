//! CPU time of the processes a benchmark started, for the idle cost of a
//! contender: the run time the scheduler accounts to each of their threads
//! (`/proc/PID/task/TID/schedstat`, in ns; utime and stime count 10 ms
//! ticks, too coarse for a fraction of a percent over seconds).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Run time so far of each thread of `pid`, by thread name (threads of one
/// name summed).
pub fn threads(pid: i32) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for t in dir.flatten() {
        let p = t.path();
        let ns = std::fs::read_to_string(p.join("schedstat"))
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok());
        let name = std::fs::read_to_string(p.join("comm"))
            .map(|s| s.trim().to_string())
            .unwrap_or_default();
        if let Some(ns) = ns {
            *out.entry(name).or_default() += ns;
        }
    }
    out
}

/// Run time so far of all threads of `pid`.
pub fn total(pid: i32) -> u64 {
    threads(pid).values().sum()
}

/// Percent of one core each group of processes used over `window`
/// (each group: one contender's processes on one node).
pub fn usage(groups: &[Vec<i32>], window: Duration) -> Vec<f64> {
    let sum = |g: &Vec<i32>| g.iter().map(|&p| total(p)).sum::<u64>();
    let before: Vec<u64> = groups.iter().map(sum).collect();
    let t0 = Instant::now();
    std::thread::sleep(window);
    let dt = t0.elapsed().as_nanos() as f64;
    groups
        .iter()
        .zip(before)
        .map(|(g, b)| sum(g).saturating_sub(b) as f64 / dt * 100.0)
        .collect()
}

/// Per thread name, percent of one core over `window`, for `pid`.
pub fn usage_by_thread(pid: i32, window: Duration) -> BTreeMap<String, f64> {
    let before = threads(pid);
    let t0 = Instant::now();
    std::thread::sleep(window);
    let dt = t0.elapsed().as_nanos() as f64;
    threads(pid)
        .into_iter()
        .map(|(n, ns)| {
            let b = before.get(&n).copied().unwrap_or(0);
            (n, ns.saturating_sub(b) as f64 / dt * 100.0)
        })
        .collect()
}
