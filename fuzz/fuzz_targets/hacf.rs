#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| hb_fuzz::hacf::run(data));
