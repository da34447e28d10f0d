//! `cargo xtask`: the only commands a person needs.
//!
//! Every command first runs `setup` (fast when already done), so a fresh
//! machine needs nothing done by hand.

mod dist;
mod fuzz;
mod install;
mod setup;

use std::process::Command;

use anyhow::{Context as _, Result, bail};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "Build, run, test and benchmark hb")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Install what building and testing need: rust-src for nightly,
    /// bpf-linker against the nightly's LLVM, Debian packages, cargo-fuzz.
    /// Idempotent.
    Setup,
    /// Build the XDP object and the agent (release).
    Build,
    /// Build and run the agent on this host with ARGS (as root).
    Run {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Run every test: unit, kernel (BPF_PROG_TEST_RUN) and namespace tests,
    /// then every fuzz target briefly, then the package proof (`dist --prove`).
    Test {
        /// Extra arguments for `cargo test` (e.g. a test name filter).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Run the cargo-fuzz targets (fuzz/): all, or TARGET, for N seconds
    /// each, seeded from the fixtures and the Heartbeat corpus; a table at
    /// the end.
    Fuzz {
        /// How long each target runs.
        #[arg(long, default_value_t = 60)]
        seconds: u64,
        /// One of: wire, kernel_event, hacf, haresources, authkeys, toml,
        /// control, cluster.
        target: Option<String>,
    },
    /// Benchmarks that print tables: `datapath`, `failover`, `flood`, `health`.
    Bench {
        what: String,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Build, then install the agent (PREFIX/bin/hb-agent), its systemd unit
    /// and the example configuration. Idempotent; never touches /etc/hb/hb.toml.
    Install {
        /// Install under this directory instead of / (DESTDIR, for packaging).
        #[arg(long, value_name = "DESTDIR")]
        root: Option<std::path::PathBuf>,
        /// Where the binary goes (PREFIX/bin) and systemd runs it from.
        #[arg(long, value_name = "PREFIX", default_value = "/usr/local")]
        prefix: std::path::PathBuf,
    },
    /// Build the Debian package (target/dist/hb-agent_VERSION_ARCH.deb) and
    /// check it with lintian.
    Dist {
        /// Then prove it: install it on a clean Debian 12 root (mmdebstrap)
        /// and run the unit under that root's systemd (systemd-nspawn) as
        /// one node of a two-node cluster (as root; a few minutes).
        #[arg(long)]
        prove: bool,
    },
    /// The seed's three-node cluster in network namespaces, failing and
    /// recovering, with a timeline and a results table.
    Lab {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// A seeded random fault campaign on the lab, with invariant checks:
    /// `--seed S`, `--faults N | --minutes M`, `--flood`, `--toml`,
    /// `--stop-on-violation`, `--dry-run`.
    Chaos {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let root = workspace_root()?;
    std::env::set_current_dir(&root)?;
    match cli.cmd {
        Cmd::Setup => {
            setup::run()?;
            setup::cargo_fuzz()
        }
        Cmd::Build => {
            setup::run()?;
            build()
        }
        Cmd::Run { args } => {
            setup::run()?;
            build()?;
            exec(Command::new(root.join("target/release/hb-agent")).args(args))
        }
        Cmd::Test { args } => {
            setup::run()?;
            require_root("the kernel and namespace tests")?;
            // The lab tests start the agent binary itself.
            exec(Command::new("cargo").args(["build", "--release", "-p", "hb-agent"]))?;
            exec(
                Command::new("cargo")
                    // Every crate but the eBPF one, which only builds for BPF.
                    .args(["test", "--workspace", "--exclude", "hb-ebpf", "--release"])
                    .args(&args),
            )?;
            // Every fuzz target, briefly, and the package on a clean Debian
            // under systemd (a filter for `cargo test` skips both).
            if args.is_empty() {
                setup::cargo_fuzz()?;
                fuzz::run(&root, fuzz::TEST_SECONDS, None)?;
                dist(&root, true)?;
            }
            Ok(())
        }
        Cmd::Fuzz { seconds, target } => {
            setup::run()?;
            setup::cargo_fuzz()?;
            fuzz::run(&root, seconds, target.as_deref())
        }
        Cmd::Bench { what, args } => {
            setup::run()?;
            require_root("the benchmarks")?;
            // The failover benchmark starts the agent binary itself.
            build()?;
            build_service()?;
            let bin = match what.as_str() {
                "datapath" => "bench-datapath",
                "flood" => "bench-flood",
                "health" => "bench-health",
                "failover" => {
                    setup::bench_failover()?;
                    "bench-failover"
                }
                other => bail!(
                    "unknown benchmark {other:?}: expected datapath, failover, flood or health"
                ),
            };
            run_tests_bin(bin, &args)
        }
        Cmd::Install { root: dest, prefix } => {
            setup::run()?;
            build()?;
            install::run(&prefix, dest.as_deref())
        }
        Cmd::Dist { prove } => {
            setup::run()?;
            build()?;
            dist(&root, prove)
        }
        Cmd::Lab { args } => {
            setup::run()?;
            require_root("the lab")?;
            // The lab starts the agent binary itself.
            build()?;
            build_service()?;
            run_tests_bin("hb-lab", &args)
        }
        Cmd::Chaos { args } => {
            setup::run()?;
            require_root("the fault campaign")?;
            build()?;
            run_tests_bin("hb-chaos", &args)
        }
    }
}

/// Runs one of the tests crate's programs (lab, benchmarks), release build.
fn run_tests_bin(bin: &str, args: &[String]) -> Result<()> {
    exec(
        Command::new("cargo")
            .args([
                "run",
                "--quiet",
                "--release",
                "-p",
                "hb-tests",
                "--bin",
                bin,
                "--",
            ])
            .args(args),
    )
}

/// The package (the agent built), checked by lintian; with `prove`, on a
/// clean Debian 12 under a real systemd (`package-proof`).
fn dist(root: &std::path::Path, prove: bool) -> Result<()> {
    setup::debian_packages(dist::PACKAGES)?;
    let deb = dist::build(root)?;
    dist::lintian(&deb)?;
    eprintln!("dist: {}", deb.display());
    if prove {
        require_root("the package proof")?;
        setup::debian_packages(dist::PROOF_PACKAGES)?;
        run_tests_bin("package-proof", &[deb.display().to_string()])?;
    }
    Ok(())
}

fn build() -> Result<()> {
    exec(Command::new("cargo").args(["build", "--release", "-p", "hb-agent"]))
}

/// The lab's service (`hb-service`), which the lab and the benchmarks
/// start on the nodes for health checks to watch.
fn build_service() -> Result<()> {
    exec(Command::new("cargo").args([
        "build",
        "--release",
        "-p",
        "hb-tests",
        "--bin",
        "hb-service",
    ]))
}

fn exec(cmd: &mut Command) -> Result<()> {
    let st = cmd.status().with_context(|| format!("running {cmd:?}"))?;
    if !st.success() {
        bail!("{cmd:?} failed: {st}");
    }
    Ok(())
}

fn require_root(what: &str) -> Result<()> {
    // SAFETY: trivial libc-free check via /proc.
    let uid = std::fs::read_to_string("/proc/self/status")?
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1).map(str::to_string))
        .unwrap_or_default();
    if uid != "0" {
        bail!("{what} load XDP programs and create network namespaces: run as root");
    }
    Ok(())
}

fn workspace_root() -> Result<std::path::PathBuf> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    Ok(dir
        .parent()
        .context("xtask has no parent dir")?
        .to_path_buf())
}
