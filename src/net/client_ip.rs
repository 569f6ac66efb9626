//! Who is on the other end of a connection: the peer address, or, when the peer is one of the
//! configured trusted proxies, the client named in `X-Forwarded-For`.
//!
//! `X-Forwarded-For` is a list each proxy appends to, so only its right end can be trusted: the
//! client is the rightmost address that is not itself a trusted proxy. From any other peer the
//! header is ignored, since a client can send whatever it likes in it.

use std::{net::IpAddr, str::FromStr};

use ipnet::IpNet;

/// The proxies whose `X-Forwarded-For` is believed (`TRUSTED_PROXIES`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    nets: Vec<IpNet>,
}

impl TrustedProxies {
    /// Parses a comma-separated list of addresses and CIDR ranges (`10.0.0.0/8, 127.0.0.1`).
    pub fn parse(list: &str) -> Result<Self, String> {
        let nets = list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                IpNet::from_str(s)
                    .or_else(|_| IpAddr::from_str(s).map(IpNet::from))
                    .map_err(|_| format!("`{s}` is not an IP address or a CIDR range such as 10.0.0.0/8"))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { nets })
    }

    /// Whether `ip` is a trusted proxy.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.nets.iter().any(|n| n.contains(&ip))
    }

    /// The client address of a request that arrived from `peer` with these headers.
    pub fn client_ip(&self, peer: IpAddr, headers: &http::HeaderMap) -> IpAddr {
        let peer = canonical(peer);
        if !self.contains(peer) {
            return peer;
        }
        let hops: Vec<IpAddr> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|hop| parse_hop(hop.trim()))
            .collect();
        // Rightmost untrusted hop; if every hop is a proxy, the leftmost one is the best we know.
        hops.iter().rev().copied().find(|ip| !self.contains(*ip)).or(hops.first().copied()).unwrap_or(peer)
    }
}

/// An `X-Forwarded-For` entry: an address, possibly with a port (`1.2.3.4:5678`, `[::1]:80`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(ip) = IpAddr::from_str(hop) {
        return Some(canonical(ip));
    }
    if let Ok(addr) = std::net::SocketAddr::from_str(hop) {
        return Some(canonical(addr.ip()));
    }
    None
}

/// The key per-address limits count a client under: its address, or for IPv6 its /64 network,
/// which is what one subscriber or host is given (RFC 6177): counting each of its 2^64 addresses
/// apart would let one client through any per-address limit.
pub(crate) fn limit_key(ip: IpAddr) -> IpAddr {
    match canonical(ip) {
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(bits.into())
        }
        v4 => v4,
    }
}

/// IPv4 addresses seen through an IPv6 socket (`::ffff:1.2.3.4`) are the IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(xff: &[&str]) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        for v in xff {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_header_is_ignored_from_untrusted_peers() {
        let proxies = TrustedProxies::parse("10.0.0.0/8").unwrap();
        assert_eq!(proxies.client_ip(ip("203.0.113.9"), &headers(&["1.1.1.1"])), ip("203.0.113.9"));
        assert_eq!(TrustedProxies::default().client_ip(ip("127.0.0.1"), &headers(&["1.1.1.1"])), ip("127.0.0.1"));
    }

    #[test]
    fn a_trusted_proxy_names_the_rightmost_untrusted_hop() {
        let proxies = TrustedProxies::parse("10.0.0.0/8, 127.0.0.1").unwrap();
        // The client forged the first entry; the proxy chain appended the real one.
        let h = headers(&["6.6.6.6, 198.51.100.7", "10.1.2.3"]);
        assert_eq!(proxies.client_ip(ip("127.0.0.1"), &h), ip("198.51.100.7"));
        assert_eq!(proxies.client_ip(ip("::ffff:127.0.0.1"), &headers(&["198.51.100.7:4711"])), ip("198.51.100.7"));
        assert_eq!(proxies.client_ip(ip("127.0.0.1"), &headers(&[])), ip("127.0.0.1"));
        assert_eq!(proxies.client_ip(ip("127.0.0.1"), &headers(&["10.0.0.5"])), ip("10.0.0.5"));
        assert_eq!(proxies.client_ip(ip("127.0.0.1"), &headers(&["garbage"])), ip("127.0.0.1"));
    }

    #[test]
    fn limits_count_an_ipv6_client_by_its_slash_64() {
        assert_eq!(limit_key(ip("2001:db8:1:2:3:4:5:6")), ip("2001:db8:1:2::"));
        assert_eq!(limit_key(ip("::ffff:192.0.2.1")), ip("192.0.2.1"));
        assert_eq!(limit_key(ip("192.0.2.1")), ip("192.0.2.1"));
    }

    #[test]
    fn bad_entries_are_named() {
        let err = TrustedProxies::parse("10.0.0.0/8, proxy.local").unwrap_err();
        assert!(err.contains("`proxy.local`"), "{err}");
        assert!(TrustedProxies::parse("").unwrap().nets.is_empty());
    }
}
