//! Where the gateway may connect out to on someone's behalf (a bridge's peer, a webhook):
//! `BRIDGE_ALLOWED_HOSTS` and the address ranges refused unless listed.
//!
//! A destination's host is resolved here, and the addresses it resolved to are checked, so a name
//! that points at `127.0.0.1` is refused like the address itself; the caller connects to the
//! address this module hands back, never resolves the name again (DNS rebinding between the check
//! and the connect would otherwise slip through).

use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;

/// One entry of `BRIDGE_ALLOWED_HOSTS`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Entry {
    /// A host name, exactly (case-insensitive).
    Name(String),
    /// `*.example.com`: any name under it (not the domain itself).
    Under(String),
    /// An address or a range (`127.0.0.1`, `10.0.0.0/8`).
    Net(IpNet),
}

/// `BRIDGE_ALLOWED_HOSTS`: host names (`api.example.com`, `*.example.com`), addresses and CIDR
/// ranges. Empty: any destination with a public address. Not empty: only those listed. Either
/// way, a loopback, link-local, private or otherwise special address is allowed only when listed
/// (by its range, or by the host name that resolved to it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowedHosts(Vec<Entry>);

impl AllowedHosts {
    /// Parses the list's entries; the error names the one that is none of the three forms.
    pub fn parse(entries: &[String]) -> Result<Self, String> {
        let entries = entries
            .iter()
            .map(|raw| {
                let entry = raw.trim().to_ascii_lowercase();
                if let Ok(net) = entry.parse::<IpNet>() {
                    Ok(Entry::Net(net))
                } else if let Ok(ip) = entry.parse::<IpAddr>() {
                    Ok(Entry::Net(IpNet::from(ip)))
                } else if let Some(domain) = entry.strip_prefix("*.").filter(|d| is_host_name(d)) {
                    Ok(Entry::Under(domain.to_string()))
                } else if is_host_name(&entry) {
                    Ok(Entry::Name(entry))
                } else {
                    Err(format!(
                        "`{raw}` is not a host name, `*.domain`, an IP address or a CIDR range (such as 10.0.0.0/8)"
                    ))
                }
            })
            .collect::<Result<_, _>>()?;
        Ok(Self(entries))
    }

    /// True when `host` is listed by name (exactly or under a `*.` entry).
    fn names(&self, host: &str) -> bool {
        let host = host.to_ascii_lowercase();
        self.0.iter().any(|e| match e {
            Entry::Name(name) => *name == host,
            Entry::Under(domain) => host.strip_suffix(domain.as_str()).is_some_and(|rest| rest.ends_with('.')),
            Entry::Net(_) => false,
        })
    }

    /// True when `ip` is in a listed range.
    fn covers(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|e| matches!(e, Entry::Net(net) if net.contains(&canonical(ip))))
    }

    /// Whether `ip`, which `host` resolved to, may be connected to.
    fn permits(&self, host: &str, ip: IpAddr) -> bool {
        self.names(host) || self.covers(ip) || (self.0.is_empty() && is_public(canonical(ip)))
    }

    /// `host:port` resolved, and the first address this list lets the gateway connect to; the
    /// error says why none (without credentials: the caller passes only a host and a port).
    pub async fn resolve(&self, host: &str, port: u16) -> Result<SocketAddr, String> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let addresses: Vec<SocketAddr> = match bare.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, port)],
            Err(_) => tokio::net::lookup_host((bare, port))
                .await
                .map_err(|e| format!("cannot resolve `{bare}`: {e}"))?
                .collect(),
        };
        let Some(first) = addresses.first() else {
            return Err(format!("`{bare}` resolved to no address"));
        };
        addresses.iter().copied().find(|a| self.permits(bare, a.ip())).ok_or_else(|| {
            if self.0.is_empty() || self.names(bare) {
                format!(
                    "destination `{bare}` ({}) is a loopback, link-local or private address: list it in BRIDGE_ALLOWED_HOSTS to allow it",
                    first.ip()
                )
            } else {
                format!("destination `{bare}` ({}) is not in BRIDGE_ALLOWED_HOSTS", first.ip())
            }
        })
    }
}

/// An outbound HTTP request's failure as a bridge's `lastError` or a webhook's log says it:
/// never the URL (its query may carry a credential), the TLS error when there is one.
pub(crate) fn describe_request_error(e: &reqwest::Error) -> String {
    if let Some(tls) = super::tls::describe_tls(e) {
        return tls;
    }
    if e.is_timeout() {
        "the request timed out".into()
    } else if e.is_connect() {
        // The innermost cause is the socket's own error (`Connection refused`), which names no
        // URL; `e` itself would.
        let mut cause = std::error::Error::source(e);
        while let Some(next) = cause.and_then(std::error::Error::source) {
            cause = Some(next);
        }
        match cause {
            Some(cause) => format!("connection refused or failed: {cause}"),
            None => "connection refused or failed".into(),
        }
    } else if e.is_decode() || e.is_body() {
        "the answer's body could not be read".into()
    } else {
        "request failed".into()
    }
}

/// An IPv4-mapped IPv6 address as the IPv4 address it is (`::ffff:127.0.0.1` is loopback).
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

/// An address reachable on the public internet: not loopback, link-local, private, shared
/// (CGNAT), unspecified, multicast, broadcast, documentation or otherwise reserved.
fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || (a == 192 && b == 0)
                || (a == 198 && (b == 18 || b == 19))
                || a >= 240)
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || (first == 0x2001 && v6.segments()[1] == 0x0db8)
                || first == 0x0064)
        }
    }
}

/// A DNS name as an allowlist entry may hold it: labels of letters, digits and `-`.
fn is_host_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.')
            .all(|l| !l.is_empty() && l.len() <= 63 && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(entries: &[&str]) -> AllowedHosts {
        AllowedHosts::parse(&entries.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[tokio::test]
    async fn private_addresses_are_refused_unless_listed() {
        let open = AllowedHosts::default();
        for ip in ["127.0.0.1", "10.1.2.3", "169.254.169.254", "192.168.0.1", "::1", "::ffff:127.0.0.1", "fd00::1"] {
            let refused = open.resolve(ip, 80).await.unwrap_err();
            assert!(refused.contains("BRIDGE_ALLOWED_HOSTS"), "{ip}: {refused}");
        }
        assert!(open.resolve("8.8.8.8", 80).await.is_ok());
        assert!(list(&["127.0.0.1"]).resolve("127.0.0.1", 80).await.is_ok());
        assert!(list(&["10.0.0.0/8"]).resolve("10.9.9.9", 80).await.is_ok());
        assert!(list(&["localhost"]).resolve("localhost", 80).await.is_ok());
    }

    #[tokio::test]
    async fn a_list_allows_only_what_it_names() {
        let allowed = list(&["api.example.com", "*.corp.example", "127.0.0.1"]);
        assert!(allowed.resolve("8.8.8.8", 80).await.unwrap_err().contains("not in BRIDGE_ALLOWED_HOSTS"));
        assert!(allowed.names("API.example.com") && allowed.names("a.b.corp.example"));
        assert!(!allowed.names("corp.example") && !allowed.names("evilapi.example.com"));
    }

    #[test]
    fn a_bad_entry_is_named() {
        let e = AllowedHosts::parse(&["ok.example".into(), "bad host".into()]).unwrap_err();
        assert!(e.contains("`bad host`"), "{e}");
    }
}
