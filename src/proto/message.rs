//! What the user reads and writes: messages, UTF-8 text, close codes and frames.

use std::fmt;
use std::ops::Deref;

use bytes::Bytes;

/// UTF-8 text held in [`Bytes`], so a text message read off the socket is not
/// copied into a `String`.
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Utf8Bytes(Bytes);

impl Utf8Bytes {
    /// Text from a static string, without copying.
    pub const fn from_static(text: &'static str) -> Self {
        Self(Bytes::from_static(text.as_bytes()))
    }

    /// Wraps bytes the caller has already validated as UTF-8.
    pub(crate) fn from_validated(bytes: Bytes) -> Self {
        debug_assert!(std::str::from_utf8(&bytes).is_ok());
        Self(bytes)
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        #[allow(unsafe_code)]
        // SAFETY: every constructor either takes a `str`/`String` or checks the
        // bytes (`TryFrom<Bytes>`, `from_validated` after the incremental
        // validator accepted a whole message), and the bytes are immutable.
        unsafe {
            std::str::from_utf8_unchecked(&self.0)
        }
    }

    /// The underlying bytes.
    pub fn as_bytes(&self) -> &Bytes {
        &self.0
    }

    /// The underlying bytes, without copying.
    pub fn into_bytes(self) -> Bytes {
        self.0
    }
}

impl Deref for Utf8Bytes {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Utf8Bytes {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Debug for Utf8Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Utf8Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<String> for Utf8Bytes {
    fn from(text: String) -> Self {
        Self(Bytes::from(text))
    }
}

impl From<&str> for Utf8Bytes {
    fn from(text: &str) -> Self {
        Self(Bytes::copy_from_slice(text.as_bytes()))
    }
}

impl TryFrom<Bytes> for Utf8Bytes {
    type Error = std::str::Utf8Error;

    fn try_from(bytes: Bytes) -> Result<Self, Self::Error> {
        std::str::from_utf8(&bytes)?;
        Ok(Self(bytes))
    }
}

impl PartialEq<str> for Utf8Bytes {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Utf8Bytes {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// Whether a message is text or binary: known from its first frame, before
/// any of a message read in chunks has arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageKind {
    /// UTF-8 text.
    Text,
    /// Binary data.
    Binary,
}

/// A WebSocket message: what the readable yields and the writable accepts.
///
/// Pings, pongs and close frames are handled by the connection and never
/// appear here, as in the WHATWG API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A text message, guaranteed UTF-8.
    Text(Utf8Bytes),
    /// A binary message.
    Binary(Bytes),
}

impl Message {
    /// A text message.
    pub fn text(text: impl Into<Utf8Bytes>) -> Self {
        Self::Text(text.into())
    }

    /// A binary message.
    pub fn binary(data: impl Into<Bytes>) -> Self {
        Self::Binary(data.into())
    }

    /// The text of a text message.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Self::Text(text) => Some(text.as_str()),
            Self::Binary(_) => None,
        }
    }

    /// The payload bytes, text or binary.
    pub fn as_payload(&self) -> &[u8] {
        match self {
            Self::Text(text) => text.as_bytes(),
            Self::Binary(data) => data,
        }
    }

    /// The payload bytes, without copying.
    pub fn into_payload(self) -> Bytes {
        match self {
            Self::Text(text) => text.into_bytes(),
            Self::Binary(data) => data,
        }
    }

    /// The payload length in bytes.
    pub fn len(&self) -> usize {
        self.as_payload().len()
    }

    /// Whether the payload is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether this is a text or a binary message.
    pub fn kind(&self) -> MessageKind {
        match self {
            Self::Text(_) => MessageKind::Text,
            Self::Binary(_) => MessageKind::Binary,
        }
    }

    /// Whether this is a text message.
    pub fn is_text(&self) -> bool {
        matches!(self, Self::Text(_))
    }

    /// Whether this is a binary message.
    pub fn is_binary(&self) -> bool {
        matches!(self, Self::Binary(_))
    }
}

impl From<String> for Message {
    fn from(text: String) -> Self {
        Self::text(text)
    }
}

impl From<&str> for Message {
    fn from(text: &str) -> Self {
        Self::text(text)
    }
}

impl From<Utf8Bytes> for Message {
    fn from(text: Utf8Bytes) -> Self {
        Self::Text(text)
    }
}

impl From<Bytes> for Message {
    fn from(data: Bytes) -> Self {
        Self::Binary(data)
    }
}

impl From<Vec<u8>> for Message {
    fn from(data: Vec<u8>) -> Self {
        Self::Binary(data.into())
    }
}

/// A close status code that may appear on the wire (RFC 6455 §7.4): the
/// registered codes 1000–1003 and 1007–1014, and 3000–4999. The reserved
/// codes (1004–1006, 1015) and everything else cannot be held by this type.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CloseCode(u16);

impl CloseCode {
    /// 1000: the purpose of the connection was fulfilled.
    pub const NORMAL: Self = Self(1000);
    /// 1001: the endpoint is going away (server shutdown, page navigation).
    pub const GOING_AWAY: Self = Self(1001);
    /// 1002: the peer broke the protocol.
    pub const PROTOCOL_ERROR: Self = Self(1002);
    /// 1003: the endpoint cannot accept this kind of data.
    pub const UNSUPPORTED_DATA: Self = Self(1003);
    /// 1007: a message's data did not match its type (invalid UTF-8 text).
    pub const INVALID_PAYLOAD: Self = Self(1007);
    /// 1008: a message violated the endpoint's policy.
    pub const POLICY_VIOLATION: Self = Self(1008);
    /// 1009: a message was too big to process.
    pub const MESSAGE_TOO_BIG: Self = Self(1009);
    /// 1010: the client expected an extension the server did not negotiate.
    pub const MANDATORY_EXTENSION: Self = Self(1010);
    /// 1011: the server hit an unexpected condition.
    pub const INTERNAL_ERROR: Self = Self(1011);
    /// 1012: the service is restarting.
    pub const SERVICE_RESTART: Self = Self(1012);
    /// 1013: try again later.
    pub const TRY_AGAIN_LATER: Self = Self(1013);
    /// 1014: a gateway got an invalid response upstream.
    pub const BAD_GATEWAY: Self = Self(1014);

    /// The code, if it may be sent on the wire.
    pub const fn new(code: u16) -> Option<Self> {
        match code {
            1000..=1003 | 1007..=1014 | 3000..=4999 => Some(Self(code)),
            _ => None,
        }
    }

    /// The numeric code.
    pub const fn as_u16(self) -> u16 {
        self.0
    }
}

impl fmt::Debug for CloseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CloseCode({})", self.0)
    }
}

impl fmt::Display for CloseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl From<CloseCode> for u16 {
    fn from(code: CloseCode) -> u16 {
        code.0
    }
}

impl TryFrom<u16> for CloseCode {
    type Error = InvalidCloseCode;

    fn try_from(code: u16) -> Result<Self, InvalidCloseCode> {
        Self::new(code).ok_or(InvalidCloseCode(code))
    }
}

impl PartialEq<u16> for CloseCode {
    fn eq(&self, other: &u16) -> bool {
        self.0 == *other
    }
}

/// A number that is not a close code that may be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidCloseCode(pub u16);

impl fmt::Display for InvalidCloseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} is not a close code that may be sent", self.0)
    }
}

impl std::error::Error for InvalidCloseCode {}

/// The longest close reason that fits a control frame beside its code.
pub const MAX_CLOSE_REASON: usize = 123;

/// The body of a close frame: a code and a reason of at most 123 bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseFrame {
    code: CloseCode,
    reason: Utf8Bytes,
}

impl CloseFrame {
    /// A close frame, or `None` if the reason is longer than 123 bytes.
    pub fn new(code: CloseCode, reason: impl Into<Utf8Bytes>) -> Option<Self> {
        let reason = reason.into();
        (reason.len() <= MAX_CLOSE_REASON).then_some(Self { code, reason })
    }

    /// A close frame whose reason is cut at a character boundary to fit.
    pub fn truncated(code: CloseCode, reason: &str) -> Self {
        let mut end = reason.len().min(MAX_CLOSE_REASON);
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        Self {
            code,
            reason: Utf8Bytes::from(&reason[..end]),
        }
    }

    /// The status code.
    pub fn code(&self) -> CloseCode {
        self.code
    }

    /// The reason.
    pub fn reason(&self) -> &str {
        self.reason.as_str()
    }

    pub(crate) fn from_parts(code: CloseCode, reason: Utf8Bytes) -> Self {
        Self { code, reason }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_code_holds_only_sendable_codes() {
        for code in 0..=u16::MAX {
            let sendable = matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999);
            assert_eq!(CloseCode::new(code).is_some(), sendable, "{code}");
        }
    }

    #[test]
    fn close_reason_fits_a_control_frame() {
        let long = "é".repeat(70); // 140 bytes
        assert!(CloseFrame::new(CloseCode::NORMAL, long.as_str()).is_none());
        let cut = CloseFrame::truncated(CloseCode::NORMAL, &long);
        assert_eq!(cut.reason().len(), 122);
        assert!(CloseFrame::new(CloseCode::NORMAL, "x".repeat(123)).is_some());
    }

    #[test]
    fn text_rejects_invalid_utf8() {
        assert!(Utf8Bytes::try_from(Bytes::from_static(b"\xff")).is_err());
        assert_eq!(
            Utf8Bytes::try_from(Bytes::from_static(b"ok")).unwrap(),
            "ok"
        );
    }
}
