//! Back-Channel Logout 1.0 deliveries (§2.5) and the addresses they may reach.
//!
//! A logout token is POSTed off the user's logout request: [`spawn_delivery`] starts a task and
//! returns at once; the task makes up to [`ATTEMPTS`] attempts, each bounded by
//! [`ATTEMPT_TIMEOUT`], with back-off between them, retrying transport failures, timeouts and 5xx
//! (a 4xx is the relying party refusing the token, §2.8: not retried).
//!
//! The URI is chosen by whoever registers a client, and the server calls it: so that it cannot be
//! pointed at the server's own network (server-side request forgery: the cloud metadata address
//! 169.254.169.254, an admin port on loopback, a database on 10.0.0.0/8), addresses in private,
//! loopback, link-local and other non-public ranges ([`is_public`]) are refused at registration
//! ([`check_uri`], IP literals and `localhost` names) and again at delivery after DNS resolution
//! (the HTTP client's resolver drops non-public addresses, so it connects only to checked ones),
//! unless the setting `allow_private_logout_uris` allows them (development, tests).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// Attempts per delivery.
pub const ATTEMPTS: u32 = 3;
/// The bound on one attempt (connect, request and response).
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);
/// The wait before the second attempt; doubled before each further one.
pub const FIRST_BACKOFF: Duration = Duration::from_millis(500);

/// Whether `ip` is a public unicast address: not unspecified, loopback, private (RFC 1918,
/// fc00::/7), shared (100.64.0.0/10), link-local (169.254.0.0/16 with the cloud metadata
/// address, fe80::/10), documentation, benchmarking, multicast or reserved. IPv4 addresses
/// embedded in IPv6 (mapped, compatible, NAT64, 6to4) are judged as IPv4.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(a == 0 // "this network", 0.0.0.0/8
        || a == 10 // RFC 1918
        || a == 127 // loopback
        || (a == 100 && (64..128).contains(&b)) // shared address space, RFC 6598
        || (a == 169 && b == 254) // link-local, RFC 3927 (cloud metadata at 169.254.169.254)
        || (a == 172 && (16..32).contains(&b)) // RFC 1918
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments, RFC 6890
        || (a == 192 && b == 0 && c == 2) // TEST-NET-1
        || (a == 192 && b == 88 && c == 99) // 6to4 relay anycast
        || (a == 192 && b == 168) // RFC 1918
        || (a == 198 && (b == 18 || b == 19)) // benchmarking, RFC 2544
        || (a == 198 && b == 51 && c == 100) // TEST-NET-2
        || (a == 203 && b == 0 && c == 113) // TEST-NET-3
        || a >= 224) // multicast, reserved, broadcast
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    let embedded_v4 = || Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    if s[..5] == [0, 0, 0, 0, 0] && (s[5] == 0xffff || s[5] == 0) {
        // ::ffff:a.b.c.d (mapped), ::a.b.c.d (compatible, deprecated), :: and ::1.
        return s[5] == 0xffff && is_public_v4(embedded_v4());
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return is_public_v4(embedded_v4()); // NAT64, RFC 6052
    }
    if s[0] == 0x2002 {
        return is_public_v4(Ipv4Addr::new((s[1] >> 8) as u8, s[1] as u8, (s[2] >> 8) as u8, s[2] as u8)); // 6to4
    }
    !((s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1) // local-use NAT64, RFC 8215
        || (s[0] == 0x100 && s[1..4] == [0, 0, 0]) // discard, RFC 6666
        || (s[0] == 0x2001 && s[1] < 0x200) // IETF protocol assignments, 2001::/23
        || (s[0] == 0x2001 && s[1] == 0xdb8) // documentation
        || (s[0] & 0xfe00) == 0xfc00 // unique local, fc00::/7
        || (s[0] & 0xffc0) == 0xfe80 // link-local, fe80::/10
        || (s[0] & 0xffc0) == 0xfec0 // site-local (deprecated), fec0::/10
        || (s[0] & 0xff00) == 0xff00) // multicast
}

/// Why `url` may not receive logout tokens, if it may not: its host is an IP literal outside the
/// public ranges, or a `localhost` name (RFC 6761 §6.3: loopback). Other names are checked after
/// resolution, at delivery.
pub fn check_uri(url: &url::Url, allow_private: bool) -> Result<(), String> {
    if allow_private {
        return Ok(());
    }
    let refuse = |what: &str| {
        Err(format!(
            "{url} is {what}: logout tokens are not sent to private, loopback or link-local addresses (allow them with --allow-private-logout-uris / TESSERA_ALLOW_PRIVATE_LOGOUT_URIS)"
        ))
    };
    match url.host() {
        Some(url::Host::Ipv4(ip)) if !is_public_v4(ip) => refuse("a non-public address"),
        Some(url::Host::Ipv6(ip)) if !is_public_v6(ip) => refuse("a non-public address"),
        Some(url::Host::Domain(d)) => {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            if d == "localhost" || d.ends_with(".localhost") { refuse("a loopback name") } else { Ok(()) }
        }
        Some(_) => Ok(()),
        None => Err(format!("{url} has no host")),
    }
}

/// A resolver that keeps only public addresses, so that a name resolving to a private one (or
/// to one of each) is never connected to there.
struct PublicOnly;

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_string();
        Box::pin(async move {
            let all: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let public: Vec<SocketAddr> = all.iter().copied().filter(|a| is_public(a.ip())).collect();
            if public.is_empty() {
                let shown: Vec<String> = all.iter().map(|a| a.ip().to_string()).collect();
                return Err(format!("{host} resolves only to non-public addresses ({})", shown.join(", ")).into());
            }
            Ok(Box::new(public.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// The HTTP client for deliveries: no redirects, no proxy (a proxy would resolve the name
/// itself), each attempt bounded, non-public addresses dropped unless allowed.
fn http_client(allow_private: bool) -> reqwest::Result<reqwest::Client> {
    let b = reqwest::Client::builder().timeout(ATTEMPT_TIMEOUT).connect_timeout(ATTEMPT_TIMEOUT).redirect(reqwest::redirect::Policy::none()).no_proxy();
    if allow_private { b.build() } else { b.dns_resolver(Arc::new(PublicOnly)).build() }
}

/// Deliver `token` to `uri` in a task of its own (Back-Channel Logout 1.0 §2.5); returns at once.
pub fn spawn_delivery(uri: String, token: String, allow_private: bool) {
    tokio::spawn(deliver(uri, token, allow_private));
}

/// What one attempt came to.
enum Outcome {
    Delivered,
    Retry(String),
    GiveUp(String),
}

async fn attempt(client: &reqwest::Client, uri: &str, token: &str) -> Outcome {
    match client.post(uri).form(&[("logout_token", token)]).send().await {
        Ok(r) if r.status().is_success() => Outcome::Delivered,
        Ok(r) if r.status().is_server_error() || r.status() == reqwest::StatusCode::TOO_MANY_REQUESTS => Outcome::Retry(format!("status {}", r.status())),
        // §2.8: a 400 is the relying party refusing this token; sending it again changes nothing.
        Ok(r) => Outcome::GiveUp(format!("status {}", r.status())),
        Err(e) => Outcome::Retry(format!("{e:#}")),
    }
}

async fn deliver(uri: String, token: String, allow_private: bool) {
    let url = match url::Url::parse(&uri) {
        Ok(u) => u,
        Err(e) => return tracing::warn!(%uri, error = %e, "back-channel logout URI is not a URL"),
    };
    // IP literals are checked here (the resolver never sees them); names, `localhost`
    // included, by the resolver after resolution.
    let literal = match url.host() {
        Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
        _ => None,
    };
    if let Some(ip) = literal.filter(|ip| !allow_private && !is_public(*ip)) {
        return tracing::warn!(%uri, %ip, "back-channel logout refused: not a public address (--allow-private-logout-uris)");
    }
    let client = match http_client(allow_private) {
        Ok(c) => c,
        Err(e) => return tracing::warn!(error = %e, "no HTTP client for back-channel logout"),
    };
    let mut backoff = FIRST_BACKOFF;
    for n in 1..=ATTEMPTS {
        match attempt(&client, &uri, &token).await {
            Outcome::Delivered => return,
            Outcome::GiveUp(why) => return tracing::warn!(%uri, %why, "back-channel logout refused by the relying party"),
            Outcome::Retry(why) if n < ATTEMPTS => {
                tracing::info!(%uri, %why, attempt = n, "back-channel logout failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff *= 2;
            }
            Outcome::Retry(why) => tracing::warn!(%uri, %why, attempts = ATTEMPTS, "back-channel logout failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The address table: private, loopback, link-local (the metadata address), shared,
    /// documentation, multicast and embedded forms are not public; ordinary addresses are.
    #[test]
    fn public_and_non_public_ranges() {
        let not_public = [
            "0.0.0.0",
            "0.1.2.3",
            "10.0.0.1",
            "100.64.0.1",
            "100.127.255.255",
            "127.0.0.1",
            "127.8.9.10",
            "169.254.169.254",
            "169.254.0.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.0.0.8",
            "192.0.2.1",
            "192.168.0.1",
            "198.18.0.1",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::ffff:10.1.2.3",
            "::10.1.2.3",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b:1::1",
            "100::1",
            "2001:db8::1",
            "2001::1",
            "2002:a00:1::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "febf::1",
            "fec0::1",
            "ff02::1",
        ];
        for a in not_public {
            assert!(!is_public(a.parse().unwrap()), "{a} is not public");
        }
        let public = [
            "1.1.1.1",
            "8.8.8.8",
            "100.63.255.255",
            "100.128.0.1",
            "172.15.255.255",
            "172.32.0.1",
            "192.169.0.1",
            "93.184.216.34",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
            "2606:4700:4700::1111",
            "2a00:1450:4007:80c::200e",
        ];
        for a in public {
            assert!(is_public(a.parse().unwrap()), "{a} is public");
        }
    }

    /// The resolver drops non-public addresses: a name resolving only to loopback is an error.
    #[tokio::test]
    async fn resolver_refuses_names_of_private_addresses() {
        use reqwest::dns::Resolve;
        let e = PublicOnly.resolve("localhost".parse().unwrap()).await.err().unwrap().to_string();
        assert!(e.contains("non-public"), "{e}");
    }

    #[test]
    fn registration_check() {
        let check = |u: &str, allow: bool| check_uri(&url::Url::parse(u).unwrap(), allow);
        for u in [
            "https://169.254.169.254/latest",
            "http://10.0.0.1/bcl",
            "https://[fd00::1]/x",
            "http://localhost:8080/x",
            "http://api.localhost/x",
            "http://LOCALHOST./x",
            "https://[::ffff:192.168.1.1]/x",
        ] {
            let e = check(u, false).unwrap_err();
            assert!(e.contains("--allow-private-logout-uris"), "{e}");
            assert!(check(u, true).is_ok(), "{u} allowed by the setting");
        }
        for u in ["https://rp.example/bcl", "https://8.8.8.8/bcl", "https://[2606:4700::1]/bcl"] {
            assert!(check(u, false).is_ok(), "{u}");
        }
    }
}
