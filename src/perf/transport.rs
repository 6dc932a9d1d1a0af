//! The load tool's socket: plain TCP, or TLS (amqps://) on rustls, behind
//! the readiness calls the hot loops use (`ready`, `try_read_buf`,
//! `try_write`), so producers and consumers run the same loop over both.
//!
//! TLS is driven sans-IO: the handshake is tokio-rustls's, then the
//! `ClientConnection` is taken out and fed from the `TcpStream`'s own
//! non-blocking reads and writes. Plaintext handed to `try_write` may sit
//! in rustls as records not yet sent; `ready` then also waits for
//! writability and sends them, so nothing is left behind while the loop
//! only waits to read.

use std::io::{self, Read, Write};
use std::sync::Arc;

use bytes::BytesMut;
use tokio::io::{Interest, Ready};
use tokio::net::TcpStream;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio_rustls::rustls::{self, ClientConfig, ClientConnection, RootCertStore};

use super::Error;

/// Builds the client side of amqps://: trust `ca` (PEM), present
/// `identity` (certificate and key PEM files) if given.
pub(crate) fn client_config(
    ca: &std::path::Path,
    identity: Option<(&std::path::Path, &std::path::Path)>,
) -> Result<Arc<ClientConfig>, Error> {
    let bad = |what: &str, e: &dyn std::fmt::Display| Error::Config(format!("{what}: {e}"));
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).map_err(|e| bad(&format!("--tls-ca {}", ca.display()), &e))? {
        roots.add(cert.map_err(|e| bad("--tls-ca", &e))?).map_err(|e| bad("--tls-ca", &e))?;
    }
    let builder = ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| bad("TLS", &e))?
        .with_root_certificates(roots);
    let config = match identity {
        Some((cert, key)) => {
            let certs = CertificateDer::pem_file_iter(cert)
                .and_then(|i| i.collect::<Result<Vec<_>, _>>())
                .map_err(|e| bad(&format!("--tls-cert {}", cert.display()), &e))?;
            let key =
                PrivateKeyDer::from_pem_file(key).map_err(|e| bad(&format!("--tls-key {}", key.display()), &e))?;
            builder.with_client_auth_cert(certs, key).map_err(|e| bad("--tls-cert/--tls-key", &e))?
        }
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

pub(crate) struct Transport {
    tcp: TcpStream,
    tls: Option<Box<ClientConnection>>,
}

/// `Read`/`Write` over the socket's non-blocking calls, for rustls.
struct NonBlocking<'a>(&'a TcpStream);

impl Read for NonBlocking<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.try_read(buf)
    }
}

impl Write for NonBlocking<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.try_write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// At most this many TLS reads per `try_read_buf`, so one call hands the
/// hot loop a useful batch without starving the rest of it.
const TLS_READS_PER_CALL: usize = 16;

impl Transport {
    pub(crate) async fn connect(host: &str, port: u16, tls: Option<&Arc<ClientConfig>>) -> Result<Transport, Error> {
        let tcp = TcpStream::connect((host, port)).await?;
        tcp.set_nodelay(true)?;
        let Some(config) = tls else { return Ok(Transport { tcp, tls: None }) };
        let name = ServerName::try_from(host.to_owned())
            .map_err(|e| Error::Config(format!("{host} is not a TLS server name: {e}")))?;
        let stream = tokio_rustls::TlsConnector::from(Arc::clone(config))
            .connect(name, tcp)
            .await
            .map_err(|e| Error::Protocol(format!("TLS handshake with {host}:{port} failed: {e}")))?;
        let (tcp, conn) = stream.into_inner();
        Ok(Transport { tcp, tls: Some(Box::new(conn)) })
    }

    /// Sends what rustls holds; `WouldBlock` once the socket is full.
    fn send_records(tcp: &TcpStream, tls: &mut ClientConnection) -> io::Result<()> {
        while tls.wants_write() {
            tls.write_tls(&mut NonBlocking(tcp))?;
        }
        Ok(())
    }

    /// Waits until the socket is ready for `interest`. Over TLS, records
    /// still to send are sent as the socket takes them, whatever the
    /// caller waits for.
    pub(crate) async fn ready(&mut self, interest: Interest) -> io::Result<Ready> {
        let Some(tls) = self.tls.as_mut() else { return self.tcp.ready(interest).await };
        loop {
            let wanted = if tls.wants_write() { interest | Interest::WRITABLE } else { interest };
            let ready = self.tcp.ready(wanted).await?;
            if ready.is_writable() && tls.wants_write() {
                match Self::send_records(&self.tcp, tls) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(e),
                }
            }
            let asked = (interest.is_readable() && (ready.is_readable() || ready.is_read_closed()))
                || (interest.is_writable() && ready.is_writable() && !tls.wants_write());
            if asked {
                return Ok(ready);
            }
        }
    }

    /// Takes as much of `buf` as it can without blocking.
    pub(crate) fn try_write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let Some(tls) = self.tls.as_mut() else { return self.tcp.try_write(buf) };
        // Earlier records first: their order on the wire is the order of
        // the plaintext.
        Self::send_records(&self.tcp, tls)?;
        let n = tls.writer().write(buf)?;
        match Self::send_records(&self.tcp, tls) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
        if n == 0 && !buf.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(n)
    }

    /// Appends what can be read without blocking; `Ok(0)` is the end of
    /// the stream, `WouldBlock` means nothing (no whole record) yet.
    pub(crate) fn try_read_buf(&mut self, buf: &mut BytesMut) -> io::Result<usize> {
        let Some(tls) = self.tls.as_mut() else { return self.tcp.try_read_buf(buf) };
        let mut total = 0;
        let mut eof = false;
        for _ in 0..TLS_READS_PER_CALL {
            match tls.read_tls(&mut NonBlocking(&self.tcp)) {
                Ok(0) => {
                    eof = true;
                    break;
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
            let state = tls.process_new_packets().map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            let plain = state.plaintext_bytes_to_read();
            if plain > 0 {
                let start = buf.len();
                buf.resize(start + plain, 0);
                tls.reader().read_exact(&mut buf[start..])?;
                total += plain;
            }
            if state.peer_has_closed() {
                eof = true;
                break;
            }
        }
        // A key update or an alert to answer.
        match Self::send_records(&self.tcp, tls) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
        match (total, eof) {
            (0, true) => Ok(0),
            (0, false) => Err(io::ErrorKind::WouldBlock.into()),
            (n, _) => Ok(n),
        }
    }

    pub(crate) async fn write_all(&mut self, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() {
            self.ready(Interest::WRITABLE).await?;
            match self.try_write(buf) {
                Ok(n) => buf = &buf[n..],
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
        // Over TLS: until the records are out, not only handed to rustls.
        while self.tls.as_ref().is_some_and(|t| t.wants_write()) {
            self.ready(Interest::WRITABLE).await?;
        }
        Ok(())
    }

    pub(crate) async fn read_buf(&mut self, buf: &mut BytesMut) -> io::Result<usize> {
        loop {
            self.ready(Interest::READABLE).await?;
            match self.try_read_buf(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
    }
}
