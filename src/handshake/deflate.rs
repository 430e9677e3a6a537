//! Negotiating permessage-deflate (RFC 7692 §5–§7.1): the client's offer,
//! the checks on the server's answer, and the server's choice among offers.

use std::fmt::Write as _;

/// The extension's registered name.
pub(crate) const PERMESSAGE_DEFLATE: &str = "permessage-deflate";

/// How permessage-deflate is offered (client) or accepted (server), and
/// how messages are compressed once it is in force.
///
/// The defaults keep the full 32 KiB windows and context takeover, the
/// best compression; the setters trade it for memory (see
/// `docs/memory.md`). Window bits are clamped to 8–15.
///
/// ```
/// use wsstream::{DeflateConfig, Options};
///
/// // Compress, but keep no state between messages in either direction
/// // and inflate the server's messages with a 1 KiB window.
/// let deflate = DeflateConfig::default()
///     .client_no_context_takeover(true)
///     .server_no_context_takeover(true)
///     .server_max_window_bits(10);
/// let options = Options::default().deflate(deflate);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeflateConfig {
    pub(crate) client_no_context_takeover: bool,
    pub(crate) server_no_context_takeover: bool,
    pub(crate) client_max_window_bits: u8,
    pub(crate) server_max_window_bits: u8,
    pub(crate) level: u32,
    pub(crate) threshold: usize,
}

impl Default for DeflateConfig {
    fn default() -> Self {
        Self {
            client_no_context_takeover: false,
            server_no_context_takeover: false,
            client_max_window_bits: 15,
            server_max_window_bits: 15,
            level: 1,
            threshold: 64,
        }
    }
}

impl DeflateConfig {
    /// The client compresses each message on its own, keeping no context
    /// between them: less memory on the client's compressor and the
    /// server's decompressor, less compression. A client offers it; a
    /// server asks for it in its answer.
    #[must_use]
    pub fn client_no_context_takeover(mut self, on: bool) -> Self {
        self.client_no_context_takeover = on;
        self
    }

    /// The server compresses each message on its own. A client asks for
    /// it in its offer; a server grants it always when set (and whenever a
    /// client asks).
    #[must_use]
    pub fn server_no_context_takeover(mut self, on: bool) -> Self {
        self.server_no_context_takeover = on;
        self
    }

    /// The largest LZ77 window the client compresses with, as a power of
    /// two (8–15; default 15, 32 KiB).
    #[must_use]
    pub fn client_max_window_bits(mut self, bits: u8) -> Self {
        self.client_max_window_bits = bits.clamp(8, 15);
        self
    }

    /// The largest LZ77 window the server compresses with (8–15; default
    /// 15). A client asks for it; a server uses at most this.
    #[must_use]
    pub fn server_max_window_bits(mut self, bits: u8) -> Self {
        self.server_max_window_bits = bits.clamp(8, 15);
        self
    }

    /// The zlib compression level for what we send (0–9; default 1, the
    /// fastest that still compresses well).
    #[must_use]
    pub fn level(mut self, level: u32) -> Self {
        self.level = level.min(9);
        self
    }

    /// Messages shorter than this many bytes are sent uncompressed
    /// (default 64), where deflate would save little and cost a call.
    #[must_use]
    pub fn threshold(mut self, bytes: usize) -> Self {
        self.threshold = bytes;
        self
    }

    /// The client's `Sec-WebSocket-Extensions` offer.
    pub(crate) fn offer(&self) -> String {
        let mut offer = String::from(PERMESSAGE_DEFLATE);
        if self.client_no_context_takeover {
            offer.push_str("; client_no_context_takeover");
        }
        if self.server_no_context_takeover {
            offer.push_str("; server_no_context_takeover");
        }
        if self.server_max_window_bits < 15 {
            let _ = write!(
                offer,
                "; server_max_window_bits={}",
                self.server_max_window_bits
            );
        }
        // Always present: it tells the server we can honour a limit.
        offer.push_str("; client_max_window_bits");
        if self.client_max_window_bits < 15 {
            let _ = write!(offer, "={}", self.client_max_window_bits);
        }
        offer
    }

    /// Checks the server's answer to [`offer`](Self::offer) and returns the
    /// parameters in force.
    pub(crate) fn accept_response(&self, value: &str) -> Result<DeflateParams, &'static str> {
        let mut extensions = parse_extensions(value)?;
        let (name, params) = match (extensions.next(), extensions.next()) {
            (Some(only), None) => only,
            (None, _) => return Err("no extension in the header"),
            (Some(_), Some(_)) => return Err("more than one extension in answer to one offer"),
        };
        if !name.eq_ignore_ascii_case(PERMESSAGE_DEFLATE) {
            return Err("an extension that was not offered");
        }
        let answer = Offer::parse(&params)?;
        if self.server_no_context_takeover && !answer.server_no_context_takeover {
            return Err("server_no_context_takeover was asked for and not granted");
        }
        let server_bits = match answer.server_max_window_bits {
            Some(Some(bits)) if bits <= self.server_max_window_bits => bits,
            Some(Some(_)) => return Err("server_max_window_bits above the one offered"),
            Some(None) => return Err("server_max_window_bits without a value"),
            None if self.server_max_window_bits < 15 => {
                return Err("server_max_window_bits was asked for and not granted")
            }
            None => 15,
        };
        let client_bits = match answer.client_max_window_bits {
            // A value was offered only when below 15; the answer may lower
            // it, never raise it.
            Some(Some(bits)) if bits > self.client_max_window_bits => {
                return Err("client_max_window_bits above the one offered")
            }
            Some(Some(bits)) => bits,
            Some(None) => return Err("client_max_window_bits without a value"),
            None => self.client_max_window_bits,
        };
        Ok(DeflateParams {
            server_no_context_takeover: answer.server_no_context_takeover,
            client_no_context_takeover: answer.client_no_context_takeover
                || self.client_no_context_takeover,
            server_max_window_bits: server_bits,
            client_max_window_bits: client_bits,
        })
    }

    /// The server's choice: the first acceptable permessage-deflate offer
    /// among the request's `Sec-WebSocket-Extensions` values, as the
    /// parameters to use and the answer to send. Offers that break RFC 7692
    /// are skipped, as are other extensions.
    pub(crate) fn choose<'a>(
        &self,
        values: impl IntoIterator<Item = &'a str>,
    ) -> Option<(DeflateParams, String)> {
        values
            .into_iter()
            .filter_map(|value| parse_extensions(value).ok())
            .flatten()
            .filter(|(name, _)| name.eq_ignore_ascii_case(PERMESSAGE_DEFLATE))
            .find_map(|(_, params)| Offer::parse(&params).ok())
            .map(|offer| self.answer(&offer))
    }

    fn answer(&self, offer: &Offer) -> (DeflateParams, String) {
        let server_no_context_takeover =
            offer.server_no_context_takeover || self.server_no_context_takeover;
        let client_no_context_takeover =
            offer.client_no_context_takeover || self.client_no_context_takeover;
        let server_bits = match offer.server_max_window_bits {
            Some(Some(bits)) => bits.min(self.server_max_window_bits),
            _ => self.server_max_window_bits,
        };
        let client_bits = match offer.client_max_window_bits {
            Some(Some(bits)) => Some(bits.min(self.client_max_window_bits)),
            Some(None) if self.client_max_window_bits < 15 => Some(self.client_max_window_bits),
            // Not offered (the client cannot be limited), or no limit wanted.
            _ => None,
        };
        let mut answer = String::from(PERMESSAGE_DEFLATE);
        if server_no_context_takeover {
            answer.push_str("; server_no_context_takeover");
        }
        if client_no_context_takeover {
            answer.push_str("; client_no_context_takeover");
        }
        if server_bits < 15 || offer.server_max_window_bits.is_some() {
            let _ = write!(answer, "; server_max_window_bits={server_bits}");
        }
        if let Some(bits) = client_bits {
            let _ = write!(answer, "; client_max_window_bits={bits}");
        }
        let params = DeflateParams {
            server_no_context_takeover,
            client_no_context_takeover,
            server_max_window_bits: server_bits,
            client_max_window_bits: client_bits.unwrap_or(15),
        };
        (params, answer)
    }
}

/// The permessage-deflate parameters in force on a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeflateParams {
    /// The server starts every message with an empty window.
    pub server_no_context_takeover: bool,
    /// The client starts every message with an empty window.
    pub client_no_context_takeover: bool,
    /// The server's LZ77 window, as a power of two (8–15).
    pub server_max_window_bits: u8,
    /// The client's LZ77 window, as a power of two (8–15).
    pub client_max_window_bits: u8,
}

/// One extension's parameters, as RFC 7692 §7 allows them: each at most
/// once, window bits 8–15 (only `client_max_window_bits` may be bare in
/// an offer).
#[derive(Debug, Default)]
struct Offer {
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    server_max_window_bits: Option<Option<u8>>,
    client_max_window_bits: Option<Option<u8>>,
}

impl Offer {
    fn parse(params: &[(String, Option<String>)]) -> Result<Self, &'static str> {
        let mut offer = Self::default();
        for (name, value) in params {
            let name = name.to_ascii_lowercase();
            let flag = |seen: &mut bool| {
                if *seen || value.is_some() {
                    return Err("a flag parameter repeated or with a value");
                }
                *seen = true;
                Ok(())
            };
            let bits = |slot: &mut Option<Option<u8>>| {
                if slot.is_some() {
                    return Err("a parameter repeated");
                }
                *slot = Some(match value {
                    None => None,
                    Some(text) => Some(window_bits(text)?),
                });
                Ok(())
            };
            match name.as_str() {
                "server_no_context_takeover" => flag(&mut offer.server_no_context_takeover)?,
                "client_no_context_takeover" => flag(&mut offer.client_no_context_takeover)?,
                "server_max_window_bits" => {
                    bits(&mut offer.server_max_window_bits)?;
                    if offer.server_max_window_bits == Some(None) {
                        return Err("server_max_window_bits without a value");
                    }
                }
                "client_max_window_bits" => bits(&mut offer.client_max_window_bits)?,
                _ => return Err("an unknown parameter"),
            }
        }
        Ok(offer)
    }
}

/// A window-bits value: 8–15 in plain digits (RFC 7692 §7.1.2).
fn window_bits(text: &str) -> Result<u8, &'static str> {
    let valid = !text.is_empty() && text.len() <= 2 && text.bytes().all(|b| b.is_ascii_digit());
    match text.parse::<u8>() {
        Ok(bits @ 8..=15) if valid => Ok(bits),
        _ => Err("window bits outside 8-15"),
    }
}

/// Extension name and parameters, per `Sec-WebSocket-Extensions` element.
type Extension = (String, Vec<(String, Option<String>)>);

/// Parses a `Sec-WebSocket-Extensions` value (RFC 6455 §9.1): extensions
/// separated by commas, parameters by semicolons, values as tokens or
/// quoted strings.
fn parse_extensions(value: &str) -> Result<impl Iterator<Item = Extension>, &'static str> {
    let mut extensions = Vec::new();
    for element in split_outside_quotes(value, ',') {
        let mut parts = split_outside_quotes(element, ';').into_iter();
        let name = parts.next().unwrap_or("").trim();
        if name.is_empty() {
            if parts.next().is_some() {
                return Err("parameters without an extension name");
            }
            continue;
        }
        if !super::is_token(name) {
            return Err("an extension name that is not a token");
        }
        let mut params = Vec::new();
        for part in parts {
            let (key, value) = match part.split_once('=') {
                Some((key, value)) => (key.trim(), Some(unquote(value.trim())?)),
                None => (part.trim(), None),
            };
            if !super::is_token(key) {
                return Err("a parameter name that is not a token");
            }
            params.push((key.to_owned(), value));
        }
        extensions.push((name.to_owned(), params));
    }
    Ok(extensions.into_iter())
}

fn split_outside_quotes(text: &str, separator: char) -> Vec<&str> {
    let mut pieces = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            c if c == separator && !quoted => {
                pieces.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    pieces.push(&text[start..]);
    pieces
}

fn unquote(value: &str) -> Result<String, &'static str> {
    let Some(inner) = value.strip_prefix('"') else {
        return if super::is_token(value) {
            Ok(value.to_owned())
        } else {
            Err("a parameter value that is not a token")
        };
    };
    let inner = inner
        .strip_suffix('"')
        .ok_or("an unterminated quoted string")?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        out.push(if c == '\\' {
            chars.next().ok_or("a dangling escape")?
        } else {
            c
        });
    }
    Ok(out)
}

#[cfg(test)]
#[path = "deflate_tests.rs"]
mod tests;
