//! The fuzz targets' bodies, one module per target (`fuzz_targets/*.rs`
//! only call `run`). What each asserts is in its module's docs and in the
//! README's "Fuzzing" section.

pub mod authkeys;
pub mod cluster;
pub mod config;
pub mod control;
pub mod hacf;
pub mod haresources;
pub mod kernel_event;
pub mod sim;
pub mod toml;
pub mod wire;

/// Reads the fuzz input as a little stream of numbers.
pub struct Bytes<'a> {
    data: &'a [u8],
}

impl<'a> Bytes<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Bytes { data }
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    pub fn u8(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    pub fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }

    pub fn u64(&mut self) -> u64 {
        u64::from(self.u32()) | (u64::from(self.u32()) << 32)
    }

    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.data)
    }
}
