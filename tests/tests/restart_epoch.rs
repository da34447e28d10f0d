//! Epochs never go backwards for a group, also across an agent killed with
//! SIGKILL: the agent records the epoch of every takeover in its state
//! directory before it starts, and the next run takes over above it. Before
//! that record, a node restarted after a kill took the group at epoch 1,
//! where it had held it at epoch 2.

use hb_tests::twohost::{TwoHosts, config};

const GROUP: &str = "[[group]]\nname = \"web\"\nnodes = [\"b\"]\n\
     [[group.resource]]\ntype = \"script\"\nname = \"true\"\n";

fn held_epoch(h: &TwoHosts) -> u32 {
    h.wait_status(|s| {
        s.groups
            .iter()
            .any(|g| g.name == "web" && g.local == "held")
    })
    .groups
    .iter()
    .find(|g| g.name == "web")
    .map(|g| g.epoch)
    .unwrap()
}

#[test]
fn a_killed_agent_restarts_above_its_last_epoch() {
    let extra = format!("script_dirs = [\"/usr/bin\"]\n{GROUP}");
    let h = TwoHosts::new(
        "ep",
        &config("epoch", "epoch secret", "20ms", "200ms", &extra),
    )
    .unwrap();
    let mut epochs = Vec::new();
    for _ in 0..3 {
        let mut agent = h.start_b(&["--no-pin"]).unwrap();
        epochs.push(held_epoch(&h));
        agent.kill();
    }
    assert!(
        epochs.windows(2).all(|w| w[1] > w[0]),
        "epochs after each restart: {epochs:?}"
    );
}
