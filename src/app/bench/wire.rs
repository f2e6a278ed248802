//! A plain HTTP/1.1 keep-alive connection for the bench's polls and
//! pickups ([`Connection`]), as `wrk` makes them: one request at a time on
//! its own TCP connection, the whole response read before the next. A
//! general client (reqwest) spent more of the shared CPUs, and added more
//! latency, than the API it measured.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::BenchError;

fn failed(e: impl std::fmt::Display) -> BenchError {
    BenchError::Load(format!("the bench's connection: {e}"))
}

/// See the module.
pub(super) struct Connection {
    stream: TcpStream,
    host: String,
    buffer: Vec<u8>,
}

impl Connection {
    /// A connection to `base` (`http://host:port`).
    pub(super) async fn open(base: &str) -> Result<Connection, BenchError> {
        let host = base.strip_prefix("http://").unwrap_or(base).to_string();
        let stream = TcpStream::connect(&host).await.map_err(failed)?;
        stream.set_nodelay(true).map_err(failed)?;
        Ok(Connection {
            stream,
            host,
            buffer: Vec::with_capacity(4096),
        })
    }

    /// `GET path` with a bearer token: the response's status, once its
    /// whole body has been read.
    pub(super) async fn get(&mut self, path: &str, bearer: &str) -> Result<u16, BenchError> {
        let (status, _) = self.request("GET", path, bearer, None).await?;
        Ok(status)
    }

    /// `POST path` of a JSON `body` with a bearer token: the response's
    /// status and body.
    pub(super) async fn post(
        &mut self,
        path: &str,
        bearer: &str,
        body: &str,
    ) -> Result<(u16, Vec<u8>), BenchError> {
        self.request("POST", path, bearer, Some(body)).await
    }

    /// Sends one request, written in one piece, and reads its whole
    /// response: its status and body.
    async fn request(
        &mut self,
        method: &str,
        path: &str,
        bearer: &str,
        body: Option<&str>,
    ) -> Result<(u16, Vec<u8>), BenchError> {
        let mut request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {bearer}\r\n",
            self.host
        );
        if let Some(body) = body {
            request.push_str(&format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            ));
        } else {
            request.push_str("\r\n");
        }
        self.stream
            .write_all(request.as_bytes())
            .await
            .map_err(failed)?;
        let head_len = loop {
            if let Some(end) = find(&self.buffer, b"\r\n\r\n") {
                break end + 4;
            }
            self.fill().await?;
        };
        let head = std::str::from_utf8(&self.buffer[..head_len]).map_err(failed)?;
        let status = head
            .get(9..12)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| failed(format!("no status in {head:?}")))?;
        let body_len: usize = head
            .lines()
            .filter_map(|line| line.split_once(':'))
            .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, value)| value.trim().parse().ok())
            .ok_or_else(|| failed(format!("no Content-Length in {head:?}")))?;
        while self.buffer.len() < head_len + body_len {
            self.fill().await?;
        }
        let body = self.buffer[head_len..head_len + body_len].to_vec();
        self.buffer.drain(..head_len + body_len);
        Ok((status, body))
    }

    /// Reads what has arrived onto the buffer.
    async fn fill(&mut self) -> Result<(), BenchError> {
        let mut chunk = [0u8; 8192];
        match self.stream.read(&mut chunk).await.map_err(failed)? {
            0 => Err(failed("closed by the API")),
            n => {
                self.buffer.extend_from_slice(&chunk[..n]);
                Ok(())
            }
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
