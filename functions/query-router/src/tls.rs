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
use std::io;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

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
        if kept.is_empty() {
            url.set_query(None);
        } else {
            url.query_pairs_mut().clear().extend_pairs(kept);
        }
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

/// The message a server sends to ask for a password in clear text (`AuthenticationCleartextPassword`).
const CLEARTEXT: u32 = 3;
const AUTH_OK: u32 = 0;

/// A stream that, while `watching`, reads the server's messages until authentication ends and
/// fails the read that would hand a request for a clear-text password to the client: on a
/// plain-text connection the password would cross the network as it is.
pub struct Watched<S> {
    inner: S,
    watch: Option<AuthWatch>,
}

impl<S> Watched<S> {
    pub fn new(inner: S, watching: bool) -> Self {
        Watched {
            inner,
            watch: watching.then(AuthWatch::default),
        }
    }
}

/// The server's messages as bytes arrive: a 5-byte header (type, length), then the body, of
/// which an authentication request's first 4 bytes say which kind it is.
#[derive(Default)]
struct AuthWatch {
    header: [u8; 5],
    header_len: usize,
    body_left: usize,
    code: [u8; 4],
    code_len: usize,
}

/// What the watch saw.
#[derive(Debug, PartialEq, Eq)]
enum Seen {
    More,
    Authenticated,
    Cleartext,
}

impl AuthWatch {
    fn feed(&mut self, bytes: &[u8]) -> Seen {
        for &b in bytes {
            if self.header_len < 5 {
                self.header[self.header_len] = b;
                self.header_len += 1;
                if self.header_len == 5 {
                    let len = u32::from_be_bytes([
                        self.header[1],
                        self.header[2],
                        self.header[3],
                        self.header[4],
                    ]) as usize;
                    self.body_left = len.saturating_sub(4);
                    self.code_len = 0;
                    if self.body_left == 0 {
                        self.header_len = 0;
                    }
                }
                continue;
            }
            if self.header[0] == b'R' && self.code_len < 4 {
                self.code[self.code_len] = b;
                self.code_len += 1;
                if self.code_len == 4 {
                    match u32::from_be_bytes(self.code) {
                        CLEARTEXT => return Seen::Cleartext,
                        AUTH_OK => return Seen::Authenticated,
                        _ => {}
                    }
                }
            }
            self.body_left -= 1;
            if self.body_left == 0 {
                self.header_len = 0;
            }
        }
        Seen::More
    }
}

/// The error a watched read fails with (found by `is_cleartext_refusal`).
#[derive(Debug, thiserror::Error)]
#[error("the server asked for a clear-text password on an unencrypted connection")]
pub struct CleartextRefused;

/// Whether a connection error is the watch's refusal.
pub fn is_cleartext_refusal(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(e);
    while let Some(err) = cause {
        if err.is::<CleartextRefused>() {
            return true;
        }
        if let Some(inner) = err.downcast_ref::<io::Error>().and_then(|io| io.get_ref()) {
            if inner.is::<CleartextRefused>() {
                return true;
            }
        }
        cause = err.source();
    }
    false
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
        if let (Poll::Ready(Ok(())), Some(watch)) = (&polled, this.watch.as_mut()) {
            match watch.feed(&buf.filled()[before..]) {
                Seen::More => {}
                Seen::Authenticated => this.watch = None,
                Seen::Cleartext => {
                    buf.set_filled(before);
                    return Poll::Ready(Err(io::Error::other(CleartextRefused)));
                }
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

    #[test]
    fn the_watch_stops_a_cleartext_request_and_lets_scram_through() {
        // SCRAM: the mechanism list, then a continue, then OK: let through, watch ends.
        let mut scram = message(b'R', &[0, 0, 0, 10, b'S', b'C', b'R', b'A', b'M', 0, 0]);
        scram.extend(message(b'R', &[0, 0, 0, 11, 1, 2, 3]));
        scram.extend(message(b'R', &[0, 0, 0, 0]));
        // Byte by byte, as a slow network would deliver it.
        let mut w = AuthWatch::default();
        let seen: Vec<Seen> = scram.iter().map(|b| w.feed(&[*b])).collect();
        assert_eq!(seen.last(), Some(&Seen::Authenticated));
        assert!(!seen.contains(&Seen::Cleartext));

        // A notice first, then the clear-text request: refused wherever the reads split.
        let mut clear = message(b'N', b"SNOTICE\0\0");
        clear.extend(message(b'R', &[0, 0, 0, 3]));
        for cut in 0..clear.len() {
            let mut w = AuthWatch::default();
            let a = w.feed(&clear[..cut]);
            let b = w.feed(&clear[cut..]);
            assert!(a == Seen::Cleartext || b == Seen::Cleartext, "cut at {cut}");
        }
        // MD5 (5) is not clear text.
        assert_eq!(
            AuthWatch::default().feed(&message(b'R', &[0, 0, 0, 5, 1, 2, 3, 4])),
            Seen::More
        );
    }
}
