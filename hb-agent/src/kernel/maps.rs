//! Typed access to the program's maps.

use std::os::fd::AsFd as _;

use anyhow::{Context as _, Result};
use aya::maps::{Array, HashMap, Map, MapData, PerCpuArray, RingBuf};
use hb_common::maps::{
    GuardConfig, KernelConfig, LeaseUntil, PeerConfig, PeerEntry, PeerKey, PeerStats,
    WithdrawnBits, counter,
};

use super::Kernel;

impl Kernel {
    pub fn set_config(&mut self, cfg: KernelConfig) -> Result<()> {
        let mut m: Array<&mut MapData, KernelConfig> =
            Array::try_from(self.ebpf.map_mut("CONFIG").context("map CONFIG")?)?;
        m.set(0, cfg, 0).context("writing CONFIG")?;
        Ok(())
    }

    pub fn set_guard(&mut self, g: GuardConfig) -> Result<()> {
        let mut m: Array<&mut MapData, GuardConfig> =
            Array::try_from(self.ebpf.map_mut("GUARD").context("map GUARD")?)?;
        m.set(0, g, 0).context("writing GUARD")?;
        Ok(())
    }

    /// The lease in force (0 = never renewed), e.g. left by a previous agent.
    pub fn lease_until(&self) -> Result<LeaseUntil> {
        let m: Array<&MapData, LeaseUntil> =
            Array::try_from(self.ebpf.map("LEASE").context("map LEASE")?)?;
        Ok(m.get(&0, 0)?)
    }

    /// A handle on `LEASE` of its own, for the sender thread.
    pub fn lease_writer(&self) -> Result<LeaseWriter> {
        Ok(LeaseWriter(self.own_array("LEASE")?))
    }

    /// A writer for `WITHDRAWN` that can live on another thread.
    pub fn withdrawn_writer(&self) -> Result<WithdrawnWriter> {
        Ok(WithdrawnWriter(self.own_array("WITHDRAWN")?))
    }

    /// Array map `name` through a file descriptor of its own (movable to
    /// another thread, independent of `self`).
    fn own_array<T: aya::Pod>(&self, name: &str) -> Result<Array<MapData, T>> {
        let Some(Map::Array(data)) = self.ebpf.map(name) else {
            anyhow::bail!("map {name} missing or not an array");
        };
        let fd = data.fd().as_fd().try_clone_to_owned()?;
        Ok(Array::try_from(Map::Array(MapData::from_fd(fd)?))?)
    }

    pub fn set_peer(&mut self, node_id: u32, cfg: PeerConfig) -> Result<()> {
        let mut m: HashMap<&mut MapData, u32, PeerConfig> =
            HashMap::try_from(self.ebpf.map_mut("PEERS").context("map PEERS")?)?;
        m.insert(node_id, cfg, 0).context("writing PEERS")?;
        Ok(())
    }

    pub fn remove_peer(&mut self, node_id: u32) -> Result<()> {
        let mut m: HashMap<&mut MapData, u32, PeerConfig> =
            HashMap::try_from(self.ebpf.map_mut("PEERS").context("map PEERS")?)?;
        let _ = m.remove(&node_id);
        Ok(())
    }

    /// Node ids currently in PEERS.
    pub fn peer_ids(&self) -> Result<Vec<u32>> {
        let m: HashMap<&MapData, u32, PeerConfig> =
            HashMap::try_from(self.ebpf.map("PEERS").context("map PEERS")?)?;
        Ok(m.keys().filter_map(|k| k.ok()).collect())
    }

    /// Verdict counters summed over CPUs, indexed by `counter::*`.
    pub fn counters(&self) -> Result<[u64; counter::COUNT as usize]> {
        let m: PerCpuArray<&MapData, u64> =
            PerCpuArray::try_from(self.ebpf.map("COUNTERS").context("map COUNTERS")?)?;
        let mut out = [0u64; counter::COUNT as usize];
        for (i, slot) in out.iter_mut().enumerate() {
            *slot = m.get(&(i as u32), 0)?.iter().sum();
        }
        Ok(out)
    }

    /// Every peer-and-link entry the kernel tracks.
    pub fn peer_states(&self) -> Result<Vec<(PeerKey, PeerStats)>> {
        let m: HashMap<&MapData, PeerKey, PeerEntry> =
            HashMap::try_from(self.ebpf.map("PEER_STATE").context("map PEER_STATE")?)?;
        let mut v: Vec<_> = m
            .iter()
            .filter_map(|r| r.ok())
            .map(|(k, e)| (k, e.stats))
            .collect();
        v.sort_by_key(|(k, _)| *k);
        Ok(v)
    }

    /// Takes the event ring buffer out (once); see `events::EventStream`.
    pub fn take_events(&mut self) -> Result<RingBuf<aya::maps::MapData>> {
        let map = self
            .ebpf
            .take_map("EVENTS")
            .context("map EVENTS (already taken?)")?;
        Ok(RingBuf::try_from(map)?)
    }
}

/// Renews the service lease (see `guard` in hb-ebpf).
pub struct LeaseWriter(Array<MapData, LeaseUntil>);

impl LeaseWriter {
    pub fn set(&mut self, until: LeaseUntil) -> Result<()> {
        self.0.set(0, until, 0).context("writing LEASE")?;
        Ok(())
    }
}

/// Sets which guarded addresses are withdrawn (see `guard` in hb-ebpf).
pub struct WithdrawnWriter(Array<MapData, WithdrawnBits>);

impl WithdrawnWriter {
    pub fn set(&mut self, bits: WithdrawnBits) -> Result<()> {
        self.0.set(0, bits, 0).context("writing WITHDRAWN")?;
        Ok(())
    }
}
