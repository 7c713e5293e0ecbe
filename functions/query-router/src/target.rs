//! Where a registered database lives: the connection string parsed by `tokio-postgres`, its
//! host resolved and checked against the platform's own networks, then pinned to the address
//! that was checked (so a DNS answer cannot change between the check and the connection).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;
use std::time::Duration;
use tokio_postgres::config::{Host, SslMode};

pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
pub const MAX_CONNECTION_STRING: usize = 2048;

/// Why a database cannot be used; each message is safe to send back (no host, no password).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unusable {
    #[error("connection_string: not a valid PostgreSQL connection string")]
    Invalid,
    #[error("connection_string: exactly one TCP host is required")]
    Host,
    #[error(
        "the host is on a private, loopback, link-local or metadata network, which is not allowed"
    )]
    Private,
    #[error("the host name does not resolve")]
    Unresolved,
    #[error("the connection string requires TLS, which this router does not offer yet")]
    TlsRequired,
    #[error("the database did not answer within {} s", CONNECT_TIMEOUT.as_secs())]
    Timeout,
    #[error("the database refused the connection")]
    Refused,
    #[error("authentication failed")]
    Authentication,
    #[error("the database does not exist")]
    NoDatabase,
    #[error("the server asked for TLS or spoke another protocol")]
    Protocol,
}

/// A parsed, checked database target.
pub struct Target {
    pub config: tokio_postgres::Config,
    /// `host:port/dbname`, for display.
    pub display: String,
}

/// Addresses a tenant must not make the platform connect to (unless allowed for local use).
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => private_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = embedded_v4(v6) {
                return private_v4(v4);
            }
            let [first, second, ..] = v6.segments();
            v6.is_loopback()
                || (first == 0x2001 && second == 0) // Teredo: a tunnel to an address it hides
                || (first == 0x0064 && second == 0xff9b) // local-use NAT64 64:ff9b:1::/48, and any other
                || (first == 0x0100 && second == 0 && v6.segments()[2..4] == [0, 0]) // discard-only 100::/64
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00 // unique local fc00::/7
                || (first & 0xffc0) == 0xfe80 // link-local fe80::/10
                || v6 == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254) // EC2 metadata v6
        }
    }
}

/// The IPv4 address an IPv6 one carries and reaches: IPv4-mapped `::ffff:a.b.c.d`, the old
/// IPv4-compatible `::a.b.c.d`, NAT64's well-known prefix `64:ff9b::/96` (a gateway forwards it
/// to the IPv4 address, a VPC's own among them), and 6to4 `2002:aabb:ccdd::/48`.
fn embedded_v4(v6: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = v6.segments();
    let low = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    match s {
        [0, 0, 0, 0, 0, 0xffff, hi, lo] | [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => Some(low(hi, lo)),
        // `::` and `::1` are not IPv4 addresses; the rest of ::/96 is.
        [0, 0, 0, 0, 0, 0, hi, lo] if hi != 0 => Some(low(hi, lo)),
        [0x2002, hi, lo, ..] => Some(low(hi, lo)),
        _ => None,
    }
}

fn private_v4(v4: Ipv4Addr) -> bool {
    let [a, b, ..] = v4.octets();
    v4.is_loopback()
        || v4.is_private()
        || v4.is_link_local() // 169.254/16, the instance metadata address among them
        || v4.is_unspecified()
        || v4.is_broadcast()
        || v4.is_multicast()
        || v4.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // carrier-grade NAT
        || (a == 192 && b == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240
}

/// Parses and checks `raw`; resolves the host and pins the connection to a checked address.
pub async fn resolve(raw: &str, allow_private: bool) -> Result<Target, Unusable> {
    if raw.len() > MAX_CONNECTION_STRING || raw.chars().any(char::is_control) {
        return Err(Unusable::Invalid);
    }
    let mut config = tokio_postgres::Config::from_str(raw).map_err(|_| Unusable::Invalid)?;
    let [Host::Tcp(host)] = config.get_hosts() else {
        return Err(Unusable::Host);
    };
    let host = host.clone();
    if config.get_hostaddrs().len() > 1 || config.get_ports().len() > 1 {
        return Err(Unusable::Host);
    }
    if config.get_ssl_mode() == SslMode::Require {
        return Err(Unusable::TlsRequired);
    }
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let addrs: Vec<IpAddr> = match config.get_hostaddrs().first() {
        Some(ip) => vec![*ip],
        None => match host.parse::<IpAddr>() {
            Ok(ip) => vec![ip],
            Err(_) => tokio::time::timeout(
                CONNECT_TIMEOUT,
                tokio::net::lookup_host((host.as_str(), port)),
            )
            .await
            .map_err(|_| Unusable::Unresolved)?
            .map_err(|_| Unusable::Unresolved)?
            .map(|a| a.ip())
            .collect(),
        },
    };
    let Some(first) = addrs.first().copied() else {
        return Err(Unusable::Unresolved);
    };
    // Every address the name has must be allowed: a name that also points inside is refused.
    if !allow_private && addrs.iter().any(|ip| is_private(*ip)) {
        return Err(Unusable::Private);
    }
    config.hostaddr(first);
    config.connect_timeout(CONNECT_TIMEOUT);
    config.ssl_mode(SslMode::Disable);
    let db = config.get_dbname().unwrap_or("").to_string();
    Ok(Target {
        config,
        display: format!("{host}:{port}/{db}"),
    })
}

/// Connects once and runs `SELECT 1`, to tell a client at registration why it cannot work.
pub async fn probe(config: &tokio_postgres::Config) -> Result<(), Unusable> {
    let attempt = async {
        let (client, connection) = config
            .connect(tokio_postgres::NoTls)
            .await
            .map_err(classify)?;
        let task = tokio::spawn(connection);
        let result = client.simple_query("SELECT 1").await.map_err(classify);
        drop(client);
        task.abort();
        result.map(|_| ())
    };
    tokio::time::timeout(CONNECT_TIMEOUT, attempt)
        .await
        .map_err(|_| Unusable::Timeout)?
}

fn classify(e: tokio_postgres::Error) -> Unusable {
    use tokio_postgres::error::SqlState;
    if let Some(db) = e.as_db_error() {
        let code = db.code();
        if *code == SqlState::INVALID_PASSWORD
            || *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION
        {
            return Unusable::Authentication;
        }
        if *code == SqlState::INVALID_CATALOG_NAME {
            return Unusable::NoDatabase;
        }
        // Any other refusal (too many clients, starting up, ...): the SQLSTATE goes to the log
        // only, so the answer stays generic and an operator can still tell them apart.
        tracing::warn!(
            sqlstate = code.code(),
            "the database refused the connection"
        );
        return Unusable::Refused;
    }
    let text = e.to_string();
    if text.contains("timed out") {
        Unusable::Timeout
    } else if text.contains("error connecting") || text.contains("refused") {
        Unusable::Refused
    } else {
        Unusable::Protocol
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_platforms_own_networks_are_private() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "fd00:ec2::254",
            // IPv6 forms that carry a private IPv4 address, or hide where they lead.
            "::10.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b::10.1.2.3",
            "64:ff9b:1::1.2.3.4",
            "2002:c0a8:0101::1",
            "2002:7f00:1::",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "100::1",
        ] {
            assert!(is_private(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "8.8.8.8",
            "1.1.1.1",
            "2606:4700:4700::1111",
            "64:ff9b::808:808",
            "2002:0808:0808::1",
        ] {
            assert!(!is_private(ip.parse().unwrap()), "{ip}");
        }
    }

    #[tokio::test]
    async fn strings_are_parsed_and_checked_without_connecting() {
        assert_eq!(
            resolve("not a url ://", false).await.err(),
            Some(Unusable::Invalid)
        );
        assert_eq!(
            resolve("postgres://u:p@127.0.0.1:5432/db", false)
                .await
                .err(),
            Some(Unusable::Private)
        );
        assert_eq!(
            resolve("postgres://u:p@169.254.169.254/db", false)
                .await
                .err(),
            Some(Unusable::Private)
        );
        assert_eq!(
            resolve("postgres://u:p@8.8.8.8/db?sslmode=require", false)
                .await
                .err(),
            Some(Unusable::TlsRequired)
        );
        assert_eq!(
            resolve("host=/var/run/postgresql dbname=x", false)
                .await
                .err(),
            Some(Unusable::Host)
        );
        let t = resolve("postgres://u:secret@127.0.0.1:6543/app", true)
            .await
            .ok()
            .unwrap();
        assert_eq!(t.display, "127.0.0.1:6543/app");
        assert!(!t.display.contains("secret"));
        // The messages never carry the string.
        for e in [
            Unusable::Invalid,
            Unusable::Private,
            Unusable::Authentication,
        ] {
            assert!(!e.to_string().contains("secret"));
        }
    }
}

#[cfg(test)]
mod probe_tests {
    use super::*;

    /// Against the PostgreSQL `make test` starts (`PG_PORT`): each way a registration can fail
    /// is told apart, and a wrong password is not "refused".
    #[tokio::test]
    #[ignore = "needs PostgreSQL: run `make test`"]
    async fn a_wrong_password_a_missing_database_and_a_closed_port_are_told_apart() {
        let port = std::env::var("PG_PORT").expect("PG_PORT");
        let probe_of = |url: String| async move {
            let t = match resolve(&url, true).await {
                Ok(t) => t,
                Err(why) => panic!("not a valid target: {why}"),
            };
            probe(&t.config).await
        };
        let wrong = format!("postgres://reader:wrong-password@127.0.0.1:{port}/sample");
        assert_eq!(probe_of(wrong).await, Err(Unusable::Authentication));
        let nodb = format!("postgres://reader:local-dev-only-reader@127.0.0.1:{port}/nope");
        assert_eq!(probe_of(nodb).await, Err(Unusable::NoDatabase));
        let closed = "postgres://reader:x@127.0.0.1:1/sample".to_string();
        assert_eq!(probe_of(closed).await, Err(Unusable::Refused));
        let right = format!("postgres://reader:local-dev-only-reader@127.0.0.1:{port}/sample");
        assert_eq!(probe_of(right).await, Ok(()));
    }
}
