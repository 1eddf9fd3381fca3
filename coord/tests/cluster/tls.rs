//! Mutual TLS between peers: a cluster works over it, and a peer without a certificate from the
//! cluster CA is refused.

use std::path::Path;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use vigil_coord::raft::network::{PeerClient, PeerRequest, PeerTls, TlsConfig};

use super::harness::{Cluster, TempDir, bounded, get, put, session};

/// A CA and, for each name, a certificate with `127.0.0.1` as IP SAN, written as PEM files.
fn pki(dir: &Path, names: &[&str]) -> Vec<TlsConfig> {
    let ca_key = KeyPair::generate().expect("ca key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).expect("ca cert");
    let ca_path = dir.join("ca.pem");
    std::fs::write(&ca_path, ca.pem()).expect("write ca");
    names
        .iter()
        .map(|name| {
            let key = KeyPair::generate().expect("key");
            let params = CertificateParams::new(vec!["127.0.0.1".to_owned()]).expect("params");
            let cert = params.signed_by(&key, &ca, &ca_key).expect("cert");
            let cert_path = dir.join(format!("{name}.pem"));
            let key_path = dir.join(format!("{name}.key"));
            std::fs::write(&cert_path, cert.pem()).expect("write cert");
            std::fs::write(&key_path, key.serialize_pem()).expect("write key");
            TlsConfig {
                ca: ca_path.clone(),
                cert: cert_path,
                key: key_path,
            }
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_runs_over_mutual_tls_and_refuses_strangers() {
    bounded("tls test", Duration::from_secs(30), async {
        let certs = TempDir::new("pki");
        let configs = pki(certs.path(), &["n1", "n2", "n3"]);
        let per_node = configs.clone();
        let cluster = Cluster::start_with("tls", 3, move |id, c| {
            c.tls = Some(per_node[(id - 1) as usize].clone());
        })
        .await;
        let leader = cluster.leader(Duration::from_secs(5)).await;
        let follower = cluster.follower_of(leader);
        let s = session(cluster.node(follower), 10_000).await;
        put(cluster.node(follower), s, 1, "/secure", b"yes").await;
        for node in cluster.live() {
            assert_eq!(get(node, "/secure").await.as_deref(), Some(&b"yes"[..]));
        }

        let addr = cluster.addrs[&leader].to_string();
        // Plain TCP to a TLS peer: no answer.
        let plain = PeerClient::new(addr.clone(), None);
        let r = plain
            .call(PeerRequest::ReadIndex, Duration::from_millis(500))
            .await;
        assert!(r.is_err(), "plain TCP must be refused: {r:?}");
        // A certificate from another CA: the handshake fails.
        let other = TempDir::new("pki-other");
        let stranger = &pki(other.path(), &["x"])[0];
        let tls = PeerTls::load(stranger).expect("load stranger");
        let strange = PeerClient::new(addr, Some(tls));
        let r = strange
            .call(PeerRequest::ReadIndex, Duration::from_millis(500))
            .await;
        assert!(r.is_err(), "a foreign certificate must be refused: {r:?}");
        // The cluster's own material works for a client too.
        let ours = PeerClient::new(
            cluster.addrs[&leader].to_string(),
            Some(PeerTls::load(&configs[0]).expect("load")),
        );
        let r = ours
            .call(PeerRequest::ReadIndex, Duration::from_secs(2))
            .await;
        assert!(r.is_ok(), "{r:?}");
        cluster.shutdown().await;
    })
    .await;
}
