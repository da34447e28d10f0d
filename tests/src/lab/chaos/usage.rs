//! What the agents cost while the campaign runs: resident memory, open
//! file descriptors and threads, from /proc, per node after every fault.
//! Growth is judged within one agent's life (its pid): restarts are part
//! of the campaign.

use serde::Serialize;

use crate::lab::Lab;

#[derive(Clone, Debug, Serialize)]
pub struct Usage {
    pub node: usize,
    pub pid: i32,
    pub rss_kib: u64,
    pub fds: usize,
    pub threads: usize,
}

fn status_field(status: &str, key: &str) -> u64 {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Every running agent's usage now.
pub fn sample(l: &Lab) -> Vec<Usage> {
    let mut out = Vec::new();
    for (node, a) in l.agents.iter().enumerate() {
        let Some(a) = a else { continue };
        let pid = a.pid();
        let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
            continue;
        };
        let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count());
        out.push(Usage {
            node,
            pid,
            rss_kib: status_field(&status, "VmRSS:"),
            fds,
            threads: status_field(&status, "Threads:") as usize,
        });
    }
    out
}

/// One agent's life through the campaign: first and last sample, and how
/// many faults it lived through.
#[derive(Clone, Debug, Serialize)]
pub struct Life {
    pub first: Usage,
    pub last: Usage,
    pub faults: usize,
}

impl Life {
    pub fn rss_growth_kib(&self) -> i64 {
        self.last.rss_kib as i64 - self.first.rss_kib as i64
    }

    pub fn fd_growth(&self) -> i64 {
        self.last.fds as i64 - self.first.fds as i64
    }

    pub fn thread_growth(&self) -> i64 {
        self.last.threads as i64 - self.first.threads as i64
    }
}

/// The lives in `samples` (one per fault), longest first.
pub fn lives(samples: &[Vec<Usage>]) -> Vec<Life> {
    let mut lives: Vec<Life> = Vec::new();
    for s in samples {
        for u in s {
            match lives.iter_mut().find(|l| l.first.pid == u.pid) {
                Some(l) => {
                    l.last = u.clone();
                    l.faults += 1;
                }
                None => lives.push(Life {
                    first: u.clone(),
                    last: u.clone(),
                    faults: 0,
                }),
            }
        }
    }
    lives.sort_by_key(|l| std::cmp::Reverse(l.faults));
    lives
}

/// Growth allowed over an agent's life: allocator and tracing buffers
/// settle within the first faults; a leak per fault would pass these
/// within a hundred faults.
pub const RSS_GROWTH_BOUND_KIB: i64 = 8 * 1024;
pub const FD_GROWTH_BOUND: i64 = 4;
pub const THREAD_GROWTH_BOUND: i64 = 2;

/// The lives that grew beyond the bounds, as violations.
pub fn growth_violations(lives: &[Life]) -> Vec<String> {
    lives
        .iter()
        .filter(|l| {
            l.rss_growth_kib() > RSS_GROWTH_BOUND_KIB
                || l.fd_growth() > FD_GROWTH_BOUND
                || l.thread_growth() > THREAD_GROWTH_BOUND
        })
        .map(|l| {
            format!(
                "node{}'s agent (pid {}) grew over {} faults: RSS {:+} KiB, fds {:+}, threads {:+}",
                l.first.node,
                l.first.pid,
                l.faults,
                l.rss_growth_kib(),
                l.fd_growth(),
                l.thread_growth()
            )
        })
        .collect()
}

/// Markdown: the longest lives, first and last sample.
pub fn table(lives: &[Life]) -> String {
    let mut s = String::from(
        "| agent | faults lived | RSS first/last | fds first/last | threads first/last |\n|---|---:|---:|---:|---:|\n",
    );
    for l in lives.iter().take(6) {
        s.push_str(&format!(
            "| node{} pid {} | {} | {} / {} KiB | {} / {} | {} / {} |\n",
            l.first.node,
            l.first.pid,
            l.faults,
            l.first.rss_kib,
            l.last.rss_kib,
            l.first.fds,
            l.last.fds,
            l.first.threads,
            l.last.threads
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(node: usize, pid: i32, rss_kib: u64) -> Usage {
        Usage {
            node,
            pid,
            rss_kib,
            fds: 10,
            threads: 5,
        }
    }

    #[test]
    fn growth_is_judged_within_one_agent_life() {
        let samples = vec![
            vec![u(0, 100, 10_000), u(1, 200, 10_000)],
            vec![u(0, 101, 30_000), u(1, 200, 11_000)],
            vec![u(0, 101, 31_000), u(1, 200, 30_000)],
        ];
        let lives = lives(&samples);
        assert_eq!(lives[0].first.pid, 200);
        assert_eq!(lives[0].faults, 2);
        let v = growth_violations(&lives);
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(v[0].contains("pid 200"), "the restart is no growth: {v:?}");
    }
}
