//! TLS for the connections the gateway opens (a bridge's `wss://`/`https://` peer, Socket.IO
//! long-polling, a webhook's `https://` callback): one rustls client configuration for all of
//! them, built once at start-up.
//!
//! Trusted: Mozilla's roots as the `webpki-roots` crate compiles them in, plus the certificates of
//! the operator's `BRIDGE_CA_FILE` (PEM) for internal CAs. Compiled-in roots rather than the
//! system's store: the same answer on every machine and in a scratch or distroless image that has
//! no CA bundle; an operator whose peers are signed by a private CA lists it in the file. The
//! certificate is verified for the URL's host name while the connection goes to the address
//! `net::outbound` checked (the name is never resolved a second time).

use std::{fmt, sync::Arc};

use rustls::{ClientConfig, RootCertStore, pki_types::ServerName};
use rustls_pki_types::{CertificateDer, pem::PemObject};
use tokio::net::TcpStream;
use tokio_rustls::{TlsConnector, client::TlsStream};

/// The client TLS configuration. Clones share it.
#[derive(Clone)]
pub struct OutboundTls {
    config: Arc<ClientConfig>,
    /// Certificates taken from `BRIDGE_CA_FILE` (0 without one), for the start-up log.
    extra: usize,
}

impl fmt::Debug for OutboundTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OutboundTls {{ webpki roots + {} extra }}", self.extra)
    }
}

impl Default for OutboundTls {
    fn default() -> Self {
        Self::new(None).unwrap_or_else(|e| unreachable!("the compiled-in roots alone always build: {e}"))
    }
}

impl OutboundTls {
    /// Mozilla's roots plus every certificate of `extra_pem` (a PEM bundle); the error says what
    /// is wrong with the bundle (no certificate in it, or one that is not a usable CA).
    pub fn new(extra_pem: Option<&[u8]>) -> Result<Self, String> {
        let mut roots = RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
        let mut extra = 0;
        if let Some(pem) = extra_pem {
            for cert in CertificateDer::pem_slice_iter(pem) {
                let cert = cert.map_err(|e| format!("not a PEM certificate bundle: {e}"))?;
                roots.add(cert).map_err(|e| format!("certificate {} cannot be trusted: {e}", extra + 1))?;
                extra += 1;
            }
            if extra == 0 {
                return Err("no certificate in it (expected PEM `-----BEGIN CERTIFICATE-----` blocks)".into());
            }
        }
        // The ring provider, given here rather than installed process-wide, so nothing depends on
        // which crate installs a default first.
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS configuration: {e}"))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        // Both WebSocket and the HTTP client speak HTTP/1.1 only.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self { config: Arc::new(config), extra })
    }

    /// How many certificates `BRIDGE_CA_FILE` added.
    pub fn extra_roots(&self) -> usize {
        self.extra
    }

    /// The configuration, for an HTTP client that takes its own copy (`reqwest`).
    pub(crate) fn client_config(&self) -> ClientConfig {
        (*self.config).clone()
    }

    /// Opens TLS over `stream` (already connected to the checked address), verifying the
    /// certificate for `host` (a DNS name or an IP address, brackets allowed).
    pub(crate) async fn connect(&self, host: &str, stream: TcpStream) -> Result<TlsStream<TcpStream>, String> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let name = ServerName::try_from(bare.to_string()).map_err(|_| format!("`{bare}` is not a TLS server name"))?;
        TlsConnector::from(self.config.clone()).connect(name, stream).await.map_err(|e| describe(&e))
    }
}

/// A TLS failure as the bridge's `lastError` says it, with the way out when the certificate's
/// issuer is unknown; `None` when `e` has no TLS error in its chain.
pub(crate) fn describe_tls(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut next = Some(e);
    while let Some(error) = next {
        // An `io::Error` wrapping one hides it from `source()`: look inside too.
        let inner = error
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .map(|e| e as &(dyn std::error::Error + 'static));
        if let Some(tls) = error.downcast_ref::<rustls::Error>().or_else(|| inner.and_then(|i| i.downcast_ref())) {
            return Some(match tls {
                rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer) => {
                    format!("TLS error: {tls} (a private CA can be trusted with BRIDGE_CA_FILE)")
                }
                _ => format!("TLS error: {tls}"),
            });
        }
        next = error.source();
    }
    None
}

/// Any error of a TLS handshake: the TLS error when there is one, else the innermost cause.
fn describe(e: &std::io::Error) -> String {
    describe_tls(e).unwrap_or_else(|| format!("TLS error: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bundle_without_certificates_is_refused() {
        assert!(OutboundTls::new(Some(b"not pem")).unwrap_err().contains("no certificate"));
        assert_eq!(OutboundTls::default().extra_roots(), 0);
    }
}
