//! What each side counts, under the same names on both sides so that the
//! parent can compare them: opens, ends by kind (and close code), messages,
//! errors by kind; and, per kind of end, a sum over the connections of a
//! hash of their id (and close code), which is equal on both sides only if
//! the very same connections ended the same way, not merely as many.
//!
//! The keys:
//!
//! | key | what |
//! |---|---|
//! | `opens`, `opens.deflate`, `opens.keepalive` | handshakes completed (with permessage-deflate, with keepalive pings on this side) |
//! | `end.close.client.<code>` | clean closes the client started with `<code>` |
//! | `end.close.server.<code>` | clean closes the server started (asked by the client) |
//! | `end.drop` | the client dropped the connection without closing; on the server: an unclean end |
//! | `end.error` | the connection failed otherwise (see `error.*`) |
//! | `unclean.<kind>` | on the server: how dropped connections ended (`connection_lost`, `io.connectionreset`) |
//! | `msgs.sent`, `msgs.received`, `msgs.verified`, `msgs.echoed`, `bytes.sent` | data messages |
//! | `mismatch.<what>` | a message not as its header says (`header`, `length`, `content`), out of order (`order`), or a close reason not as expected (`close_reason`) |
//! | `error.<stage>.<kind>` | anything else that went wrong |
//! | `hash.open`, `hash.close.client`, `hash.close.server`, `hash.drop` | the sums of hashes |

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use crate::common::table::fmt_count;
use crate::rng::mix;

/// How a connection ended, as both sides name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    /// A clean close started by the client, with its code.
    ClientClose(u16),
    /// A clean close started by the server at the client's request.
    ServerClose(u16),
    /// Dropped by the client without a close; unclean on the server.
    Drop,
    /// Anything else: an error, counted under `error.*`.
    Error,
}

/// Counts by key.
#[derive(Debug, Default, Clone)]
pub(crate) struct Tally {
    counts: BTreeMap<String, u64>,
}

impl Tally {
    pub(crate) fn add(&mut self, key: impl Into<String>, n: u64) {
        if n > 0 {
            *self.counts.entry(key.into()).or_default() += n;
        }
    }

    /// Adds `hash` to the sum under `key` (wrapping).
    fn add_hash(&mut self, key: &str, hash: u64) {
        let sum = self.counts.entry(key.to_owned()).or_default();
        *sum = sum.wrapping_add(hash);
    }

    /// Connection `id` opened.
    pub(crate) fn open(&mut self, id: u64) {
        self.add("opens", 1);
        self.add_hash("hash.open", mix(id));
    }

    /// Connection `id` ended.
    pub(crate) fn end(&mut self, id: u64, end: End) {
        match end {
            End::ClientClose(code) => {
                self.add(format!("end.close.client.{code}"), 1);
                self.add_hash("hash.close.client", mix(id ^ u64::from(code) << 48));
            }
            End::ServerClose(code) => {
                self.add(format!("end.close.server.{code}"), 1);
                self.add_hash("hash.close.server", mix(id ^ u64::from(code) << 48));
            }
            End::Drop => {
                self.add("end.drop", 1);
                self.add_hash("hash.drop", mix(id));
            }
            End::Error => self.add("end.error", 1),
        }
    }

    pub(crate) fn merge(&mut self, other: &Self) {
        for (key, &n) in &other.counts {
            if key.starts_with("hash.") {
                self.add_hash(key, n);
            } else {
                self.add(key.as_str(), n);
            }
        }
    }

    pub(crate) fn get(&self, key: &str) -> u64 {
        self.counts.get(key).copied().unwrap_or(0)
    }

    /// The counts whose key starts with `prefix`, the prefix taken off.
    pub(crate) fn with_prefix(&self, prefix: &str) -> BTreeMap<String, u64> {
        self.counts
            .iter()
            .filter_map(|(k, &v)| Some((k.strip_prefix(prefix)?.to_owned(), v)))
            .collect()
    }

    /// The counts whose key starts with `prefix`, as `kind n, kind n`, or
    /// `none`.
    pub(crate) fn listing(&self, prefix: &str) -> String {
        let items: Vec<String> = self
            .with_prefix(prefix)
            .iter()
            .map(|(k, &v)| format!("{k} {}", fmt_count(v as f64)))
            .collect();
        if items.is_empty() {
            "none".to_owned()
        } else {
            items.join(", ")
        }
    }

    /// The sum of the counts whose key starts with `prefix`.
    pub(crate) fn sum(&self, prefix: &str) -> u64 {
        self.with_prefix(prefix).values().sum()
    }

    /// `key=value key=value …`, for a `RESULT` line.
    pub(crate) fn line(&self) -> String {
        let fields: Vec<String> = self
            .counts
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        fields.join(" ")
    }

    /// Reads what [`line`](Self::line) wrote.
    pub(crate) fn parse(line: &str) -> Option<Self> {
        let counts = line
            .split_whitespace()
            .map(|field| {
                let (k, v) = field.split_once('=')?;
                Some((k.to_owned(), v.parse().ok()?))
            })
            .collect::<Option<_>>()?;
        Some(Self { counts })
    }
}

/// A process's tally, to which each connection adds its own when it ends.
pub(crate) type Shared = Mutex<Tally>;

/// Failures printed to stderr at most, per process: when everything
/// fails, the counts say how much.
const NOTES: u64 = 20;

/// Prints a failure to stderr (the first [`NOTES`] of them).
pub(crate) fn note(what: std::fmt::Arguments<'_>) {
    static NOTED: AtomicU64 = AtomicU64::new(0);
    match NOTED.fetch_add(1, Ordering::Relaxed) {
        n if n < NOTES => eprintln!("{what}"),
        NOTES => eprintln!("(more failures: see the counts)"),
        _ => {}
    }
}

/// The key of what ended a connection, for `error.<stage>.<kind>` and
/// `unclean.<kind>`: lower case, no spaces.
pub(crate) fn kind(error: &wsstream::Error) -> String {
    use wsstream::Error;
    match error {
        Error::Io(io) => format!("io.{:?}", io.kind()).to_lowercase(),
        Error::ConnectionLost => "connection_lost".to_owned(),
        Error::Protocol(p) => format!("protocol.{}", p.close_code().as_u16()),
        Error::Timeout(t) => format!("timeout.{t:?}").to_lowercase(),
        Error::Handshake(_) => "handshake".to_owned(),
        Error::Closed => "closed".to_owned(),
        Error::Aborted => "aborted".to_owned(),
        other => format!("{other:?}")
            .chars()
            .take_while(char::is_ascii_alphanumeric)
            .collect::<String>()
            .to_lowercase(),
    }
}
