//! A message encoded once, to be sent on many connections: the frame a
//! server sends (header and payload, unmasked) is built on first use and
//! shared as one `Bytes` by every connection that sends it, and so is its
//! compressed form for each set of permessage-deflate parameters that
//! allows sharing one (no context takeover on the sending side).

use std::fmt;
use std::sync::{Arc, OnceLock};
#[cfg(feature = "deflate")]
use std::sync::{Mutex, PoisonError};

use bytes::{BufMut, Bytes, BytesMut};

#[cfg(feature = "deflate")]
use super::frame::RSV1;
use super::frame::{FrameHeader, OpCode, MAX_HEADER_LEN};
use super::message::Message;

/// A message prepared for sending to many connections, paying its
/// encoding once.
///
/// A server connection sends the frame built on first use: the same
/// `Bytes` goes into every connection's write queue, so a broadcast to
/// 10,000 clients encodes (and, with permessage-deflate, compresses) the
/// message once instead of 10,000 times. Cloning is cheap (one reference
/// count).
///
/// With permessage-deflate, the compressed frame is shared by connections
/// that negotiated no context takeover on the server's side
/// (`server_no_context_takeover`) and use the same window size and
/// compression level: each message then starts a fresh compression stream,
/// so one compression serves them all. A connection that keeps its context
/// compresses the message itself, as it would an ordinary one. A client
/// masks every frame with a key of its own (RFC 6455 §5.3), so a client
/// connection encodes a prepared message like any other.
///
/// Send one with [`Writable`](crate::Writable)'s `Sink<PreparedMessage>`,
/// or to a group with [`Broadcast`](crate::Broadcast).
///
/// ```
/// use wsstream::{Message, PreparedMessage};
///
/// let tick = PreparedMessage::new(Message::text("tick"));
/// assert_eq!(tick.message().as_text(), Some("tick"));
/// ```
#[derive(Clone)]
pub struct PreparedMessage {
    inner: Arc<Inner>,
}

struct Inner {
    message: Message,
    /// The server's frame without compression.
    plain: OnceLock<Bytes>,
    /// Compressed server frames, by compression settings. `None` when zlib
    /// failed: the message then goes uncompressed.
    #[cfg(feature = "deflate")]
    compressed: Mutex<Vec<(SharedDeflate, Option<Bytes>)>>,
}

/// Compression settings under which one compressed frame serves every
/// connection: the level and the window size, with a fresh stream per
/// message.
#[cfg(feature = "deflate")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SharedDeflate {
    pub(crate) level: u32,
    pub(crate) window_bits: u8,
}

impl PreparedMessage {
    /// Prepares `message`. Nothing is encoded until a connection sends it.
    pub fn new(message: Message) -> Self {
        Self {
            inner: Arc::new(Inner {
                message,
                plain: OnceLock::new(),
                #[cfg(feature = "deflate")]
                compressed: Mutex::new(Vec::new()),
            }),
        }
    }

    /// The message.
    pub fn message(&self) -> &Message {
        &self.inner.message
    }

    /// The payload's length in bytes.
    pub fn len(&self) -> usize {
        self.inner.message.len()
    }

    /// Whether the payload is empty.
    pub fn is_empty(&self) -> bool {
        self.inner.message.is_empty()
    }

    pub(crate) fn opcode(&self) -> OpCode {
        match self.inner.message {
            Message::Text(_) => OpCode::Text,
            Message::Binary(_) => OpCode::Binary,
        }
    }

    /// The server's uncompressed frame, built on first use. Borrowed: a
    /// small frame is copied into each queue, and a clone would only be
    /// dropped again (an atomic increment and decrement per connection).
    pub(crate) fn server_frame(&self) -> &Bytes {
        self.inner
            .plain
            .get_or_init(|| frame(self.opcode(), 0, self.message().as_payload()))
    }

    /// The server's compressed frame under `settings`, compressed with
    /// `compress` on first use; `None` if compressing failed.
    #[cfg(feature = "deflate")]
    pub(crate) fn compressed_server_frame(
        &self,
        settings: SharedDeflate,
        compress: impl FnOnce(&[u8]) -> Option<Bytes>,
    ) -> Option<Bytes> {
        let mut cache = self
            .inner
            .compressed
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some((_, frame)) = cache.iter().find(|(s, _)| *s == settings) {
            return frame.clone();
        }
        let built = compress(self.message().as_payload())
            .map(|payload| frame(self.opcode(), RSV1, &payload));
        cache.push((settings, built.clone()));
        built
    }
}

/// Consecutive messages of a batch whose plain server frames are joined
/// in one `Bytes`: a server connection without permessage-deflate queues
/// the run as one shared chunk, where message by message it would copy
/// each small frame into its queue.
pub(crate) struct FrameRun {
    /// How many messages of the batch the run holds, in order.
    pub(crate) count: usize,
    pub(crate) frames: Bytes,
}

/// Cuts `messages` into runs whose joined frames hold at most `max` bytes
/// (a larger frame is a run of its own, shared as it is).
pub(crate) fn frame_runs(messages: &[PreparedMessage], max: usize) -> Vec<FrameRun> {
    let mut runs = Vec::new();
    let mut joined = BytesMut::new();
    let mut count = 0;
    for message in messages {
        let frame = message.server_frame();
        if count > 0 && joined.len() + frame.len() > max {
            runs.push(FrameRun {
                count,
                frames: joined.split().freeze(),
            });
            count = 0;
        }
        if count == 0 && frame.len() >= max {
            runs.push(FrameRun {
                count: 1,
                frames: frame.clone(),
            });
            continue;
        }
        joined.extend_from_slice(frame);
        count += 1;
    }
    if count > 0 {
        runs.push(FrameRun {
            count,
            frames: joined.freeze(),
        });
    }
    runs
}

/// One unmasked frame: header and payload in one buffer.
fn frame(opcode: OpCode, rsv: u8, payload: &[u8]) -> Bytes {
    let header = FrameHeader {
        fin: true,
        rsv,
        opcode,
        mask: None,
        payload_len: payload.len() as u64,
    };
    let mut head = [0u8; MAX_HEADER_LEN];
    let head_len = header.encode(&mut head);
    let mut out = BytesMut::with_capacity(head_len + payload.len());
    out.put_slice(&head[..head_len]);
    out.put_slice(payload);
    out.freeze()
}

impl From<Message> for PreparedMessage {
    fn from(message: Message) -> Self {
        Self::new(message)
    }
}

impl fmt::Debug for PreparedMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PreparedMessage")
            .field("message", &self.inner.message)
            .field("encoded", &self.inner.plain.get().is_some())
            .finish_non_exhaustive()
    }
}
