//! libpq's `require_auth=scram-sha-256` for tokio-postgres: a stream wrapper
//! that reads the server's messages as they pass and fails the connection when
//! the server asks for a cleartext or MD5 password, before the driver answers,
//! or grants access without any exchange at all (`AuthenticationOk` before a
//! completed SCRAM exchange: trust, or a fake that wants the queries and their
//! answers to pass as the database's). So a fake server on the tunnel's local
//! port (without TLS, or with a certificate nobody checked) never receives the
//! password nor answers "isolated", unless the operator allowed it.
//!
//! It wraps the TCP stream (which carries the protocol when TLS is off or the
//! server declined it) and, through [`GuardedTls`], the TLS stream.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::tls::{ChannelBinding, TlsConnect, TlsStream};

/// Where the guard is in the server's byte stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// The one-byte answer to SSLRequest: `S` (TLS follows: the TLS layer's
    /// guard takes over) or `N` (the protocol continues in the clear).
    SslAnswer,
    /// Reading a message header: its type, length and, for `R`, the auth code.
    Header,
    /// Skipping the rest of a message.
    Skip(usize),
    /// Nothing more to inspect (authenticated, or TLS underneath).
    Done,
}

/// What the guard lets the server ask for besides a SCRAM exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Accepts {
    /// SCRAM only (the default).
    ScramOnly,
    /// Also a cleartext password: RDS IAM authentication asks for the token
    /// so, and it is allowed under TLS only.
    Cleartext,
    /// Any password request, and access without one (`--allow-weak-auth`).
    Anything,
}

/// A stream that refuses cleartext and MD5 password requests.
#[derive(Debug)]
pub(crate) struct AuthGuard<S> {
    inner: S,
    state: State,
    header: Vec<u8>,
    accepts: Accepts,
    /// The server proved something before granting access: a completed SCRAM
    /// exchange (SASLFinal), or a weak password request the operator allowed.
    exchanged: bool,
    /// Set when the server asks for a password of any kind (see [`Self::telling`]).
    asked: Option<Arc<AtomicBool>>,
}

impl<S> AuthGuard<S> {
    /// Guards `inner`. `ssl_requested`: the client will send SSLRequest first.
    pub(crate) fn new(inner: S, ssl_requested: bool, accepts: Accepts) -> Self {
        Self {
            inner,
            state: if ssl_requested {
                State::SslAnswer
            } else {
                State::Header
            },
            header: Vec::with_capacity(9),
            accepts,
            exchanged: false,
            asked: None,
        }
    }

    /// Sets `asked` when the server asks for a password (cleartext, MD5 or
    /// SCRAM): how a connection without one tells "a password is needed"
    /// from other failures, without reading the driver's text.
    pub(crate) fn telling(mut self, asked: Option<Arc<AtomicBool>>) -> Self {
        self.asked = asked;
        self
    }

    /// Follows the server's bytes; an error when it asks for a weak password.
    fn inspect(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            match self.state {
                State::Done => return Ok(()),
                State::SslAnswer => {
                    self.state = if bytes[0] == b'S' {
                        State::Done
                    } else {
                        State::Header
                    };
                    bytes = &bytes[1..];
                }
                State::Skip(n) => {
                    let take = n.min(bytes.len());
                    bytes = &bytes[take..];
                    self.state = if take == n {
                        State::Header
                    } else {
                        State::Skip(n - take)
                    };
                }
                State::Header => {
                    let want = if self.header.first() == Some(&b'R') {
                        9
                    } else {
                        5
                    };
                    let take = (want - self.header.len()).min(bytes.len());
                    self.header.extend_from_slice(&bytes[..take]);
                    bytes = &bytes[take..];
                    if self.header.len() < 5 || (self.header[0] == b'R' && self.header.len() < 9) {
                        continue;
                    }
                    let length = u32::from_be_bytes([
                        self.header[1],
                        self.header[2],
                        self.header[3],
                        self.header[4],
                    ]) as usize;
                    let read = self.header.len() - 1;
                    if self.header[0] == b'R' {
                        let code = u32::from_be_bytes([
                            self.header[5],
                            self.header[6],
                            self.header[7],
                            self.header[8],
                        ]);
                        self.check(code)?;
                        if code == 0 {
                            // AuthenticationOk: nothing more to guard.
                            self.state = State::Done;
                            self.header.clear();
                            return Ok(());
                        }
                    }
                    self.header.clear();
                    self.state = State::Skip(length.saturating_sub(read));
                }
            }
        }
        Ok(())
    }

    fn check(&mut self, code: u32) -> io::Result<()> {
        if let (3 | 5 | 10, Some(asked)) = (code, &self.asked) {
            asked.store(true, Ordering::Relaxed);
        }
        let what = match code {
            // AuthenticationOk
            0 if self.exchanged || self.accepts == Accepts::Anything => return Ok(()),
            0 => {
                return Err(io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    "the server granted access without authenticating (no SCRAM exchange): what answers on \
                     this port is not shown to be the database, so its answers cannot be trusted; refused, as \
                     libpq's require_auth=scram-sha-256 does (for a server that trusts connections on purpose, \
                     pass --allow-weak-auth)",
                ))
            }
            3 => "a cleartext password",
            5 => "an MD5 password hash",
            // AuthenticationSASLFinal: the server proved it knows the verifier
            12 => {
                self.exchanged = true;
                return Ok(());
            }
            _ => return Ok(()),
        };
        if self.accepts == Accepts::Anything || (code == 3 && self.accepts == Accepts::Cleartext) {
            self.exchanged = true;
            return Ok(());
        }
        Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "the server asked for {what}; refused so the password cannot be captured \
                 (use SCRAM: SET password_encryption = 'scram-sha-256' and reset the password; \
                 or pass --allow-weak-auth)"
            ),
        ))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for AuthGuard<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if this.state != State::Done {
                    this.inspect(&buf.filled()[before..])?;
                }
                Poll::Ready(Ok(()))
            }
            other => other,
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for AuthGuard<S> {
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
}

impl<S: TlsStream + Unpin> TlsStream for AuthGuard<S> {
    fn channel_binding(&self) -> ChannelBinding {
        self.inner.channel_binding()
    }
}

/// A TLS connector whose streams are guarded the same way.
pub(crate) struct GuardedTls<T> {
    inner: T,
    accepts: Accepts,
    asked: Option<Arc<AtomicBool>>,
}

impl<T> GuardedTls<T> {
    /// Wraps `inner`; its guard sets `asked` as [`AuthGuard::telling`] says.
    pub(crate) fn new(inner: T, accepts: Accepts, asked: Option<Arc<AtomicBool>>) -> Self {
        Self {
            inner,
            accepts,
            asked,
        }
    }
}

impl<S, T> TlsConnect<S> for GuardedTls<T>
where
    T: TlsConnect<S> + Send + 'static,
    T::Future: Send + 'static,
    T::Stream: Send,
    S: 'static,
{
    type Stream = AuthGuard<T::Stream>;
    type Error = T::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Stream, Self::Error>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        let (accepts, asked) = (self.accepts, self.asked);
        let handshake = self.inner.connect(stream);
        Box::pin(async move {
            let tls = handshake.await?;
            Ok(AuthGuard::new(tls, false, accepts).telling(asked))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(code: u32) -> Vec<u8> {
        let mut m = vec![b'R'];
        m.extend_from_slice(&8u32.to_be_bytes());
        m.extend_from_slice(&code.to_be_bytes());
        m
    }

    /// What a fresh guard makes of `bytes` arriving in two parts, cut at `split`.
    fn inspect_split(bytes: &[u8], split: usize) -> io::Result<()> {
        let mut guard = AuthGuard::new((), true, Accepts::ScramOnly);
        guard
            .inspect(&bytes[..split])
            .and_then(|_| guard.inspect(&bytes[split..]))
    }

    #[test]
    fn weak_requests_are_refused_in_any_split() {
        for (code, refused) in [(3, true), (5, true), (10, false), (0, true)] {
            let mut bytes = b"N".to_vec();
            bytes.extend(auth(code));
            for split in 0..bytes.len() {
                let result = inspect_split(&bytes, split);
                assert_eq!(result.is_err(), refused, "code {code} split {split}");
            }
            let asked = Arc::new(AtomicBool::new(false));
            let mut allowed =
                AuthGuard::new((), true, Accepts::Anything).telling(Some(asked.clone()));
            assert!(allowed.inspect(&bytes).is_ok());
            // Every kind of password request is told, access without one is not.
            assert_eq!(asked.load(Ordering::Relaxed), code != 0, "code {code}");
            // For an IAM token: a cleartext request only.
            let mut cleartext = AuthGuard::new((), true, Accepts::Cleartext);
            assert_eq!(
                cleartext.inspect(&bytes).is_err(),
                refused && code != 3,
                "code {code}"
            );
        }
    }

    #[test]
    fn access_is_granted_only_after_a_completed_scram_exchange() {
        // SASL, SASLContinue, SASLFinal, Ok: in any split.
        let mut bytes = b"N".to_vec();
        for code in [10, 11, 12, 0] {
            bytes.extend(auth(code));
        }
        for split in 0..bytes.len() {
            assert!(inspect_split(&bytes, split).is_ok(), "split {split}");
        }
        // SASL started but Ok before SASLFinal: refused.
        let mut bytes = b"N".to_vec();
        bytes.extend(auth(10));
        bytes.extend(auth(0));
        let err = AuthGuard::new((), true, Accepts::ScramOnly)
            .inspect(&bytes)
            .unwrap_err();
        assert!(err.to_string().contains("without authenticating"), "{err}");
    }

    #[test]
    fn other_messages_are_skipped_and_tls_is_left_alone() {
        // A NoticeResponse first, then the MD5 request.
        let mut bytes = vec![b'N', b'N'];
        bytes.extend_from_slice(&9u32.to_be_bytes());
        bytes.extend_from_slice(b"hello");
        bytes.extend(auth(5));
        assert!(AuthGuard::new((), true, Accepts::ScramOnly)
            .inspect(&bytes)
            .is_err());
        // 'S': TLS follows; the raw layer does not look at it.
        let mut tls = AuthGuard::new((), true, Accepts::ScramOnly);
        assert!(tls.inspect(b"S\x16\x03\x03garbage").is_ok());
        assert_eq!(tls.state, State::Done);
    }
}
