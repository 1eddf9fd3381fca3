//! VRRP v2 (RFC 3768) and v3 (RFC 5798 / RFC 9568): packet codec and the per-instance state
//! machine. Pure: no sockets, no clock reads, no tokio.
//!
//! # Layout
//!
//! State machine (sans-I/O, quinn-proto style). [`instance::Instance`] is one virtual router:
//! the daemon feeds it [`instance::Input`]s (`Startup`, decoded `Advert`s with source and TTL,
//! `Shutdown`, priority, tracking and fault changes) through `handle(now, input)` and
//! `handle_timeout(now)`, then drains [`instance::Action`]s (`SendAdvert`, `AddVips`,
//! `RemoveVips`, `SendGratuitous`, `StateChanged`, `Discarded`, `Mismatch`) with `poll_action()`
//! and re-arms its single timer at `poll_timeout()`. Time is always passed in; nothing here is
//! random. `instance/fsm.rs` holds the states and transitions (RFC 9568 §6.4), `instance/receive.rs`
//! the receive checks and the Backup/Master advert rules (§7.1, §6.4.2–3), `timer.rs` the timer
//! table. [`config::InstanceConfig`] is the validated per-instance configuration,
//! [`track::Tracker`] turns tracked objects into an effective priority or a fault (keepalived
//! weights), [`stats::Stats`] keeps the counters `vigilctl status` shows, and
//! [`sync_group::SyncGroup`] moves a set of instances together. [`testing::Lan`] simulates
//! routers on a segment with virtual time, delay and loss, for tests in this and other crates.

pub mod config;
pub mod instance;
pub mod ip;
pub mod packet;
pub mod stats;
pub mod sync_group;
pub mod testing;
mod timer;
pub mod track;
