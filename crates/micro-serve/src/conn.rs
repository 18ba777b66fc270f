//! The HTTP/1.1 connection loop: a cap on open connections, a header read timeout per
//! connection, JSON bodies for the errors hyper answers on its own, and a graceful shutdown
//! bounded by the request timeout.

use crate::error::ApiError;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// Largest request head (request line and headers), bytes: hyper answers 431 beyond it.
pub const MAX_HEAD_BYTES: usize = 128 << 10;
/// Most headers in one request: hyper answers 431 beyond it.
pub const MAX_HEADERS: usize = 100;
/// Open files kept for what is not a connection: the store's files or sockets, the backbone,
/// the runtime, standard streams.
pub const RESERVED_FILES: u64 = 128;

/// What bounds connections: how many may be open, the time to send a request head, and how
/// long shutdown waits for open connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnLimits {
    /// Connections beyond this many are answered 503 and closed.
    pub max_connections: usize,
    pub header_timeout: Duration,
    /// After the shutdown signal, connections still open after this are closed.
    pub grace: Duration,
}

impl From<&crate::state::Limits> for ConnLimits {
    fn from(l: &crate::state::Limits) -> Self {
        ConnLimits {
            max_connections: l.max_connections,
            header_timeout: l.header_timeout,
            // A request that runs longer is answered 408, so honest requests end within it.
            grace: l.timeout,
        }
    }
}

/// Binds `addr` (port 0: the OS picks one) and returns the listener and its bound address.
pub async fn bind(addr: &str) -> io::Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    Ok((listener, local))
}

/// Raises the soft limit on open files, as far as the hard limit allows, to what `want`
/// connections and [`RESERVED_FILES`] need (each connection is an open file); returns the
/// soft limit and how many connections fit in it: `want`, or fewer when the hard limit is
/// lower.
pub fn open_files_for(want: usize) -> io::Result<(u64, usize)> {
    let need = (want as u64).saturating_add(RESERVED_FILES);
    let soft = rlimit::increase_nofile_limit(need)?;
    let fit = soft.saturating_sub(RESERVED_FILES).max(1);
    Ok((soft, want.min(usize::try_from(fit).unwrap_or(usize::MAX))))
}

/// Serves `app` on `listener` until `shutdown` resolves.
///
/// Each connection is HTTP/1.1 with a header read timeout, so a client that stops in the
/// middle of its headers is dropped. Past [`ConnLimits::max_connections`] a new connection is
/// answered 503 at once and closed, so idle connections cannot use up the open files that
/// honest clients need. On shutdown, idle connections close at once, busy ones finish their
/// request, and whatever is still open after [`ConnLimits::grace`] is closed.
pub async fn serve_router(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    limits: ConnLimits,
) -> io::Result<()> {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(MAX_HEAD_BYTES)
        .max_headers(MAX_HEADERS)
        // One buffer per write, so that hyper's own error answers arrive whole at `JsonHeads`.
        .writev(false);
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let mut conns = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        accept_failed(e).await;
                        continue;
                    }
                };
                // Replies are small: send them without waiting to coalesce packets.
                let _ = stream.set_nodelay(true);
                let Ok(slot) = slots.clone().try_acquire_owned() else {
                    conns.spawn(refuse(stream, peer, limits.max_connections));
                    continue;
                };
                let io = JsonHeads::new(TokioIo::new(stream), peer);
                let service = TowerToHyperService::new(app.clone());
                let conn = graceful.watch(http.serve_connection(io, service));
                conns.spawn(async move {
                    // A connection error (client gone, header timeout) ends only that connection.
                    let _ = conn.await;
                    drop(slot);
                });
            }
        }
    }
    drop(listener);
    if tokio::time::timeout(limits.grace, graceful.shutdown())
        .await
        .is_err()
    {
        eprintln!(
            "micro serve: closing {} connection(s) still open {} ms after the shutdown signal",
            conns.len(),
            limits.grace.as_millis()
        );
        conns.abort_all();
    }
    while conns.join_next().await.is_some() {}
    Ok(())
}

/// After a failed accept: a connection reset before it was taken is the client's business;
/// anything else (out of file descriptors) is logged and paused on, so that a persistent error
/// does not spin the loop.
async fn accept_failed(e: io::Error) {
    use io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if !matches!(
        e.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        eprintln!("micro serve: accept failed: {e}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Answers a connection over the cap with 503 and closes it, within a second.
async fn refuse(mut stream: TcpStream, peer: SocketAddr, cap: usize) {
    let e = ApiError::unavailable(format!(
        "the server has {cap} open connections, its limit (--max-connections): retry shortly"
    ));
    eprintln!("micro serve: rejected a connection from {peer}: {e}");
    let answer = raw_answer(&e, "retry-after: 1\r\n");
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        stream.write_all(&answer).await?;
        stream.shutdown().await?;
        // Read what the client sent until it closes: closing with unread data would reset
        // the connection, and the client could lose the answer.
        let mut sink = [0u8; 4096];
        while stream.read(&mut sink).await? > 0 {}
        Ok::<_, io::Error>(())
    })
    .await;
}

/// A whole HTTP/1.1 answer with `e`'s JSON body that closes the connection.
fn raw_answer(e: &ApiError, extra_headers: &str) -> Vec<u8> {
    let body = e.json_body();
    format!(
        "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n{extra_headers}connection: close\r\n\r\n{body}",
        e.status.as_u16(),
        e.status.canonical_reason().unwrap_or(""),
        body.len()
    )
    .into_bytes()
}

/// A connection's socket that rewrites the answers hyper sends on its own, before any
/// handler runs, for a request head it cannot take (400 malformed, 414 URI too long, 431
/// head too large): hyper sends them with an empty body; every other error is JSON.
struct JsonHeads<T> {
    io: T,
    peer: SocketAddr,
    /// The rewritten answer being written, and how much of it is written.
    pending: Option<(Vec<u8>, usize)>,
}

impl<T> JsonHeads<T> {
    fn new(io: T, peer: SocketAddr) -> Self {
        JsonHeads {
            io,
            peer,
            pending: None,
        }
    }
}

/// The JSON answer that replaces `buf` when `buf` is one of hyper's own empty error answers.
/// The handlers' errors never have an empty body, so an empty 400, 414 or 431 is hyper's.
fn rewrite_head_error(buf: &[u8]) -> Option<ApiError> {
    let head = std::str::from_utf8(buf).ok()?;
    let rest = head.strip_prefix("HTTP/1.1 ")?;
    if !head.ends_with("\r\n\r\n")
        || !head
            .to_ascii_lowercase()
            .contains("\r\ncontent-length: 0\r\n")
    {
        return None;
    }
    use axum::http::StatusCode;
    let (status, code, message) = match rest.get(..3)? {
        "400" => (
            StatusCode::BAD_REQUEST,
            "bad_request",
            "malformed HTTP request head".to_owned(),
        ),
        "414" => (
            StatusCode::URI_TOO_LONG,
            "uri_too_long",
            "the request URI is longer than 65534 bytes: send the data in the body".to_owned(),
        ),
        "431" => (
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "headers_too_large",
            format!(
                "the request head is larger than {} KiB or has more than {MAX_HEADERS} headers",
                MAX_HEAD_BYTES >> 10
            ),
        ),
        _ => return None,
    };
    Some(ApiError::new(status, code, message))
}

impl<T: hyper::rt::Read + Unpin> hyper::rt::Read for JsonHeads<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl<T: hyper::rt::Write + Unpin> hyper::rt::Write for JsonHeads<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.pending.is_none() {
            if let Some(e) = rewrite_head_error(buf) {
                eprintln!(
                    "micro serve: {} from {}: {}",
                    e.status.as_u16(),
                    this.peer,
                    e.message
                );
                this.pending = Some((raw_answer(&e, ""), 0));
            }
        }
        let Some((answer, at)) = &mut this.pending else {
            return Pin::new(&mut this.io).poll_write(cx, buf);
        };
        // hyper offers the same buffer again until it is reported written.
        while *at < answer.len() {
            let n = ready!(Pin::new(&mut this.io).poll_write(cx, &answer[*at..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *at += n;
        }
        this.pending = None;
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_hypers_empty_error_answers_are_rewritten() {
        let hyper_431 =
            b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\ndate: x\r\n\r\n";
        let e = rewrite_head_error(hyper_431).expect("rewritten");
        assert_eq!(e.status.as_u16(), 431);
        let e = rewrite_head_error(b"HTTP/1.1 414 URI Too Long\r\ncontent-length: 0\r\n\r\n");
        assert_eq!(e.map(|e| e.status.as_u16()), Some(414));
        // A handler's error has a body; a success is never touched.
        let json = b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 9\r\n\r\n{\"a\": 1}";
        assert!(rewrite_head_error(json).is_none());
        assert!(
            rewrite_head_error(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n").is_none()
        );
        let answer =
            String::from_utf8(raw_answer(&rewrite_head_error(hyper_431).unwrap(), "")).unwrap();
        let (head, body) = answer.split_once("\r\n\r\n").unwrap();
        assert!(
            head.contains(&format!("content-length: {}", body.len())),
            "{answer}"
        );
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["error"]["code"], "headers_too_large");
    }
}
