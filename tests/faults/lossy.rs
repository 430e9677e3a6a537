//! The lossy link: loss, delay and reordering from the TUN relay; every message
//! checked.

use super::*;

const LOSS: f64 = 0.02;
const DELAY: Duration = Duration::from_millis(40);
const JITTER: Duration = Duration::from_millis(20);

/// Messages each way per test, by default.
const CI_MESSAGES: u64 = 2_000;

/// Messages each way per test in the long mode: the figure.
pub(super) const LONG_MESSAGES: u64 = 20_000;

/// What a lossy test sends, and the seed of everything random in it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Workload {
    pub(super) messages: u64,
    pub(super) seed: u64,
    pub(super) mix: SizeMix,
}

/// How message sizes are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SizeMix {
    /// CI: 78% of 16 B–1 KiB, 20% up to 16 KiB, 2% up to 256 KiB.
    SkewedSmall,
    /// The long mode: every power of two from 16 B to 128 KiB equally
    /// likely as the lower end of a size, up to 256 KiB.
    Spread,
}

impl SizeMix {
    pub(super) fn name(self) -> &'static str {
        match self {
            Self::SkewedSmall => "skewed small",
            Self::Spread => "spread evenly over 16 B-256 KiB",
        }
    }
}

/// One side's messages: the seed they are drawn from, and their sizes.
#[derive(Debug, Clone, Copy)]
pub(super) struct Sequence {
    seed: u64,
    mix: SizeMix,
}

impl Workload {
    /// `ci_messages` messages, or `long_messages` in the long mode, unless
    /// `WSSTREAM_FAULTS_MESSAGES` says otherwise; seeded by
    /// `WSSTREAM_FAULTS_SEED`, else `default_seed`.
    pub(super) fn from_env(default_seed: u64, ci_messages: u64, long_messages: u64) -> Self {
        let messages = env_number("WSSTREAM_FAULTS_MESSAGES").unwrap_or(if long_mode() {
            long_messages
        } else {
            ci_messages
        });
        let seed = env_number("WSSTREAM_FAULTS_SEED").unwrap_or(default_seed);
        let mix = if long_mode() {
            SizeMix::Spread
        } else {
            SizeMix::SkewedSmall
        };
        Self {
            messages,
            seed,
            mix,
        }
    }

    /// What the client sends, and what the server sends.
    pub(super) fn client(&self) -> Sequence {
        Sequence {
            seed: self.seed ^ 0xC11E_0000_0000_0001,
            mix: self.mix,
        }
    }

    fn server(&self) -> Sequence {
        Sequence {
            seed: self.seed ^ 0x5E4E_0000_0000_0002,
            mix: self.mix,
        }
    }

    /// How long each side may take: generous, as the link is slow and the
    /// machine may be busy.
    pub(super) fn limit(&self) -> Duration {
        Duration::from_secs(150 + self.messages / 5)
    }
}

/// How a message is handed to the writable.
#[derive(Debug, Clone, Copy)]
enum Sending {
    /// `feed` of a whole message.
    Whole,
    /// A `MessageWriter` (`start_streamed`) with this fragment size, fed
    /// chunks of up to `max_chunk` bytes.
    Fragments { fragment: usize, max_chunk: usize },
    /// `send_streamed` of chunks of up to `max_chunk` bytes, each sent as
    /// its own fragment(s) (the stream yields between chunks).
    Chunks { max_chunk: usize },
}

/// Message `i` of a sequence: its kind, length and how it is sent.
#[derive(Debug, Clone, Copy)]
struct Planned {
    kind: MessageKind,
    len: usize,
    sending: Sending,
}

/// A generator for message `i` of the sequence `seed`, one per purpose.
fn rng_for(seed: u64, i: u64, purpose: u64) -> SplitMix64 {
    let mut rng = SplitMix64(
        seed ^ i.wrapping_mul(0xA24B_AED4_963E_E407) ^ purpose.wrapping_mul(0x9FB2_1C65_1E98_DF25),
    );
    rng.next_u64();
    rng
}

fn plan(sequence: Sequence, i: u64) -> Planned {
    let mut rng = rng_for(sequence.seed, i, 1);
    let kind = if rng.next_u64() % 2 == 0 {
        MessageKind::Text
    } else {
        MessageKind::Binary
    };
    let len = match sequence.mix {
        SizeMix::SkewedSmall => match rng.next_u64() % 100 {
            0..78 => rng.range(16, 1024),
            78..98 => rng.range(1025, 16 * 1024),
            _ => rng.range(16 * 1024 + 1, 256 * 1024),
        },
        SizeMix::Spread => {
            let low = 1u64 << rng.range(4, 17);
            rng.range(low, 2 * low)
        }
    } as usize;
    let sending = if len >= 256 && rng.next_u64() % 8 == 0 {
        let half = (len / 2) as u64;
        if rng.next_u64() % 2 == 0 {
            let fragment = rng.range(64, half) as usize;
            Sending::Fragments {
                fragment,
                max_chunk: 2 * fragment,
            }
        } else {
            Sending::Chunks {
                max_chunk: rng.range((len / 8) as u64, half) as usize,
            }
        }
    } else {
        Sending::Whole
    };
    Planned { kind, len, sending }
}

/// Words for text messages: ASCII and characters of 2, 3 and 4 bytes, so
/// chunks and fragments cut characters; repetitive enough to compress.
const WORDS: &[&str] = &[
    "stream",
    "frame",
    "the",
    "of",
    "WebSocket",
    "backpressure",
    "fragment",
    "données",
    "Grüße",
    "пакет",
    "τέλος",
    "数据包",
    "✓",
    "🦀",
    "close",
    "ping",
];

/// The payload of message `i` of the sequence `seed`, as `planned`.
fn payload(seed: u64, i: u64, planned: &Planned) -> Bytes {
    let mut rng = rng_for(seed, i, 2);
    let len = planned.len;
    match planned.kind {
        MessageKind::Text => {
            let mut text = String::with_capacity(len);
            loop {
                let word = WORDS[rng.range(0, WORDS.len() as u64 - 1) as usize];
                if text.len() + word.len() + 1 > len {
                    break;
                }
                text.push_str(word);
                text.push(' ');
            }
            while text.len() < len {
                text.push('.');
            }
            Bytes::from(text)
        }
        MessageKind::Binary if rng.next_u64() % 2 == 0 => {
            // Noise: deflate cannot shrink it.
            let mut data = Vec::with_capacity(len + 8);
            while data.len() < len {
                data.extend_from_slice(&rng.next_u64().to_le_bytes());
            }
            data.truncate(len);
            Bytes::from(data)
        }
        MessageKind::Binary => {
            // A pattern with a little noise: deflate shrinks it.
            let salt = rng.next_u64();
            let data: Vec<u8> = (0..len)
                .map(|k| {
                    let k = k as u64;
                    if k % 97 == 0 {
                        (salt >> (k % 64)) as u8
                    } else {
                        (k / 3 % 251) as u8
                    }
                })
                .collect();
            Bytes::from(data)
        }
    }
}

/// `data` cut at random into pieces of 1 to `max_chunk` bytes (no copy).
fn cut(data: &Bytes, rng: &mut SplitMix64, max_chunk: usize) -> Vec<Bytes> {
    let mut pieces = Vec::new();
    let mut at = 0;
    while at < data.len() {
        let take = (rng.range(1, max_chunk.max(1) as u64) as usize).min(data.len() - at);
        pieces.push(data.slice(at..at + take));
        at += take;
    }
    pieces
}

/// What one side sent or read.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Tally {
    pub(super) messages: u64,
    pub(super) bytes: u64,
    /// Sent through the streamed API, or read in chunks.
    pub(super) streamed: u64,
}

/// Sends the first `count` messages of `sequence`, then flushes.
async fn send_all(who: &str, writable: &mut Writable, sequence: Sequence, count: u64) -> Tally {
    let seed = sequence.seed;
    let mut tally = Tally::default();
    for i in 0..count {
        let planned = plan(sequence, i);
        let data = payload(seed, i, &planned);
        let what = format!("{who}: sending message {i} ({planned:?})");
        let sent = async {
            match planned.sending {
                Sending::Whole => {
                    let message = match planned.kind {
                        MessageKind::Text => Message::text(Utf8Bytes::try_from(data).unwrap()),
                        MessageKind::Binary => Message::binary(data),
                    };
                    writable.feed(message).await?;
                    if i % 16 == 15 {
                        writable.flush().await?;
                    }
                }
                Sending::Fragments {
                    fragment,
                    max_chunk,
                } => {
                    let mut rng = rng_for(seed, i, 3);
                    let mut writer = writable
                        .start_streamed(planned.kind)
                        .fragment_size(fragment);
                    for chunk in cut(&data, &mut rng, max_chunk) {
                        writer.feed(chunk).await?;
                    }
                    writer.finish().await?;
                    tally.streamed += 1;
                }
                Sending::Chunks { max_chunk } => {
                    let mut rng = rng_for(seed, i, 3);
                    let chunks =
                        stream::iter(cut(&data, &mut rng, max_chunk)).then(|chunk| async {
                            tokio::task::yield_now().await;
                            chunk
                        });
                    writable.send_streamed(planned.kind, chunks).await?;
                    tally.streamed += 1;
                }
            }
            Ok::<_, Error>(())
        };
        within(&what, STEP, sent)
            .await
            .unwrap_or_else(|err| panic!("{what}: {err:?}"));
        tally.messages += 1;
        tally.bytes += planned.len as u64;
    }
    within(&format!("{who}: flushing"), STEP, writable.flush())
        .await
        .unwrap_or_else(|err| panic!("{who}: flushing: {err:?}"));
    tally
}

/// Reads the first `count` messages of `sequence`, checking each one's kind,
/// length and SHA-1 against what the sender generated: a message lost,
/// doubled, reordered or damaged fails here, naming its number. One in four
/// is read in chunks.
async fn receive_all(who: &str, readable: &mut Readable, sequence: Sequence, count: u64) -> Tally {
    let seed = sequence.seed;
    let mut tally = Tally::default();
    for i in 0..count {
        let planned = plan(sequence, i);
        let expected = Sha1::digest(payload(seed, i, &planned));
        let what = format!("{who}: message {i} of {count} ({planned:?})");
        let (kind, len, digest) = if i % 4 == 3 {
            let mut reader = within(&what, STEP, readable.next_streamed())
                .await
                .unwrap_or_else(|| panic!("{what}: the readable ended"))
                .unwrap_or_else(|err| panic!("{what}: {err:?}"));
            let kind = reader.kind();
            let mut hasher = Sha1::new();
            let mut len = 0;
            while let Some(chunk) = within(&what, STEP, reader.next()).await {
                let chunk = chunk.unwrap_or_else(|err| panic!("{what}: {err:?}"));
                len += chunk.len();
                hasher.update(&chunk);
            }
            tally.streamed += 1;
            (kind, len, hasher.finalize())
        } else {
            let message = within(&what, STEP, readable.next())
                .await
                .unwrap_or_else(|| panic!("{what}: the readable ended"))
                .unwrap_or_else(|err| panic!("{what}: {err:?}"));
            (
                message.kind(),
                message.len(),
                Sha1::digest(message.as_payload()),
            )
        };
        assert_eq!(kind, planned.kind, "{what}: wrong kind");
        assert_eq!(len, planned.len, "{what}: wrong length");
        assert!(digest == expected, "{what}: content differs (SHA-1)");
        tally.messages += 1;
        tally.bytes += len as u64;
    }
    tally
}

/// What one side of a lossy exchange did.
#[derive(Debug, Clone, Copy)]
pub(super) struct Exchange {
    pub(super) sent: Tally,
    pub(super) received: Tally,
    pub(super) elapsed: Duration,
}

/// Sends our sequence and reads theirs at the same time.
pub(super) async fn exchange(
    who: &str,
    readable: &mut Readable,
    writable: &mut Writable,
    ours: Sequence,
    theirs: Sequence,
    count: u64,
) -> Exchange {
    let started = Instant::now();
    let (sent, received) = tokio::join!(
        send_all(who, writable, ours, count),
        receive_all(who, readable, theirs, count)
    );
    Exchange {
        sent,
        received,
        elapsed: started.elapsed(),
    }
}

/// The client's whole session with the echo or server at `url`: the
/// opening (permessage-deflate negotiated exactly when `deflate`), our
/// sequence sent while theirs is read and checked, then `close(1000,
/// "done")`, the end of the readable and `closed()` with 1000. Returns the
/// exchange, the extensions negotiated, and the time from `close()` to
/// `closed()`.
pub(super) async fn client_session(
    url: String,
    options: Options,
    deflate: bool,
    ours: Sequence,
    theirs: Sequence,
    count: u64,
) -> (Exchange, String, Duration) {
    let ws = WebSocketStream::connect(url, options);
    let Opened {
        mut readable,
        mut writable,
        extensions,
        ..
    } = within("client handshake", STEP, ws.opened()).await.unwrap();
    assert_eq!(
        extensions.contains("permessage-deflate"),
        deflate,
        "{extensions}"
    );
    let done = exchange("client", &mut readable, &mut writable, ours, theirs, count).await;
    let closing = Instant::now();
    ws.close(1000, "done").unwrap();
    let end = within("client: the server's close", STEP, readable.next()).await;
    assert!(end.is_none(), "client: expected the end, got {end:?}");
    let closed = within("client: closed", STEP, ws.closed()).await.unwrap();
    assert_eq!(closed.code, 1000);
    (done, extensions.to_string(), closing.elapsed())
}

/// The options of both ends, with permessage-deflate on or off.
pub(super) fn deflate_options(deflate: bool) -> (Options, ServerOptions) {
    let (client, server) = (Options::default(), ServerOptions::default());
    #[cfg(feature = "deflate")]
    if deflate {
        return (
            client.deflate(wsstream::DeflateConfig::default()),
            server.deflate(wsstream::DeflateConfig::default()),
        );
    }
    assert!(!deflate, "built without the `deflate` feature");
    (client, server)
}

/// The namespaces of the test `test` with the lossy link between them,
/// its losses seeded by `seed`; `None` (said on the terminal) when not root.
pub(super) fn lossy_pair(test: &str, seed: u64) -> Option<NetPair> {
    let params = LinkParams {
        loss: LOSS,
        delay: DELAY,
        jitter: JITTER,
        seed,
    };
    NetPair::with_lossy_link(test, params)
}

/// The lossy link's settings and what its relay counted, for a report.
pub(super) fn link_figures(pair: &NetPair) -> String {
    let link = pair.lossy().map(|link| link.summary()).unwrap_or_default();
    format!(
        "link {} ± {} ms, {:.0}% loss: {link}",
        DELAY.as_millis(),
        JITTER.as_millis(),
        LOSS * 100.0,
    )
}

async fn lossy_exchange(test: &str, deflate: bool, default_seed: u64) {
    let work = Workload::from_env(default_seed, CI_MESSAGES, LONG_MESSAGES);
    let Some(pair) = lossy_pair(test, work.seed) else {
        return;
    };
    let addr = pair.lossy_server_addr(PORT);
    let listener = listen_in(&pair.server, addr);
    let (client_options, server_options) = deflate_options(deflate);
    let limit = work.limit();

    let server = pair
        .server
        .spawn("lossy server", limit, move || async move {
            let tcp = accept_one(listener).await;
            let ws = within(
                "server handshake",
                STEP,
                WebSocketStream::accept(tcp, server_options),
            )
            .await
            .unwrap();
            let Opened {
                mut readable,
                mut writable,
                extensions,
                ..
            } = ws.opened().await.unwrap();
            assert_eq!(
                extensions.contains("permessage-deflate"),
                deflate,
                "{extensions}"
            );
            let done = exchange(
                "server",
                &mut readable,
                &mut writable,
                work.server(),
                work.client(),
                work.messages,
            )
            .await;
            // The client closes once it has everything: the readable ends.
            let end = within("server: the client's close", STEP, readable.next()).await;
            assert!(end.is_none(), "server: expected the end, got {end:?}");
            let closed = within("server: closed", STEP, ws.closed()).await.unwrap();
            assert_eq!((closed.code, closed.reason.as_str()), (1000, "done"));
            done
        });

    let client = pair
        .client
        .spawn("lossy client", limit, move || async move {
            let (done, _, close_took) = client_session(
                format!("ws://{addr}/lossy"),
                client_options,
                deflate,
                work.client(),
                work.server(),
                work.messages,
            )
            .await;
            (done, close_took)
        });

    let started = Instant::now();
    let (server, (client, close_took)) =
        within(test, limit + STEP, async { tokio::join!(server, client) }).await;
    let elapsed = started.elapsed();
    let both = client.sent.bytes + server.sent.bytes;
    report(&format!(
        "{test}: {} + {} messages (client + server; sizes {}; {} + {}; {} + {} sent \
         through the streamed API, {} + {} read in chunks), every one intact and in order, in \
         {} ({:.0} KiB/s both ways together; client done in {}, server in {}); close 1000 on \
         both ends, close() to closed() {} (the last messages still on their way); seed \
         {:#x}; {}",
        client.sent.messages,
        server.sent.messages,
        work.mix.name(),
        mib(client.sent.bytes),
        mib(server.sent.bytes),
        client.sent.streamed,
        server.sent.streamed,
        server.received.streamed,
        client.received.streamed,
        seconds(elapsed),
        both as f64 / 1024.0 / elapsed.as_secs_f64(),
        seconds(client.elapsed),
        seconds(server.elapsed),
        seconds(close_took),
        work.seed,
        link_figures(&pair),
    ));
    assert_eq!(client.received.messages, work.messages);
    assert_eq!(server.received.messages, work.messages);
}

#[tokio::test]
async fn lossy_link_without_deflate_delivers_every_message_intact_and_in_order() {
    lossy_exchange("lossy link, deflate off", false, 0x1055_0001).await;
}

#[cfg(feature = "deflate")]
#[tokio::test]
async fn lossy_link_with_deflate_delivers_every_message_intact_and_in_order() {
    lossy_exchange("lossy link, deflate on", true, 0x1055_0002).await;
}
