//! `hb-agent`: one binary. `run` is the daemon (what systemd and the lab
//! start); the other subcommands check a configuration or talk to a running
//! agent over its control socket.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use hb_agent::{
    agent::{self, RunOptions},
    config::{self, Severity, Source},
    control::{Request, client},
};

#[derive(Parser)]
#[command(
    name = "hb-agent",
    version,
    about = "XDP-accelerated failover agent (a Heartbeat replacement)",
    long_about = "XDP-accelerated failover agent (a Heartbeat replacement).\n\n\
        Nodes heartbeat each other over UDP (port 694); when a primary dies or \
        loses its network, a standby takes over its groups (IP address, MAC \
        address, hostname, resource scripts) and announces them with gratuitous \
        ARP. Heartbeats are received, authenticated and timed by an XDP program.\n\n\
        Files: /etc/hb/hb.toml (native configuration; the commented \
        /etc/hb/hb.toml.example shows every key), or /etc/ha.d (Heartbeat's \
        ha.cf, haresources, authkeys, resource.d) with --ha-dir; \
        /run/hb/<cluster>.sock (control socket); /run/hb/<cluster>-<node>/ \
        (restore state); hb-agent.service (systemd unit). \
        Full documentation: /usr/share/doc/hb-agent/README.md.gz."
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Args, Clone)]
#[group(required = true, multiple = false)]
struct ConfigArg {
    /// Native TOML configuration file.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// A Heartbeat directory (ha.cf, haresources, authkeys, resource.d/).
    #[arg(long, value_name = "DIR")]
    ha_dir: Option<PathBuf>,
}

impl ConfigArg {
    fn source(&self) -> Source {
        match (&self.config, &self.ha_dir) {
            (Some(f), _) => Source::Toml(f.clone()),
            (_, Some(d)) => Source::HaDir(d.clone()),
            _ => unreachable!("clap requires one"),
        }
    }
}

#[derive(Args, Clone)]
struct SocketArg {
    /// Control socket of the agent to talk to (default: the only one in /run/hb).
    #[arg(long, value_name = "PATH")]
    socket: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the agent in the foreground.
    Run {
        #[command(flatten)]
        cfg: ConfigArg,
        /// Control socket path (default: from the configuration, /run/hb/<cluster>.sock).
        #[arg(long, value_name = "PATH")]
        socket: Option<PathBuf>,
        /// This node's name in the configuration (default: the hostname, as `uname -n`).
        #[arg(long)]
        node: Option<String>,
        /// Log format.
        #[arg(long, default_value = "text", value_parser = ["text", "json"])]
        log_format: String,
        /// Do not pin the XDP program's links and maps (by default they are
        /// pinned, so detection and counters survive an agent restart).
        #[arg(long)]
        no_pin: bool,
        /// Where to pin (default /sys/fs/bpf/hb/<cluster>; must be on a BPF filesystem).
        #[arg(long, value_name = "DIR")]
        pin_dir: Option<PathBuf>,
        /// Directory for the resources' restore state (default /run/hb/<cluster>-<node>).
        #[arg(long, value_name = "DIR")]
        state_dir: Option<PathBuf>,
    },
    /// Validate a configuration without touching the system, and print the
    /// plan it would run on this node.
    Check {
        #[command(flatten)]
        cfg: ConfigArg,
        /// The node to show the plan for (default: the hostname, as `uname -n`).
        #[arg(long)]
        node: Option<String>,
        /// Machine-readable output: {"ok", "errors", "warnings", "plan"}.
        #[arg(long)]
        json: bool,
    },
    /// Show nodes, links and groups as the running agent sees them.
    Status {
        #[command(flatten)]
        sock: SocketArg,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Give groups (all, or GROUP) to the other nodes, as hb_standby.
    Standby {
        group: Option<String>,
        #[command(flatten)]
        sock: SocketArg,
    },
    /// Take groups (all, or GROUP) from the other nodes, as hb_takeover.
    Takeover {
        group: Option<String>,
        #[command(flatten)]
        sock: SocketArg,
    },
    /// A live view of nodes and groups, refreshed in place.
    Watch {
        #[command(flatten)]
        sock: SocketArg,
        /// Refresh interval in milliseconds.
        #[arg(long, default_value_t = 500)]
        interval_ms: u64,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions { shell: clap_complete::Shell },
    /// Write the man pages (hb-agent.8, hb-agent-SUBCOMMAND.8) into DIR: what
    /// the package ships, generated from this very definition.
    #[command(hide = true)]
    Manpages { dir: PathBuf },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("hb-agent: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.cmd {
        Cmd::Run {
            cfg,
            socket,
            node,
            log_format,
            no_pin,
            pin_dir,
            state_dir,
        } => {
            agent::init_logging(&log_format);
            agent::run(RunOptions {
                source: cfg.source(),
                socket,
                node,
                pin: !no_pin,
                pin_dir,
                state_dir,
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Check { cfg, node, json } => Ok(check(&cfg.source(), node, json)),
        Cmd::Status { sock, json } => {
            let r = client::call(&socket_path(&sock)?, &Request::Status)?;
            let st = r.status.ok_or_else(|| anyhow::anyhow!("{}", r.message))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&st)?);
            } else {
                print!("{}", st.render());
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Standby { group, sock } => admin(&sock, Request::Standby { group }),
        Cmd::Takeover { group, sock } => admin(&sock, Request::Takeover { group }),
        Cmd::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut cmd, "hb-agent", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Manpages { dir } => {
            manpages(&dir)?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Watch { sock, interval_ms } => {
            let path = socket_path(&sock)?;
            loop {
                let r = client::call(&path, &Request::Status)?;
                let st = r.status.ok_or_else(|| anyhow::anyhow!("{}", r.message))?;
                // Clear screen and home the cursor, then redraw.
                print!("\x1b[2J\x1b[H{}", st.render());
                std::thread::sleep(std::time::Duration::from_millis(interval_ms));
            }
        }
    }
}

/// One page for the command and one per visible subcommand, section 8
/// (system administration), named as `man hb-agent-check` finds them.
fn manpages(dir: &std::path::Path) -> anyhow::Result<()> {
    use anyhow::Context as _;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let cmd = <Cli as clap::CommandFactory>::command();
    // `page` is the file (hb-agent-check.8), `invoked` what the synopsis
    // shows (hb-agent check).
    let write = |page: String, invoked: String, c: clap::Command| -> anyhow::Result<()> {
        let path = dir.join(format!("{page}.8"));
        let mut out = Vec::new();
        clap_mangen::Man::new(c.name(page).bin_name(invoked))
            .section("8")
            .manual("hb")
            .render(&mut out)?;
        std::fs::write(&path, out).with_context(|| format!("writing {}", path.display()))
    };
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = sub.get_name();
        write(
            format!("hb-agent-{name}"),
            format!("hb-agent {name}"),
            sub.clone(),
        )?;
    }
    write("hb-agent".into(), "hb-agent".into(), cmd)
}

fn admin(sock: &SocketArg, req: Request) -> anyhow::Result<ExitCode> {
    let r = client::call(&socket_path(sock)?, &req)?;
    println!("{}", r.message);
    Ok(if r.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn socket_path(sock: &SocketArg) -> anyhow::Result<PathBuf> {
    if let Some(p) = &sock.socket {
        return Ok(p.clone());
    }
    let found: Vec<PathBuf> = std::fs::read_dir("/run/hb")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "sock"))
                .collect()
        })
        .unwrap_or_default();
    match found.as_slice() {
        [one] => Ok(one.clone()),
        [] => anyhow::bail!(
            "no agent socket in /run/hb; is `hb-agent run` running? (or give --socket)"
        ),
        many => anyhow::bail!(
            "several agents run here ({}); choose one with --socket",
            many.len()
        ),
    }
}

/// `hb-agent check`: the plan (stdout), every diagnostic, errors first
/// (stderr), and exit 1 on errors.
fn check(src: &Source, node: Option<String>, json: bool) -> ExitCode {
    let node = node.unwrap_or_else(|| {
        nix::unistd::gethostname()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_default()
    });
    let (mut diags, plan) = match config::load(src) {
        Ok(cfg) => {
            let mut d = cfg.warnings.clone();
            d.extend(config::check(&cfg));
            if let Err(e) = cfg.local_node(&node) {
                d.push(config::Diag::warning(
                    &e.file,
                    format!("{} (give --node NAME)", e.message),
                ));
            }
            (d, Some(config::plan(&cfg, &node)))
        }
        Err(d) => (d, None),
    };
    diags.sort_by_key(|d| d.severity != Severity::Error);
    let errors = diags
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .count();
    if json {
        let list = |sev: Severity| -> Vec<String> {
            diags
                .iter()
                .filter(|d| d.severity == sev)
                .map(|d| d.to_string())
                .collect()
        };
        let out = serde_json::json!({
            "ok": errors == 0,
            "errors": list(Severity::Error),
            "warnings": list(Severity::Warning),
            "plan": plan,
        });
        println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
        return if errors > 0 {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        };
    }
    if let Some(p) = &plan
        && errors == 0
    {
        print!("{}", p.render());
    }
    for d in diags.iter().filter(|d| d.severity == Severity::Error) {
        eprintln!("error: {d}");
    }
    for d in diags.iter().filter(|d| d.severity == Severity::Warning) {
        eprintln!("warning: {d}");
    }
    if errors > 0 {
        eprintln!("{errors} error(s): configuration refused");
        ExitCode::FAILURE
    } else {
        println!("configuration OK ({} warning(s))", diags.len());
        ExitCode::SUCCESS
    }
}
