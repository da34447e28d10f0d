//! Unit tests of the state machine (`unit`) and multi-node scenarios on a simulator (`sim`,
//! `seed`, `faults`).

mod faults;
mod health;
mod seed;
mod sim;
mod stall;
mod unit;
