//! `sluice avro-client`: Flume's `flume-ng avro-client`. Each line of a file (or standard input)
//! becomes an event, sent with `appendBatch` calls of `AvroSourceProtocol` to an avro source
//! through the same client the avro sink uses ([`avro_ipc::client::AvroClient`]), every event
//! with the headers of a Java properties file (`-R`).
//!
//! A line is the bytes up to `\n`, without it and without a `\r` before it (Java's
//! `readLine`); an empty line is an event with an empty body; a last line without `\n` counts.
//! Any answer other than `OK`, a refused or broken connection, or a timeout stops the client
//! with an error naming how many events were acknowledged before it.

use crate::avro_event::wire_batch;
use crate::config::properties;
use crate::event::Event;
use avro_ipc::client::{AvroClient, ClientError, ClientSettings};
use avro_ipc::protocol::Status;
use std::io::BufRead;
use std::path::{Path, PathBuf};

/// Events per `appendBatch` call.
pub const BATCH_SIZE: usize = 100;

/// Why the client stopped.
#[derive(Debug, thiserror::Error)]
pub enum AvroClientError {
    /// The headers file could not be read.
    #[error("cannot read the headers file {path}: {source}")]
    HeadersIo {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The headers file is not a valid properties file.
    #[error("{path}:{line}: {message}")]
    HeadersSyntax {
        /// The file.
        path: PathBuf,
        /// The line.
        line: u32,
        /// What is wrong.
        message: String,
    },
    /// The events could not be read.
    #[error("cannot read the events from {what}: {source}")]
    Input {
        /// The file, or standard input.
        what: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The source could not be reached, or a call failed.
    #[error("{sent} event(s) acknowledged, then: {source}")]
    Rpc {
        /// Events acknowledged before the failure.
        sent: u64,
        /// Why.
        #[source]
        source: ClientError,
    },
    /// The source answered a batch with something other than `OK`.
    #[error(
        "{sent} event(s) acknowledged, then the source answered a batch of {batch} with {status:?}"
    )]
    Refused {
        /// Events acknowledged before the failure.
        sent: u64,
        /// Events in the refused batch.
        batch: usize,
        /// The answer.
        status: Status,
    },
}

/// The headers of a Java properties file (`key=value` lines), in file order.
pub fn read_headers(path: &Path) -> Result<Vec<(String, String)>, AvroClientError> {
    let text = std::fs::read_to_string(path).map_err(|source| AvroClientError::HeadersIo {
        path: path.to_owned(),
        source,
    })?;
    let props = properties::parse(&text).map_err(|(_, errors)| {
        let first = errors.into_iter().next();
        AvroClientError::HeadersSyntax {
            path: path.to_owned(),
            line: first.as_ref().map_or(0, |e| e.line),
            message: first.map_or_else(String::new, |e| e.message),
        }
    })?;
    Ok(props
        .entries
        .into_iter()
        .map(|p| (p.key, p.value))
        .collect())
}

/// Sends every line of `input` (named `what` in errors) as an event with `headers` to the avro
/// source at `settings`; the number of events acknowledged.
pub fn send_lines(
    settings: &ClientSettings,
    input: impl BufRead,
    what: &str,
    headers: &[(String, String)],
) -> Result<u64, AvroClientError> {
    let mut client =
        AvroClient::connect(settings).map_err(|source| AvroClientError::Rpc { sent: 0, source })?;
    let mut sent = 0u64;
    let mut batch = Vec::with_capacity(BATCH_SIZE);
    let mut lines = input.split(b'\n');
    loop {
        let next = lines
            .next()
            .transpose()
            .map_err(|source| AvroClientError::Input {
                what: what.to_owned(),
                source,
            })?;
        let done = next.is_none();
        if let Some(mut line) = next {
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            batch.push(Event {
                headers: headers.to_vec(),
                body: line,
            });
        }
        if batch.len() == BATCH_SIZE || (done && !batch.is_empty()) {
            match client.append_batch(&wire_batch(&batch)) {
                Ok(Status::Ok) => sent += batch.len() as u64,
                Ok(status) => {
                    return Err(AvroClientError::Refused {
                        sent,
                        batch: batch.len(),
                        status,
                    })
                }
                Err(source) => return Err(AvroClientError::Rpc { sent, source }),
            }
            batch.clear();
        }
        if done {
            return Ok(sent);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_read_as_java_properties() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("h.properties");
        std::fs::write(&path, "# c\nhost = web-1\ndc:east\nbad = \\u00zz\n").expect("write");
        let err = read_headers(&path).expect_err("bad escape").to_string();
        assert!(
            err.ends_with("h.properties:4: malformed \\uxxxx escape \"\\u00zz\""),
            "{err}"
        );
        std::fs::write(&path, "# c\nhost = web-1\ndc:east\n").expect("write");
        assert_eq!(
            read_headers(&path).expect("headers"),
            vec![
                ("host".to_owned(), "web-1".to_owned()),
                ("dc".to_owned(), "east".to_owned())
            ]
        );
        let err = read_headers(&dir.path().join("none"))
            .expect_err("missing")
            .to_string();
        assert!(err.starts_with("cannot read the headers file "), "{err}");
    }

    #[test]
    fn nobody_listening_is_an_error_with_nothing_sent() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("port")
            .port();
        let settings = ClientSettings {
            hostname: "127.0.0.1".into(),
            port,
            connect_timeout_ms: 2000,
            request_timeout_ms: 2000,
            deflate_level: None,
        };
        let err = send_lines(&settings, &b"a\n"[..], "stdin", &[]).expect_err("refused");
        assert!(
            err.to_string()
                .starts_with("0 event(s) acknowledged, then: cannot connect to 127.0.0.1:"),
            "{err}"
        );
    }
}
