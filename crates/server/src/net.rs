//! Client addresses for throttling (issue 13, finding 6): CIDR ranges of trusted proxies, the
//! address a chain of forwarding headers names (RFC 7239 `Forwarded`, and `X-Forwarded-For`),
//! and the bucket an address is throttled under (IPv6 by /64). Pure functions over strings: the
//! HTTP layer reads the headers and passes their values.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

/// An IP network: an address and a prefix length (`10.0.0.0/8`, `2001:db8::/32`; a bare
/// address is a single host).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    net: IpAddr,
    prefix: u8,
}

impl FromStr for Cidr {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let ip: IpAddr = addr.parse().map_err(|_| format!("{s:?} is not an IP address or network like 10.0.0.0/8 or 2001:db8::/32"))?;
        let max = if ip.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(|| format!("{s:?}: the prefix length must be a number from 0 to {max}"))?,
        };
        Ok(Self { net: mask(ip, prefix), prefix })
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.net, self.prefix)
    }
}

/// `ip` with every bit past the first `prefix` cleared.
fn mask(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let bits = u32::from(v4);
            let m = if prefix == 0 { 0 } else { u32::MAX << (32 - u32::from(prefix.min(32))) };
            IpAddr::V4((bits & m).into())
        }
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            let m = if prefix == 0 { 0 } else { u128::MAX << (128 - u32::from(prefix.min(128))) };
            IpAddr::V6((bits & m).into())
        }
    }
}

/// An IPv4-mapped IPv6 address (`::ffff:192.0.2.1`, what a dual-stack socket reports) as the
/// IPv4 address it is.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

impl Cidr {
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        ip.is_ipv4() == self.net.is_ipv4() && mask(ip, self.prefix) == self.net
    }
}

/// The throttling bucket of an address: an IPv4 address on its own; an IPv6 address by its /64
/// (RFC 4291 §2.5.4: one subnet, usually one customer, whose 2^64 addresses cost an attacker
/// nothing), written `2001:db8:1:2::/64`.
pub fn bucket(ip: IpAddr) -> String {
    match canonical(ip) {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("{}/64", Ipv6Addr::from(u128::from(v6) & (u128::MAX << 64))),
    }
}

/// A node of a forwarding header (RFC 7239 §6: `192.0.2.1`, `"[2001:db8::1]:4711"`, `unknown`,
/// an obfuscated `_name`); `None` when it names no IP address.
fn node(s: &str) -> Option<IpAddr> {
    let s = s.trim();
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(sa) = s.parse::<SocketAddr>() {
        return Some(sa.ip());
    }
    s.strip_prefix('[')?.strip_suffix(']')?.parse::<Ipv6Addr>().ok().map(IpAddr::V6)
}

/// Split `s` on `sep` outside double-quoted strings (RFC 9110 §5.6.4, with `\` escapes).
fn split_unquoted(s: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            c if c == sep && !quoted => {
                parts.push(&s[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

/// The `for` node of each element of a `Forwarded` field value (RFC 7239 §4), left to right;
/// `None` for an element without one, or whose node is not an address.
pub fn forwarded_for(value: &str) -> Vec<Option<IpAddr>> {
    split_unquoted(value, ',')
        .into_iter()
        .map(|element| {
            split_unquoted(element, ';').into_iter().find_map(|pair| {
                let (name, v) = pair.split_once('=')?;
                if !name.trim().eq_ignore_ascii_case("for") {
                    return None;
                }
                let v = v.trim();
                let v = v.strip_prefix('"').and_then(|v| v.strip_suffix('"')).map(|v| v.replace('\\', "")).unwrap_or_else(|| v.to_string());
                node(&v)
            })
        })
        .collect()
}

/// The addresses of an `X-Forwarded-For` value, left to right; `None` for an entry that is not
/// one.
pub fn x_forwarded_for(value: &str) -> Vec<Option<IpAddr>> {
    value.split(',').map(node).collect()
}

/// The client's address: the TCP peer, unless the peer is a trusted proxy; then the right-most
/// address of `chain` (the forwarding header's hops, left to right, the nearest last) that is
/// not itself a trusted proxy. A hop that names no address, where the walk reaches it, means a
/// header that cannot be relied on: the peer is used. Every hop trusted: the left-most.
pub fn client_ip(peer: IpAddr, chain: &[Option<IpAddr>], trusted: &[Cidr]) -> IpAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|c| c.contains(ip));
    if !is_trusted(peer) {
        return peer;
    }
    let mut nearest = peer;
    for hop in chain.iter().rev() {
        match hop {
            Some(ip) if is_trusted(*ip) => nearest = *ip,
            Some(ip) => return *ip,
            None => return peer,
        }
    }
    nearest
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn cidrs(list: &[&str]) -> Vec<Cidr> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn cidr_parsing_and_matching() {
        let c: Cidr = "10.1.2.3/8".parse().unwrap();
        assert_eq!(c.to_string(), "10.0.0.0/8", "host bits are cleared");
        assert!(c.contains(ip("10.200.0.1")) && !c.contains(ip("11.0.0.1")));
        assert!(c.contains(ip("::ffff:10.0.0.9")), "IPv4-mapped IPv6 is the IPv4 address");
        let single: Cidr = "192.0.2.7".parse().unwrap();
        assert!(single.contains(ip("192.0.2.7")) && !single.contains(ip("192.0.2.8")));
        let v6: Cidr = "2001:db8::/32".parse().unwrap();
        assert!(v6.contains(ip("2001:db8:ffff::1")) && !v6.contains(ip("2001:db9::1")) && !v6.contains(ip("10.0.0.1")));
        assert!("0.0.0.0/0".parse::<Cidr>().unwrap().contains(ip("203.0.113.1")));
        for bad in ["", "10.0.0.0/33", "::/129", "example.com", "10.0.0.0/x", "10.0.0/8"] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
    }

    /// RFC 4291 §2.5.4: IPv6 is throttled per /64; IPv4 per address.
    #[test]
    fn ipv6_is_bucketed_by_64() {
        assert_eq!(bucket(ip("2001:db8:1:2:aaaa::1")), "2001:db8:1:2::/64");
        assert_eq!(bucket(ip("2001:db8:1:2:ffff:ffff:ffff:ffff")), bucket(ip("2001:db8:1:2::")), "one /64, one bucket");
        assert_ne!(bucket(ip("2001:db8:1:2::1")), bucket(ip("2001:db8:1:3::1")));
        assert_eq!(bucket(ip("203.0.113.7")), "203.0.113.7");
        assert_ne!(bucket(ip("203.0.113.7")), bucket(ip("203.0.113.8")));
        assert_eq!(bucket(ip("::ffff:203.0.113.7")), "203.0.113.7");
    }

    /// RFC 7239 §4, §6: elements, pairs, quoted IPv6 with ports, `unknown` and obfuscated nodes.
    #[test]
    fn forwarded_header() {
        let v = r#"for=192.0.2.60;proto=http;by=203.0.113.43, For="[2001:db8:cafe::17]:4711", for=unknown, for=_hidden, proto=https, for="198.51.100.1:80""#;
        assert_eq!(forwarded_for(v), vec![Some(ip("192.0.2.60")), Some(ip("2001:db8:cafe::17")), None, None, None, Some(ip("198.51.100.1"))]);
        assert_eq!(forwarded_for(r#"for="a,b", for=192.0.2.1"#), vec![None, Some(ip("192.0.2.1"))], "commas inside quotes do not split");
        assert_eq!(
            x_forwarded_for("203.0.113.7, 10.0.0.2 ,[2001:db8::5]:443, garbage, 2001:db8::6"),
            vec![Some(ip("203.0.113.7")), Some(ip("10.0.0.2")), Some(ip("2001:db8::5")), None, Some(ip("2001:db8::6"))]
        );
    }

    /// The right-most address that is not a trusted proxy; headers only from a trusted peer;
    /// unreliable headers fall back to the peer.
    #[test]
    fn client_address_from_trusted_proxies_only() {
        let trusted = cidrs(&["10.0.0.0/8", "2001:db8:ffff::/48"]);
        let chain = x_forwarded_for("198.51.100.1, 203.0.113.7, 10.0.0.5");
        assert_eq!(client_ip(ip("10.0.0.1"), &chain, &trusted), ip("203.0.113.7"), "spoofed left-most entries are skipped");
        assert_eq!(client_ip(ip("192.0.2.99"), &chain, &trusted), ip("192.0.2.99"), "an untrusted peer's header is ignored");
        assert_eq!(client_ip(ip("10.0.0.1"), &chain, &[]), ip("10.0.0.1"), "no trusted proxies: always the peer");
        assert_eq!(client_ip(ip("10.0.0.1"), &[], &trusted), ip("10.0.0.1"), "no header: the peer");
        assert_eq!(client_ip(ip("10.0.0.1"), &x_forwarded_for("garbage"), &trusted), ip("10.0.0.1"), "malformed: the peer");
        assert_eq!(
            client_ip(ip("10.0.0.1"), &x_forwarded_for("garbage, 203.0.113.9"), &trusted),
            ip("203.0.113.9"),
            "garbage the walk never reaches is harmless"
        );
        assert_eq!(client_ip(ip("10.0.0.1"), &x_forwarded_for("10.0.0.3, 10.0.0.2"), &trusted), ip("10.0.0.3"), "all trusted: the left-most");
        assert_eq!(client_ip(ip("2001:db8:ffff::1"), &forwarded_for(r#"for="[2001:db8:1::9]""#), &trusted), ip("2001:db8:1::9"));
        assert_eq!(client_ip(ip("::ffff:10.0.0.1"), &x_forwarded_for("203.0.113.7"), &trusted), ip("203.0.113.7"), "a mapped peer address is matched as IPv4");
    }
}
