//! How a connection to a tenant database is secured: the registration's `sslmode` (libpq's
//! names; `verify-full` when none is given), the certificates a server's is checked against
//! (Mozilla's roots from `webpki-roots`, or the CA certificates registered with the database),
//! and, on the one plain-text mode, a watch that refuses to send a password in clear.
//!
//! `tokio-postgres` itself knows only `disable`, `prefer` and `require`: the string's TLS
//! settings are taken out here (`split`) before it parses the rest. rustls (on the aws-lc-rs
//! provider the AWS SDK already links) does the handshake through `tokio-postgres-rustls`, so a
//! Lambda zip carries no OpenSSL and no system CA bundle is relied on.

use crate::target::Unusable;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::tls::{ChannelBinding, TlsConnect, TlsStream};

/// The largest `ca_certificate` a registration may carry (a region's RDS bundle is about 6 KiB).
pub const MAX_CA_PEM: usize = 64 * 1024;

/// libpq's `sslmode`, less `allow` and `prefer` (a silent fall-back to plain text is a
/// downgrade an attacker on the path can force).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Plain text; only where the platform allows it (`DATABASE_PLAINTEXT`).
    Disable,
    /// Encrypted, the certificate not checked (libpq's meaning): no defence against an active
    /// attacker on the path.
    Require,
    /// Encrypted, the certificate signed by a trusted CA, for any host name.
    VerifyCa,
    /// Encrypted, the certificate signed by a trusted CA and naming the registered host.
    VerifyFull,
}

impl Mode {
    pub fn parse(raw: &str) -> Option<Mode> {
        Some(match raw {
            "disable" => Mode::Disable,
            "require" => Mode::Require,
            "verify-ca" => Mode::VerifyCa,
            "verify-full" => Mode::VerifyFull,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Disable => "disable",
            Mode::Require => "require",
            Mode::VerifyCa => "verify-ca",
            Mode::VerifyFull => "verify-full",
        }
    }
}

/// A connection string with its TLS settings taken out.
#[derive(Debug, PartialEq, Eq)]
pub struct Split {
    /// The rest, for `tokio-postgres` to parse.
    pub rest: String,
    /// The string's `sslmode`, if it names one.
    pub mode: Option<Mode>,
}

/// Settings that point at files on the connecting machine: the CA comes as `ca_certificate`,
/// and client certificates are not offered.
const FILE_SETTINGS: &[&str] = &[
    "sslrootcert",
    "sslcert",
    "sslkey",
    "sslpassword",
    "sslcrl",
    "sslcrldir",
];

/// Takes `sslmode` (and refuses the file settings) out of a URL (`postgres://...?sslmode=`) or
/// keyword/value (`host=... sslmode=...`) connection string.
pub fn split(raw: &str) -> Result<Split, Unusable> {
    let mut modes = Vec::new();
    let mut keep = |key: &str, value: &str| -> Result<bool, Unusable> {
        if key == "sslmode" {
            modes.push(Mode::parse(value).ok_or(Unusable::TlsMode)?);
            Ok(false)
        } else if FILE_SETTINGS.contains(&key) {
            Err(Unusable::TlsFile)
        } else {
            Ok(true)
        }
    };
    let rest = if raw.starts_with("postgres://") || raw.starts_with("postgresql://") {
        let mut url = url::Url::parse(raw).map_err(|_| Unusable::Invalid)?;
        let mut kept = Vec::new();
        for (k, v) in url.query_pairs() {
            if keep(&k, &v)? {
                kept.push((k.into_owned(), v.into_owned()));
            }
        }
        // Percent-encoded, not form-encoded: tokio-postgres reads `+` as itself, not a space.
        // RFC 3986's unreserved characters stay as they are.
        const QUERY: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
            .remove(b'-')
            .remove(b'.')
            .remove(b'_')
            .remove(b'~');
        let enc = |v: &str| percent_encoding::utf8_percent_encode(v, QUERY).to_string();
        let query: Vec<String> = kept
            .iter()
            .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
            .collect();
        url.set_query((!query.is_empty()).then(|| query.join("&")).as_deref());
        url.to_string()
    } else {
        let mut rest = String::new();
        for pair in keyword_pairs(raw)? {
            if keep(&pair.key, &pair.value)? {
                rest.push_str(&raw[pair.span.0..pair.span.1]);
                rest.push(' ');
            }
        }
        rest.trim_end().to_string()
    };
    // Two different modes in one string: which one was meant is not for us to guess.
    let mode = match modes.as_slice() {
        [] => None,
        [first, others @ ..] if others.iter().all(|m| m == first) => Some(*first),
        _ => return Err(Unusable::TlsMode),
    };
    Ok(Split { rest, mode })
}

struct Pair {
    key: String,
    value: String,
    /// Where `key=value` is in the string.
    span: (usize, usize),
}

/// The `key = value` pairs of a keyword/value connection string, by libpq's rules: values may
/// be single-quoted, and a backslash escapes the next character. (`tokio-postgres` has this
/// parser but keeps it private, and no maintained crate offers one alone.)
fn keyword_pairs(raw: &str) -> Result<Vec<Pair>, Unusable> {
    let chars: Vec<(usize, char)> = raw.char_indices().collect();
    let at = |i: usize| chars.get(i).map(|c| c.1);
    let offset = |i: usize| chars.get(i).map_or(raw.len(), |c| c.0);
    let mut i = 0;
    let mut out = Vec::new();
    loop {
        while at(i).is_some_and(char::is_whitespace) {
            i += 1;
        }
        if at(i).is_none() {
            return Ok(out);
        }
        let start = i;
        let mut key = String::new();
        while let Some(c) = at(i).filter(|c| *c != '=' && !c.is_whitespace()) {
            key.push(c);
            i += 1;
        }
        while at(i).is_some_and(char::is_whitespace) {
            i += 1;
        }
        if key.is_empty() || at(i) != Some('=') {
            return Err(Unusable::Invalid);
        }
        i += 1;
        while at(i).is_some_and(char::is_whitespace) {
            i += 1;
        }
        let mut value = String::new();
        if at(i) == Some('\'') {
            i += 1;
            loop {
                match at(i) {
                    None => return Err(Unusable::Invalid),
                    Some('\'') => {
                        i += 1;
                        break;
                    }
                    Some('\\') => {
                        value.push(at(i + 1).ok_or(Unusable::Invalid)?);
                        i += 2;
                    }
                    Some(c) => {
                        value.push(c);
                        i += 1;
                    }
                }
            }
        } else {
            while let Some(c) = at(i).filter(|c| !c.is_whitespace()) {
                if c == '\\' {
                    value.push(at(i + 1).ok_or(Unusable::Invalid)?);
                    i += 2;
                } else {
                    value.push(c);
                    i += 1;
                }
            }
        }
        out.push(Pair {
            key,
            value,
            span: (offset(start), offset(i)),
        });
    }
}

/// The CA certificates of a registration's `ca_certificate`: PEM, at most `MAX_CA_PEM` bytes,
/// at least one certificate, each one a trust anchor rustls accepts.
pub fn ca_certificates(pem: &str) -> Result<Vec<CertificateDer<'static>>, Unusable> {
    if pem.len() > MAX_CA_PEM {
        return Err(Unusable::CaCertificate);
    }
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| Unusable::CaCertificate)?;
    if certs.is_empty() {
        return Err(Unusable::CaCertificate);
    }
    let mut roots = RootCertStore::empty();
    let (added, ignored) = roots.add_parsable_certificates(certs.iter().cloned());
    if added == 0 || ignored > 0 {
        return Err(Unusable::CaCertificate);
    }
    Ok(certs)
}

fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .clone()
}

/// Mozilla's roots, built once per instance.
fn public_roots() -> Arc<RootCertStore> {
    static ROOTS: OnceLock<Arc<RootCertStore>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            Arc::new(RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            })
        })
        .clone()
}

/// The rustls configuration of a TLS `mode` (not `Disable`), checked against `ca` when given
/// (and then only against it, as libpq's `sslrootcert`), else against the public roots.
pub fn client_config(
    mode: Mode,
    ca: Option<&[CertificateDer<'static>]>,
) -> Result<Arc<ClientConfig>, Unusable> {
    let roots = match ca {
        Some(certs) => {
            let mut roots = RootCertStore::empty();
            roots.add_parsable_certificates(certs.iter().cloned());
            Arc::new(roots)
        }
        None => public_roots(),
    };
    let provider = provider();
    let verifier: Arc<dyn ServerCertVerifier> = match mode {
        Mode::Require => Arc::new(Unchecked(provider.clone())),
        Mode::VerifyCa | Mode::VerifyFull | Mode::Disable => {
            let webpki = WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
                .build()
                .map_err(|_| Unusable::CaCertificate)?;
            if mode == Mode::VerifyCa {
                Arc::new(AnyName(webpki))
            } else {
                webpki
            }
        }
    };
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|_| Unusable::TlsFailed)?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    // PostgreSQL 17's direct TLS negotiation requires it; earlier servers ignore it.
    config.alpn_protocols = vec![b"postgresql".to_vec()];
    Ok(Arc::new(config))
}

/// `verify-ca`: the chain must lead to a trusted root; the name is not compared.
#[derive(Debug)]
struct AnyName(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for AnyName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // webpki checks the chain before the name: a name error means the chain passed.
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// `require`: any certificate; the handshake's signatures are still checked against it.
#[derive(Debug)]
struct Unchecked(Arc<CryptoProvider>);

impl ServerCertVerifier for Unchecked {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Why a TLS handshake failed, from the rustls error under a connection error.
pub fn handshake_failure(e: &(dyn std::error::Error + 'static)) -> Option<Unusable> {
    let mut cause = Some(e);
    while let Some(err) = cause {
        if let Some(tls) = err.downcast_ref::<rustls::Error>() {
            return Some(match tls {
                rustls::Error::InvalidCertificate(
                    CertificateError::NotValidForName
                    | CertificateError::NotValidForNameContext { .. },
                ) => Unusable::CertificateName,
                rustls::Error::InvalidCertificate(
                    CertificateError::UnknownIssuer | CertificateError::BadSignature,
                ) => Unusable::CertificateUntrusted,
                rustls::Error::InvalidCertificate(_) => Unusable::CertificateInvalid,
                _ => Unusable::TlsFailed,
            });
        }
        if let Some(io) = err.downcast_ref::<io::Error>() {
            if let Some(inner) = io.get_ref() {
                if let Some(found) = handshake_failure(inner) {
                    return Some(found);
                }
            }
        }
        cause = err.source();
    }
    None
}

/// The authentication requests that hand the server the password (`AuthenticationCleartextPassword`)
/// or a hash an eavesdropper can crack offline (`AuthenticationMD5Password`), and the end of
/// authentication (`AuthenticationOk`).
const CLEARTEXT: u32 = 3;
const MD5: u32 = 5;
const AUTH_OK: u32 = 0;

/// The largest message a server may send (a row is one message): a bigger one could not be
/// answered anyway (a Lambda answer is at most 6 MB), and buffering it would let a tenant's
/// server exhaust the memory an instance shares with every other tenant's queries.
pub const MAX_MESSAGE: usize = 8 * 1024 * 1024;

/// Which password exchanges a connection allows: on a connection whose server is not verified
/// (`disable`, or `require`, where anyone on the path can present a certificate), the password
/// must not leave in clear nor as an MD5 hash; SCRAM proves it without revealing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Policy {
    pub reveal_password: bool,
}

impl Policy {
    pub fn of(mode: Mode) -> Policy {
        Policy {
            reveal_password: matches!(mode, Mode::VerifyCa | Mode::VerifyFull),
        }
    }
}

/// A stream that reads the server's messages as they pass (above TLS, where there is TLS): it
/// fails the read that would hand the client an authentication request the `Policy` refuses,
/// or a message larger than `MAX_MESSAGE`.
pub struct Watched<S> {
    inner: S,
    watch: Watch,
    budget: Budget,
}

impl<S> Watched<S> {
    pub fn new(inner: S, policy: Policy, budget: Budget) -> Self {
        Watched {
            inner,
            watch: Watch {
                policy,
                ..Watch::default()
            },
            budget,
        }
    }
}

/// How many more bytes a connection may read from its server once authenticated: the owner of
/// the connection sets it before each request (`Budget::allow`), so one answer, however the
/// server lies about its rows, cannot take more memory than that.
#[derive(Clone, Default)]
pub struct Budget(Arc<std::sync::atomic::AtomicI64>);

impl Budget {
    pub fn unlimited() -> Budget {
        Budget(Arc::new(std::sync::atomic::AtomicI64::new(i64::MAX)))
    }

    pub fn allow(&self, bytes: i64) {
        self.0.store(bytes, std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether a read went past the budget (the connection then failed, as closed).
    pub fn overdrawn(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::Relaxed) < 0
    }

    /// Takes `n` bytes; false once the budget is spent.
    fn take(&self, n: usize) -> bool {
        let n = n as i64;
        self.0.fetch_sub(n, std::sync::atomic::Ordering::Relaxed) >= n
    }
}

/// The server's messages as bytes arrive: a 5-byte header (type, length counting itself), then
/// the body, of which an authentication request's first 4 bytes say which kind it is.
#[derive(Default)]
struct Watch {
    policy: Policy,
    authenticated: bool,
    header: [u8; 5],
    header_len: usize,
    body_left: usize,
    code: [u8; 4],
    code_len: usize,
}

/// What the watch saw.
#[derive(Debug, PartialEq, Eq)]
enum Seen {
    Fine,
    PasswordAsked,
    TooLarge,
}

impl Watch {
    fn feed(&mut self, bytes: &[u8]) -> Seen {
        let mut i = 0;
        while i < bytes.len() {
            if self.header_len < 5 {
                self.header[self.header_len] = bytes[i];
                self.header_len += 1;
                i += 1;
                if self.header_len == 5 {
                    let len = u32::from_be_bytes([
                        self.header[1],
                        self.header[2],
                        self.header[3],
                        self.header[4],
                    ]) as usize;
                    if len > MAX_MESSAGE {
                        return Seen::TooLarge;
                    }
                    self.body_left = len.saturating_sub(4);
                    self.code_len = 0;
                    if self.body_left == 0 {
                        self.header_len = 0;
                    }
                }
                continue;
            }
            if !self.authenticated && self.header[0] == b'R' && self.code_len < 4 {
                self.code[self.code_len] = bytes[i];
                self.code_len += 1;
                i += 1;
                self.body_left -= 1;
                if self.code_len == 4 {
                    match u32::from_be_bytes(self.code) {
                        CLEARTEXT | MD5 if !self.policy.reveal_password => {
                            return Seen::PasswordAsked
                        }
                        AUTH_OK => self.authenticated = true,
                        _ => {}
                    }
                }
            } else {
                // The rest of the body: skipped whole, not byte by byte.
                let n = self.body_left.min(bytes.len() - i);
                self.body_left -= n;
                i += n;
            }
            if self.body_left == 0 {
                self.header_len = 0;
            }
        }
        Seen::Fine
    }
}

/// Why a watched read failed (found under a connection error by `refusal_of`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WatchRefusal {
    #[error("the server asked for the password in clear text or as an MD5 hash on a connection that does not verify it")]
    PasswordAsked,
    #[error("the server sent more than the router accepts for one answer")]
    TooLarge,
}

/// The watch's refusal under a connection or query error, if it was one.
pub fn refusal_of(e: &(dyn std::error::Error + 'static)) -> Option<WatchRefusal> {
    let mut cause = Some(e);
    while let Some(err) = cause {
        if let Some(r) = err.downcast_ref::<WatchRefusal>() {
            return Some(*r);
        }
        if let Some(inner) = err.downcast_ref::<io::Error>().and_then(|io| io.get_ref()) {
            if let Some(r) = inner.downcast_ref::<WatchRefusal>() {
                return Some(*r);
            }
        }
        cause = err.source();
    }
    None
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = &polled {
            let read = &buf.filled()[before..];
            let refusal = match this.watch.feed(read) {
                Seen::Fine if this.watch.authenticated && !this.budget.take(read.len()) => {
                    Some(WatchRefusal::TooLarge)
                }
                Seen::Fine => None,
                Seen::PasswordAsked => Some(WatchRefusal::PasswordAsked),
                Seen::TooLarge => Some(WatchRefusal::TooLarge),
            };
            if let Some(r) = refusal {
                buf.set_filled(before);
                return Poll::Ready(Err(io::Error::other(r)));
            }
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// A TLS stream, watched: channel binding is the TLS stream's own.
impl<S: TlsStream + Unpin> TlsStream for Watched<S> {
    fn channel_binding(&self) -> ChannelBinding {
        self.inner.channel_binding()
    }
}

/// A TLS connector whose stream is watched above TLS (where the protocol is readable).
pub struct WatchedTls<T>(pub T, pub Policy, pub Budget);

impl<S, T> TlsConnect<S> for WatchedTls<T>
where
    T: TlsConnect<S>,
    T::Future: Send + 'static,
    T::Stream: Send + 'static,
{
    type Stream = Watched<T::Stream>;
    type Error = T::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Watched<T::Stream>, T::Error>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        let (connecting, policy, budget) = (self.0.connect(stream), self.1, self.2);
        Box::pin(async move { Ok(Watched::new(connecting.await?, policy, budget)) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sslmode_is_taken_out_of_both_forms() {
        let s = split(
            "postgres://u:p%40ss@db.example.com:5432/app?sslmode=verify-ca&application_name=x",
        )
        .unwrap();
        assert_eq!(s.mode, Some(Mode::VerifyCa));
        assert!(!s.rest.contains("sslmode"), "{}", s.rest);
        assert!(s.rest.contains("application_name=x"));
        let c: tokio_postgres::Config = s.rest.parse().unwrap();
        assert_eq!(c.get_password(), Some(&b"p@ss"[..]));
        // A space in a kept setting survives (form encoding would turn it into `+`).
        let s = split("postgres://u@h/app?options=-c%20search_path%3Dx&sslmode=require").unwrap();
        let c: tokio_postgres::Config = s.rest.parse().unwrap();
        assert_eq!(c.get_options(), Some("-c search_path=x"));

        let s = split("postgresql://u@h/app").unwrap();
        assert_eq!((s.mode, s.rest.as_str()), (None, "postgresql://u@h/app"));

        let s = split("host=h user=u password='a \\'q\\' b' sslmode = require dbname=app").unwrap();
        assert_eq!(s.mode, Some(Mode::Require));
        assert!(
            !s.rest.contains("sslmode") && !s.rest.contains("require"),
            "{}",
            s.rest
        );
        let c: tokio_postgres::Config = s.rest.parse().unwrap();
        assert_eq!(c.get_password(), Some(&b"a 'q' b"[..]));
        assert_eq!(c.get_dbname(), Some("app"));

        assert_eq!(
            split("host=h sslmode=prefer").unwrap_err(),
            Unusable::TlsMode
        );
        assert_eq!(
            split("postgres://h/db?sslmode=allow").unwrap_err(),
            Unusable::TlsMode
        );
        assert_eq!(
            split("postgres://h/db?sslmode=require&sslmode=disable").unwrap_err(),
            Unusable::TlsMode
        );
        assert_eq!(
            split("postgres://h/db?sslrootcert=/etc/ca.pem").unwrap_err(),
            Unusable::TlsFile
        );
        assert_eq!(split("host=h sslkey=/k").unwrap_err(), Unusable::TlsFile);
        assert_eq!(split("host=h dangling").unwrap_err(), Unusable::Invalid);
    }

    #[test]
    fn a_ca_certificate_must_be_pem_certificates_within_the_limit() {
        assert_eq!(ca_certificates("").unwrap_err(), Unusable::CaCertificate);
        assert_eq!(
            ca_certificates(
                "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n"
            )
            .unwrap_err(),
            Unusable::CaCertificate
        );
        assert_eq!(
            ca_certificates(&"x".repeat(MAX_CA_PEM + 1)).unwrap_err(),
            Unusable::CaCertificate
        );
    }

    /// A server message: type, length (counting itself), body.
    fn message(kind: u8, body: &[u8]) -> Vec<u8> {
        let mut m = vec![kind];
        m.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
        m.extend_from_slice(body);
        m
    }

    fn watch(reveal_password: bool) -> Watch {
        Watch {
            policy: Policy { reveal_password },
            ..Watch::default()
        }
    }

    #[test]
    fn the_watch_stops_a_password_request_and_lets_scram_through() {
        // SCRAM: the mechanism list, then a continue, then OK: let through.
        let mut scram = message(b'R', &[0, 0, 0, 10, b'S', b'C', b'R', b'A', b'M', 0, 0]);
        scram.extend(message(b'R', &[0, 0, 0, 11, 1, 2, 3]));
        scram.extend(message(b'R', &[0, 0, 0, 0]));
        // Byte by byte, as a slow network would deliver it.
        let mut w = watch(false);
        let seen: Vec<Seen> = scram.iter().map(|b| w.feed(&[*b])).collect();
        assert!(seen.iter().all(|s| *s == Seen::Fine));
        assert!(w.authenticated);

        // A notice first, then a clear-text or MD5 request: refused wherever the reads split.
        for code in [3u8, 5] {
            let mut asked = message(b'N', b"SNOTICE\0\0");
            asked.extend(message(b'R', &[0, 0, 0, code, 9, 9, 9, 9]));
            for cut in 0..asked.len() {
                let mut w = watch(false);
                let a = w.feed(&asked[..cut]);
                let b = w.feed(&asked[cut..]);
                assert!(
                    a == Seen::PasswordAsked || b == Seen::PasswordAsked,
                    "code {code}, cut at {cut}"
                );
            }
            // A verified server may ask.
            assert_eq!(watch(true).feed(&asked), Seen::Fine);
        }
        // After authentication, an `R` message is not looked into.
        let mut later = message(b'R', &[0, 0, 0, 0]);
        later.extend(message(b'R', &[0, 0, 0, 3]));
        assert_eq!(watch(false).feed(&later), Seen::Fine);
    }

    #[test]
    fn a_message_past_the_limit_is_refused_before_it_is_buffered() {
        let mut w = watch(true);
        let mut huge = vec![b'D'];
        huge.extend_from_slice(&(MAX_MESSAGE as u32 + 5).to_be_bytes());
        assert_eq!(w.feed(&huge), Seen::TooLarge);
        // Messages within it pass, whatever their split.
        let row = message(b'D', &vec![7u8; 100_000]);
        let mut w = watch(true);
        assert_eq!(w.feed(&row[..3]), Seen::Fine);
        assert_eq!(w.feed(&row[3..50_000]), Seen::Fine);
        assert_eq!(w.feed(&row[50_000..]), Seen::Fine);
        assert_eq!(w.header_len, 0, "at a message boundary");
    }
}
