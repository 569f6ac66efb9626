//! The session front as a tower layer before socketioxide: which requests it looks at (handshakes,
//! polls, protocol 3 posts), what it answers itself, and the long-polling answers it follows to
//! learn a session's id and to drain its backlog.

use super::*;

/// Puts [`Sessions`] in front of a service.
#[derive(Clone)]
pub(crate) struct SessionsLayer {
    pub(super) sessions: Arc<Sessions>,
}

impl<S, ResBody> Layer<S> for SessionsLayer
where
    S: Service<Request<Body>, Response = Response<ResBody>, Error = Infallible> + Clone + Send + Sync + 'static,
    S::Future: Send,
    ResBody: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    ResBody::Error: Into<axum::BoxError>,
{
    type Service = SessionsService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SessionsService { inner, sessions: self.sessions.clone() }
    }
}

/// The Engine.IO close packet, posted to a polling session as its client would.
pub(super) fn close_request(path_prefix: &str, sid: Sid, protocol: ProtocolVersion) -> Request<Body> {
    // Protocol 3 (socket.io-client 2.x) prefixes each packet with its length.
    let (eio, body) = match protocol {
        ProtocolVersion::V4 => (3, "1:1"),
        _ => (4, "1"),
    };
    let mut request = Request::new(Body::from(body));
    *request.method_mut() = Method::POST;
    *request.uri_mut() = format!("{path_prefix}?EIO={eio}&transport=polling&sid={sid}")
        .parse()
        .unwrap_or_else(|_| http::Uri::from_static("/"));
    request.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain;charset=UTF-8"));
    request.extensions_mut().insert(FromGateway);
    request
}

/// The service of [`SessionsLayer`].
#[derive(Clone)]
pub(crate) struct SessionsService<S> {
    inner: S,
    sessions: Arc<Sessions>,
}

/// The inner service's answer, with its body boxed like the front's own answers.
type Boxed<ResBody> = fn(Result<Response<ResBody>, Infallible>) -> Result<Response<Body>, Infallible>;

/// What the service answers: at once, the inner service's answer, or (a protocol 3 post whose
/// body is rewritten first) a boxed future.
type Answer<F, ResBody> = Either<
    Either<std::future::Ready<Result<Response<Body>, Infallible>>, Map<F, Boxed<ResBody>>>,
    futures_util::future::BoxFuture<'static, Result<Response<Body>, Infallible>>,
>;

impl<S, ResBody> Service<Request<Body>> for SessionsService<S>
where
    S: Service<Request<Body>, Response = Response<ResBody>, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send,
    ResBody: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    ResBody::Error: Into<axum::BoxError>,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Answer<S::Future, ResBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<Body>) -> Self::Future {
        let boxed: Boxed<ResBody> = |result| result.map(|response| response.map(Body::new));
        let screened = self.sessions.screen(&request);
        let handshake = screened.is_none() && self.sessions.is_handshake(&request);
        if handshake {
            let kept = handshake_headers(request.headers(), &self.sessions.auth_cookie);
            *request.headers_mut() = kept;
        }
        if let Some(answer) = screened {
            return Either::Left(Either::Left(std::future::ready(Ok(answer))));
        }
        let (sessions, mut inner) = (self.sessions.clone(), self.inner.clone());
        if self.sessions.is_protocol3_post(&request) {
            return Either::Right(Box::pin(async move {
                let request = match sessions.rewrite_protocol3_post(request).await {
                    Ok(request) => request,
                    Err(answer) => return Ok(answer),
                };
                inner.call(request).await.map(|response| response.map(Body::new))
            }));
        }
        match Polling::of(&self.sessions, &request, handshake) {
            // The answer names the new session: who opened it is recorded from it.
            Some(Polling::Handshake) => {
                let ip = self.sessions.client_ip(&request);
                Either::Right(Box::pin(async move {
                    let (parts, body) = inner.call(request).await.unwrap_or_else(|never| match never {}).into_parts();
                    let Ok(bytes) = axum::body::to_bytes(Body::new(body), OPEN_PACKET_MAX).await else {
                        return Ok(engine_error(StatusCode::INTERNAL_SERVER_ERROR, 0, "Handshake failed"));
                    };
                    if parts.status.is_success() {
                        sessions.opened(ip, &bytes);
                    }
                    Ok(Response::from_parts(parts, Body::from(bytes)))
                }))
            }
            // The packets it answers with have left the session's queue.
            Some(Polling::Of(sid)) => Either::Right(Box::pin(async move {
                let response = inner.call(request).await.unwrap_or_else(|never| match never {});
                let hint = http_body::Body::size_hint(response.body());
                sessions.polled(sid, hint.exact().unwrap_or(hint.lower()));
                Ok(response.map(Body::new))
            })),
            None => Either::Left(Either::Right(self.inner.call(request).map(boxed))),
        }
    }
}

/// The largest handshake answer read to find the session's id (an open packet is ~100 bytes).
const OPEN_PACKET_MAX: usize = 64 * 1024;

/// A long-polling GET the front follows to its answer.
enum Polling {
    /// A handshake over long-polling.
    Handshake,
    /// A poll of session `sid`.
    Of(Sid),
}

impl Polling {
    fn of<B>(sessions: &Sessions, request: &Request<B>, handshake: bool) -> Option<Self> {
        if request.method() != Method::GET || !request.uri().path().starts_with(&sessions.path_prefix) {
            return None;
        }
        let query = request.uri().query().unwrap_or_default();
        if query_param(query, "transport").as_deref() != Some("polling") {
            return None;
        }
        if handshake {
            return Some(Polling::Handshake);
        }
        query_param(query, "sid").and_then(|sid| sid.parse().ok()).map(Polling::Of)
    }
}

impl Sessions {
    /// A request that opens a session (no `sid`), whose request socketioxide keeps.
    fn is_handshake<B>(&self, request: &Request<B>) -> bool {
        request.uri().path().starts_with(&self.path_prefix)
            && request.extensions().get::<FromGateway>().is_none()
            && request.uri().query().and_then(|q| query_param(q, "sid")).is_none()
    }

    /// A long-polling post of Engine.IO protocol 3 (socket.io-client 2.x).
    fn is_protocol3_post<B>(&self, request: &Request<B>) -> bool {
        request.method() == Method::POST
            && request.uri().path().starts_with(&self.path_prefix)
            && request.uri().query().and_then(|q| query_param(q, "EIO")).as_deref() == Some("3")
    }

    /// Reads a protocol 3 post (within `max_payload`) and drops the query socket.io-client 2.x
    /// appends to a namespace's CONNECT packet (`40/workflow?token=…,`): socketioxide would read
    /// it as part of the namespace's name and answer "Invalid namespace". The same query is on the
    /// session's handshake URL, which is where tokens are read from.
    async fn rewrite_protocol3_post(&self, request: Request<Body>) -> Result<Request<Body>, Response<Body>> {
        let (mut parts, body) = request.into_parts();
        let Ok(bytes) = axum::body::to_bytes(body, self.max_payload).await else {
            return Err(engine_error(StatusCode::PAYLOAD_TOO_LARGE, 3, "Payload too large"));
        };
        let rewritten = std::str::from_utf8(&bytes).ok().and_then(strip_connect_queries_v3);
        let body = match rewritten {
            Some(text) => {
                parts.headers.remove(header::CONTENT_LENGTH);
                Body::from(text)
            }
            None => Body::from(bytes),
        };
        Ok(Request::from_parts(parts, body))
    }
}
