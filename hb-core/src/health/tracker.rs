//! One check's state: results in (pass or fail, at a time), up or down
//! out, with rise, fall and the hold-down. Pure: the time comes in.

use super::spec::{CheckSpec, OnFail, When};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckState {
    /// No result yet: the node is not eligible for the group until there is.
    Pending,
    Up,
    Down,
    /// A `when = "held"` check on a node that does not hold the group: it
    /// does not run, and counts as passing once a hold-down after a fall
    /// is over.
    Idle,
}

impl CheckState {
    pub fn word(self) -> &'static str {
        match self {
            CheckState::Pending => "pending",
            CheckState::Up => "up",
            CheckState::Down => "down",
            CheckState::Idle => "idle",
        }
    }
}

/// A check's record, as `status` shows it.
#[derive(Debug, Clone)]
pub struct Tracker {
    rise: u32,
    fall: u32,
    hold_down_ns: u64,
    pub when: When,
    pub on_fail: OnFail,
    pub state: CheckState,
    /// Consecutive passes / failures, the current run.
    pub passes: u32,
    pub fails: u32,
    /// When it last went down, or last failed since (None: never up).
    fell_at: Option<u64>,
    /// Since when it has passed without a failure (the hold-down counts
    /// from there: a check that fell must pass this long to come up).
    passing_since: Option<u64>,
    pub last_change: Option<u64>,
    pub last: Option<Probe>,
    pub transitions: u64,
    /// In-place restarts (`on_fail = "restart"`), their times.
    pub restarts: Vec<u64>,
    /// A restart is running: the check's fall does not count against the
    /// group until it is over.
    pub restarting: bool,
}

/// One probe's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    pub ok: bool,
    pub at: u64,
    pub latency_ns: u64,
    /// What it saw, bounded (`exit 1`, `HTTP 503`, `connection refused`).
    pub detail: String,
}

impl Tracker {
    pub fn new(spec: &CheckSpec) -> Tracker {
        Tracker {
            rise: spec.rise.max(1),
            fall: spec.fall.max(1),
            hold_down_ns: spec.hold_down.as_nanos().min(u64::MAX as u128) as u64,
            when: spec.when,
            on_fail: spec.on_fail,
            state: match spec.when {
                When::Always => CheckState::Pending,
                When::Held => CheckState::Idle,
            },
            passes: 0,
            fails: 0,
            fell_at: None,
            passing_since: None,
            last_change: None,
            last: None,
            transitions: 0,
            restarts: Vec::new(),
            restarting: false,
        }
    }

    /// The hold-down after a fall is over: passing for `hold_down` (an
    /// idle check, which does not run: `hold_down` since its last failure).
    fn hold_over(&self, now: u64) -> bool {
        let Some(fell) = self.fell_at else {
            return true;
        };
        let from = match self.state {
            CheckState::Idle => Some(fell),
            _ => self.passing_since,
        };
        from.is_some_and(|t| now >= t.saturating_add(self.hold_down_ns))
    }

    fn set(&mut self, state: CheckState, now: u64) -> Option<CheckState> {
        if self.state == state {
            return None;
        }
        // Pending -> first result and Idle <-> Up follow the group, not
        // the service: only ups and downs are transitions.
        if matches!(
            (self.state, state),
            (CheckState::Up, CheckState::Down) | (CheckState::Down, CheckState::Up)
        ) {
            self.transitions += 1;
        }
        if state == CheckState::Down {
            self.fell_at = Some(now);
        }
        self.state = state;
        self.last_change = Some(now);
        Some(state)
    }

    /// A probe's result; the new state if it changed.
    pub fn record(&mut self, p: Probe) -> Option<CheckState> {
        let now = p.at;
        let ok = p.ok;
        self.last = Some(p);
        if self.state == CheckState::Idle {
            return None;
        }
        if ok {
            if self.passes == 0 {
                self.passing_since = Some(now);
            }
            self.passes = self.passes.saturating_add(1);
            self.fails = 0;
        } else {
            self.fails = self.fails.saturating_add(1);
            self.passes = 0;
            self.passing_since = None;
            if self.state == CheckState::Down {
                // Still failing: the hold-down counts from the latest.
                self.fell_at = Some(now);
            }
        }
        match self.state {
            CheckState::Pending => {
                // The first result says how things are; only a fall after
                // it is a flap (no hold-down for a service never seen up).
                let s = if ok { CheckState::Up } else { CheckState::Down };
                let r = self.set(s, now);
                if !ok {
                    self.fell_at = None;
                }
                r
            }
            CheckState::Up if self.fails >= self.fall => self.set(CheckState::Down, now),
            CheckState::Down if self.passes >= self.rise && self.hold_over(now) => {
                self.set(CheckState::Up, now)
            }
            _ => None,
        }
    }

    /// Time passing: a hold-down that ran out brings up a check that has
    /// risen, or an idle one.
    pub fn tick(&mut self, now: u64) -> Option<CheckState> {
        if self.state == CheckState::Down && self.passes >= self.rise && self.hold_over(now) {
            return self.set(CheckState::Up, now);
        }
        None
    }

    /// It just went down: restart in place (`on_fail = "restart"`) if the
    /// window has a restart left. Past the window's count it fails over.
    pub fn begin_restart(&mut self, now: u64) -> bool {
        let OnFail::Restart { max, window } = self.on_fail else {
            return false;
        };
        let window = window.as_nanos().min(u64::MAX as u128) as u64;
        self.restarts.retain(|&t| now < t.saturating_add(window));
        if self.restarts.len() as u64 >= u64::from(max) {
            return false;
        }
        self.restarts.push(now);
        self.restarting = true;
        true
    }

    /// The restart is over: started again (up, with no hold-down: the
    /// service is back where it was) or failed (down: the group moves).
    pub fn restart_done(&mut self, ok: bool, now: u64) -> Option<CheckState> {
        if !self.restarting {
            return None;
        }
        self.restarting = false;
        self.passes = 0;
        self.fails = 0;
        if ok && self.state == CheckState::Down {
            self.fell_at = None;
            return self.set(CheckState::Up, now);
        }
        None
    }

    /// A `when = "held"` check: the group was started here (the check runs
    /// from now on, and starts up: the start succeeded) or stopped.
    pub fn set_held(&mut self, held: bool, now: u64) -> Option<CheckState> {
        if self.when != When::Held {
            return None;
        }
        self.passes = 0;
        self.fails = 0;
        self.restarting = false;
        if held {
            self.set(CheckState::Up, now)
        } else {
            // A fall's hold-down goes on while idle (`passing`).
            self.set(CheckState::Idle, now)
        }
    }

    /// Does this check let the node take the group (`held`: keep it) now?
    /// No result yet: not to take it, but a holder keeps it (an agent
    /// restarted on a node serving the group, a check added by a reload:
    /// not knowing is no reason to move it).
    pub fn passing(&self, now: u64, held: bool) -> bool {
        if self.on_fail == OnFail::Ignore {
            return true;
        }
        match self.state {
            CheckState::Up => true,
            CheckState::Idle => self.hold_over(now),
            CheckState::Pending => held,
            CheckState::Down => self.restarting,
        }
    }
}
