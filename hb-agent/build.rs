//! Builds the XDP program (hb-ebpf) with the nightly toolchain and
//! bpf-linker, so the agent binary embeds the object it loads.
use anyhow::{Context as _, anyhow};

fn main() -> anyhow::Result<()> {
    let ok = std::process::Command::new("bpf-linker")
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok && std::env::var_os("AYA_BUILD_SKIP").is_none() {
        return Err(anyhow!(
            "bpf-linker is missing or does not start: run `cargo xtask setup` \
             (or any `cargo xtask` command), which installs it"
        ));
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("workspace root")?
        .join("hb-ebpf");
    let root = root.to_str().context("non-UTF-8 path")?;
    aya_build::build_ebpf(
        [aya_build::Package {
            name: "hb-ebpf",
            root_dir: root,
            ..Default::default()
        }],
        aya_build::Toolchain::Nightly,
    )
}
