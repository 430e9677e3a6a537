//! The protocol rules over an HTTP/2 stream, in both roles: Autobahn speaks
//! only HTTP/1.1, so these cases (fragmentation, control frames, UTF-8,
//! close codes, reserved bits and opcodes, masking, limits) are sent as
//! hand-made frames by a raw HTTP/2 peer built on `h2`, against wsstream's
//! server on hyper and wsstream's client. wsstream echoes what it accepts;
//! the raw peer checks the echoes, or the close code it is sent.

#![cfg(all(feature = "http2", feature = "hyper"))]
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/raw.rs"]
mod raw;

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use h2::{RecvStream, SendStream};
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use raw::{binary_fragments, close_body, close_code, frame, within};
use tokio::net::{TcpListener, TcpStream};
use wsstream::proto::{Frame, FrameDecoder, OpCode, Role};
use wsstream::{HttpVersion, Options, ServerOptions, WebSocketStream};

/// The message limit both wsstream ends run with.
const LIMIT: usize = 64 * 1024;

/// What the raw peer expects back.
enum Expect {
    /// These frames (opcode, payload), in order; then we close cleanly.
    Echo(Vec<(OpCode, Vec<u8>)>),
    /// A close frame with this code.
    Close(u16),
}

struct Case {
    name: &'static str,
    /// The frames to send, masked with the key when the raw peer is the
    /// client.
    frames: fn(Option<[u8; 4]>) -> Vec<Vec<u8>>,
    expect: fn() -> Expect,
}

fn text(s: &str) -> (OpCode, Vec<u8>) {
    (OpCode::Text, s.as_bytes().to_vec())
}

const CASES: &[Case] = &[
    Case {
        name: "text in three fragments with a ping between them",
        frames: |m| {
            vec![
                frame(OpCode::Text, false, b"Hel", m),
                frame(OpCode::Ping, true, b"p", m),
                frame(OpCode::Continuation, false, b"lo, ", m),
                frame(OpCode::Continuation, true, "wörld".as_bytes(), m),
            ]
        },
        expect: || Expect::Echo(vec![(OpCode::Pong, b"p".to_vec()), text("Hello, wörld")]),
    },
    Case {
        name: "binary of 60 KiB in 4 KiB fragments",
        frames: |m| {
            let payload: Vec<u8> = (0..60 * 1024).map(|i| (i % 251) as u8).collect();
            binary_fragments(&payload, payload.len() / 4096, m)
        },
        expect: || {
            Expect::Echo(vec![(
                OpCode::Binary,
                (0..60 * 1024).map(|i| (i % 251) as u8).collect(),
            )])
        },
    },
    Case {
        name: "empty text and empty binary",
        frames: |m| {
            vec![
                frame(OpCode::Text, true, b"", m),
                frame(OpCode::Binary, true, b"", m),
            ]
        },
        expect: || Expect::Echo(vec![text(""), (OpCode::Binary, Vec::new())]),
    },
    Case {
        name: "UTF-8 split inside a character across fragments",
        frames: |m| {
            let s = "κόσμε".as_bytes();
            vec![
                frame(OpCode::Text, false, &s[..1], m),
                frame(OpCode::Continuation, true, &s[1..], m),
            ]
        },
        expect: || Expect::Echo(vec![text("κόσμε")]),
    },
    Case {
        name: "an unsolicited pong is ignored",
        frames: |m| {
            vec![
                frame(OpCode::Pong, true, b"x", m),
                frame(OpCode::Text, true, b"after", m),
            ]
        },
        expect: || Expect::Echo(vec![text("after")]),
    },
    Case {
        name: "a ping of 125 bytes is answered with the same payload",
        frames: |m| vec![frame(OpCode::Ping, true, &[7u8; 125], m)],
        expect: || Expect::Echo(vec![(OpCode::Pong, vec![7u8; 125])]),
    },
    Case {
        name: "a continuation with nothing to continue",
        frames: |m| vec![frame(OpCode::Continuation, true, b"x", m)],
        expect: || Expect::Close(1002),
    },
    Case {
        name: "a new message inside a fragmented one",
        frames: |m| {
            vec![
                frame(OpCode::Text, false, b"a", m),
                frame(OpCode::Text, true, b"b", m),
            ]
        },
        expect: || Expect::Close(1002),
    },
    Case {
        name: "a ping of 126 bytes",
        frames: |m| vec![frame(OpCode::Ping, true, &[0u8; 126], m)],
        expect: || Expect::Close(1002),
    },
    Case {
        name: "a fragmented ping",
        frames: |m| vec![frame(OpCode::Ping, false, b"a", m)],
        expect: || Expect::Close(1002),
    },
    Case {
        name: "a reserved opcode",
        frames: |m| {
            let mut bytes = frame(OpCode::Binary, true, b"x", m);
            bytes[0] = 0x80 | 0x3;
            vec![bytes]
        },
        expect: || Expect::Close(1002),
    },
    Case {
        name: "RSV1 without an extension",
        frames: |m| {
            let mut bytes = frame(OpCode::Text, true, b"x", m);
            bytes[0] |= 0x40;
            vec![bytes]
        },
        expect: || Expect::Close(1002),
    },
    Case {
        name: "invalid UTF-8 in a text message",
        frames: |m| vec![frame(OpCode::Text, true, &[0xce, 0xba, 0xff], m)],
        expect: || Expect::Close(1007),
    },
    Case {
        name: "invalid UTF-8 in a later fragment",
        frames: |m| {
            vec![
                frame(OpCode::Text, false, b"fine", m),
                frame(OpCode::Continuation, true, &[0xed, 0xa0, 0x80], m),
            ]
        },
        expect: || Expect::Close(1007),
    },
    Case {
        name: "a close with code 1005, which may not be sent",
        frames: |m| vec![frame(OpCode::Close, true, &close_body(1005, ""), m)],
        expect: || Expect::Close(1002),
    },
    Case {
        name: "a close with code 999",
        frames: |m| vec![frame(OpCode::Close, true, &close_body(999, ""), m)],
        expect: || Expect::Close(1002),
    },
    Case {
        name: "a close with a one-byte body",
        frames: |m| vec![frame(OpCode::Close, true, &[3], m)],
        expect: || Expect::Close(1002),
    },
    Case {
        name: "a close reason that is not UTF-8",
        frames: |m| {
            let mut body = close_body(1000, "");
            body.extend_from_slice(&[0xff, 0xfe]);
            vec![frame(OpCode::Close, true, &body, m)]
        },
        expect: || Expect::Close(1007),
    },
    Case {
        name: "a clean close with 3000 and a reason",
        frames: |m| vec![frame(OpCode::Close, true, &close_body(3000, "bye"), m)],
        expect: || Expect::Close(3000),
    },
    Case {
        name: "a message over the limit",
        frames: |m| vec![frame(OpCode::Binary, true, &vec![0u8; LIMIT + 1], m)],
        expect: || Expect::Close(1009),
    },
    Case {
        name: "fragments adding up to more than the limit",
        frames: |m| {
            let chunk = vec![0u8; LIMIT / 2];
            vec![
                frame(OpCode::Binary, false, &chunk, m),
                frame(OpCode::Continuation, false, &chunk, m),
                frame(OpCode::Continuation, true, &chunk, m),
            ]
        },
        expect: || Expect::Close(1009),
    },
];

/// One end of an HTTP/2 stream, speaking WebSocket frames by hand.
struct RawStream {
    send: SendStream<Bytes>,
    recv: RecvStream,
    buf: BytesMut,
    decoder: FrameDecoder,
}

impl RawStream {
    fn new(send: SendStream<Bytes>, recv: RecvStream, role: Role) -> Self {
        Self {
            send,
            recv,
            buf: BytesMut::new(),
            decoder: FrameDecoder::new(role, usize::MAX),
        }
    }

    /// Sends `bytes`, waiting for flow-control capacity.
    async fn send(&mut self, bytes: Vec<u8>) {
        let mut bytes = Bytes::from(bytes);
        while !bytes.is_empty() {
            self.send.reserve_capacity(bytes.len());
            let capacity = within(std::future::poll_fn(|cx| self.send.poll_capacity(cx)))
                .await
                .expect("stream closed")
                .expect("no capacity");
            if capacity == 0 {
                continue;
            }
            let chunk = bytes.split_to(capacity.min(bytes.len()));
            self.send.send_data(chunk, false).unwrap();
        }
    }

    /// The next frame, or `None` when the stream ends.
    async fn read_frame(&mut self) -> Option<Frame> {
        loop {
            if let Some(frame) = self.decoder.decode(&mut self.buf).expect("bad frame") {
                return Some(frame);
            }
            match within(self.recv.data()).await {
                Some(Ok(data)) => {
                    let _ = self.recv.flow_control().release_capacity(data.len());
                    self.buf.extend_from_slice(&data);
                }
                _ => return None,
            }
        }
    }

    /// Runs one case: sends its frames and checks the answer.
    async fn run(&mut self, case: &Case, mask: Option<[u8; 4]>) {
        for bytes in (case.frames)(mask) {
            self.send(bytes).await;
        }
        match (case.expect)() {
            Expect::Echo(expected) => {
                for (opcode, payload) in expected {
                    let got = self.read_frame().await.expect("stream ended");
                    assert_eq!(got.header.opcode, opcode, "{}", case.name);
                    assert_eq!(&got.payload[..], &payload[..], "{}", case.name);
                    assert!(got.header.fin, "{}", case.name);
                }
                self.send(frame(OpCode::Close, true, &close_body(1000, ""), mask))
                    .await;
                assert_eq!(self.close_code().await, Some(1000), "{}", case.name);
            }
            Expect::Close(code) => {
                assert_eq!(self.close_code().await, Some(code), "{}", case.name);
            }
        }
        // The close handshake ends wsstream's direction of the stream.
        while self.read_frame().await.is_some() {}
    }

    /// The code of the next close frame, skipping other frames.
    async fn close_code(&mut self) -> Option<u16> {
        while let Some(frame) = self.read_frame().await {
            if let Some(code) = close_code(&frame) {
                return Some(code);
            }
        }
        None
    }
}

/// A wsstream echo server on hyper's HTTP/2, extended CONNECT on.
async fn wsstream_server() -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let service = service_fn(|mut request| async move {
                let options = ServerOptions::default().max_message_size(LIMIT);
                let response = match wsstream::hyper::upgrade(&mut request, &options) {
                    Ok((response, upgrading)) => {
                        tokio::spawn(async move {
                            let ws = upgrading.await?;
                            let opened = ws.opened().await?;
                            let _ = opened.readable.forward(opened.writable).await;
                            ws.closed().await.map(drop)
                        });
                        response
                    }
                    Err(rejection) => rejection.into_response().map(Full::new),
                };
                Ok::<_, hyper::Error>(response)
            });
            tokio::spawn(
                hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                    .enable_connect_protocol()
                    .serve_connection(TokioIo::new(tcp), service),
            );
        }
    });
    addr
}

/// Opens a WebSocket by hand on a new stream of `sender`'s connection.
async fn open_raw(
    sender: &h2::client::SendRequest<Bytes>,
    addr: std::net::SocketAddr,
) -> RawStream {
    let mut request = http::Request::connect(format!("http://{addr}/"))
        .header("sec-websocket-version", "13")
        .body(())
        .unwrap();
    request
        .extensions_mut()
        .insert(h2::ext::Protocol::from_static("websocket"));
    let mut sender = sender.clone().ready().await.unwrap();
    let (response, send) = sender.send_request(request, false).unwrap();
    let response = within(response).await.unwrap();
    assert_eq!(response.status(), 200);
    RawStream::new(send, response.into_body(), Role::Client)
}

#[tokio::test]
async fn wsstream_server_over_http2_against_a_raw_client() {
    let addr = wsstream_server().await;
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (sender, mut connection) = h2::client::handshake(tcp).await.unwrap();
    let mut ping = connection.ping_pong().unwrap();
    tokio::spawn(connection);
    ping.ping(h2::Ping::opaque()).await.unwrap();
    assert!(sender.is_extended_connect_protocol_enabled());
    // Every case on its own stream of the one connection.
    for case in CASES {
        let mut stream = open_raw(&sender, addr).await;
        stream.run(case, Some([0x11, 0x22, 0x33, 0x44])).await;
    }
    // A frame without a mask from a client.
    let case = Case {
        name: "an unmasked frame from a client",
        frames: |_| vec![frame(OpCode::Text, true, b"x", None)],
        expect: || Expect::Close(1002),
    };
    open_raw(&sender, addr).await.run(&case, None).await;
}

#[tokio::test]
async fn wsstream_client_over_http2_against_a_raw_server() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let raw_server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut connection = h2::server::Builder::new()
            .enable_connect_protocol()
            .handshake::<_, Bytes>(tcp)
            .await
            .unwrap();
        let mut cases = CASES.iter();
        let mut masked = Some(Case {
            name: "a masked frame from a server",
            frames: |_| vec![frame(OpCode::Text, true, b"x", Some([1, 2, 3, 4]))],
            expect: || Expect::Close(1002),
        });
        let mut running = Vec::new();
        while let Some(accepted) = connection.accept().await {
            let (request, mut respond) = accepted.unwrap();
            assert_eq!(request.method(), http::Method::CONNECT);
            assert_eq!(
                request
                    .extensions()
                    .get::<h2::ext::Protocol>()
                    .map(|p| p.as_str()),
                Some("websocket")
            );
            assert_eq!(request.headers()["sec-websocket-version"], "13");
            let send = respond
                .send_response(http::Response::new(()), false)
                .unwrap();
            let mut stream = RawStream::new(send, request.into_body(), Role::Server);
            let case = match cases.next() {
                Some(case) => CaseRef::Listed(case),
                None => match masked.take() {
                    Some(case) => CaseRef::Owned(case),
                    None => break,
                },
            };
            running.push(tokio::spawn(
                async move { stream.run(case.get(), None).await },
            ));
        }
        // Keep driving the connection while the cases run.
        let drive = tokio::spawn(async move { while connection.accept().await.is_some() {} });
        for case in running {
            case.await.unwrap();
        }
        drive.abort();
    });
    let options = Options::default()
        .http_version(HttpVersion::RequireHttp2)
        .http2_prior_knowledge(true)
        .max_message_size(LIMIT);
    // One WebSocket per case, one after the other, all on one connection;
    // the last is the extra role-specific case.
    for _ in 0..=CASES.len() {
        let ws = WebSocketStream::connect(&url, options.clone());
        let opened = within(ws.opened()).await.unwrap();
        let _ = within(opened.readable.forward(opened.writable)).await;
        let _ = within(ws.closed()).await;
    }
    within(raw_server).await.unwrap();
}

/// A case from the table, or one made for a single role.
enum CaseRef {
    Listed(&'static Case),
    Owned(Case),
}

impl CaseRef {
    fn get(&self) -> &Case {
        match self {
            Self::Listed(case) => case,
            Self::Owned(case) => case,
        }
    }
}
