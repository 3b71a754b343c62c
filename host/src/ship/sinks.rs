//! The sinks: where a batch of records goes, and what counts as its acknowledgement.
//!
//! - `stdout`: the lines written and flushed.
//! - `syslog` over TCP or TLS: every message written to the connection (syslog has no
//!   application-level acknowledgement: what the receiver had not processed when it failed is
//!   lost with it); over UDP: every datagram handed to the kernel.
//! - `otlp`: the receiver's 2xx answer to the POST.

use std::io::Write;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use super::format;
use super::tail::Line;
use crate::manifest::{SecretValue, ShipSink, SyslogFormat, SyslogTransport};

/// How long connecting, one write, or one OTLP exchange may take.
const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// A destination for batches of records.
pub(super) trait Sink: Send {
    /// Send `batch` (whole, in order); `Ok` once the sink acknowledged every record in it.
    fn send(&mut self, batch: &[Line]) -> Result<(), String>;
}

/// The sink a `[[audit.ship]]` entry describes.
pub(super) fn open(sink: &ShipSink) -> Result<Box<dyn Sink>, String> {
    Ok(match sink {
        ShipSink::Stdout => Box::new(Stdout),
        ShipSink::Syslog {
            transport,
            host,
            port,
            format,
            ca,
        } => Box::new(Syslog {
            transport: *transport,
            host: host.clone(),
            port: *port,
            format: *format,
            hostname: format::hostname(),
            tls: match transport {
                SyslogTransport::Tls => Some(tls_config(ca.as_deref())?),
                _ => None,
            },
            tcp: None,
        }),
        ShipSink::Otlp { url, headers, json } => Box::new(Otlp::new(url, headers, *json)?),
    })
}

/// A record's line parsed; a line that is not an object (never written by warden) as `{}`.
fn parsed(line: &Line) -> Value {
    serde_json::from_slice(&line.bytes).unwrap_or_else(|_| Value::Object(Default::default()))
}

struct Stdout;

impl Sink for Stdout {
    fn send(&mut self, batch: &[Line]) -> Result<(), String> {
        let stdout = std::io::stdout();
        let mut out = stdout.lock();
        let mut buffer = Vec::with_capacity(batch.iter().map(|l| l.bytes.len() + 1).sum());
        for line in batch {
            buffer.extend_from_slice(&line.bytes);
            buffer.push(b'\n');
        }
        out.write_all(&buffer)
            .and_then(|()| out.flush())
            .map_err(|e| format!("cannot write to standard output: {e}"))
    }
}

struct Syslog {
    transport: SyslogTransport,
    host: String,
    port: u16,
    format: SyslogFormat,
    hostname: String,
    /// For `tls://`: the TLS client configuration.
    tls: Option<Arc<rustls::ClientConfig>>,
    /// The open connection, dropped on any error and opened again by the next send.
    tcp: Option<Connection>,
}

/// A syslog connection: plain TCP or TLS over it.
enum Connection {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Connection {
    fn socket(&self) -> &TcpStream {
        match self {
            Connection::Plain(stream) => stream,
            Connection::Tls(stream) => stream.get_ref(),
        }
    }

    fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            Connection::Plain(stream) => stream.write_all(bytes).and_then(|()| stream.flush()),
            Connection::Tls(stream) => stream.write_all(bytes).and_then(|()| stream.flush()),
        }
    }
}

/// The TLS configuration of a `tls://` syslog sink: ring, the roots of `ca` (a PEM file) or
/// the built-in Mozilla roots, no ALPN.
fn tls_config(ca: Option<&std::path::Path>) -> Result<Arc<rustls::ClientConfig>, String> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject as _;
    let mut roots = rustls::RootCertStore::empty();
    match ca {
        Some(path) => {
            let certs = CertificateDer::pem_file_iter(path)
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .map_err(|e| format!("cannot read the CA file {}: {e}", path.display()))?;
            let (added, _) = roots.add_parsable_certificates(certs);
            if added == 0 {
                return Err(format!("{} holds no usable CA certificate", path.display()));
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS is unavailable: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

impl Syslog {
    fn addresses(&self) -> Result<Vec<SocketAddr>, String> {
        (self.host.as_str(), self.port)
            .to_socket_addrs()
            .map(Iterator::collect)
            .map_err(|e| format!("cannot resolve {}: {e}", self.host))
    }

    fn message(&self, line: &Line) -> Vec<u8> {
        let record = parsed(line);
        let mut message = format::syslog_header(line, &record, &self.hostname).into_bytes();
        match self.format {
            SyslogFormat::Json => message.extend_from_slice(&line.bytes),
            SyslogFormat::Cef => message.extend_from_slice(format::cef(line, &record).as_bytes()),
            SyslogFormat::Ocsf => {
                message.extend_from_slice(format::ocsf(line, &record).to_string().as_bytes())
            }
        }
        message
    }

    fn connect(&self) -> Result<Connection, String> {
        let mut last = format!("{}:{} has no address", self.host, self.port);
        for addr in self.addresses()? {
            match TcpStream::connect_timeout(&addr, IO_TIMEOUT) {
                Ok(stream) => {
                    stream
                        .set_write_timeout(Some(IO_TIMEOUT))
                        .and_then(|()| stream.set_read_timeout(Some(IO_TIMEOUT)))
                        .map_err(|e| e.to_string())?;
                    let _ = stream.set_nodelay(true);
                    return match &self.tls {
                        None => Ok(Connection::Plain(stream)),
                        Some(config) => self.handshake(config, stream),
                    };
                }
                Err(e) => last = format!("cannot connect to {addr}: {e}"),
            }
        }
        Err(last)
    }

    /// TLS over `stream`, the handshake done (so a certificate the roots refuse is reported
    /// as such, before any record is written).
    fn handshake(
        &self,
        config: &Arc<rustls::ClientConfig>,
        mut stream: TcpStream,
    ) -> Result<Connection, String> {
        let name = match self.host.parse::<std::net::IpAddr>() {
            Ok(ip) => rustls::pki_types::ServerName::IpAddress(ip.into()),
            Err(_) => rustls::pki_types::ServerName::try_from(self.host.clone())
                .map_err(|e| format!("invalid server name {}: {e}", self.host))?,
        };
        let mut connection = rustls::ClientConnection::new(config.clone(), name)
            .map_err(|e| format!("TLS with {}: {e}", self.host))?;
        while connection.is_handshaking() {
            connection
                .complete_io(&mut stream)
                .map_err(|e| format!("TLS with {}:{} failed: {e}", self.host, self.port))?;
        }
        Ok(Connection::Tls(Box::new(rustls::StreamOwned::new(
            connection, stream,
        ))))
    }
}

impl Sink for Syslog {
    fn send(&mut self, batch: &[Line]) -> Result<(), String> {
        match self.transport {
            SyslogTransport::Tcp | SyslogTransport::Tls => {
                // Octet-counting framing (RFC 6587): `LEN SP MSG`, so a message may hold
                // anything, newlines too.
                let mut frames = Vec::new();
                for line in batch {
                    let message = self.message(line);
                    frames.extend_from_slice(format!("{} ", message.len()).as_bytes());
                    frames.extend_from_slice(&message);
                }
                let stream = match self.tcp.as_mut() {
                    Some(stream) => stream,
                    None => self.tcp.insert(self.connect()?),
                };
                if let Err(e) = stream.send(&frames) {
                    self.tcp = None;
                    return Err(format!("cannot send to {}:{}: {e}", self.host, self.port));
                }
                // A receiver that closed the connection shows it on the next write only: look
                // now, so a batch written into a closed connection is not taken as sent.
                if peer_closed(stream.socket()) {
                    self.tcp = None;
                    return Err(format!("{}:{} closed the connection", self.host, self.port));
                }
                Ok(())
            }
            SyslogTransport::Udp => {
                let addresses = self.addresses()?;
                let Some(addr) = addresses.first() else {
                    return Err(format!("{}:{} has no address", self.host, self.port));
                };
                let bind: SocketAddr = if addr.is_ipv4() {
                    ([0, 0, 0, 0], 0).into()
                } else {
                    ([0u16; 8], 0).into()
                };
                let socket = UdpSocket::bind(bind).map_err(|e| e.to_string())?;
                for line in batch {
                    let message = self.message(line);
                    if let Err(e) = socket.send_to(&message, addr) {
                        if e.raw_os_error() == Some(libc::EMSGSIZE) {
                            // Too big for one datagram: it can never be sent this way.
                            tracing::error!(
                                seq = line.seq,
                                bytes = message.len(),
                                "an audit record is too large for a UDP syslog datagram; not shipped (use tcp://)"
                            );
                            continue;
                        }
                        return Err(format!("cannot send to {addr}: {e}"));
                    }
                }
                Ok(())
            }
        }
    }
}

/// Whether the peer of `stream` has closed it (a read would return end of file).
fn peer_closed(stream: &TcpStream) -> bool {
    let mut byte = [0u8; 1];
    if stream.set_nonblocking(true).is_err() {
        return false;
    }
    let closed = matches!(stream.peek(&mut byte), Ok(0));
    let _ = stream.set_nonblocking(false);
    closed
}

struct Otlp {
    url: crate::fetch::Url,
    headers: Vec<(http::HeaderName, http::HeaderValue)>,
    /// OTLP/HTTP JSON rather than protobuf.
    json: bool,
    runtime: tokio::runtime::Runtime,
    hostname: String,
}

impl Otlp {
    fn new(url: &str, headers: &[(String, SecretValue)], json: bool) -> Result<Otlp, String> {
        let url = crate::fetch::Url::parse(url).map_err(|e| e.to_string())?;
        let headers = headers
            .iter()
            .map(|(name, value)| {
                let name = http::HeaderName::from_bytes(name.as_bytes())
                    .map_err(|_| format!("invalid header name {name:?}"))?;
                let mut value = http::HeaderValue::from_str(value.expose())
                    .map_err(|_| format!("invalid value of header {name}"))?;
                value.set_sensitive(true);
                Ok((name, value))
            })
            .collect::<Result<Vec<_>, String>>()?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the OTLP sender: {e}"))?;
        Ok(Otlp {
            url,
            headers,
            json,
            runtime,
            hostname: format::hostname(),
        })
    }

    fn request(
        &self,
        batch: &[Line],
    ) -> opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest {
        use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
        use opentelemetry_proto::tonic::common::v1::{
            AnyValue, InstrumentationScope, KeyValue, any_value,
        };
        use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
        use opentelemetry_proto::tonic::resource::v1::Resource;

        let string = |text: &str| AnyValue {
            value: Some(any_value::Value::StringValue(text.to_owned())),
        };
        let attribute = |key: &str, value: AnyValue| KeyValue {
            key: key.to_owned(),
            value: Some(value),
            ..Default::default()
        };
        let observed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        let records = batch
            .iter()
            .map(|line| {
                let record = parsed(line);
                let outcome = record.get("outcome").and_then(Value::as_str);
                let ok = matches!(outcome, None | Some("ok" | "input-required"));
                let mut attributes = vec![
                    attribute(
                        "warden.audit.seq",
                        AnyValue {
                            value: Some(any_value::Value::IntValue(
                                i64::try_from(line.seq).unwrap_or(i64::MAX),
                            )),
                        },
                    ),
                    attribute("warden.audit.kind", string(format::kind(&record))),
                ];
                for (key, name) in [
                    ("outcome", "warden.audit.outcome"),
                    ("principal", "warden.audit.principal"),
                    ("tool", "warden.audit.tool"),
                    ("plugin", "warden.audit.plugin"),
                    ("id", "warden.audit.id"),
                ] {
                    if let Some(value) = record.get(key).and_then(Value::as_str) {
                        attributes.push(attribute(name, string(value)));
                    }
                }
                LogRecord {
                    time_unix_nano: format::epoch_ms(&record)
                        .and_then(|ms| u64::try_from(ms).ok())
                        .map_or(0, |ms| ms.saturating_mul(1_000_000)),
                    observed_time_unix_nano: observed,
                    severity_number: if ok { 9 } else { 13 },
                    severity_text: if ok { "INFO" } else { "WARN" }.to_owned(),
                    // The line exactly as the file holds it: the chain can be checked from it.
                    body: Some(string(&String::from_utf8_lossy(&line.bytes))),
                    attributes,
                    event_name: "warden.audit".to_owned(),
                    ..Default::default()
                }
            })
            .collect();
        ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: Some(Resource {
                    attributes: vec![
                        attribute("service.name", string("warden")),
                        attribute("service.version", string(env!("CARGO_PKG_VERSION"))),
                        attribute("host.name", string(&self.hostname)),
                        attribute(
                            "process.pid",
                            AnyValue {
                                value: Some(any_value::Value::IntValue(i64::from(
                                    std::process::id(),
                                ))),
                            },
                        ),
                    ],
                    ..Default::default()
                }),
                scope_logs: vec![ScopeLogs {
                    scope: Some(InstrumentationScope {
                        name: "warden.audit".to_owned(),
                        version: env!("CARGO_PKG_VERSION").to_owned(),
                        ..Default::default()
                    }),
                    log_records: records,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }
}

impl Sink for Otlp {
    fn send(&mut self, batch: &[Line]) -> Result<(), String> {
        use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceResponse;
        use prost::Message;

        let message = self.request(batch);
        let (body, content_type) = if self.json {
            let body = serde_json::to_vec(&message)
                .map_err(|e| format!("cannot encode OTLP JSON: {e}"))?;
            (body, "application/json")
        } else {
            (message.encode_to_vec(), "application/x-protobuf")
        };
        let mut request =
            http::Request::post(self.url.target()).header(http::header::CONTENT_TYPE, content_type);
        for (name, value) in &self.headers {
            request = request.header(name, value);
        }
        let (status, answer) = self
            .runtime
            .block_on(crate::fetch::send(
                &self.url,
                request,
                body.into(),
                64 << 10,
                IO_TIMEOUT,
            ))
            .map_err(|e| format!("{}: {e}", self.url.shown()))?;
        if !status.is_success() {
            return Err(format!("{} answered {status}", self.url.shown()));
        }
        // A partial success means the receiver took the batch but dropped some records:
        // retrying would not help (OTLP says not to), so it is logged.
        let response = if self.json {
            serde_json::from_slice::<ExportLogsServiceResponse>(&answer).ok()
        } else {
            ExportLogsServiceResponse::decode(answer).ok()
        };
        if let Some(response) = response
            && let Some(partial) = response.partial_success
            && partial.rejected_log_records > 0
        {
            tracing::error!(
                receiver = %self.url.shown(),
                rejected = partial.rejected_log_records,
                first_seq = batch.first().map(|l| l.seq),
                last_seq = batch.last().map(|l| l.seq),
                "the OTLP receiver rejected audit records: {}",
                partial.error_message
            );
        }
        Ok(())
    }
}
