//! The tokio layer: `WebSocketStream`, its halves, and what drives them.

mod broadcast;
mod driver;
mod halves;
mod message_reader;
mod message_writer;
mod open;
mod options;
mod read_buffer;
mod request_head;
mod shared;
mod timers;
mod upgrade;
mod verdict;
mod waker_set;
mod websocket;
mod wire;

pub use broadcast::{Backpressure, Broadcast, Delivery, MemberId};
pub use halves::{Readable, Writable};
pub use message_reader::{MessageReader, NextStreamed};
pub use message_writer::{MessageWriter, DEFAULT_FRAGMENT_SIZE};
#[cfg(feature = "http2")]
pub use options::HttpVersion;
pub use options::{Options, ServerOptions, DEFAULT_OPEN_TIMEOUT, DEFAULT_WRITE_HIGH_WATER};
#[cfg(feature = "axum")]
pub(crate) use upgrade::copy_head;
pub use upgrade::Upgrade;
pub use verdict::{Acceptance, Rejection};
pub use websocket::{CloseInfo, ClosedFuture, Opened, OpenedFuture, WebSocketStream};
