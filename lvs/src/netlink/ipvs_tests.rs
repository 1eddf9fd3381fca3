//! Golden bytes for the IPVS codec. Expected requests are written out by hand from the uapi
//! layout (little-endian host), and replies are laid out the way `ip_vs_genl_fill_service` /
//! `ip_vs_genl_fill_dest` emit them (nests without `NLA_F_NESTED`, 16-byte addresses, stats sets).

use super::*;
use crate::model::Scheduler;
use crate::netlink::message::{Messages, Reply};

const FAMILY: u16 = 0x1d;

fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

fn v6(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// The attribute bytes of the single message in `msg`, after checking its command.
fn payload(msg: &[u8], cmd: u8) -> &[u8] {
    let m = Messages::new(msg).next().unwrap().unwrap();
    let Reply::Data { cmd: got, attrs } = m.reply else {
        panic!("not data: {m:?}")
    };
    assert_eq!(got, cmd);
    attrs
}

#[test]
#[cfg(target_endian = "little")]
fn new_service_tcp_v4_golden() {
    let svc = Service::new(ServiceKey::Tcp(v4(10, 0, 0, 1), 80), Scheduler::Wlc);
    #[rustfmt::skip]
    let expected: Vec<u8> = [
        &[104, 0, 0, 0, 0x1d, 0, 0x05, 0, 1, 0, 0, 0, 0, 0, 0, 0][..], // NEW, REQUEST|ACK, seq 1
        &[1, 1, 0, 0],                                      // IPVS_CMD_NEW_SERVICE, version 1
        &[84, 0, 1, 0x80],                                  // IPVS_CMD_ATTR_SERVICE | NLA_F_NESTED
        &[6, 0, 1, 0, 2, 0, 0, 0],                          // AF = AF_INET
        &[6, 0, 2, 0, 6, 0, 0, 0],                          // PROTOCOL = IPPROTO_TCP
        &[20, 0, 3, 0, 10, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], // ADDR, nf_inet_addr
        &[6, 0, 4, 0, 0, 80, 0, 0],                         // PORT, big-endian
        &[8, 0, 6, 0, b'w', b'l', b'c', 0],                 // SCHED_NAME
        &[12, 0, 7, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff], // FLAGS {flags 0, mask ~0}
        &[8, 0, 8, 0, 0, 0, 0, 0],                          // TIMEOUT 0
        &[8, 0, 9, 0, 0xff, 0xff, 0xff, 0xff],              // NETMASK 255.255.255.255
    ]
    .concat();
    let got = Request::NewService(&svc).encode(FAMILY, 1);
    assert_eq!(got, expected);
    // And back: the request's own service attributes decode to the same service.
    assert_eq!(
        decode_service(payload(&got, IPVS_CMD_NEW_SERVICE))
            .unwrap()
            .service,
        svc
    );
}

#[test]
#[cfg(target_endian = "little")]
fn set_service_fwmark_v6_persistent_golden() {
    let svc = Service {
        key: ServiceKey::Fwmark(7, Family::V6),
        scheduler: Scheduler::Sh,
        flags: ServiceFlags::SH_FALLBACK | ServiceFlags::SH_PORT,
        persistence: Some(Persistence {
            timeout_s: 300,
            netmask_prefix: 64,
        }),
        pe_name: Some("sip".into()),
    };
    #[rustfmt::skip]
    let expected: Vec<u8> = [
        &[84, 0, 0, 0, 0x1d, 0, 0x05, 0, 2, 0, 0, 0, 0, 0, 0, 0][..],
        &[2, 1, 0, 0],                                      // IPVS_CMD_SET_SERVICE
        &[64, 0, 1, 0x80],
        &[6, 0, 1, 0, 10, 0, 0, 0],                         // AF = AF_INET6
        &[8, 0, 5, 0, 7, 0, 0, 0],                          // FWMARK 7
        &[7, 0, 6, 0, b's', b'h', 0, 0],                    // SCHED_NAME "sh"
        &[8, 0, 11, 0, b's', b'i', b'p', 0],                // PE_NAME "sip"
        &[12, 0, 7, 0, 0x19, 0, 0, 0, 0xff, 0xff, 0xff, 0xff], // PERSISTENT|SCHED1|SCHED2
        &[8, 0, 8, 0, 0x2c, 0x01, 0, 0],                    // TIMEOUT 300
        &[8, 0, 9, 0, 64, 0, 0, 0],                         // NETMASK: IPv6 prefix length
    ]
    .concat();
    let got = Request::SetService(&svc).encode(FAMILY, 2);
    assert_eq!(got, expected);
    assert_eq!(
        decode_service(payload(&got, IPVS_CMD_SET_SERVICE))
            .unwrap()
            .service,
        svc
    );
}

#[test]
#[cfg(target_endian = "little")]
fn new_dest_v6_nat_golden() {
    let key = ServiceKey::Tcp(v6("2001:db8::1"), 443);
    let mut dest = Destination::new(v6("2001:db8::10"), 8443, 5, Forwarding::Nat);
    dest.upper_threshold = 100;
    dest.lower_threshold = 10;
    let a1 = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    let a10 = [
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];
    #[rustfmt::skip]
    let expected: Vec<u8> = [
        &[140, 0, 0, 0, 0x1d, 0, 0x05, 0, 3, 0, 0, 0, 0, 0, 0, 0][..],
        &[5, 1, 0, 0],                                      // IPVS_CMD_NEW_DEST
        &[48, 0, 1, 0x80],                                  // service key only
        &[6, 0, 1, 0, 10, 0, 0, 0],
        &[6, 0, 2, 0, 6, 0, 0, 0],
        &[20, 0, 3, 0], &a1,
        &[6, 0, 4, 0, 0x01, 0xbb, 0, 0],                    // 443
        &[72, 0, 2, 0x80],                                  // IPVS_CMD_ATTR_DEST
        &[20, 0, 1, 0], &a10,                               // DEST ADDR
        &[6, 0, 2, 0, 0x20, 0xfb, 0, 0],                    // DEST PORT 8443
        &[8, 0, 3, 0, 0, 0, 0, 0],                          // FWD_METHOD = IP_VS_CONN_F_MASQ
        &[8, 0, 4, 0, 5, 0, 0, 0],                          // WEIGHT
        &[8, 0, 5, 0, 100, 0, 0, 0],                        // U_THRESH
        &[8, 0, 6, 0, 10, 0, 0, 0],                         // L_THRESH
        &[6, 0, 11, 0, 10, 0, 0, 0],                        // ADDR_FAMILY = AF_INET6
    ]
    .concat();
    let got = Request::NewDest(&key, &dest).encode(FAMILY, 3);
    assert_eq!(got, expected);
    let attrs = payload(&got, IPVS_CMD_NEW_DEST);
    assert_eq!(decode_dest(attrs, Family::V6).unwrap().dest, dest);
}

#[test]
#[cfg(target_endian = "little")]
fn del_dest_get_dests_dump_and_flush_golden() {
    let key = ServiceKey::Udp(v4(10, 0, 0, 1), 53);
    let dk = DestKey {
        addr: v4(10, 0, 0, 2),
        port: 53,
    };
    #[rustfmt::skip]
    let svc_key: &[u8] = &[
        48, 0, 1, 0x80,
        6, 0, 1, 0, 2, 0, 0, 0,
        6, 0, 2, 0, 17, 0, 0, 0,                            // IPPROTO_UDP
        20, 0, 3, 0, 10, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        6, 0, 4, 0, 0, 53, 0, 0,
    ];
    #[rustfmt::skip]
    let del: Vec<u8> = [
        &[100, 0, 0, 0, 0x1d, 0, 0x05, 0, 4, 0, 0, 0, 0, 0, 0, 0][..],
        &[7, 1, 0, 0],
        svc_key,
        &[32, 0, 2, 0x80],
        &[20, 0, 1, 0, 10, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        &[6, 0, 2, 0, 0, 53, 0, 0],
    ]
    .concat();
    assert_eq!(Request::DelDest(&key, &dk).encode(FAMILY, 4), del);
    // Dumps: REQUEST|DUMP (0x301), no ACK.
    let dump: Vec<u8> = [
        &[68, 0, 0, 0, 0x1d, 0, 0x01, 0x03, 5, 0, 0, 0, 0, 0, 0, 0][..],
        &[8, 1, 0, 0],
        svc_key,
    ]
    .concat();
    assert_eq!(Request::GetDests(&key).encode(FAMILY, 5), dump);
    let all = [
        20, 0, 0, 0, 0x1d, 0, 0x01, 0x03, 6, 0, 0, 0, 0, 0, 0, 0, 4, 1, 0, 0,
    ];
    assert_eq!(Request::GetServices.encode(FAMILY, 6), all);
    let flush = [
        20, 0, 0, 0, 0x1d, 0, 0x05, 0, 7, 0, 0, 0, 0, 0, 0, 0, 17, 1, 0, 0,
    ];
    assert_eq!(Request::Flush.encode(FAMILY, 7), flush);
}

#[test]
fn tunnel_encapsulations_round_trip() {
    let key = ServiceKey::Tcp(v4(10, 0, 0, 1), 80);
    for tunnel in [
        TunnelType::Ipip,
        TunnelType::Gue {
            port: 6080,
            flags: 1,
        },
        TunnelType::Gre { flags: 3 },
    ] {
        let mut dest = Destination::new(v4(10, 0, 1, 1), 80, 1, Forwarding::Tunnel);
        dest.tunnel = tunnel;
        let msg = Request::SetDest(&key, &dest).encode(FAMILY, 1);
        let back = decode_dest(payload(&msg, IPVS_CMD_SET_DEST), Family::V4).unwrap();
        assert_eq!(back.dest, dest);
    }
    // IPIP sends no tunnel attributes at all (pre-5.2 kernels).
    let plain = Destination::new(v4(10, 0, 1, 1), 80, 1, Forwarding::Tunnel);
    let msg = Request::SetDest(&key, &plain).encode(FAMILY, 1);
    let dest_nest = Attrs::new(payload(&msg, IPVS_CMD_SET_DEST))
        .nth(1)
        .unwrap()
        .unwrap();
    assert!(
        dest_nest
            .nested()
            .all(|a| a.unwrap().ty < IPVS_DEST_ATTR_TUN_TYPE)
    );
}

/// A kernel reply to GET_SERVICE: generic header + IPVS_CMD_ATTR_SERVICE nest (no NLA_F_NESTED).
#[rustfmt::skip]
fn kernel_service_reply() -> Vec<u8> {
    [
        &[1, 1, 0, 0][..],                                  // genl: NEW_SERVICE
        &[208, 0, 1, 0],                                    // IPVS_CMD_ATTR_SERVICE
        &[6, 0, 1, 0, 2, 0, 0, 0],                          // AF_INET
        &[6, 0, 2, 0, 132, 0, 0, 0],                        // IPPROTO_SCTP
        &[20, 0, 3, 0, 192, 0, 2, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        &[6, 0, 4, 0, 0x0b, 0xb8, 0, 0],                    // port 3000
        &[8, 0, 6, 0, b'm', b'h', 0, 0],                    // "mh" with trailing padding NUL
        &[12, 0, 7, 0, 0x0b, 0, 0, 0, 0xff, 0xff, 0xff, 0xff], // PERSISTENT|HASHED|SCHED1
        &[8, 0, 8, 0, 60, 0, 0, 0],                         // TIMEOUT 60
        &[8, 0, 9, 0, 255, 255, 255, 0],                    // NETMASK 255.255.255.0
        // STATS: u32 conns/pkts/rates, u64 bytes.
        &[48, 0, 10, 0],
        &[8, 0, 1, 0, 3, 0, 0, 0],
        &[12, 0, 4, 0, 0xe8, 0x03, 0, 0, 0, 0, 0, 0],      // INBYTES 1000
        &[8, 0, 2, 0, 9, 0, 0, 0],
        &[12, 0, 5, 0, 0, 0, 0, 0, 1, 0, 0, 0],            // OUTBYTES 2^32
        &[4, 0, 11, 0],                                     // PAD
        // STATS64: every field u64; preferred over STATS.
        &[76, 0, 12, 0],
        &[12, 0, 1, 0, 5, 0, 0, 0, 0, 0, 0, 0],             // CONNS 5
        &[4, 0, 11, 0],
        &[12, 0, 4, 0, 0xd0, 0x07, 0, 0, 0, 0, 0, 0],      // INBYTES 2000
        &[12, 0, 5, 0, 0, 0, 0, 0, 2, 0, 0, 0],            // OUTBYTES 2^33
        &[12, 0, 6, 0, 4, 0, 0, 0, 0, 0, 0, 0],             // CPS 4
        &[12, 0, 10, 0, 7, 0, 0, 0, 0, 0, 0, 0],            // OUTBPS 7
        &[8, 0, 99, 0, 1, 2, 3, 4],                         // unknown stat: ignored
    ]
    .concat()
}

#[test]
#[cfg(target_endian = "little")]
fn decodes_kernel_service_reply() {
    let msg = kernel_service_reply();
    let got = decode_service(&msg[4..]).unwrap();
    assert_eq!(
        got.service,
        Service {
            key: ServiceKey::Sctp(v4(192, 0, 2, 7), 3000),
            scheduler: Scheduler::Mh,
            flags: ServiceFlags::MH_FALLBACK,
            persistence: Some(Persistence {
                timeout_s: 60,
                netmask_prefix: 24
            }),
            pe_name: None,
        }
    );
    let expected = Stats {
        conns: 5,
        inbytes: 2000,
        outbytes: 1 << 33,
        cps: 4,
        outbps: 7,
        ..Stats::default()
    };
    assert_eq!(got.stats, expected);

    // Without STATS64 (kernels before 4.1) the mixed-width STATS set is used.
    let mut old = msg[..msg.len() - 76].to_vec();
    old[4] = 208 - 76;
    let got = decode_service(&old[4..]).unwrap();
    let expected = Stats {
        conns: 3,
        inpkts: 9,
        inbytes: 1000,
        outbytes: 1 << 32,
        ..Stats::default()
    };
    assert_eq!(got.stats, expected);
}

#[test]
#[cfg(target_endian = "little")]
fn decodes_kernel_dest_reply() {
    #[rustfmt::skip]
    let attrs: Vec<u8> = [
        &[140, 0, 2, 0][..],                                // IPVS_CMD_ATTR_DEST
        &[20, 0, 1, 0, 10, 1, 2, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        &[6, 0, 11, 0, 2, 0, 0, 0],                         // ADDR_FAMILY
        &[6, 0, 2, 0, 0, 80, 0, 0],
        &[8, 0, 3, 0, 3, 0, 0, 0],                          // DROUTE
        &[8, 0, 4, 0, 0, 1, 0, 0],                          // WEIGHT 256
        &[5, 0, 13, 0, 0, 0, 0, 0],                         // TUN_TYPE (ignored: not a tunnel)
        &[6, 0, 14, 0, 0, 0, 0, 0],
        &[6, 0, 15, 0, 0, 0, 0, 0],
        &[8, 0, 5, 0, 50, 0, 0, 0],
        &[8, 0, 6, 0, 40, 0, 0, 0],
        &[8, 0, 7, 0, 12, 0, 0, 0],                         // ACTIVE_CONNS
        &[8, 0, 8, 0, 34, 0, 0, 0],                         // INACT_CONNS
        &[8, 0, 9, 0, 56, 0, 0, 0],                         // PERSIST_CONNS
        &[20, 0, 12, 0],
        &[4, 0, 11, 0],
        &[12, 0, 2, 0, 77, 0, 0, 0, 0, 0, 0, 0],            // INPKTS 77
    ]
    .concat();
    let got = decode_dest(&attrs, Family::V6).unwrap();
    let mut dest = Destination::new(v4(10, 1, 2, 3), 80, 256, Forwarding::DirectRoute);
    dest.upper_threshold = 50;
    dest.lower_threshold = 40;
    assert_eq!(
        got,
        ObservedDest {
            dest,
            active_conns: 12,
            inactive_conns: 34,
            persist_conns: 56,
            stats: Stats {
                inpkts: 77,
                ..Stats::default()
            },
        }
    );
}

#[test]
fn malformed_replies_are_errors_not_panics() {
    let msg = kernel_service_reply();
    // Every truncation must fail cleanly (or decode a shorter but consistent prefix).
    for cut in 0..msg.len() {
        let _ = decode_service(&msg[4..cut.max(4)]);
        let _ = decode_dest(&msg[4..cut.max(4)], Family::V4);
    }
    assert_eq!(
        decode_service(&[]),
        Err(DecodeError::Missing("IPVS_CMD_ATTR_SERVICE"))
    );
    // Unknown address family and protocol.
    let mut bad = msg.clone();
    bad[12] = 99;
    assert_eq!(
        decode_service(&bad[4..]),
        Err(DecodeError::UnknownFamily(99))
    );
    let mut bad = msg;
    bad[20] = 50; // IPPROTO_ESP
    assert_eq!(
        decode_service(&bad[4..]),
        Err(DecodeError::UnknownProtocol(50))
    );
}

#[test]
fn info_reply() {
    let mut attrs = Vec::new();
    let mut w = AttrWriter::new(&mut attrs);
    w.u32(IPVS_INFO_ATTR_VERSION, 0x01_02_01);
    w.u32(IPVS_INFO_ATTR_CONN_TAB_SIZE, 4096);
    assert_eq!(decode_info(&attrs), Ok((0x01_02_01, 4096)));
    assert_eq!(
        decode_info(&attrs[..8]),
        Err(DecodeError::Missing("IPVS_INFO_ATTR_CONN_TAB_SIZE"))
    );
}

mod properties {
    use proptest::prelude::*;

    use super::*;

    fn ip() -> impl Strategy<Value = IpAddr> {
        prop_oneof![
            any::<[u8; 4]>().prop_map(IpAddr::from),
            any::<[u8; 16]>().prop_map(IpAddr::from),
        ]
    }

    fn key() -> impl Strategy<Value = ServiceKey> {
        let fam = prop_oneof![Just(Family::V4), Just(Family::V6)];
        prop_oneof![
            (ip(), any::<u16>()).prop_map(|(a, p)| ServiceKey::Tcp(a, p)),
            (ip(), any::<u16>()).prop_map(|(a, p)| ServiceKey::Udp(a, p)),
            (ip(), any::<u16>()).prop_map(|(a, p)| ServiceKey::Sctp(a, p)),
            (1u32.., fam).prop_map(|(m, f)| ServiceKey::Fwmark(m, f)),
        ]
    }

    fn service() -> impl Strategy<Value = Service> {
        (
            key(),
            "[a-z]{1,15}",
            0u32..64,
            prop::option::of((any::<u32>(), 0u8..=128)),
            prop::option::of("[a-z]{1,8}"),
        )
            .prop_map(|(key, sched, flags, persistence, pe_name)| {
                let max = if key.family() == Family::V4 { 32 } else { 128 };
                let Ok(scheduler) = sched.parse();
                Service {
                    key,
                    scheduler,
                    flags: ServiceFlags::from_bits_truncate(flags),
                    persistence: persistence.map(|(timeout_s, p)| Persistence {
                        timeout_s,
                        netmask_prefix: p.min(max),
                    }),
                    pe_name,
                }
            })
    }

    fn dest() -> impl Strategy<Value = Destination> {
        let fwd = prop::sample::select(vec![
            Forwarding::Nat,
            Forwarding::Local,
            Forwarding::Tunnel,
            Forwarding::DirectRoute,
            Forwarding::Bypass,
        ]);
        let tunnel = prop_oneof![
            Just(TunnelType::Ipip),
            (any::<u16>(), any::<u16>()).prop_map(|(port, flags)| TunnelType::Gue { port, flags }),
            any::<u16>().prop_map(|flags| TunnelType::Gre { flags }),
        ];
        (
            ip(),
            any::<u16>(),
            any::<u32>(),
            fwd,
            any::<u32>(),
            any::<u32>(),
            tunnel,
        )
            .prop_map(
                |(addr, port, weight, fwd, upper_threshold, lower_threshold, tunnel)| Destination {
                    key: DestKey { addr, port },
                    weight,
                    fwd,
                    upper_threshold,
                    lower_threshold,
                    tunnel: if fwd == Forwarding::Tunnel {
                        tunnel
                    } else {
                        TunnelType::Ipip
                    },
                },
            )
    }

    proptest! {
        #[test]
        fn service_requests_decode_to_what_was_encoded(svc in service()) {
            let msg = Request::NewService(&svc).encode(FAMILY, 1);
            prop_assert_eq!(decode_service(payload(&msg, IPVS_CMD_NEW_SERVICE)).unwrap().service, svc);
        }

        #[test]
        fn dest_requests_decode_to_what_was_encoded(key in key(), d in dest()) {
            let msg = Request::SetDest(&key, &d).encode(FAMILY, 1);
            let attrs = payload(&msg, IPVS_CMD_SET_DEST);
            prop_assert_eq!(decode_dest(attrs, key.family()).unwrap().dest, d);
            // The service part of the same request names the right service.
            let svc = nested_map(attrs, IPVS_CMD_ATTR_SERVICE, "svc").unwrap();
            prop_assert_eq!(svc.get(&IPVS_SVC_ATTR_AF).unwrap().u16().unwrap(), af(key.family()));
        }

        #[test]
        fn decoders_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
            let _ = decode_service(&bytes);
            let _ = decode_dest(&bytes, Family::V4);
            let _ = decode_info(&bytes);
            let _ = Messages::new(&bytes).count();
        }
    }
}
