//! The HTTP/1.1 side of a kubelet fetch: the URL the scraper passes, the request head, and
//! one GET exchange on a kept-alive stream, reading the response straight into the caller's
//! buffer.
//!
//! A kubelet connection sits idle for a whole resolution between requests, at 5,000 nodes at
//! once; so nothing here keeps a buffer of its own between exchanges: the head and the body
//! are read into the body buffer the scraper reuses, and a chunked body is decoded in place.

use std::io;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Where one kubelet URL points: `http[s]://HOST[:PORT]/PATH`, HOST possibly a bracketed IPv6
/// literal. Every field borrows from the URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Target<'u> {
    pub(crate) tls: bool,
    /// `scheme://authority`: what identifies a kept-alive connection.
    pub(crate) origin: &'u str,
    /// `HOST[:PORT]` as written, for the `Host` header.
    pub(crate) authority: &'u str,
    /// The host without IPv6 brackets, as the TLS server name and for connecting.
    pub(crate) host: &'u str,
    pub(crate) port: u16,
    /// The path and query, `/` when the URL has none.
    pub(crate) path: &'u str,
}

impl<'u> Target<'u> {
    /// `None` for anything that is not an absolute http(s) URL with a host.
    pub(crate) fn parse(url: &'u str) -> Option<Self> {
        let (tls, rest) = if let Some(rest) = strip_prefix_ignore_case(url, "https://") {
            (true, rest)
        } else {
            (false, strip_prefix_ignore_case(url, "http://")?)
        };
        let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(authority_end);
        if tail.contains('#') || authority.contains('@') {
            return None;
        }
        let path = match tail {
            "" => "/",
            t if t.starts_with('?') => return None,
            t => t,
        };
        let default_port = if tls { 443 } else { 80 };
        let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
            let (host, after) = bracketed.split_once(']')?;
            let port = match after {
                "" => default_port,
                p => p.strip_prefix(':')?.parse().ok()?,
            };
            (host, port)
        } else {
            match authority.rsplit_once(':') {
                Some((host, port)) => (host, port.parse().ok()?),
                None => (authority, default_port),
            }
        };
        if host.is_empty() || host.contains([':', ' ']) && !authority.starts_with('[') {
            return None;
        }
        let origin_len = url.len() - rest.len() + authority.len();
        Some(Target {
            tls,
            origin: &url[..origin_len],
            authority,
            host,
            port,
            path,
        })
    }
}

fn strip_prefix_ignore_case<'s>(text: &'s str, prefix: &str) -> Option<&'s str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then(|| &text[prefix.len()..])
}

/// The whole request head, written in one write. `authorization` is the header's value.
pub(crate) fn request_head(target: &Target<'_>, authorization: Option<&[u8]>) -> Vec<u8> {
    const FIXED: &[u8] = concat!(
        "User-Agent: metrics-server/v",
        env!("CARGO_PKG_VERSION"),
        " metrics-server-rs\r\n",
        "Accept: text/plain;version=0.0.4;q=1,*/*;q=0.1\r\n",
        // Upstream (Go's transport) asks for gzip. We ask for the plain body: inflating it
        // cost more of our CPU than parsing it, and deflating costs every kubelet too, to
        // save ~35 KB per node per period of in-cluster traffic. A gzipped body is still
        // accepted from a kubelet that sends one anyway.
        "Accept-Encoding: identity\r\n",
    )
    .as_bytes();
    let mut head = Vec::with_capacity(
        64 + target.path.len() + target.authority.len() + FIXED.len() + authorization.map_or(0, |a| a.len() + 17),
    );
    head.extend_from_slice(b"GET ");
    head.extend_from_slice(target.path.as_bytes());
    head.extend_from_slice(b" HTTP/1.1\r\nHost: ");
    head.extend_from_slice(target.authority.as_bytes());
    head.extend_from_slice(b"\r\n");
    head.extend_from_slice(FIXED);
    if let Some(value) = authorization {
        head.extend_from_slice(b"Authorization: ");
        head.extend_from_slice(value);
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(b"\r\n");
    head
}

/// What one exchange produced; the body, when read, is in the caller's buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Response {
    pub(crate) status: u16,
    /// `Content-Encoding: gzip`: the buffer holds the compressed body.
    pub(crate) gzip: bool,
    /// The response was complete and well framed and the server keeps the connection open:
    /// it may carry the next request.
    pub(crate) reusable: bool,
}

/// Why an exchange failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ExchangeError {
    /// Nothing of a response arrived: sending failed, or the connection ended or failed before
    /// its first byte. On a connection kept from an earlier request this is the server having
    /// closed it while idle, and the request is safe to send again on a new one.
    #[error("connection closed before the response: {0}")]
    NoResponse(#[source] io::Error),
    /// The response head is not HTTP/1.x we can frame.
    #[error("invalid HTTP response: {0}")]
    Head(String),
    /// The body could not be read to its end.
    #[error("{0}")]
    Body(String),
    /// The (undecompressed) body is over the cap.
    #[error("response body larger than {limit} bytes")]
    TooLarge { limit: usize },
}

/// Heads (including skipped 1xx heads) longer than this are refused.
const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Headers a kubelet response may have; it sends about five.
const MAX_HEADERS: usize = 48;
/// The least free room a read is offered; a TLS record's plaintext is up to 16 KiB.
const MIN_READ_BYTES: usize = 16 * 1024;

/// Sends `request` and reads the response. The head and the body go into `buf`; on return
/// with status 200 `buf` holds exactly the body (chunked framing removed, still compressed if
/// `gzip`). Any other status returns after the head, its body unread (`reusable` is false).
pub(crate) async fn get<S>(
    stream: &mut S,
    request: &[u8],
    buf: &mut Vec<u8>,
    limit: usize,
) -> Result<Response, ExchangeError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    buf.clear();
    stream.write_all(request).await.map_err(ExchangeError::NoResponse)?;
    stream.flush().await.map_err(ExchangeError::NoResponse)?;
    let mut filled = Filled { buf, len: 0 };
    let result = exchange(stream, &mut filled, limit).await;
    let len = filled.len;
    buf.truncate(len);
    // Only a 200's body is handed on; nothing of a failed or refused one is left behind.
    if result.as_ref().map_or(true, |r| r.status != 200) {
        buf.clear();
    }
    result
}

async fn exchange<S>(stream: &mut S, filled: &mut Filled<'_>, limit: usize) -> Result<Response, ExchangeError>
where
    S: AsyncRead + Unpin,
{
    let (head, head_len) = read_head(stream, filled).await?;
    if head.status != 200 {
        return Ok(Response {
            status: head.status,
            gzip: head.gzip,
            reusable: false,
        });
    }
    let complete = match head.framing {
        Framing::Length(length) => read_sized(stream, filled, head_len, length, limit).await?,
        Framing::Chunked => read_chunked(stream, filled, head_len, limit).await?,
        Framing::UntilClose => read_until_close(stream, filled, head_len, limit).await?,
    };
    Ok(Response {
        status: head.status,
        gzip: head.gzip,
        reusable: head.keep_alive && complete,
    })
}

/// The caller's buffer: `buf[..len]` is what was read and is still wanted.
///
/// Reads land in the buffer's spare capacity, so nothing is zero-filled first: room offered
/// but never filled is never touched, and at the start of a scrape cycle, when every kubelet
/// is read at once, untouched room is not resident memory.
struct Filled<'b> {
    buf: &'b mut Vec<u8>,
    len: usize,
}

impl Filled<'_> {
    fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// One read appended after what is there, offered at least `MIN_READ_BYTES` of room;
    /// `Ok(0)` at the end of the stream.
    async fn read_more<S: AsyncRead + Unpin>(&mut self, stream: &mut S) -> io::Result<usize> {
        self.read_more_within(stream, MIN_READ_BYTES).await
    }

    /// As [`read_more`](Self::read_more), offered at least `room` bytes (a sized body needs
    /// no more than what is left of it, plus one byte to notice a peer sending extra).
    async fn read_more_within<S: AsyncRead + Unpin>(&mut self, stream: &mut S, room: usize) -> io::Result<usize> {
        self.buf.truncate(self.len);
        // Amortized growth for heads and unsized bodies; a sized body reserved its length.
        self.buf.reserve(room);
        let n = stream.read_buf(self.buf).await?;
        self.len += n;
        Ok(n)
    }

    /// Drops `n` bytes from the front.
    fn consume_front(&mut self, n: usize) {
        self.buf.copy_within(n..self.len, 0);
        self.len -= n;
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Length(u64),
    Chunked,
    UntilClose,
}

#[derive(Debug, Clone, Copy)]
struct Head {
    status: u16,
    gzip: bool,
    framing: Framing,
    keep_alive: bool,
}

/// Reads up to the end of the final (non-1xx) head; returns it and its length in `filled`.
async fn read_head<S: AsyncRead + Unpin>(
    stream: &mut S,
    filled: &mut Filled<'_>,
) -> Result<(Head, usize), ExchangeError> {
    let mut skipped = 0;
    let mut received_any = false;
    loop {
        if filled.len > 0 {
            match parse_head(filled.bytes())? {
                Some((head, len)) if (100..200).contains(&head.status) => {
                    // `100 Continue` and other interim responses come before the real one.
                    if head.status == 101 {
                        return Err(ExchangeError::Head("unexpected 101 Switching Protocols".into()));
                    }
                    skipped += len;
                    filled.consume_front(len);
                    continue;
                }
                Some(found) => return Ok(found),
                None => {}
            }
        }
        if skipped + filled.len > MAX_HEAD_BYTES {
            return Err(ExchangeError::Head(format!(
                "response head longer than {MAX_HEAD_BYTES} bytes"
            )));
        }
        match filled.read_more(stream).await {
            Ok(0) if !received_any => {
                return Err(ExchangeError::NoResponse(io::ErrorKind::UnexpectedEof.into()));
            }
            Ok(0) => {
                return Err(ExchangeError::Head(
                    "connection closed in the middle of the response head".into(),
                ))
            }
            Ok(_) => received_any = true,
            Err(e) if !received_any => return Err(ExchangeError::NoResponse(e)),
            Err(e) => return Err(ExchangeError::Head(format!("reading the response head: {e}"))),
        }
    }
}

/// The head at the start of `bytes` and its length, or `None` if it is not all there yet.
fn parse_head(bytes: &[u8]) -> Result<Option<(Head, usize)>, ExchangeError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    let len = match response.parse(bytes) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(ExchangeError::Head(e.to_string())),
    };
    let status = response.code.unwrap_or(0);
    let http11 = response.version == Some(1);
    let mut length: Option<u64> = None;
    let mut chunked = false;
    let mut transfer_encoded = false;
    let mut gzip = false;
    let mut close = !http11;
    for header in response.headers.iter() {
        let value = header.value;
        if header.name.eq_ignore_ascii_case("content-length") {
            let parsed = std::str::from_utf8(value)
                .ok()
                .map(str::trim)
                .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|v| v.parse::<u64>().ok())
                .ok_or_else(|| ExchangeError::Head("invalid Content-Length".into()))?;
            if length.is_some_and(|l| l != parsed) {
                return Err(ExchangeError::Head("conflicting Content-Length headers".into()));
            }
            length = Some(parsed);
        } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
            for coding in tokens(value) {
                if !coding.eq_ignore_ascii_case(b"chunked") || chunked {
                    // We ask for no transfer coding but chunked; anything else (or chunked
                    // twice) cannot be framed.
                    return Err(ExchangeError::Head(format!(
                        "unsupported Transfer-Encoding {:?}",
                        String::from_utf8_lossy(value)
                    )));
                }
                chunked = true;
            }
            transfer_encoded = true;
        } else if header.name.eq_ignore_ascii_case("content-encoding") {
            gzip = value.eq_ignore_ascii_case(b"gzip");
        } else if header.name.eq_ignore_ascii_case("connection") {
            for option in tokens(value) {
                if option.eq_ignore_ascii_case(b"close") {
                    close = true;
                } else if option.eq_ignore_ascii_case(b"keep-alive") && !http11 {
                    close = false;
                }
            }
        }
    }
    if transfer_encoded && !chunked {
        return Err(ExchangeError::Head("empty Transfer-Encoding".into()));
    }
    let framing = match (chunked, length) {
        (true, _) => Framing::Chunked,
        (false, Some(length)) => Framing::Length(length),
        (false, None) => Framing::UntilClose,
    };
    // A response with both framings may be smuggling another one: read it, never reuse.
    let ambiguous = chunked && length.is_some();
    let keep_alive = !(close || ambiguous || framing == Framing::UntilClose);
    Ok(Some((
        Head {
            status,
            gzip,
            framing,
            keep_alive,
        },
        len,
    )))
}

/// The comma-separated tokens of a header value, trimmed, empty ones skipped.
fn tokens(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(<[u8]>::trim_ascii)
        .filter(|t| !t.is_empty())
}

fn body_read_error(e: &io::Error) -> ExchangeError {
    ExchangeError::Body(format!("error reading a body from connection: {e}"))
}

fn closed_early() -> ExchangeError {
    ExchangeError::Body("connection closed before the body was complete".into())
}

/// A `Content-Length` body. Returns whether the connection ended cleanly with it.
async fn read_sized<S: AsyncRead + Unpin>(
    stream: &mut S,
    filled: &mut Filled<'_>,
    head_len: usize,
    length: u64,
    limit: usize,
) -> Result<bool, ExchangeError> {
    let length = usize::try_from(length)
        .ok()
        .filter(|&l| l <= limit)
        .ok_or(ExchangeError::TooLarge { limit })?;
    filled.consume_front(head_len);
    // One allocation for the whole body when the buffer is new or smaller than it.
    filled.buf.truncate(filled.len);
    filled.buf.reserve_exact((length + 1).saturating_sub(filled.len));
    while filled.len < length {
        match filled.read_more_within(stream, length + 1 - filled.len).await {
            Ok(0) => return Err(closed_early()),
            Ok(_) => {}
            Err(e) => return Err(body_read_error(&e)),
        }
    }
    // Bytes past the body are nothing we asked for: keep the body, not the connection.
    let clean = filled.len == length;
    filled.len = length;
    Ok(clean)
}

/// A body that ends when the connection does.
async fn read_until_close<S: AsyncRead + Unpin>(
    stream: &mut S,
    filled: &mut Filled<'_>,
    head_len: usize,
    limit: usize,
) -> Result<bool, ExchangeError> {
    filled.consume_front(head_len);
    loop {
        if filled.len > limit {
            return Err(ExchangeError::TooLarge { limit });
        }
        match filled.read_more(stream).await {
            Ok(0) => return Ok(false),
            Ok(_) => {}
            Err(e) => return Err(body_read_error(&e)),
        }
    }
}

/// A chunked body, decoded in place. Returns whether the connection ended cleanly with it.
async fn read_chunked<S: AsyncRead + Unpin>(
    stream: &mut S,
    filled: &mut Filled<'_>,
    head_len: usize,
    limit: usize,
) -> Result<bool, ExchangeError> {
    filled.consume_front(head_len);
    let mut decoder = ChunkedDecoder::new(limit);
    loop {
        filled.len = decoder.decode(&mut filled.buf[..], filled.len)?;
        if decoder.is_done() {
            let clean = filled.len == decoder.decoded;
            filled.len = decoder.decoded;
            return Ok(clean);
        }
        match filled.read_more(stream).await {
            Ok(0) => return Err(closed_early()),
            Ok(_) => {}
            Err(e) => return Err(body_read_error(&e)),
        }
    }
}

/// Where the chunked decoder is in the framing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    /// Hex digits of a chunk size (`digits` so far).
    Size {
        digits: u8,
    },
    /// After the size: whitespace or `;extensions` up to CR.
    SizeLineRest,
    SizeLf,
    Data,
    DataCr,
    DataLf,
    /// At the start of a trailer line, or of the empty line that ends the message.
    TrailerStart,
    TrailerLine,
    EndLf,
    Done,
}

/// Decodes `Transfer-Encoding: chunked` in place: `buf[..decoded]` is body, `buf[decoded..len]`
/// framing not yet decoded (data only moves towards the front, over framing already read).
#[derive(Debug)]
struct ChunkedDecoder {
    state: ChunkState,
    /// Body bytes decoded so far (and so the length of the body at the buffer's front).
    decoded: usize,
    /// Data left in the current chunk, or the size being parsed.
    size: u64,
    limit: usize,
}

impl ChunkedDecoder {
    fn new(limit: usize) -> Self {
        ChunkedDecoder {
            state: ChunkState::Size { digits: 0 },
            decoded: 0,
            size: 0,
            limit,
        }
    }

    fn is_done(&self) -> bool {
        self.state == ChunkState::Done
    }

    /// Decodes what it can of `buf[self.decoded..len]`; returns the new length of what is in
    /// `buf` (decoded body, then framing left over for the next call).
    fn decode(&mut self, buf: &mut [u8], len: usize) -> Result<usize, ExchangeError> {
        let mut pos = self.decoded;
        while pos < len && self.state != ChunkState::Done {
            if self.state == ChunkState::Data {
                let take = usize::try_from(self.size).unwrap_or(usize::MAX).min(len - pos);
                if pos != self.decoded {
                    buf.copy_within(pos..pos + take, self.decoded);
                }
                self.decoded += take;
                pos += take;
                self.size -= take as u64;
                if self.size == 0 {
                    self.state = ChunkState::DataCr;
                }
                continue;
            }
            self.step(buf[pos])?;
            pos += 1;
        }
        // Close the gap left by the framing consumed, so what is undecoded follows the body.
        buf.copy_within(pos..len, self.decoded);
        Ok(self.decoded + (len - pos))
    }

    /// One framing byte.
    fn step(&mut self, byte: u8) -> Result<(), ExchangeError> {
        let bad = |what: &str| ExchangeError::Body(format!("invalid chunked encoding: {what}"));
        self.state = match (self.state, byte) {
            (ChunkState::Size { digits }, b) if b.is_ascii_hexdigit() => {
                if digits >= 15 {
                    return Err(bad("chunk size too long"));
                }
                let digit = (b as char).to_digit(16).unwrap_or(0);
                self.size = self.size * 16 + u64::from(digit);
                ChunkState::Size { digits: digits + 1 }
            }
            (ChunkState::Size { digits: 0 }, _) => return Err(bad("expected a chunk size")),
            (ChunkState::Size { .. }, b'\r') | (ChunkState::SizeLineRest, b'\r') => ChunkState::SizeLf,
            (ChunkState::Size { .. }, b';' | b' ' | b'\t') | (ChunkState::SizeLineRest, _) => {
                if byte == b'\n' {
                    return Err(bad("bare LF in a chunk size line"));
                }
                ChunkState::SizeLineRest
            }
            (ChunkState::Size { .. }, _) => return Err(bad("invalid byte in a chunk size")),
            (ChunkState::SizeLf, b'\n') => {
                if self.size == 0 {
                    ChunkState::TrailerStart
                } else {
                    let total = u64::try_from(self.decoded)
                        .unwrap_or(u64::MAX)
                        .saturating_add(self.size);
                    if total > self.limit as u64 {
                        return Err(ExchangeError::TooLarge { limit: self.limit });
                    }
                    ChunkState::Data
                }
            }
            (ChunkState::DataCr, b'\r') => ChunkState::DataLf,
            (ChunkState::DataLf, b'\n') => ChunkState::Size { digits: 0 },
            (ChunkState::TrailerStart, b'\r') => ChunkState::EndLf,
            (ChunkState::TrailerStart, b'\n') => return Err(bad("bare LF in trailers")),
            (ChunkState::TrailerStart, _) | (ChunkState::TrailerLine, _) if byte != b'\n' => ChunkState::TrailerLine,
            (ChunkState::TrailerLine, b'\n') => ChunkState::TrailerStart,
            (ChunkState::EndLf, b'\n') => ChunkState::Done,
            (ChunkState::SizeLf | ChunkState::DataCr | ChunkState::DataLf | ChunkState::EndLf, _) => {
                return Err(bad("expected CRLF"));
            }
            (ChunkState::Data | ChunkState::Done | ChunkState::TrailerStart | ChunkState::TrailerLine, _) => {
                return Err(bad("unexpected state"));
            }
        };
        Ok(())
    }
}

#[cfg(test)]
#[path = "http1_tests.rs"]
mod tests;

/// The response reader on bytes a kubelet might send, for the `kubelet_response` fuzz target:
/// `(status, body length, reusable)` or the error's text. The bytes arrive `piece` at a time
/// (0 counts as 1), as TCP and TLS may cut them anywhere.
#[doc(hidden)]
pub fn read_response_for_fuzzing(bytes: &[u8], piece: usize, limit: usize) -> Result<(u16, usize, bool), String> {
    let mut stream = tokio::io::join(
        Pieces {
            rest: bytes,
            piece: piece.max(1),
        },
        tokio::io::sink(),
    );
    let mut body = Vec::new();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .map_err(|e| e.to_string())?;
    let response = runtime
        .block_on(get(&mut stream, b"GET / HTTP/1.1\r\n\r\n", &mut body, limit))
        .map_err(|e| e.to_string())?;
    Ok((response.status, body.len(), response.reusable))
}

/// A reader handing out at most `piece` bytes per read.
struct Pieces<'a> {
    rest: &'a [u8],
    piece: usize,
}

impl AsyncRead for Pieces<'_> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        let n = self.piece.min(self.rest.len()).min(buf.remaining());
        let (now, later) = self.rest.split_at(n);
        buf.put_slice(now);
        self.rest = later;
        std::task::Poll::Ready(Ok(()))
    }
}
