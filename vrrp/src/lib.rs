//! VRRP v2 (RFC 3768) and v3 (RFC 5798 / RFC 9568): packet codec and the per-instance state
//! machine. Pure: no sockets, no clock reads, no tokio.

pub mod packet;
