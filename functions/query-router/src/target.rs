//! Where a registered database lives and how to reach it: the connection string parsed by
//! `tokio-postgres` (its TLS settings taken out by `tls::split`), its host resolved and checked
//! against the platform's own networks, then connected only to the addresses that were checked
//! (so a DNS answer cannot change between the check and the connection), while the TLS
//! certificate is checked against the host name that was registered.

use crate::tls::{self, Mode, Policy, Watched, WatchedTls};
use rustls::pki_types::CertificateDer;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_postgres::config::{Host, SslMode};
use tokio_postgres::tls::MakeTlsConnect;
use tokio_postgres_rustls::MakeRustlsConnect;

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
    #[error("connection_string: sslmode must be disable, require, verify-ca or verify-full (prefer and allow could fall back to plain text)")]
    TlsMode,
    #[error("connection_string: file settings (sslrootcert, sslcert, sslkey, ...) are not read here; send the CA certificate as ca_certificate")]
    TlsFile,
    #[error("ca_certificate: must be one or more PEM certificates of at most {} KiB", tls::MAX_CA_PEM / 1024)]
    CaCertificate,
    #[error("ca_certificate: only used with sslmode verify-ca or verify-full")]
    CaWithoutVerify,
    #[error("sslmode verify-ca needs ca_certificate: against the public roots, any certificate a public CA issued for any name would pass")]
    VerifyCaWithoutCa,
    #[error("plain-text database connections (sslmode=disable) are not allowed on this platform")]
    PlaintextForbidden,
    #[error("the server does not offer TLS")]
    NoTls,
    #[error("the server requires TLS: use sslmode require, verify-ca or verify-full")]
    ServerRequiresTls,
    #[error("the server's certificate does not name the registered host")]
    CertificateName,
    #[error("the server's certificate is not signed by a trusted authority; register its CA as ca_certificate")]
    CertificateUntrusted,
    #[error("the server's certificate is not valid (expired, not yet valid, or not for a server)")]
    CertificateInvalid,
    #[error("the TLS handshake failed")]
    TlsFailed,
    #[error("the server asked for the password in clear text or as an MD5 hash on a connection that does not verify the server; refused (use SCRAM, or sslmode verify-full)")]
    PasswordExposed,
    #[error("the server sent more than the router accepts for one answer")]
    MessageTooLarge,
    #[error("the database did not answer within {} s", CONNECT_TIMEOUT.as_secs())]
    Timeout,
    #[error("the database refused the connection")]
    Refused,
    #[error("authentication failed")]
    Authentication,
    #[error("the database does not exist")]
    NoDatabase,
    #[error("the server spoke another protocol")]
    Protocol,
}

/// A parsed, checked database target: where to connect and as what.
pub struct Target {
    pub config: tokio_postgres::Config,
    /// The registered host name: what the certificate must name under `verify-full`.
    pub host: String,
    /// The addresses checked, tried in order.
    pub addrs: Vec<SocketAddr>,
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
                || (first & 0xffc0) == 0xfec0 // deprecated site-local fec0::/10
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
        // IPv4-mapped, NAT64's prefix, and SIIT's IPv4-translated `::ffff:0:a.b.c.d`.
        [0, 0, 0, 0, 0, 0xffff, hi, lo]
        | [0x64, 0xff9b, 0, 0, 0, 0, hi, lo]
        | [0, 0, 0, 0, 0xffff, 0, hi, lo] => Some(low(hi, lo)),
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

/// Parses and checks `raw` (a connection string without TLS settings: `tls::split`'s rest);
/// resolves the host and keeps the addresses that passed the check.
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
    if addrs.is_empty() {
        return Err(Unusable::Unresolved);
    }
    // Every address the name has must be allowed: a name that also points inside is refused.
    if !allow_private && addrs.iter().any(|ip| is_private(*ip)) {
        return Err(Unusable::Private);
    }
    config.connect_timeout(CONNECT_TIMEOUT);
    let db = config.get_dbname().unwrap_or("").to_string();
    Ok(Target {
        config,
        display: format!("{host}:{port}/{db}"),
        addrs: addrs
            .into_iter()
            .map(|ip| SocketAddr::new(ip, port))
            .collect(),
        host,
    })
}

/// A live connection: the client and the task that drives its socket (ended with it).
pub struct Conn {
    pub client: tokio_postgres::Client,
    /// What the next answer may read (`tls::Budget`).
    pub budget: tls::Budget,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The platform's rules for reaching tenant databases.
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    /// `ALLOW_PRIVATE_DATABASE_HOSTS`: loopback and private hosts may be used (local use).
    pub allow_private: bool,
    /// `ALLOW_PLAINTEXT_DATABASES`: `sslmode=disable` may be used.
    pub allow_plaintext: bool,
    /// `QUERY_TIMEOUT_MS`: the session's `statement_timeout`, set when a connection is made,
    /// so every statement on it (the catalogue's, the probe's) is bounded on the server too.
    pub statement_timeout_ms: u64,
}

/// How to connect to one registration: `raw` is its connection string as sent (TLS settings
/// included), `mode` the mode it was stored with (`None` at registration: the string's own, or
/// `verify-full`), `ca_pem` its CA certificates.
pub async fn endpoint(
    raw: &str,
    mode: Option<Mode>,
    ca_pem: Option<&str>,
    rules: Rules,
) -> Result<Endpoint, Unusable> {
    let split = tls::split(raw)?;
    let mode = mode.or(split.mode).unwrap_or(Mode::VerifyFull);
    if mode == Mode::Disable && !rules.allow_plaintext {
        return Err(Unusable::PlaintextForbidden);
    }
    let ca = match ca_pem {
        Some(_) if !matches!(mode, Mode::VerifyCa | Mode::VerifyFull) => {
            return Err(Unusable::CaWithoutVerify)
        }
        None if mode == Mode::VerifyCa => return Err(Unusable::VerifyCaWithoutCa),
        Some(pem) => Some(tls::ca_certificates(pem)?),
        None => None,
    };
    let mut target = resolve(&split.rest, rules.allow_private).await?;
    // Appended after the string's own options: the later setting wins.
    let options = format!(
        "{} -c statement_timeout={}",
        target.config.get_options().unwrap_or(""),
        rules.statement_timeout_ms
    );
    target.config.options(options.trim_start());
    Endpoint::new(target, mode, ca.as_deref())
}

/// How to connect to one registered database: its checked target and its TLS settings.
pub struct Endpoint {
    target: Target,
    mode: Mode,
    tls: Option<MakeRustlsConnect>,
    policy: Policy,
}

impl Endpoint {
    /// `ca`: the registration's CA certificates (with `verify-ca` or `verify-full` only).
    pub fn new(
        mut target: Target,
        mode: Mode,
        ca: Option<&[CertificateDer<'static>]>,
    ) -> Result<Endpoint, Unusable> {
        let tls = match mode {
            Mode::Disable => {
                target.config.ssl_mode(SslMode::Disable);
                None
            }
            _ => {
                target.config.ssl_mode(SslMode::Require);
                let config = tls::client_config(mode, ca)?;
                Some(MakeRustlsConnect::new((*config).clone()))
            }
        };
        Ok(Endpoint {
            target,
            mode,
            tls,
            policy: Policy::of(mode),
        })
    }

    pub fn target(&self) -> &Target {
        &self.target
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// A new connection to the first checked address that answers, within `CONNECT_TIMEOUT`.
    pub async fn connect(&self) -> Result<Conn, Unusable> {
        tokio::time::timeout(CONNECT_TIMEOUT, self.connect_once())
            .await
            .map_err(|_| Unusable::Timeout)?
    }

    async fn connect_once(&self) -> Result<Conn, Unusable> {
        let mut last = Unusable::Refused;
        for addr in &self.target.addrs {
            let stream = match TcpStream::connect(addr).await {
                Ok(s) => s,
                Err(_) => {
                    last = Unusable::Refused;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let config = &self.target.config;
            let budget = tls::Budget::unlimited();
            // The server's messages are watched where they are readable: above TLS.
            let (client, task) = match &self.tls {
                Some(make) => {
                    let mut make = make.clone();
                    let connect =
                        <MakeRustlsConnect as MakeTlsConnect<TcpStream>>::make_tls_connect(
                            &mut make,
                            &self.target.host,
                        )
                        .map_err(|_| Unusable::TlsFailed)?;
                    let (client, connection) = config
                        .connect_raw(stream, WatchedTls(connect, self.policy, budget.clone()))
                        .await
                        .map_err(classify)?;
                    (
                        client,
                        tokio::spawn(async move {
                            let _ = connection.await;
                        }),
                    )
                }
                None => {
                    let (client, connection) = config
                        .connect_raw(
                            Watched::new(stream, self.policy, budget.clone()),
                            tokio_postgres::NoTls,
                        )
                        .await
                        .map_err(classify)?;
                    (
                        client,
                        tokio::spawn(async move {
                            let _ = connection.await;
                        }),
                    )
                }
            };
            return Ok(Conn {
                client,
                budget,
                task,
            });
        }
        Err(last)
    }
}

/// Connects once and runs `SELECT 1`, to tell a client at registration why it cannot work.
pub async fn probe(endpoint: &Endpoint) -> Result<(), Unusable> {
    let attempt = async {
        let conn = endpoint.connect().await?;
        conn.client
            .simple_query("SELECT 1")
            .await
            .map_err(classify)
            .map(|_| ())
    };
    tokio::time::timeout(CONNECT_TIMEOUT, attempt)
        .await
        .map_err(|_| Unusable::Timeout)?
}

fn classify(e: tokio_postgres::Error) -> Unusable {
    use tokio_postgres::error::SqlState;
    match tls::refusal_of(&e) {
        Some(tls::WatchRefusal::PasswordAsked) => return Unusable::PasswordExposed,
        Some(tls::WatchRefusal::TooLarge) => return Unusable::MessageTooLarge,
        None => {}
    }
    if let Some(why) = tls::handshake_failure(&e) {
        return why;
    }
    if let Some(db) = e.as_db_error() {
        let code = db.code();
        if *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION
            && db.message().contains("no encryption")
        {
            return Unusable::ServerRequiresTls;
        }
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
    if text.contains("server does not support TLS") {
        Unusable::NoTls
    } else if text.contains("timed out") {
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
            "::ffff:0:10.0.0.1",
            "::ffff:0:169.254.169.254",
            "fec0::1",
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

    /// The local server's CA (`make test` makes one per run: `localstack/postgres.sh`).
    fn local_ca() -> String {
        std::fs::read_to_string(std::env::var("PG_CA_FILE").expect("PG_CA_FILE")).unwrap()
    }

    async fn probe_of(url: &str, ca: Option<&str>, plaintext: bool) -> Result<Mode, Unusable> {
        let rules = Rules {
            allow_private: true,
            allow_plaintext: plaintext,
            statement_timeout_ms: 2_000,
        };
        let endpoint = endpoint(url, None, ca, rules).await?;
        probe(&endpoint).await.map(|_| endpoint.mode())
    }

    /// Against the PostgreSQL `make test` starts (`PG_PORT`), which refuses plain text like an
    /// RDS instance with `rds.force_ssl` and presents a certificate for `localhost` only, signed
    /// by a CA made for the run: each way a registration can fail is told apart.
    #[tokio::test]
    #[ignore = "needs PostgreSQL: run `make test`"]
    async fn each_way_a_connection_fails_is_told_apart() {
        let port = std::env::var("PG_PORT").expect("PG_PORT");
        let ca = local_ca();
        let ca = Some(ca.as_str());
        let url = |user: &str, host: &str, db: &str, mode: &str| {
            format!("postgres://{user}@{host}:{port}/{db}{mode}")
        };
        let reader = "reader:local-dev-only-reader";
        // The default is verify-full: the right name and the CA registered.
        assert_eq!(
            probe_of(&url(reader, "localhost", "sample", ""), ca, false).await,
            Ok(Mode::VerifyFull)
        );
        // The certificate does not name 127.0.0.1.
        assert_eq!(
            probe_of(&url(reader, "127.0.0.1", "sample", ""), ca, false).await,
            Err(Unusable::CertificateName)
        );
        // verify-ca does not compare the name; require checks nothing.
        assert_eq!(
            probe_of(
                &url(reader, "127.0.0.1", "sample", "?sslmode=verify-ca"),
                ca,
                false
            )
            .await,
            Ok(Mode::VerifyCa)
        );
        assert_eq!(
            probe_of(
                &url(reader, "127.0.0.1", "sample", "?sslmode=require"),
                None,
                false
            )
            .await,
            Ok(Mode::Require)
        );
        // Without its CA, the run's server is not trusted (Mozilla's roots do not sign it).
        assert_eq!(
            probe_of(&url(reader, "localhost", "sample", ""), None, false).await,
            Err(Unusable::CertificateUntrusted)
        );
        // Plain text: forbidden by the platform, or refused by the server.
        let plain = url(reader, "127.0.0.1", "sample", "?sslmode=disable");
        assert_eq!(
            probe_of(&plain, None, false).await,
            Err(Unusable::PlaintextForbidden)
        );
        assert_eq!(
            probe_of(&plain, None, true).await,
            Err(Unusable::ServerRequiresTls)
        );
        // The one role the server lets in on plain text asks for its password in clear: the
        // password is never sent.
        let clear = url(
            "cleartext:local-dev-only-cleartext",
            "127.0.0.1",
            "sample",
            "?sslmode=disable",
        );
        assert_eq!(
            probe_of(&clear, None, true).await,
            Err(Unusable::PasswordExposed)
        );
        // On TLS whose certificate is not checked, anyone on the path could ask: refused too;
        // a verified server may have it.
        let clear_tls = url(
            "cleartext:local-dev-only-cleartext",
            "127.0.0.1",
            "sample",
            "?sslmode=require",
        );
        assert_eq!(
            probe_of(&clear_tls, None, false).await,
            Err(Unusable::PasswordExposed)
        );
        let clear_verified = url(
            "cleartext:local-dev-only-cleartext",
            "localhost",
            "sample",
            "",
        );
        assert_eq!(
            probe_of(&clear_verified, ca, false).await,
            Ok(Mode::VerifyFull)
        );
        // verify-ca against the public roots would accept any public certificate.
        assert_eq!(
            probe_of(
                &url(reader, "localhost", "sample", "?sslmode=verify-ca"),
                None,
                false
            )
            .await,
            Err(Unusable::VerifyCaWithoutCa)
        );
        // And the old distinctions hold over TLS.
        let wrong = url("reader:wrong-password", "localhost", "sample", "");
        assert_eq!(
            probe_of(&wrong, ca, false).await,
            Err(Unusable::Authentication)
        );
        let nodb = url(reader, "localhost", "nope", "");
        assert_eq!(probe_of(&nodb, ca, false).await, Err(Unusable::NoDatabase));
        let closed = "postgres://reader:x@127.0.0.1:1/sample?sslmode=require";
        assert_eq!(probe_of(closed, None, false).await, Err(Unusable::Refused));
    }
}
