//! nlctrl: resolving a generic-netlink family name ("IPVS") to the id its messages carry.

use super::DecodeError;
use super::attr::Attrs;
use super::consts::{
    CTRL_ATTR_FAMILY_ID, CTRL_ATTR_FAMILY_NAME, CTRL_CMD_GETFAMILY, CTRL_VERSION, GENL_ID_CTRL,
    NLM_F_ACK, NLM_F_REQUEST,
};
use super::message;

/// `CTRL_CMD_GETFAMILY` for `name`. The kernel answers with `CTRL_CMD_NEWFAMILY`, or with
/// `ENOENT` when no such family is registered (for "IPVS": `ip_vs` is not loaded).
pub(crate) fn get_family(name: &str, seq: u32) -> Vec<u8> {
    message::request(
        GENL_ID_CTRL,
        NLM_F_REQUEST | NLM_F_ACK,
        seq,
        CTRL_CMD_GETFAMILY,
        CTRL_VERSION,
        |w| {
            w.string(CTRL_ATTR_FAMILY_NAME, name);
        },
    )
}

/// The family id in a `CTRL_CMD_NEWFAMILY` reply.
pub(crate) fn family_id(attrs: &[u8]) -> Result<u16, DecodeError> {
    for attr in Attrs::new(attrs) {
        let attr = attr?;
        if attr.ty == CTRL_ATTR_FAMILY_ID {
            return attr.u16();
        }
    }
    Err(DecodeError::Missing("CTRL_ATTR_FAMILY_ID"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netlink::attr::AttrWriter;

    #[test]
    #[cfg(target_endian = "little")]
    fn getfamily_request_bytes() {
        let msg = get_family("IPVS", 9);
        let expected = [
            32, 0, 0, 0, 0x10, 0, 0x05, 0, 9, 0, 0, 0, 0, 0, 0, 0, // nlmsghdr, REQUEST|ACK
            3, 2, 0, 0, // CTRL_CMD_GETFAMILY, version 2
            9, 0, 2, 0, b'I', b'P', b'V', b'S', 0, 0, 0, 0, // CTRL_ATTR_FAMILY_NAME "IPVS\0"
        ];
        assert_eq!(msg, expected);
    }

    #[test]
    fn family_id_found_among_other_attrs() {
        let mut attrs = Vec::new();
        let mut w = AttrWriter::new(&mut attrs);
        w.string(CTRL_ATTR_FAMILY_NAME, "IPVS");
        w.u16(CTRL_ATTR_FAMILY_ID, 0x23);
        w.u32(3, 1); // CTRL_ATTR_VERSION
        assert_eq!(family_id(&attrs), Ok(0x23));
        assert_eq!(
            family_id(&attrs[..12]),
            Err(DecodeError::Missing("CTRL_ATTR_FAMILY_ID"))
        );
    }
}
