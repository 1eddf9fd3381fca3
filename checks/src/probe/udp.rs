//! UDP checks: send a datagram; fail on an ICMP error, or on a missing or wrong reply when one
//! is required.

use std::io::ErrorKind;

use super::{AttemptResult, ProbeError, net};
use crate::spec::{CheckSpec, UdpCheck};

pub(super) async fn check(spec: &CheckSpec, udp: &UdpCheck) -> AttemptResult {
    let sock = net::connect_udp(spec.target, &spec.source).await?;
    sock.send(&udp.payload).await?;
    let mut buf = vec![0u8; 65_536];
    if let Some(prefix) = &udp.expect_prefix {
        let n = sock.recv(&mut buf).await?;
        return if buf[..n].starts_with(prefix) {
            Ok((format!("{n}-byte reply"), None))
        } else {
            Err(ProbeError::Protocol(format!("unexpected {n}-byte reply")))
        };
    }
    // No reply required: wait most of the attempt for an ICMP error. The surrounding timeout
    // would turn silence into a failure, so bound the wait ourselves at 90% of it.
    let wait = spec.timing.timeout.mul_f64(0.9);
    match tokio::time::timeout(wait, sock.recv(&mut buf)).await {
        Err(_) => Ok(("no ICMP error".into(), None)),
        Ok(Ok(n)) => Ok((format!("{n}-byte reply"), None)),
        Ok(Err(e)) if e.kind() == ErrorKind::ConnectionRefused => {
            Err(ProbeError::Protocol("port unreachable".into()))
        }
        Ok(Err(e)) => Err(e.into()),
    }
}
