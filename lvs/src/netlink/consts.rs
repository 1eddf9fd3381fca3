//! Numbers from the kernel's uapi headers: `linux/netlink.h`, `linux/genetlink.h` and
//! `linux/ip_vs.h`. Names follow the headers so they can be grepped against them.

#![allow(missing_docs)]

// linux/netlink.h
pub(crate) const NLMSG_HDRLEN: usize = 16;
pub(crate) const NLMSG_ERROR: u16 = 2;
pub(crate) const NLMSG_DONE: u16 = 3;
pub(crate) const NLM_F_REQUEST: u16 = 0x001;
pub(crate) const NLM_F_ACK: u16 = 0x004;
pub(crate) const NLM_F_DUMP: u16 = 0x300;
/// An ack/error carries extended-ack TLVs after the echoed request.
pub(crate) const NLM_F_ACK_TLVS: u16 = 0x200;
/// The echoed request in an error was cut to its header.
pub(crate) const NLM_F_CAPPED: u16 = 0x100;
pub(crate) const NLMSGERR_ATTR_MSG: u16 = 1;
pub(crate) const NLA_HDRLEN: usize = 4;
pub(crate) const NLA_F_NESTED: u16 = 0x8000;
pub(crate) const NLA_F_NET_BYTEORDER: u16 = 0x4000;
pub(crate) const NLA_TYPE_MASK: u16 = !(NLA_F_NESTED | NLA_F_NET_BYTEORDER);

// linux/genetlink.h
pub(crate) const GENL_HDRLEN: usize = 4;
pub(crate) const GENL_ID_CTRL: u16 = 0x10;
pub(crate) const CTRL_CMD_NEWFAMILY: u8 = 1;
pub(crate) const CTRL_CMD_GETFAMILY: u8 = 3;
pub(crate) const CTRL_ATTR_FAMILY_ID: u16 = 1;
pub(crate) const CTRL_ATTR_FAMILY_NAME: u16 = 2;
pub(crate) const CTRL_VERSION: u8 = 2;

// linux/ip_vs.h
pub(crate) const IPVS_GENL_NAME: &str = "IPVS";
pub(crate) const IPVS_GENL_VERSION: u8 = 1;

pub(crate) const IPVS_CMD_NEW_SERVICE: u8 = 1;
pub(crate) const IPVS_CMD_SET_SERVICE: u8 = 2;
pub(crate) const IPVS_CMD_DEL_SERVICE: u8 = 3;
pub(crate) const IPVS_CMD_GET_SERVICE: u8 = 4;
pub(crate) const IPVS_CMD_NEW_DEST: u8 = 5;
pub(crate) const IPVS_CMD_SET_DEST: u8 = 6;
pub(crate) const IPVS_CMD_DEL_DEST: u8 = 7;
pub(crate) const IPVS_CMD_GET_DEST: u8 = 8;
pub(crate) const IPVS_CMD_SET_INFO: u8 = 14;
pub(crate) const IPVS_CMD_GET_INFO: u8 = 15;
pub(crate) const IPVS_CMD_FLUSH: u8 = 17;

pub(crate) const IPVS_CMD_ATTR_SERVICE: u16 = 1;
pub(crate) const IPVS_CMD_ATTR_DEST: u16 = 2;

pub(crate) const IPVS_SVC_ATTR_AF: u16 = 1;
pub(crate) const IPVS_SVC_ATTR_PROTOCOL: u16 = 2;
pub(crate) const IPVS_SVC_ATTR_ADDR: u16 = 3;
pub(crate) const IPVS_SVC_ATTR_PORT: u16 = 4;
pub(crate) const IPVS_SVC_ATTR_FWMARK: u16 = 5;
pub(crate) const IPVS_SVC_ATTR_SCHED_NAME: u16 = 6;
pub(crate) const IPVS_SVC_ATTR_FLAGS: u16 = 7;
pub(crate) const IPVS_SVC_ATTR_TIMEOUT: u16 = 8;
pub(crate) const IPVS_SVC_ATTR_NETMASK: u16 = 9;
pub(crate) const IPVS_SVC_ATTR_STATS: u16 = 10;
pub(crate) const IPVS_SVC_ATTR_PE_NAME: u16 = 11;
pub(crate) const IPVS_SVC_ATTR_STATS64: u16 = 12;

pub(crate) const IPVS_DEST_ATTR_ADDR: u16 = 1;
pub(crate) const IPVS_DEST_ATTR_PORT: u16 = 2;
pub(crate) const IPVS_DEST_ATTR_FWD_METHOD: u16 = 3;
pub(crate) const IPVS_DEST_ATTR_WEIGHT: u16 = 4;
pub(crate) const IPVS_DEST_ATTR_U_THRESH: u16 = 5;
pub(crate) const IPVS_DEST_ATTR_L_THRESH: u16 = 6;
pub(crate) const IPVS_DEST_ATTR_ACTIVE_CONNS: u16 = 7;
pub(crate) const IPVS_DEST_ATTR_INACT_CONNS: u16 = 8;
pub(crate) const IPVS_DEST_ATTR_PERSIST_CONNS: u16 = 9;
pub(crate) const IPVS_DEST_ATTR_STATS: u16 = 10;
pub(crate) const IPVS_DEST_ATTR_ADDR_FAMILY: u16 = 11;
pub(crate) const IPVS_DEST_ATTR_STATS64: u16 = 12;
pub(crate) const IPVS_DEST_ATTR_TUN_TYPE: u16 = 13;
pub(crate) const IPVS_DEST_ATTR_TUN_PORT: u16 = 14;
pub(crate) const IPVS_DEST_ATTR_TUN_FLAGS: u16 = 15;

pub(crate) const IPVS_STATS_ATTR_CONNS: u16 = 1;
pub(crate) const IPVS_STATS_ATTR_INPKTS: u16 = 2;
pub(crate) const IPVS_STATS_ATTR_OUTPKTS: u16 = 3;
pub(crate) const IPVS_STATS_ATTR_INBYTES: u16 = 4;
pub(crate) const IPVS_STATS_ATTR_OUTBYTES: u16 = 5;
pub(crate) const IPVS_STATS_ATTR_CPS: u16 = 6;
pub(crate) const IPVS_STATS_ATTR_INPPS: u16 = 7;
pub(crate) const IPVS_STATS_ATTR_OUTPPS: u16 = 8;
pub(crate) const IPVS_STATS_ATTR_INBPS: u16 = 9;
pub(crate) const IPVS_STATS_ATTR_OUTBPS: u16 = 10;
pub(crate) const IPVS_STATS_ATTR_PAD: u16 = 11;

pub(crate) const IPVS_INFO_ATTR_VERSION: u16 = 1;
pub(crate) const IPVS_INFO_ATTR_CONN_TAB_SIZE: u16 = 2;

pub(crate) const IP_VS_SVC_F_PERSISTENT: u32 = 0x0001;

pub(crate) const IP_VS_CONN_F_FWD_MASK: u32 = 0x0007;
pub(crate) const IP_VS_CONN_F_MASQ: u32 = 0x0000;
pub(crate) const IP_VS_CONN_F_LOCALNODE: u32 = 0x0001;
pub(crate) const IP_VS_CONN_F_TUNNEL: u32 = 0x0002;
pub(crate) const IP_VS_CONN_F_DROUTE: u32 = 0x0003;
pub(crate) const IP_VS_CONN_F_BYPASS: u32 = 0x0004;

pub(crate) const IP_VS_CONN_F_TUNNEL_TYPE_IPIP: u8 = 0;
pub(crate) const IP_VS_CONN_F_TUNNEL_TYPE_GUE: u8 = 1;
pub(crate) const IP_VS_CONN_F_TUNNEL_TYPE_GRE: u8 = 2;

// linux/socket.h, linux/in.h
pub(crate) const AF_INET: u16 = 2;
pub(crate) const AF_INET6: u16 = 10;
pub(crate) const IPPROTO_TCP: u16 = 6;
pub(crate) const IPPROTO_UDP: u16 = 17;
pub(crate) const IPPROTO_SCTP: u16 = 132;
