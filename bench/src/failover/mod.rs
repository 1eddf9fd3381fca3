//! VRRP failover benchmark (`vigil-failover`): the client-visible outage of the VIP after a
//! SIGKILL of the master or the loss of its link, vigild against keepalived at the same
//! settings; plus each daemon's idle CPU and memory, and false failovers while a CPU hog
//! saturates the machine.
//!
//! Each (implementation, interval) series gets a fresh lab — lb1 (priority 150), lb2 (priority
//! 100) and a client on one bridge — so runs of different series cannot disturb each other.
//! Both daemons run VRRPv3 on virtual router 51 for the same VIP with no gratuitous-ARP delay
//! (vigild also without quorum fencing). A run kills the master's whole process group, then
//! the client probes the VIP every 2 ms; the outage is the time from the kill to the first
//! answer from lb2 (for link down: from taking lb1's bridge port down). Between runs the master
//! is restarted (or its link comes back) and must serve the VIP alone again;
//! the kills are spread evenly over the master's advert cycle ([`series::phase`]), timed from
//! the adverts the client receives ([`adverts`]).
//!
//! # Layout
//!
//! - [`adverts`]: the master's VRRP adverts as the client receives them (the kills' timing).
//! - [`daemon`]: the implementations, their generated configs and start-up.
//! - [`probe`]: the UDP responders on the load balancers and the client's probes.
//! - [`series`]: one series of failovers in its own lab.
//! - [`pair`]: a steady master/backup pair, for [`idle`] (CPU and RSS) and [`hog`] (false
//!   failovers under a CPU hog).
//! - [`machine`]: steal time and softirq-thread waits during the hog, to tell the machine's
//!   stalls from the daemons'.
//! - [`stats`]: min/median/max of a series.
//! - [`table`]: the side-by-side table with the RFC target.

pub mod adverts;
pub mod daemon;
pub mod hog;
pub mod idle;
pub mod machine;
pub mod pair;
pub mod probe;
pub mod series;
pub mod stats;
pub mod table;
