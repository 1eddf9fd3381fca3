//! The reconciler scenarios against a real kernel: health events go through the policy layer
//! ([`VsState`]), the desired table through the [`vigil_lvs::Reconciler`] and
//! [`vigil_lvs::NetlinkIpvs`] into the kernel. After every step the kernel's table is read back
//! with `ipvsadm -Ln` and with the netlink client (see `lab`), and both must show exactly the
//! desired virtual servers plus the foreign ones. Each step also asserts the ops the reconciler
//! applied, so "it converged" cannot hide needless churn.
//!
//! They run for real in the real-kernel VM (`it/vm.rs`); elsewhere they skip (see `netns`).

use vigil_lvs::{
    Destination, Family, Forwarding, Health, Op, Persistence, Scheduler, Service, ServiceFlags,
    ServiceKey, Transition, TunnelType, VirtualServer, VsState,
};

use crate::ipvsadm;
use crate::lab::{Lab, dns, dns_key, ip, key, policy, real, web, web_dest, web_key};
use crate::netns::in_private_netns;

#[test]
fn create_builds_every_kind_of_virtual_server() {
    let name = "create_builds_every_kind_of_virtual_server";
    in_private_netns(name, move |ipvs| {
        let Some(mut lab) = Lab::new(name, ipvs) else {
            return;
        };
        let mut nat6 = real("fd00::1", 53, 2, Forwarding::Nat, false);
        nat6.dest.upper_threshold = 100;
        nat6.dest.lower_threshold = 10;
        let dns6 = policy(
            Service {
                flags: ServiceFlags::SH_FALLBACK | ServiceFlags::SH_PORT | ServiceFlags::ONE_PACKET,
                persistence: Some(Persistence {
                    timeout_s: 600,
                    netmask_prefix: 64,
                }),
                ..Service::new(ServiceKey::Udp(ip("2001:db8::53"), 53), Scheduler::Sh)
            },
            vec![nat6, real("fd00::2", 5353, 1, Forwarding::Nat, false)],
        );
        let mut gre = real("10.1.0.2", 0, 2, Forwarding::Tunnel, false);
        gre.dest.tunnel = TunnelType::Gre { flags: 0 };
        let fwmark = policy(
            Service {
                flags: ServiceFlags::MH_FALLBACK | ServiceFlags::MH_PORT,
                persistence: Some(Persistence {
                    timeout_s: 300,
                    netmask_prefix: 24,
                }),
                ..Service::new(ServiceKey::Fwmark(42, Family::V4), Scheduler::Mh)
            },
            vec![real("10.1.0.1", 0, 1, Forwarding::Tunnel, false), gre],
        );
        let sctp = policy(
            Service {
                persistence: Some(Persistence {
                    timeout_s: 60,
                    netmask_prefix: 32,
                }),
                ..Service::new(ServiceKey::Sctp(ip("192.0.2.2"), 3868), Scheduler::Fo)
            },
            vec![
                real("10.2.0.1", 3868, 1, Forwarding::DirectRoute, false),
                real("10.2.0.2", 3868, 1, Forwarding::Nat, false),
            ],
        );
        let fwmark6 = policy(
            Service::new(ServiceKey::Fwmark(7, Family::V6), Scheduler::Rr),
            vec![real("fd00::7", 0, 2, Forwarding::Tunnel, false)],
        );
        // SIP calls stick to a real server by Call-ID (the ip_vs_pe_sip persistence engine).
        let sip = policy(
            Service {
                persistence: Some(Persistence {
                    timeout_s: 60,
                    netmask_prefix: 32,
                }),
                pe_name: Some("sip".to_owned()),
                ..Service::new(ServiceKey::Udp(ip("192.0.2.3"), 5060), Scheduler::Rr)
            },
            vec![real("10.4.0.1", 5060, 1, Forwarding::DirectRoute, false)],
        );
        let states: Vec<VsState> = [web(), dns6, fwmark, sctp, fwmark6, sip]
            .into_iter()
            .map(VsState::new)
            .collect();
        let refs: Vec<&VsState> = states.iter().collect();

        let applied = lab.converge(&refs);
        let services = applied
            .iter()
            .filter(|op| matches!(op, Op::AddService(_)))
            .count();
        let dests = applied
            .iter()
            .filter(|op| matches!(op, Op::AddDest(..)))
            .count();
        assert_eq!((services, dests, applied.len()), (6, 11, 17), "{applied:?}");
        // What the kernel reads back is what was asked for: a second pass has nothing to do.
        assert_eq!(lab.converge(&refs), []);
    });
}

#[test]
fn update_weights_edits_in_place() {
    let name = "update_weights_edits_in_place";
    in_private_netns(name, move |ipvs| {
        let Some(mut lab) = Lab::new(name, ipvs) else {
            return;
        };
        let mut web_state = VsState::new(web());
        lab.converge(&[&web_state]);

        // A dynamic weight from a checker.
        assert_eq!(web_state.handle(key("10.0.0.1", 80), Health::Weight(7)), []);
        assert_eq!(
            lab.converge(&[&web_state]),
            [Op::EditDest(web_key(), web_dest(1, 7))]
        );

        // A reload that changes one configured weight and the scheduler.
        let mut reloaded = web();
        reloaded.reals[1].dest.weight = 5;
        reloaded.service.scheduler = Scheduler::Wlc;
        assert_eq!(web_state.reconfigure(reloaded.clone()), []);
        assert_eq!(
            lab.converge(&[&web_state]),
            [
                Op::EditService(reloaded.service.clone()),
                Op::EditDest(web_key(), web_dest(2, 5)),
            ]
        );
        assert_eq!(lab.converge(&[&web_state]), []);
    });
}

#[test]
fn inhibit_on_failure_keeps_a_failed_real_at_weight_zero() {
    let name = "inhibit_on_failure_keeps_a_failed_real_at_weight_zero";
    in_private_netns(name, move |ipvs| {
        let Some(mut lab) = Lab::new(name, ipvs) else {
            return;
        };
        let mut web_state = VsState::new(web());
        lab.converge(&[&web_state]);
        let third = key("10.0.0.3", 80);

        assert_eq!(
            web_state.handle(third, Health::Down),
            [Transition::RealDown(third)]
        );
        assert_eq!(
            lab.converge(&[&web_state]),
            [Op::EditDest(web_key(), web_dest(3, 0))]
        );
        assert_eq!(ipvsadm::list()[&web_key()].dests[&third].1, 0);

        assert_eq!(
            web_state.handle(third, Health::Up),
            [Transition::RealUp(third)]
        );
        assert_eq!(
            lab.converge(&[&web_state]),
            [Op::EditDest(web_key(), web_dest(3, 1))]
        );
    });
}

#[test]
fn remove_drops_failed_reals_and_unconfigured_services() {
    let name = "remove_drops_failed_reals_and_unconfigured_services";
    in_private_netns(name, move |ipvs| {
        let Some(mut lab) = Lab::new(name, ipvs) else {
            return;
        };
        lab.add_foreign();
        let mut web_state = VsState::new(web());
        let dns_state = VsState::new(dns());
        lab.converge(&[&web_state, &dns_state]);
        let first = key("10.0.0.1", 80);

        // No inhibit_on_failure: a failed real server leaves the table.
        assert_eq!(
            web_state.handle(first, Health::Down),
            [Transition::RealDown(first)]
        );
        assert_eq!(
            lab.converge(&[&web_state, &dns_state]),
            [Op::DelDest(web_key(), first)]
        );

        // A reload without the DNS service deletes it, and only it.
        assert_eq!(lab.converge(&[&web_state]), [Op::DelService(dns_key())]);
        assert_eq!(
            lab.r.owned().iter().copied().collect::<Vec<_>>(),
            [web_key()]
        );

        // Back up: back in.
        assert_eq!(
            web_state.handle(first, Health::Up),
            [Transition::RealUp(first)]
        );
        assert_eq!(
            lab.converge(&[&web_state]),
            [Op::AddDest(web_key(), web_dest(1, 3))]
        );
    });
}

#[test]
fn sorry_server_replaces_reals_while_quorum_is_lost() {
    let name = "sorry_server_replaces_reals_while_quorum_is_lost";
    in_private_netns(name, move |ipvs| {
        let Some(mut lab) = Lab::new(name, ipvs) else {
            return;
        };
        // Quorum 4 ± 1 over weights 3 (inhibit), 3 and 2.
        let mut p = policy(
            Service::new(web_key(), Scheduler::Wrr),
            vec![
                real("10.0.0.1", 80, 3, Forwarding::DirectRoute, true),
                real("10.0.0.2", 80, 3, Forwarding::DirectRoute, false),
                real("10.0.0.3", 80, 2, Forwarding::DirectRoute, false),
            ],
        );
        let sorry = Destination::new(ip("10.0.9.9"), 8080, 1, Forwarding::Nat);
        p.sorry_server = Some(sorry);
        p.quorum = 4;
        p.hysteresis = 1;
        let mut vs = VsState::new(p);
        let [rs1, rs2, rs3] = [1u8, 2, 3].map(|i| web_dest(i, 0).key);
        lab.converge(&[&vs]);

        assert_eq!(vs.handle(rs3, Health::Down), [Transition::RealDown(rs3)]);
        assert_eq!(lab.converge(&[&vs]), [Op::DelDest(web_key(), rs3)]);
        // Alive weight 3: below the quorum but not below quorum − hysteresis, so it holds.
        assert_eq!(vs.handle(rs2, Health::Down), [Transition::RealDown(rs2)]);
        assert!(vs.quorum_up());
        assert_eq!(lab.converge(&[&vs]), [Op::DelDest(web_key(), rs2)]);

        // Nothing alive: the sorry server comes in before the last real server goes to 0.
        assert_eq!(
            vs.handle(rs1, Health::Down),
            [Transition::RealDown(rs1), Transition::QuorumDown]
        );
        assert_eq!(
            lab.converge(&[&vs]),
            [
                Op::AddDest(web_key(), sorry),
                Op::EditDest(web_key(), web_dest(1, 0)),
            ]
        );
        // Alive weight 2: not yet quorum + hysteresis, so the sorry server stays alone.
        assert_eq!(vs.handle(rs3, Health::Up), [Transition::RealUp(rs3)]);
        assert_eq!(lab.converge(&[&vs]), []);
        // Alive weight 5: quorum regained, the real servers come back and the sorry server goes.
        assert_eq!(
            vs.handle(rs1, Health::Up),
            [Transition::RealUp(rs1), Transition::QuorumUp]
        );
        assert_eq!(
            lab.converge(&[&vs]),
            [
                Op::AddDest(web_key(), web_dest(3, 2)),
                Op::EditDest(web_key(), web_dest(1, 3)),
                Op::DelDest(web_key(), sorry.key),
            ]
        );

        // With sorry_server_inhibit the sorry server waits in the table at weight 0.
        let fw = ServiceKey::Fwmark(9, Family::V4);
        let mut p = policy(
            Service::new(fw, Scheduler::Rr),
            vec![real("10.3.0.1", 0, 1, Forwarding::DirectRoute, false)],
        );
        let sorry = Destination::new(ip("10.3.0.9"), 0, 1, Forwarding::DirectRoute);
        p.sorry_server = Some(sorry);
        p.sorry_server_inhibit = true;
        let mut fw_state = VsState::new(p);
        lab.converge(&[&vs, &fw_state]);
        assert_eq!(ipvsadm::list()[&fw].dests[&sorry.key].1, 0);
        let only = key("10.3.0.1", 0);
        assert_eq!(
            fw_state.handle(only, Health::Down),
            [Transition::RealDown(only), Transition::QuorumDown]
        );
        assert_eq!(
            lab.converge(&[&vs, &fw_state]),
            [Op::EditDest(fw, sorry), Op::DelDest(fw, only)]
        );
        assert_eq!(
            fw_state.handle(only, Health::Up),
            [Transition::RealUp(only), Transition::QuorumUp]
        );
        assert_eq!(
            lab.converge(&[&vs, &fw_state]),
            [
                Op::AddDest(fw, fw_state.policy().reals[0].dest),
                Op::EditDest(fw, Destination { weight: 0, ..sorry }),
            ]
        );
    });
}

#[test]
fn converge_undoes_external_ipvsadm_changes() {
    let name = "converge_undoes_external_ipvsadm_changes";
    in_private_netns(name, move |ipvs| {
        let Some(mut lab) = Lab::new(name, ipvs) else {
            return;
        };
        let web_state = VsState::new(web());
        let dns_state = VsState::new(dns());
        lab.converge(&[&web_state, &dns_state]);

        // An operator at the console: a deleted, a reweighted and a re-routed real server, a
        // stray one, another scheduler, and a service of their own.
        ipvsadm::run("-d -t 192.0.2.1:80 -r 10.0.0.1:80");
        ipvsadm::run("-e -t 192.0.2.1:80 -r 10.0.0.2:80 -g -w 9");
        ipvsadm::run("-e -t 192.0.2.1:80 -r 10.0.0.3:80 -m -w 1");
        ipvsadm::run("-a -t 192.0.2.1:80 -r 10.0.0.99:80 -g -w 1");
        ipvsadm::run("-E -u 192.0.2.1:53 -s wlc");
        lab.add_foreign();
        let seen = ipvsadm::list();
        assert_eq!(seen[&dns_key()].scheduler, "wlc");
        assert_eq!(
            seen[&web_key()].dests.keys().copied().collect::<Vec<_>>(),
            [
                key("10.0.0.2", 80),
                key("10.0.0.3", 80),
                key("10.0.0.99", 80)
            ]
        );

        assert_eq!(
            lab.converge(&[&web_state, &dns_state]),
            [
                Op::AddDest(web_key(), web_dest(1, 3)),
                Op::EditDest(web_key(), web_dest(2, 2)),
                Op::EditDest(web_key(), web_dest(3, 1)),
                Op::DelDest(web_key(), key("10.0.0.99", 80)),
                Op::EditService(dns().service),
            ]
        );

        // A whole owned service deleted from outside comes back with its real servers.
        ipvsadm::run("-D -u 192.0.2.1:53");
        assert_eq!(
            lab.converge(&[&web_state, &dns_state]),
            [
                Op::AddService(dns().service),
                Op::AddDest(dns_key(), dns().reals[0].dest),
            ]
        );
        assert_eq!(lab.converge(&[&web_state, &dns_state]), []);
    });
}

#[test]
fn shutdown_removes_omega_services_only() {
    let name = "shutdown_removes_omega_services_only";
    in_private_netns(name, move |ipvs| {
        let Some(mut lab) = Lab::new(name, ipvs) else {
            return;
        };
        lab.add_foreign();
        let mut web_state = VsState::new(web());
        let mut omega = dns();
        omega.omega = true;
        let mut dns_state = VsState::new(omega);
        lab.converge(&[&web_state, &dns_state]);

        let web_end = web_state.shutdown();
        let dns_end = dns_state.shutdown();
        assert_eq!(
            dns_end.transitions,
            [
                Transition::RealDown(key("10.0.0.53", 53)),
                Transition::QuorumDown
            ]
        );
        let keep: Vec<VirtualServer> = [web_end.keep, dns_end.keep].into_iter().flatten().collect();
        let outcome = lab.r.shutdown(&keep).unwrap();
        assert_eq!(outcome.applied, [Op::DelService(dns_key())]);
        lab.check(&keep);
    });
}
