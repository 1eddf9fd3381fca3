//! The netlink client against the running kernel, inside a network namespace of its own (IPVS
//! tables are per namespace, so the host's table is never read or changed).
//!
//! Where the kernel has no IPVS (the development machines), the tests print a SKIPPED line; the
//! real-kernel VM (a stock Debian kernel, `it/vm.rs`) runs them for real. Two things are proven
//! there: the encoding is what the kernel accepts and reads back unchanged (a second convergence
//! applies nothing), and [`FakeIpvs`] answers a script of valid and invalid requests exactly as
//! the kernel does, so the fake-based tests stand for the kernel.

use std::net::IpAddr;
use std::process::Command;

use vigil_lvs::{
    DestKey, Destination, FakeIpvs, Family, Forwarding, Ipvs, Op, Persistence, Reconciler,
    Scheduler, Service, ServiceFlags, ServiceKey, Table, TunnelType, VirtualServer,
};

use crate::netns::{cannot_run, in_private_netns};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn tcp() -> ServiceKey {
    ServiceKey::Tcp(ip("192.0.2.1"), 80)
}

fn dr(addr: &str, weight: u32) -> Destination {
    Destination::new(ip(addr), 80, weight, Forwarding::DirectRoute)
}

/// Every feature the model has, as one desired table.
fn everything() -> Vec<VirtualServer> {
    let mut nat = Destination::new(ip("10.0.0.5"), 8080, 3, Forwarding::Nat);
    nat.upper_threshold = 100;
    nat.lower_threshold = 10;
    let mut gue = Destination::new(ip("10.0.0.6"), 0, 2, Forwarding::Tunnel);
    gue.tunnel = TunnelType::Gue {
        port: 6080,
        flags: 1,
    };
    let mut gre = Destination::new(ip("2001:db8::7"), 0, 2, Forwarding::Tunnel);
    gre.tunnel = TunnelType::Gre { flags: 0 };
    let sh = Service {
        key: ServiceKey::Udp(ip("2001:db8::1"), 53),
        scheduler: Scheduler::Sh,
        flags: ServiceFlags::SH_FALLBACK | ServiceFlags::SH_PORT | ServiceFlags::ONE_PACKET,
        persistence: Some(Persistence {
            timeout_s: 600,
            netmask_prefix: 64,
        }),
        pe_name: None,
    };
    let fw = Service {
        key: ServiceKey::Fwmark(42, Family::V4),
        scheduler: Scheduler::Mh,
        flags: ServiceFlags::MH_PORT,
        persistence: Some(Persistence {
            timeout_s: 300,
            netmask_prefix: 24,
        }),
        pe_name: None,
    };
    let v6dest = Destination::new(ip("2001:db8::10"), 53, 1, Forwarding::DirectRoute);
    vec![
        VirtualServer {
            service: Service::new(tcp(), Scheduler::Wrr),
            dests: vec![dr("10.0.0.2", 1), dr("10.0.0.3", 0), nat],
        },
        VirtualServer {
            service: sh,
            dests: vec![v6dest],
        },
        VirtualServer {
            service: fw,
            dests: vec![gue, gre],
        },
        VirtualServer {
            service: Service::new(ServiceKey::Sctp(ip("192.0.2.2"), 3868), Scheduler::Fo),
            // A local real server: the kernel must keep the method it was given.
            dests: vec![Destination::new(
                ip("127.0.0.1"),
                3868,
                1,
                Forwarding::DirectRoute,
            )],
        },
    ]
}

/// The configuration part of a table, for comparing the kernel with the fake.
fn shape(t: &Table) -> Vec<(Service, Vec<Destination>)> {
    t.services
        .values()
        .map(|s| {
            (
                s.service.clone(),
                s.dests.values().map(|d| d.dest).collect(),
            )
        })
        .collect()
}

#[test]
fn kernel_accepts_and_reads_back_every_feature() {
    in_private_netns("kernel_accepts_and_reads_back_every_feature", |mut ipvs| {
        assert!(ipvs.info().unwrap().version >= 0x01_02_00);
        assert!(
            ipvs.table().unwrap().services.is_empty(),
            "a fresh namespace has no services"
        );
        // A service someone else made, which vigil must leave alone.
        let foreign = Service::new(ServiceKey::Tcp(ip("192.0.2.9"), 22), Scheduler::Lc);
        ipvs.add_service(&foreign).unwrap();

        let want = everything();
        let mut r = Reconciler::new(ipvs);
        r.converge(&want).unwrap();
        // The fake, given the same start and the same desired state, ends with the same table.
        let mut model = FakeIpvs::new();
        model.add_service(&foreign).unwrap();
        let mut model = Reconciler::new(model);
        model.converge(&want).unwrap();
        assert_eq!(
            shape(&r.ipvs_mut().table().unwrap()),
            shape(&model.ipvs().table)
        );
        // Read back unchanged: nothing left to do.
        assert!(r.converge(&want).unwrap().applied.is_empty());

        if let Ok(out) = Command::new("ipvsadm").arg("-Sn").output() {
            let text = String::from_utf8_lossy(&out.stdout);
            // ipvsadm's own decoding of what vigil wrote (1.31's save format; it omits
            // thresholds, which the fake comparison above covers).
            for line in [
                "-A -t 192.0.2.1:80 -s wrr",
                "-a -t 192.0.2.1:80 -r 10.0.0.5:8080 -m -w 3",
                "-a --sctp-service 192.0.2.2:3868 -r 127.0.0.1:3868 -g -w 1",
                "-A -u [2001:db8::1]:53 -s sh -p 600 -M 64 -o -b sh-fallback,sh-port",
                "-A -f 42 -s mh -p 300 -M 255.255.255.0 -b mh-port",
                "-a -f 42 -r 10.0.0.6:0 -i -w 2 --tun-type gue --tun-port 6080 --tun-csum",
                "-a -f 42 -r [2001:db8::7]:0 -i -w 2 --tun-type gre --tun-nocsum",
            ] {
                assert!(text.contains(line), "ipvsadm -Sn lacks {line:?}:\n{text}");
            }
        } else {
            cannot_run(
                "kernel_accepts_and_reads_back_every_feature",
                "no ipvsadm for the -Sn cross-check",
            );
        }

        r.shutdown(&[]).unwrap();
        let left = r.ipvs_mut().table().unwrap();
        assert_eq!(
            left.services.keys().copied().collect::<Vec<_>>(),
            [foreign.key]
        );
    });
}

/// Requests, valid and not, whose outcome (ok or errno) the fake must predict.
fn script() -> Vec<Op> {
    let udp = ServiceKey::Udp(ip("192.0.2.1"), 53);
    let missing = DestKey {
        addr: ip("10.0.0.99"),
        port: 80,
    };
    let mut inverted = dr("10.0.0.4", 1);
    inverted.lower_threshold = 5;
    inverted.upper_threshold = 1;
    let bad_sched = Service::new(udp, Scheduler::Other("nosuch".into()));
    let mut bad_mask = Service::new(ServiceKey::Tcp(ip("2001:db8::1"), 80), Scheduler::Rr);
    bad_mask.persistence = Some(Persistence {
        timeout_s: 60,
        netmask_prefix: 0,
    });
    vec![
        Op::AddService(Service::new(tcp(), Scheduler::Wlc)),
        Op::AddService(Service::new(tcp(), Scheduler::Rr)), // EEXIST
        Op::AddDest(tcp(), dr("10.0.0.2", 1)),
        Op::AddDest(tcp(), dr("10.0.0.2", 5)), // EEXIST
        Op::EditDest(
            tcp(),
            Destination {
                key: missing,
                ..dr("10.0.0.2", 1)
            },
        ), // ENOENT
        Op::DelDest(tcp(), missing),           // ENOENT
        Op::EditService(Service::new(udp, Scheduler::Rr)), // ESRCH
        Op::DelService(udp),                   // ESRCH
        Op::AddDest(udp, dr("10.0.0.2", 1)),   // ESRCH
        Op::AddDest(tcp(), inverted),          // ERANGE
        Op::AddDest(tcp(), dr("10.0.0.3", u32::MAX)), // ERANGE
        Op::AddDest(
            tcp(),
            Destination::new(ip("2001:db8::2"), 80, 1, Forwarding::Nat),
        ), // EINVAL
        Op::AddDest(tcp(), dr("224.0.0.1", 1)), // EINVAL: not unicast
        Op::AddDest(tcp(), dr("0.0.0.0", 1)),  // EINVAL
        Op::AddService(bad_sched),             // ENOENT
        Op::AddService(bad_mask),              // EINVAL
        Op::EditService(Service::new(tcp(), Scheduler::Rr)),
        Op::EditDest(tcp(), dr("10.0.0.2", 0)),
        Op::AddDest(tcp(), dr("10.0.0.3", 2)),
        Op::DelDest(tcp(), dr("10.0.0.2", 0).key),
    ]
}

#[test]
fn fake_answers_like_the_kernel() {
    in_private_netns("fake_answers_like_the_kernel", |mut ipvs| {
        let mut fake = FakeIpvs::new();
        for op in script() {
            let kernel = op.apply(&mut ipvs).map_err(|e| e.errno());
            let modelled = op.apply(&mut fake).map_err(|e| e.errno());
            assert_eq!(modelled, kernel, "{op}");
        }
        assert_eq!(shape(&fake.table), shape(&ipvs.table().unwrap()));
    });
}
