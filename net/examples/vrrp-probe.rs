//! A manual probe for interop checks (keepalived, tshark): sends or receives VRRPv3 adverts on
//! an interface with [`vigil_net::VrrpSocket`]. Needs root.
//!
//! ```text
//! vrrp-probe send <iface> <vrid> <priority> <vip> [<dst>]   one advert; dst defaults to the group
//! vrrp-probe recv <iface> <4|6> [<count>]                  print received adverts, decoded
//! vrrp-probe announce <iface> <addr>                       one gratuitous ARP or NA
//! ```

use std::error::Error;
use std::net::IpAddr;

use vigil_net::{Announcer, Family, SocketConfig, VrrpSocket};
use vigil_vrrp::packet::{Advertisement, Auth, ChecksumMode, Version};

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
            ["send", iface, vrid, priority, vip, ref rest @ ..] => {
                let vip: IpAddr = vip.parse()?;
                let family = if vip.is_ipv4() { Family::V4 } else { Family::V6 };
                let socket = VrrpSocket::open(&SocketConfig::multicast(iface, family))?;
                let dst = match rest {
                    [dst] => dst.parse()?,
                    _ => socket.group(),
                };
                let advert = Advertisement {
                    version: Version::V3,
                    vrid: vrid.parse()?,
                    priority: priority.parse()?,
                    max_advert_int: 100,
                    auth: Auth::None,
                    addresses: vec![vip],
                };
                let message = advert.encode(socket.source(), dst, ChecksumMode::default())?;
                socket.send(dst, &message).await?;
                println!("sent {advert:?} from {} to {dst}", socket.source());
                Ok(())
            }
            ["recv", iface, family, ref rest @ ..] => {
                let family = if family == "6" { Family::V6 } else { Family::V4 };
                let count: usize = rest.first().map_or(Ok(1), |c| c.parse())?;
                let socket = VrrpSocket::open(&SocketConfig::multicast(iface, family))?;
                for _ in 0..count {
                    let got = socket.recv().await?;
                    let decoded = Advertisement::decode(
                        &got.payload,
                        got.src,
                        got.dst,
                        ChecksumMode::AcceptEither,
                    );
                    println!(
                        "{} -> {} ttl {} ifindex {}: {decoded:?}",
                        got.src, got.dst, got.ttl_or_hop_limit, got.ifindex
                    );
                }
                Ok(())
            }
            ["announce", iface, addr] => {
                let announcer = Announcer::open(iface, None)?;
                announcer.announce(addr.parse()?)?;
                println!("announced {addr} at {}", announcer.mac());
                Ok(())
            }
            _ => Err("usage: vrrp-probe send <iface> <vrid> <priority> <vip> [<dst>] | recv <iface> <4|6> [<count>] | announce <iface> <addr>".into()),
        }
    })
}
