//! Tests of the VRRP state machine (`vigil_vrrp::instance`), tracking and sync groups, all on
//! virtual time: one RFC rule per unit test, and seeded simulations of 2–5 routers on the
//! `vigil_vrrp::testing::Lan` harness that must always converge to exactly one master.

mod fsm {
    mod convergence;
    mod discard;
    mod fault_track;
    mod master;
    mod reconfigure;
    mod startup_backup;
    mod support;
    mod sync;
}
