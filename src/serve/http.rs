//! The HTTP side of `serve`, on hyper 1's HTTP/1 server (the only module that sees
//! hyper's server types). What a client may do is bounded: at most `MAX_CONNECTIONS` at
//! once, request heads of at most `MAX_HEAD` bytes read within `HEAD_TIMEOUT`, no request
//! body (413), GET and HEAD only (405), a bearer token when one is set (401), and a
//! connection lasts at most `CONNECTION_LIFETIME`. Log lines name the method, the path and
//! the status, never a header.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};

use super::pages::Pages;

/// Connections served at once; more wait to be accepted.
pub const MAX_CONNECTIONS: usize = 64;
/// The largest request head (request line and headers) read; larger ones get 431.
pub const MAX_HEAD: usize = 16 * 1024;
/// How long a client has to send a request head.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one connection (keep-alive included) may last.
pub const CONNECTION_LIFETIME: Duration = Duration::from_secs(120);

/// Pages only ever ask for their own inline style: no script, nothing fetched.
const CSP: &str =
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'none'; frame-ancestors 'none'";

pub struct Server {
    pub token: Option<String>,
    pub pages: Pages,
}

impl Server {
    /// Accepts connections until accepting fails.
    pub async fn serve(self, listener: tokio::net::TcpListener) -> anyhow::Result<()> {
        let server = Arc::new(self);
        let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
        loop {
            let permit = slots.clone().acquire_owned().await?;
            let (stream, peer) = match listener.accept().await {
                Ok(s) => s,
                // A client that went away before being accepted, or out of descriptors: go on.
                Err(e) => {
                    tracing::warn!("serve: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let server = server.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(|req| {
                    let server = server.clone();
                    async move { Ok::<_, Infallible>(server.answer(&req)) }
                });
                let conn = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(HEAD_TIMEOUT)
                    .max_buf_size(MAX_HEAD)
                    .serve_connection(TokioIo::new(stream), service);
                match tokio::time::timeout(CONNECTION_LIFETIME, conn).await {
                    Ok(Err(e)) => tracing::debug!("serve: connection from {peer}: {e}"),
                    Err(_) => tracing::debug!("serve: connection from {peer} closed after {CONNECTION_LIFETIME:?}"),
                    Ok(Ok(())) => {}
                }
                drop(permit);
            });
        }
    }

    fn answer(&self, req: &Request<Incoming>) -> Response<Full<Bytes>> {
        let path = req.uri().path().to_string();
        let response = self.route(req, &path);
        tracing::info!("serve: {} {} {}", req.method(), crate::redact::text(&path), response.status().as_u16());
        response
    }

    fn route(&self, req: &Request<Incoming>, path: &str) -> Response<Full<Bytes>> {
        if req.method() != Method::GET && req.method() != Method::HEAD {
            let mut r = plain(StatusCode::METHOD_NOT_ALLOWED, "prodiff serve is read-only: GET and HEAD only\n");
            r.headers_mut().insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
            return r;
        }
        if let Some(token) = &self.token {
            if !authorised(req, token) {
                let mut r = plain(StatusCode::UNAUTHORIZED, "a bearer token is required (Authorization: Bearer …)\n");
                r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"prodiff\""));
                return r;
            }
        }
        if has_body(req) {
            return plain(StatusCode::PAYLOAD_TOO_LARGE, "requests carry no body here\n");
        }
        let answer = self.pages.get(path);
        let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let len = answer.body.len();
        let body = if req.method() == Method::HEAD { Bytes::new() } else { Bytes::from(answer.body) };
        let mut r = Response::new(Full::new(body));
        *r.status_mut() = status;
        let h = r.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
        h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
        h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
        if let Some(secs) = answer.retry_after {
            h.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        r
    }
}

/// `Authorization: Bearer TOKEN`, compared in constant time.
fn authorised(req: &Request<Incoming>, token: &str) -> bool {
    let Some(value) = req.headers().get(header::AUTHORIZATION) else { return false };
    let Some(given) = value.as_bytes().strip_prefix(b"Bearer ") else { return false };
    let want = token.as_bytes();
    given.len() == want.len() && given.iter().zip(want).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

/// Whether the request announces a body (a length above zero, or a chunked one).
fn has_body(req: &Request<Incoming>) -> bool {
    let length = req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).map(str::trim);
    req.headers().contains_key(header::TRANSFER_ENCODING) || length.is_some_and(|l| l != "0")
}

fn plain(status: StatusCode, text: &'static str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}
