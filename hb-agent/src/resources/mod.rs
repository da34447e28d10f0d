//! The imperative shell that performs takeover and release of resource groups.
//!
//! A group is a list of [`ResourceSpec`]s. [`Resources::start_group`] starts them
//! left to right; if one fails, that one and the ones already started are
//! stopped right to left, and the error is returned. [`Resources::stop_group`]
//! stops right to left and carries on past failures, reporting all of them.
//! [`Resources::status_group`] says whether everything is in place (to adopt a
//! group at agent restart without an outage). Starting what is already in place
//! changes nothing; stopping what is absent is Ok.
//!
//! Every address the group puts up (VIPs of IpAddr and Mac resources) is
//! announced as soon as its resource started: the first round at once, the
//! others in the background (`announce.rs`); after the whole group, if
//! `ArpSettings::refresh` is set, re-announced periodically while held. After
//! a MAC replace is undone, the restored real addresses are announced too.
//!
//! State that must survive an agent restart (real MAC/addresses/routes, the
//! hostname stack) is kept in `<state_dir>/<group>.json` (`state.rs`).
//!
//! Network changes happen in the network namespace of the thread that called
//! [`Resources::new`] (rtnetlink and AF_PACKET sockets are opened there).
pub mod announce;
pub mod error;
pub mod hostname;
pub mod ipaddr;
pub mod mac;
pub mod netlink;
pub mod quick;
pub mod script;
/// The resource model, as it was reached here before it moved (model/).
pub use crate::model::resource as spec;
pub mod state;

#[cfg(test)]
pub(crate) mod tests;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

pub use crate::model::{
    HostnameSpec, IpSpec, MacMode, MacSpec, ResourceSpec, ScriptKind, ScriptSpec,
};
pub use announce::{
    AnnounceGate, AnnounceOutcome, AnnounceTarget, Announcer, ArpSettings, NeighbourRefresh,
};
pub use error::ResourceError;
pub use netlink::Netlink;
pub use script::ScriptRunner;
use state::StateStore;

/// Where things are, and how to announce.
#[derive(Debug, Clone)]
pub struct ResourcesConfig {
    /// The groups this node may hold (kept for reference: `start_group` takes
    /// the specs explicitly).
    pub groups: BTreeMap<String, Vec<ResourceSpec>>,
    pub arp: ArpSettings,
    /// Heartbeat/LSB script lookup order.
    pub script_dirs: Vec<PathBuf>,
    pub ocf_root: PathBuf,
    /// Where `<group>.json` state files live.
    pub state_dir: PathBuf,
    /// Announcements go out only while this says so (the service lease).
    pub announce_gate: Option<AnnounceGate>,
}

impl Default for ResourcesConfig {
    fn default() -> Self {
        ResourcesConfig {
            groups: BTreeMap::new(),
            arp: ArpSettings::default(),
            script_dirs: vec!["/etc/ha.d/resource.d".into(), "/etc/init.d".into()],
            ocf_root: script::DEFAULT_OCF_ROOT.into(),
            state_dir: "/run/hb".into(),
            announce_gate: None,
        }
    }
}

/// Whether one resource is in place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResourceState {
    InPlace,
    Absent,
    /// Some of it is there; what is missing.
    Partial(String),
    /// Could not tell (e.g. a script without a status action, or an error).
    Unknown(String),
}

/// What happened to one resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Start or stop changed something.
    Changed,
    /// Already in the wanted state: nothing changed.
    Unchanged,
}

impl Outcome {
    fn from_changed(changed: bool) -> Outcome {
        if changed {
            Outcome::Changed
        } else {
            Outcome::Unchanged
        }
    }
}

/// What starting one resource did, and what to announce through which
/// interfaces.
struct Started {
    outcome: Outcome,
    targets: Vec<AnnounceTarget>,
    /// Interfaces of `targets` already known (no lookup before the first
    /// announcement).
    links: Vec<netlink::Link>,
}

impl Started {
    fn new(changed: bool, targets: Vec<AnnounceTarget>) -> Started {
        Started {
            outcome: Outcome::from_changed(changed),
            targets,
            links: Vec::new(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ResourceOutcome {
    pub resource: String,
    pub outcome: Outcome,
}

#[derive(Debug, Clone)]
pub struct StartReport {
    pub group: String,
    pub resources: Vec<ResourceOutcome>,
    /// Addresses being announced in the background.
    pub announced: Vec<AnnounceTarget>,
}

#[derive(Debug)]
#[must_use = "a stop report lists failures"]
pub struct StopReport {
    pub group: String,
    pub resources: Vec<ResourceOutcome>,
    /// Resources that could not be stopped (described), with why.
    pub failures: Vec<(String, ResourceError)>,
    /// Restored real addresses being announced in the background.
    pub announced: Vec<AnnounceTarget>,
}

impl StopReport {
    pub fn is_clean(&self) -> bool {
        self.failures.is_empty()
    }
}

#[derive(Debug, Clone)]
pub struct GroupStatus {
    pub group: String,
    pub resources: Vec<(String, ResourceState)>,
}

impl GroupStatus {
    /// Every resource in place: the group can be adopted as it is.
    pub fn all_in_place(&self) -> bool {
        self.resources
            .iter()
            .all(|(_, s)| *s == ResourceState::InPlace)
    }

    /// Some of `specs`' network identity (an address, a MAC, a hostname)
    /// is in place, but not the whole group: what an agent killed in the
    /// middle of a start or a stop leaves behind.
    pub fn identity_left(&self, specs: &[ResourceSpec]) -> bool {
        !self.all_in_place()
            && specs.iter().zip(&self.resources).any(|(spec, (_, st))| {
                spec.is_network_identity()
                    && matches!(st, ResourceState::InPlace | ResourceState::Partial(_))
            })
    }

    pub fn none_in_place(&self) -> bool {
        self.resources
            .iter()
            .all(|(_, s)| *s == ResourceState::Absent)
    }
}

struct Inner {
    config: ResourcesConfig,
    nl: Netlink,
    announcer: Announcer,
    scripts: ScriptRunner,
    state: StateStore,
    /// Background announcement / refresh tasks per held group.
    tasks: Mutex<HashMap<String, Vec<tokio::task::JoinHandle<()>>>>,
}

/// Performs takeover and release. Cheap to clone.
#[derive(Clone)]
pub struct Resources {
    inner: Arc<Inner>,
}

impl fmt::Debug for Resources {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Resources")
            .field("state_dir", &self.inner.state.dir())
            .finish_non_exhaustive()
    }
}

impl Resources {
    /// Opens netlink (in the calling thread's network namespace) and loads the
    /// state files. Must be called inside a tokio runtime.
    pub fn new(config: ResourcesConfig) -> Result<Self, ResourceError> {
        let nl = Netlink::connect()?;
        let state = StateStore::open(&config.state_dir)?;
        let announcer =
            Announcer::new(config.arp.clone(), nl.clone())?.with_gate(config.announce_gate.clone());
        let scripts = ScriptRunner::new(config.script_dirs.clone(), config.ocf_root.clone());
        Ok(Resources {
            inner: Arc::new(Inner {
                config,
                nl,
                announcer,
                scripts,
                state,
                tasks: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// Replaces the script runner (e.g. a shorter kill grace).
    pub fn with_script_runner(self, scripts: ScriptRunner) -> Self {
        let inner = Arc::try_unwrap(self.inner)
            .unwrap_or_else(|_| panic!("with_script_runner must be called before cloning"));
        Resources {
            inner: Arc::new(Inner { scripts, ..inner }),
        }
    }

    pub fn config(&self) -> &ResourcesConfig {
        &self.inner.config
    }

    /// The specs of a configured group.
    pub fn group(&self, name: &str) -> Option<&[ResourceSpec]> {
        self.inner.config.groups.get(name).map(Vec::as_slice)
    }

    pub fn netlink(&self) -> &Netlink {
        &self.inner.nl
    }

    pub fn announcer(&self) -> &Announcer {
        &self.inner.announcer
    }

    pub fn scripts(&self) -> &ScriptRunner {
        &self.inner.scripts
    }

    /// Gateway / ping-node neighbour refresh (see [`Announcer::refresh_neighbours`]).
    pub async fn refresh_neighbours(
        &self,
        iface: &str,
        ips: &[IpAddr],
    ) -> Result<Vec<NeighbourRefresh>, ResourceError> {
        self.inner.announcer.refresh_neighbours(iface, ips).await
    }

    /// Creates what can be created ahead of a takeover without taking
    /// anything over: macvlan children, parked (down, no address).
    pub async fn prepare_group(
        &self,
        specs: &[ResourceSpec],
        group: &str,
    ) -> Result<(), ResourceError> {
        for s in specs {
            if let ResourceSpec::Mac(m) = s
                && let Some(child) = m.child(group)
            {
                mac::macvlan_prepare(&self.inner.nl, &m.iface, &child, m.mac, m.addr).await?;
            }
        }
        Ok(())
    }

    /// What a takeover of this group can put up before its worker runs
    /// (`quick`), if anything; None also when its child is not in place.
    pub async fn quick_plan(
        &self,
        group: &str,
        specs: &[ResourceSpec],
    ) -> Result<Option<quick::Plan>, ResourceError> {
        quick::plan(&self.inner.nl, group, specs).await
    }

    /// Starts `specs` left to right. On failure the failing resource and the
    /// ones before it are stopped right to left, then the error is returned.
    pub async fn start_group(
        &self,
        group: &str,
        specs: &[ResourceSpec],
    ) -> Result<StartReport, ResourceError> {
        // The agent logs the event (`taking over group`, `group started`,
        // `releasing group`, `group released`): once, with its step.
        tracing::debug!(group, resources = specs.len(), "starting group");
        let mut resources = Vec::new();
        let mut targets: Vec<AnnounceTarget> = Vec::new();
        self.abort_announcements(group);
        for (i, spec) in specs.iter().enumerate() {
            let t0 = std::time::Instant::now();
            let r = self.start_one(group, spec).await;
            tracing::debug!(group, resource = %spec, took_us = t0.elapsed().as_micros() as u64, "resource start");
            match r {
                Ok(started) => {
                    resources.push(ResourceOutcome {
                        resource: spec.to_string(),
                        outcome: started.outcome,
                    });
                    let new: Vec<AnnounceTarget> = started
                        .targets
                        .into_iter()
                        .filter(|t| !targets.contains(t))
                        .collect();
                    // The first round goes out now, before the rest of the
                    // group (a hostname, scripts): the switch learns the
                    // address's new port that much earlier.
                    if !new.is_empty() {
                        let first = self
                            .inner
                            .announcer
                            .announce_rounds_via(&new, 0..1, &started.links)
                            .await;
                        for e in &first.errors {
                            tracing::warn!(group, "announcement: {e}");
                        }
                        self.spawn_announcement(group, new.clone(), 1);
                    }
                    targets.extend(new);
                }
                Err(e) => {
                    tracing::error!(group, resource = %spec, "start failed: {e}; rolling back");
                    self.abort_announcements(group);
                    let mut rollback_failures = Vec::new();
                    for j in (0..=i).rev() {
                        if let Err(re) = self.stop_one(group, &specs[j]).await {
                            rollback_failures.push((specs[j].to_string(), re));
                        }
                    }
                    return Err(ResourceError::Start {
                        group: group.to_string(),
                        index: i,
                        resource: spec.to_string(),
                        source: Box::new(e),
                        rollback_failures,
                    });
                }
            }
        }
        self.spawn_refresh(group, targets.clone());
        tracing::debug!(group, "group started");
        Ok(StartReport {
            group: group.to_string(),
            resources,
            announced: targets,
        })
    }

    /// Stops `specs` right to left, past failures.
    pub async fn stop_group(&self, group: &str, specs: &[ResourceSpec]) -> StopReport {
        self.stop_group_with(group, specs, |_| {}).await
    }

    /// As [`Resources::stop_group`], and once everything still to stop is
    /// network identity (addresses, MACs, hostnames) and everything before
    /// stopped cleanly, calls `identity_left` with those specs first (the
    /// agent withdraws the addresses in the kernel there and hands the
    /// group over before they are gone).
    pub async fn stop_group_with(
        &self,
        group: &str,
        specs: &[ResourceSpec],
        identity_left: impl FnOnce(&[ResourceSpec]),
    ) -> StopReport {
        tracing::debug!(group, resources = specs.len(), "stopping group");
        let mut identity_left = Some(identity_left);
        self.abort_announcements(group);
        let mut report = StopReport {
            group: group.to_string(),
            resources: Vec::new(),
            failures: Vec::new(),
            announced: Vec::new(),
        };
        for (i, spec) in specs.iter().enumerate().rev() {
            let left = &specs[..=i];
            if report.failures.is_empty()
                && left.iter().all(ResourceSpec::is_network_identity)
                && let Some(f) = identity_left.take()
            {
                f(left);
            }
            let t0 = std::time::Instant::now();
            let r = self.stop_one(group, spec).await;
            tracing::debug!(group, resource = %spec, took_us = t0.elapsed().as_micros() as u64, "resource stop");
            match r {
                Ok((outcome, targets)) => {
                    report.resources.push(ResourceOutcome {
                        resource: spec.to_string(),
                        outcome,
                    });
                    report.announced.extend(targets);
                }
                Err(e) => {
                    tracing::error!(group, resource = %spec, "stop failed: {e}");
                    report.failures.push((spec.to_string(), e));
                }
            }
        }
        if !report.announced.is_empty() {
            let inner = self.inner.clone();
            let targets = report.announced.clone();
            tokio::spawn(async move {
                inner.announcer.announce(&targets).await;
            });
        }
        report
    }

    /// Whether each resource of the group is in place.
    pub async fn status_group(&self, group: &str, specs: &[ResourceSpec]) -> GroupStatus {
        let mut resources = Vec::new();
        for spec in specs {
            let st = match self.status_one(group, spec).await {
                Ok(s) => s,
                Err(e) => ResourceState::Unknown(e.to_string()),
            };
            resources.push((spec.to_string(), st));
        }
        GroupStatus {
            group: group.to_string(),
            resources,
        }
    }

    /// Announces `targets` now, within the rate limit (e.g. on an operator's request).
    pub async fn announce_now(&self, targets: &[AnnounceTarget]) -> AnnounceOutcome {
        self.inner.announcer.announce(targets).await
    }

    fn tasks(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<String, Vec<tokio::task::JoinHandle<()>>>> {
        self.inner.tasks.lock().expect("task table poisoned")
    }

    /// Stops the group's background announcements and refreshes.
    fn abort_announcements(&self, group: &str) {
        if let Some(handles) = self.tasks().remove(group) {
            for h in handles {
                h.abort();
            }
        }
    }

    /// Announces `targets` in the background from round `from` on (an
    /// announcement is `count` rounds of one packet per address).
    fn spawn_announcement(&self, group: &str, targets: Vec<AnnounceTarget>, from: u32) {
        let inner = self.inner.clone();
        let g = group.to_string();
        let h = tokio::spawn(async move {
            let rounds = from..inner.announcer.settings().count;
            let out = inner.announcer.announce_rounds(&targets, rounds).await;
            for e in &out.errors {
                tracing::warn!(group = %g, "announcement: {e}");
            }
        });
        self.tasks().entry(group.to_string()).or_default().push(h);
    }

    /// Re-announces `targets` every `ArpSettings::refresh` while held.
    fn spawn_refresh(&self, group: &str, targets: Vec<AnnounceTarget>) {
        if targets.is_empty() {
            return;
        }
        let Some(every) = self.inner.config.arp.refresh.filter(|d| !d.is_zero()) else {
            return;
        };
        let inner = self.inner.clone();
        let h = tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.tick().await; // the first tick is immediate
            loop {
                tick.tick().await;
                inner.announcer.announce(&targets).await;
            }
        });
        self.tasks().entry(group.to_string()).or_default().push(h);
    }

    async fn start_one(&self, group: &str, spec: &ResourceSpec) -> Result<Started, ResourceError> {
        let nl = &self.inner.nl;
        match spec {
            ResourceSpec::IpAddr(ip) => {
                let (c, t) = ipaddr::start(nl, ip).await?;
                Ok(Started::new(c, vec![t]))
            }
            ResourceSpec::Mac(m) => {
                let out = mac::start(nl, &self.inner.state, group, m).await?;
                Ok(Started {
                    outcome: Outcome::from_changed(out.changed),
                    targets: out.targets,
                    links: out.links,
                })
            }
            ResourceSpec::Hostname(h) => {
                let c = self
                    .inner
                    .state
                    .update_all(|all| hostname::start(all, group, h))?;
                Ok(Started::new(c, Vec::new()))
            }
            ResourceSpec::Script(sc) => {
                let c = self.inner.scripts.start(group, sc).await?;
                Ok(Started::new(c, Vec::new()))
            }
        }
    }

    async fn stop_one(
        &self,
        group: &str,
        spec: &ResourceSpec,
    ) -> Result<(Outcome, Vec<AnnounceTarget>), ResourceError> {
        let nl = &self.inner.nl;
        match spec {
            ResourceSpec::IpAddr(ip) => {
                let c = ipaddr::stop(nl, ip).await?;
                Ok((Outcome::from_changed(c), Vec::new()))
            }
            ResourceSpec::Mac(m) => {
                let out = mac::stop(nl, &self.inner.state, group, m).await?;
                Ok((Outcome::from_changed(out.changed), out.targets))
            }
            ResourceSpec::Hostname(_) => {
                let c = self
                    .inner
                    .state
                    .update_all(|all| hostname::stop(all, group))?;
                Ok((Outcome::from_changed(c), Vec::new()))
            }
            ResourceSpec::Script(sc) => Ok((
                Outcome::from_changed(self.inner.scripts.stop(group, sc).await?),
                Vec::new(),
            )),
        }
    }

    async fn status_one(
        &self,
        group: &str,
        spec: &ResourceSpec,
    ) -> Result<ResourceState, ResourceError> {
        let nl = &self.inner.nl;
        match spec {
            ResourceSpec::IpAddr(ip) => Ok(match ipaddr::status(nl, ip).await? {
                Some(_) => ResourceState::InPlace,
                None => ResourceState::Absent,
            }),
            ResourceSpec::Mac(m) => mac::status(nl, group, m).await,
            ResourceSpec::Hostname(h) => {
                let all = self.inner.state.snapshot();
                Ok(if hostname::status(&all, group, h)? {
                    ResourceState::InPlace
                } else {
                    ResourceState::Absent
                })
            }
            ResourceSpec::Script(sc) => self.inner.scripts.status(group, sc).await,
        }
    }
}
