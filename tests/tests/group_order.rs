//! Several groups of one node start one after the other in the order they
//! are written and stop the other way round (Heartbeat's ResourceManager
//! did so; a later haresources line may bind to an earlier line's
//! address). A real agent (node b, `--no-pin`) holds three groups whose
//! start and stop scripts take a while; their log shows the order and that
//! no two overlapped.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use hb_tests::twohost::{TwoHosts, config};

/// Appends "ARG begin ACTION" and, 0.3 s later, "ARG end ACTION" to
/// ../steps: an overlap of two scripts would interleave their lines.
const STEP: &str = "#!/bin/sh\nd=$(dirname \"$0\")/..\ncase \"$2\" in\n\
    start|stop) echo \"$1 begin $2\" >> $d/steps; sleep 0.3; echo \"$1 end $2\" >> $d/steps;\n\
      [ \"$2\" = start ] && touch $d/$1.on || rm -f $d/$1.on; exit 0;;\n\
    status) [ -e $d/$1.on ] && echo running || echo stopped; exit 0;;\nesac\n";

fn expected(names: &[&str], action: &str) -> Vec<String> {
    names
        .iter()
        .flat_map(|n| [format!("{n} begin {action}"), format!("{n} end {action}")])
        .collect()
}

#[test]
fn groups_start_in_written_order_and_stop_in_reverse_one_at_a_time() {
    let h = TwoHosts::new("go", "").unwrap();
    let rd = h.dir.join("resource.d");
    std::fs::create_dir_all(&rd).unwrap();
    std::fs::write(rd.join("Step"), STEP).unwrap();
    std::fs::set_permissions(rd.join("Step"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let extra = format!("script_dirs = [\"{}\"]", rd.display());
    let mut text = config("order", "order", "100ms", "1s", &extra)
        .replace("[timing]\n", "[timing]\ninitdead = \"1s\"\n");
    // Written out of alphabetical order, so that neither names nor ids
    // give the written order by accident.
    let written = ["web", "addr", "mail"];
    for g in written {
        text += &format!(
            "[[group]]\nname = \"{g}\"\nnodes = [\"b\"]\n\
             [[group.resource]]\ntype = \"script\"\nname = \"Step\"\nargs = [\"{g}\"]\n"
        );
    }
    h.write_config(&text).unwrap();
    let steps = h.dir.join("steps");
    let read = || -> Vec<String> {
        std::fs::read_to_string(&steps)
            .unwrap_or_default()
            .lines()
            .map(String::from)
            .collect()
    };

    let agent = h.start_b(&["--no-pin"]).unwrap();
    h.wait_status(|s| s.groups.len() == 3 && s.groups.iter().all(|g| g.local == "held"));
    assert_eq!(read(), expected(&written, "start"), "start order");

    agent.stop(Duration::from_secs(30)).expect("b stops");
    let mut all = expected(&written, "start");
    all.extend(expected(&["mail", "addr", "web"], "stop"));
    assert_eq!(read(), all, "stop order");
}
