//! Starts and stops of this node's groups run one at a time: starts in
//! the order the groups are written (haresources lines, `[[group]]`
//! tables), stops the other way round, as Heartbeat's ResourceManager ran
//! `takegroup` and `givegroup`. A later line may use what an earlier one
//! put up (case 29 of the corpus: the address on line 1, the services that
//! bind to it on line 2; or drbddisk on one line and the Filesystem on it
//! on the next), so it must not start before, nor stop after, that one.
//!
//! Each group's operations keep their own order (a worker runs its queue
//! one by one), so the lane orders only the next lane operation of each
//! group: stops before starts (what is released is what a peer waits
//! for), stops last-written first, starts first-written first. Turns are
//! queued by the main loop when it submits them, and the main loop holds
//! the lane while it applies one batch of actions, so that every
//! operation of a batch is queued before any of them begins.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Start,
    Stop,
}

#[derive(Default)]
struct State {
    /// Per group (by its written position), its lane operations not begun.
    queued: BTreeMap<usize, VecDeque<Kind>>,
    running: bool,
    held: usize,
}

impl State {
    /// The group whose next operation goes first, if the lane is free.
    fn next(&self) -> Option<usize> {
        if self.running || self.held > 0 {
            return None;
        }
        let heads = self
            .queued
            .iter()
            .filter_map(|(&pos, q)| q.front().map(|&k| (pos, k)));
        let stop = heads
            .clone()
            .filter(|h| h.1 == Kind::Stop)
            .map(|h| h.0)
            .max();
        stop.or_else(|| heads.filter(|h| h.1 == Kind::Start).map(|h| h.0).min())
    }
}

#[derive(Default)]
pub struct Lane {
    state: Mutex<State>,
    changed: Notify,
}

impl Lane {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic elsewhere must not stop every group's operations.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The main loop submitted `kind` for the group written at `pos`.
    pub fn queue(&self, pos: usize, kind: Kind) {
        self.lock().queued.entry(pos).or_default().push_back(kind);
    }

    /// No operation begins until the returned guard is dropped.
    pub fn hold(self: &Arc<Self>) -> Hold {
        self.lock().held += 1;
        Hold(self.clone())
    }

    /// Waits for the turn of the group at `pos` (its queued operation,
    /// `kind`), and keeps the lane until the returned guard is dropped.
    pub async fn enter(&self, pos: usize, kind: Kind) -> Turn<'_> {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            {
                let mut s = self.lock();
                if s.next() == Some(pos) {
                    let q = s.queued.get_mut(&pos).expect("queued");
                    debug_assert_eq!(q.front(), Some(&kind));
                    q.pop_front();
                    s.running = true;
                    return Turn(self);
                }
            }
            changed.await;
        }
    }

    fn release(&self, f: impl FnOnce(&mut State)) {
        f(&mut self.lock());
        self.changed.notify_waiters();
    }
}

pub struct Hold(Arc<Lane>);

impl Drop for Hold {
    fn drop(&mut self) {
        self.0.release(|s| s.held -= 1);
    }
}

pub struct Turn<'a>(&'a Lane);

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        self.0.release(|s| s.running = false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::mpsc;

    /// Runs one task per (pos, kinds) that enters the lane for each of its
    /// kinds in turn, and returns the order they ran in.
    async fn run(lane: Arc<Lane>, groups: Vec<(usize, Vec<Kind>)>) -> Vec<(usize, Kind)> {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let hold = lane.hold();
        for (pos, kinds) in &groups {
            for k in kinds {
                lane.queue(*pos, *k);
            }
        }
        let mut tasks = Vec::new();
        for (pos, kinds) in groups {
            let (lane, tx) = (lane.clone(), tx.clone());
            tasks.push(tokio::spawn(async move {
                for k in kinds {
                    let _t = lane.enter(pos, k).await;
                    tx.send((pos, k)).unwrap();
                    tokio::task::yield_now().await;
                }
            }));
        }
        // Every task has tried (and waits on the hold) before it lifts.
        tokio::task::yield_now().await;
        drop(hold);
        for t in tasks {
            t.await.unwrap();
        }
        drop(tx);
        let mut order = Vec::new();
        while let Some(x) = rx.recv().await {
            order.push(x);
        }
        order
    }

    #[tokio::test]
    async fn starts_in_written_order_whatever_the_submit_order() {
        let lane = Arc::new(Lane::default());
        let order = run(
            lane,
            vec![
                (2, vec![Kind::Start]),
                (0, vec![Kind::Start]),
                (1, vec![Kind::Start]),
            ],
        )
        .await;
        assert_eq!(
            order,
            vec![(0, Kind::Start), (1, Kind::Start), (2, Kind::Start)]
        );
    }

    #[tokio::test]
    async fn stops_last_written_first_and_before_starts() {
        let lane = Arc::new(Lane::default());
        let order = run(
            lane,
            vec![
                (0, vec![Kind::Stop]),
                (1, vec![Kind::Start]),
                (2, vec![Kind::Stop]),
            ],
        )
        .await;
        assert_eq!(
            order,
            vec![(2, Kind::Stop), (0, Kind::Stop), (1, Kind::Start)]
        );
    }

    #[tokio::test]
    async fn a_group_s_own_order_is_kept_without_deadlock() {
        // Group 1 starts then stops; group 0's stop must not wait on the
        // start of group 1 being skipped.
        let lane = Arc::new(Lane::default());
        let order = run(
            lane,
            vec![(1, vec![Kind::Start, Kind::Stop]), (0, vec![Kind::Stop])],
        )
        .await;
        assert_eq!(
            order,
            vec![(0, Kind::Stop), (1, Kind::Start), (1, Kind::Stop)]
        );
    }
}
