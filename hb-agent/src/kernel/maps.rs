//! Typed access to the program's maps.

use anyhow::{Context as _, Result};
use aya::maps::{Array, HashMap, MapData, PerCpuArray, RingBuf};
use hb_common::maps::{KernelConfig, PeerConfig, PeerEntry, PeerKey, PeerStats, counter};

use super::Kernel;

impl Kernel {
    pub fn set_config(&mut self, cfg: KernelConfig) -> Result<()> {
        let mut m: Array<&mut MapData, KernelConfig> =
            Array::try_from(self.ebpf.map_mut("CONFIG").context("map CONFIG")?)?;
        m.set(0, cfg, 0).context("writing CONFIG")?;
        Ok(())
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
