//! Optional mutual TLS for the peer transport (rustls with the ring provider).
//!
//! Every node has a certificate signed by the cluster's CA. Both sides verify: the client checks
//! the server's certificate against the CA and the host part of the peer address (an IP address
//! needs an IP SAN), and the server requires a client certificate signed by the same CA. Without
//! TLS the transport is plain TCP, for loopback and trusted networks.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// Where a node's TLS material lives (PEM files).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfig {
    /// The cluster CA certificate(s).
    pub ca: PathBuf,
    /// This node's certificate chain.
    pub cert: PathBuf,
    /// This node's private key.
    pub key: PathBuf,
}

/// Why the TLS material could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file is missing, unreadable or holds nothing usable.
    #[error("{path}: {reason}", path = .path.display())]
    Pem {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// rustls refused the material (key does not match, unsupported algorithm, …).
    #[error("TLS setup: {0}")]
    Rustls(String),
}

/// Client and server TLS state of one node; cheap to clone.
#[derive(Clone)]
pub struct PeerTls {
    connector: TlsConnector,
    acceptor: TlsAcceptor,
}

impl std::fmt::Debug for PeerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PeerTls")
    }
}

fn pem_err(path: &Path, e: impl std::fmt::Display) -> TlsError {
    TlsError::Pem {
        path: path.to_owned(),
        reason: e.to_string(),
    }
}

impl PeerTls {
    /// Loads the PEM files named by `config`. Blocking.
    pub fn load(config: &TlsConfig) -> Result<PeerTls, TlsError> {
        let ca = CertificateDer::pem_file_iter(&config.ca)
            .map_err(|e| pem_err(&config.ca, e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| pem_err(&config.ca, e))?;
        let chain = CertificateDer::pem_file_iter(&config.cert)
            .map_err(|e| pem_err(&config.cert, e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| pem_err(&config.cert, e))?;
        let key = PrivateKeyDer::from_pem_file(&config.key).map_err(|e| pem_err(&config.key, e))?;
        if ca.is_empty() {
            return Err(pem_err(&config.ca, "no certificate"));
        }
        if chain.is_empty() {
            return Err(pem_err(&config.cert, "no certificate"));
        }
        PeerTls::new(ca, chain, key)
    }

    /// Builds the TLS state from parsed material.
    pub fn new(
        ca: Vec<CertificateDer<'static>>,
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Result<PeerTls, TlsError> {
        let rustls_err = |e: rustls::Error| TlsError::Rustls(e.to_string());
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = RootCertStore::empty();
        for cert in ca {
            roots.add(cert).map_err(rustls_err)?;
        }
        let roots = Arc::new(roots);
        let verifier =
            WebPkiClientVerifier::builder_with_provider(Arc::clone(&roots), Arc::clone(&provider))
                .build()
                .map_err(|e| TlsError::Rustls(e.to_string()))?;
        let server = ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(rustls_err)?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain.clone(), key.clone_key())
            .map_err(rustls_err)?;
        let client = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(rustls_err)?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)
            .map_err(rustls_err)?;
        Ok(PeerTls {
            connector: TlsConnector::from(Arc::new(client)),
            acceptor: TlsAcceptor::from(Arc::new(server)),
        })
    }
}

/// The read half of a peer connection, TLS or not.
pub(crate) type ReadHalf = Box<dyn AsyncRead + Send + Unpin>;
/// The write half of a peer connection, TLS or not.
pub(crate) type WriteHalf = Box<dyn AsyncWrite + Send + Unpin>;

/// The host part of `host:port` (brackets of an IPv6 literal removed).
fn host(addr: &str) -> &str {
    let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
    host.trim_start_matches('[').trim_end_matches(']')
}

/// Wraps an outgoing connection to `addr`.
pub(crate) async fn connect(
    stream: TcpStream,
    tls: Option<&PeerTls>,
    addr: &str,
) -> io::Result<(ReadHalf, WriteHalf)> {
    let Some(tls) = tls else {
        let (r, w) = stream.into_split();
        return Ok((Box::new(r), Box::new(w)));
    };
    let name = ServerName::try_from(host(addr).to_owned())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let stream = tls.connector.connect(name, stream).await?;
    let (r, w) = tokio::io::split(stream);
    Ok((Box::new(r), Box::new(w)))
}

/// Wraps an accepted connection.
pub(crate) async fn accept(
    stream: TcpStream,
    tls: Option<&PeerTls>,
) -> io::Result<(ReadHalf, WriteHalf)> {
    let Some(tls) = tls else {
        let (r, w) = stream.into_split();
        return Ok((Box::new(r), Box::new(w)));
    };
    let stream = tls.acceptor.accept(stream).await?;
    let (r, w) = tokio::io::split(stream);
    Ok((Box::new(r), Box::new(w)))
}

#[cfg(test)]
mod tests {
    use super::host;

    #[test]
    fn server_names_come_from_the_host_part() {
        assert_eq!(host("127.0.0.1:4000"), "127.0.0.1");
        assert_eq!(host("[::1]:4000"), "::1");
        assert_eq!(host("lb1.example:4000"), "lb1.example");
    }
}
