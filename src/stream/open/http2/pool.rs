//! The HTTP/2 connections a client's options share: one per origin and
//! route while its streams suffice, another once the server's limit on
//! concurrent streams is reached; each held by the WebSockets on it and
//! remembered only weakly, so a connection closes when its last WebSocket
//! ends and the pool never keeps one alive by itself.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use h2::client::SendRequest;

use crate::handshake::{Target, MAX_HEAD_LEN};
use crate::stream::open::client::connect_stream;
use crate::stream::options::Options;
use crate::stream::wire::http2::stream_error;
use crate::transport::{BoxedTransport, Connector};
use crate::Error;

/// The receive window of each stream: how much a WebSocket's peer may send
/// before its reader takes it.
const STREAM_WINDOW: u32 = 256 * 1024;
/// The receive window of the whole connection: streams whose readers stop
/// hold up to [`STREAM_WINDOW`] of it each, so this many divided by that
/// many stalled streams are needed before the others stall too.
const CONNECTION_WINDOW: u32 = 16 * 1024 * 1024;

/// What dialing an origin for HTTP/2 found.
pub(crate) enum Dialed<C> {
    /// An HTTP/2 connection that allows extended CONNECT.
    Http2(C),
    /// TLS chose `http/1.1` (or nothing) by ALPN: the connection is for the
    /// HTTP/1.1 upgrade.
    Http1(BoxedTransport),
    /// The server speaks HTTP/2 but does not allow extended CONNECT; the
    /// connection was let go.
    NoExtendedConnect,
}

/// One HTTP/2 connection's handle for opening streams.
pub(crate) struct Connection {
    sender: SendRequest<Bytes>,
    /// Set when the task driving the connection ends.
    ended: Arc<AtomicBool>,
    /// WebSockets on this connection, or being opened on it.
    streams: AtomicUsize,
}

impl Connection {
    fn new(sender: SendRequest<Bytes>, ended: Arc<AtomicBool>) -> Self {
        Self {
            sender,
            ended,
            streams: AtomicUsize::new(0),
        }
    }

    /// A handle for one new stream.
    pub(super) fn sender(&self) -> SendRequest<Bytes> {
        self.sender.clone()
    }

    /// Counts one more WebSocket on this connection, unless that would go
    /// past the server's limit on concurrent streams.
    pub(super) fn reserve(self: &Arc<Self>) -> Option<StreamSlot> {
        let limit = self.sender.current_max_send_streams();
        self.streams
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < limit).then_some(n + 1)
            })
            .ok()?;
        Some(StreamSlot(self.clone()))
    }

    /// Whether new streams can still be opened: the connection is running
    /// and has not been told to go away.
    fn is_usable(&self) -> bool {
        if self.ended.load(Ordering::Acquire) {
            return false;
        }
        let mut probe = self.sender.clone();
        let mut cx = Context::from_waker(Waker::noop());
        // Pending only means the server's stream limit is reached for now.
        !matches!(probe.poll_ready(&mut cx), Poll::Ready(Err(_)))
    }
}

/// One WebSocket's place on a connection: keeps the connection open, and
/// frees the place when dropped.
pub(crate) struct StreamSlot(Arc<Connection>);

impl StreamSlot {
    /// The connection the place is on.
    pub(super) fn connection(&self) -> &Connection {
        &self.0
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        self.0.streams.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Where a connection goes and how: one connection per key.
#[derive(Clone)]
struct Key {
    host: String,
    port: u16,
    tls: bool,
    /// The connector and TLS configuration, compared by identity: clones
    /// of one `Options` share them, and options that differ in them never
    /// share a connection. Held, so that an address is not reused by
    /// another while the key exists.
    connector: Option<Arc<dyn Connector>>,
    #[cfg(feature = "tls")]
    tls_config: Option<Arc<rustls::ClientConfig>>,
}

impl Key {
    fn identity(&self) -> (&str, u16, bool, usize, usize) {
        let connector = self
            .connector
            .as_ref()
            .map_or(0, |c| Arc::as_ptr(c).cast::<()>() as usize);
        #[cfg(feature = "tls")]
        let tls_config = self
            .tls_config
            .as_ref()
            .map_or(0, |c| Arc::as_ptr(c) as usize);
        #[cfg(not(feature = "tls"))]
        let tls_config = 0;
        (&self.host, self.port, self.tls, connector, tls_config)
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        self.identity() == other.identity()
    }
}

impl Eq for Key {}

impl std::hash::Hash for Key {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.identity().hash(state);
    }
}

/// The connections of one key; the lock is held while a connection is
/// being set up, so WebSockets opened at once to one origin wait for one
/// connection rather than each dialing their own.
type Slot = Arc<tokio::sync::Mutex<Vec<Weak<Connection>>>>;

/// The HTTP/2 connections of one `Options` value and its clones.
#[derive(Clone, Default)]
pub(crate) struct Http2Pool {
    slots: Arc<Mutex<HashMap<Key, Slot>>>,
}

impl Http2Pool {
    /// A place for one WebSocket on a connection to the target's origin:
    /// on a pooled connection with a stream to spare, or on a new one
    /// (connector, TLS with ALPN `h2` and `http/1.1`, the HTTP/2 preface and
    /// SETTINGS), which is then pooled.
    pub(super) async fn connection(
        &self,
        target: &Target,
        options: &Options,
        deadline: tokio::time::Instant,
    ) -> Result<Dialed<StreamSlot>, Error> {
        let slot = self.slot(key(target, options));
        let mut pooled = slot.lock().await;
        pooled.retain(|weak| weak.upgrade().is_some_and(|c| c.is_usable()));
        if let Some(place) = pooled
            .iter()
            .filter_map(Weak::upgrade)
            .find_map(|connection| connection.reserve())
        {
            return Ok(Dialed::Http2(place));
        }
        let io = connect_stream(target, options, deadline).await?;
        let io = if target.tls {
            negotiate_h2(io, target, options).await?
        } else {
            Ok(io)
        };
        let io = match io {
            Ok(io) => io,
            Err(http1) => return Ok(Dialed::Http1(http1)),
        };
        Ok(match handshake(io).await? {
            Dialed::Http2(connection) => {
                let connection = Arc::new(connection);
                pooled.push(Arc::downgrade(&connection));
                match connection.reserve() {
                    Some(place) => Dialed::Http2(place),
                    // A server that allows no stream at all.
                    None => Dialed::NoExtendedConnect,
                }
            }
            Dialed::Http1(io) => Dialed::Http1(io),
            Dialed::NoExtendedConnect => Dialed::NoExtendedConnect,
        })
    }

    /// The slot for `key`, made if needed. Slots of connections that ended
    /// and that nobody waits on are dropped on the way.
    fn slot(&self, key: Key) -> Slot {
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        slots.retain(|_, slot| {
            Arc::strong_count(slot) > 1
                || slot
                    .try_lock()
                    .map_or(true, |pooled| pooled.iter().any(|c| c.strong_count() > 0))
        });
        slots.entry(key).or_default().clone()
    }
}

impl std::fmt::Debug for Http2Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        f.debug_struct("Http2Pool")
            .field("origins", &slots.len())
            .finish()
    }
}

fn key(target: &Target, options: &Options) -> Key {
    Key {
        host: target.host.clone(),
        port: target.port,
        tls: target.tls,
        connector: options
            .connector
            .as_ref()
            .ok()
            .map(|shared| shared.connector.clone()),
        #[cfg(feature = "tls")]
        tls_config: options.tls.clone(),
    }
}

/// Starts TLS offering `h2` and `http/1.1`: `Ok` with the stream when the
/// server chose `h2`, `Err` with it for HTTP/1.1 otherwise.
#[cfg(feature = "tls")]
async fn negotiate_h2(
    io: BoxedTransport,
    target: &Target,
    options: &Options,
) -> Result<Result<BoxedTransport, BoxedTransport>, Error> {
    let alpn: [&[u8]; 2] = [b"h2", b"http/1.1"];
    let (io, chosen) =
        crate::transport::start_tls_alpn(io, &target.host, options.tls.clone(), &alpn).await?;
    Ok(if chosen.as_deref() == Some(b"h2") {
        Ok(io)
    } else {
        Err(io)
    })
}

#[cfg(not(feature = "tls"))]
async fn negotiate_h2(
    _io: BoxedTransport,
    _target: &Target,
    _options: &Options,
) -> Result<Result<BoxedTransport, BoxedTransport>, Error> {
    Err(Error::TlsUnavailable(
        "wsstream was built without the `tls` feature",
    ))
}

/// Speaks HTTP/2 over `io`: the preface, our SETTINGS, and the server's,
/// which decide whether WebSockets are allowed. Starts the task that
/// drives the connection from then on (`h2` needs one per connection); it
/// ends when the connection does, at the latest once every stream and
/// handle is gone. The caller bounds the wait (the open timeout): a server
/// that never sends its SETTINGS never opens anything.
pub(super) async fn handshake(io: BoxedTransport) -> Result<Dialed<Connection>, Error> {
    let h2_error = |err| Error::io(stream_error(err));
    let (sender, mut connection) = h2::client::Builder::new()
        .enable_push(false)
        .initial_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .max_header_list_size(MAX_HEAD_LEN as u32)
        .handshake::<_, Bytes>(io)
        .await
        .map_err(h2_error)?;
    let ping = connection.ping_pong();
    let ended = Arc::new(AtomicBool::new(false));
    let done = ended.clone();
    tokio::spawn(async move {
        let _ = connection.await;
        done.store(true, Ordering::Release);
    });
    // The server's SETTINGS are the first frame it sends, so once its
    // answer to our PING is in, they have been applied.
    if let Some(mut ping) = ping {
        ping.ping(h2::Ping::opaque()).await.map_err(h2_error)?;
    }
    if !sender.is_extended_connect_protocol_enabled() {
        return Ok(Dialed::NoExtendedConnect);
    }
    Ok(Dialed::Http2(Connection::new(sender, ended)))
}
