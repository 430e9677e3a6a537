//! The echo server process (fastwebsockets) and the self-test of its mask
//! check.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

use bytes::BytesMut;
use fastwebsockets::{Frame, OpCode, Role, WebSocket, WebSocketError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use wsstream::handshake::{parse_request, ClientHandshake, ServerReply, Target};

use crate::batch_io::{Batch, MaskCheck};
use crate::common::os::{current_thread_runtime, env_usize, pin_to_cpu};
use crate::libraries::url;

/// The server process: prints `PORT n`, serves until its stdin closes.
pub(super) fn run_server() {
    pin_to_cpu(env_usize("COMPARE_CPU"));
    std::thread::spawn(|| {
        // The parent holds our stdin: when it goes, so do we.
        let _ = io::stdin().read_to_end(&mut Vec::new());
        std::process::exit(0);
    });
    current_thread_runtime().block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        println!("PORT {}", listener.local_addr().expect("addr").port());
        io::stdout().flush().expect("stdout");
        loop {
            let (tcp, _) = listener.accept().await.expect("accept");
            tokio::spawn(serve(tcp));
        }
    });
}

async fn serve(tcp: TcpStream) {
    match echo(tcp).await {
        Err(WebSocketError::IoError(err)) if err.kind() == io::ErrorKind::InvalidData => {
            eprintln!("echo server: dropped a connection: {err}");
        }
        // Clients end by exiting: EOF and resets are expected.
        _ => {}
    }
}

async fn echo(mut tcp: TcpStream) -> Result<(), WebSocketError> {
    tcp.set_nodelay(true)?;
    accept_upgrade(&mut tcp).await?;
    let mut ws = WebSocket::after_handshake(Batch::new(MaskCheck::new(tcp)), Role::Server);
    ws.set_writev(true);
    loop {
        let frame = ws.read_frame().await?;
        match frame.opcode {
            OpCode::Text | OpCode::Binary | OpCode::Continuation => {
                ws.write_frame(Frame::new(frame.fin, frame.opcode, None, frame.payload))
                    .await?;
            }
            // fastwebsockets has queued its answer.
            OpCode::Close => return ws.flush().await,
            OpCode::Ping | OpCode::Pong => {}
        }
    }
}

/// The server side of the HTTP upgrade, through wsstream's sans-io
/// handshake (fastwebsockets' own needs hyper).
async fn accept_upgrade(tcp: &mut TcpStream) -> io::Result<()> {
    let mut buf = BytesMut::with_capacity(1024);
    let head = loop {
        if let Some(head) = parse_request(&mut buf).map_err(io::Error::other)? {
            break head;
        }
        if tcp.read_buf(&mut buf).await? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
    };
    if !buf.is_empty() {
        return Err(io::Error::other("client sent frames before the 101"));
    }
    tcp.write_all(&ServerReply::accept(&head, None)).await
}

/// The server's answer to one hand-made frame: its echo, or `None` if it
/// closed the connection.
fn raw_exchange(addr: SocketAddr, mask: Option<[u8; 4]>) -> Option<Vec<u8>> {
    use wsstream::proto::{apply_mask, FrameHeader, OpCode, MAX_HEADER_LEN};
    let mut tcp = std::net::TcpStream::connect(addr).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let target = Target::parse(&url(addr)).expect("url");
    let handshake = ClientHandshake::new(&target, &[], &http::HeaderMap::new()).expect("key");
    tcp.write_all(handshake.request()).expect("write");
    let mut buf = BytesMut::new();
    let mut chunk = [0u8; 1024];
    while handshake.read_response(&mut buf).expect("101").is_none() {
        let n = tcp.read(&mut chunk).expect("read");
        buf.extend_from_slice(&chunk[..n]);
    }
    let header = FrameHeader {
        fin: true,
        rsv: 0,
        opcode: OpCode::Binary,
        mask,
        payload_len: 5,
    };
    let mut head = [0u8; MAX_HEADER_LEN];
    let n = header.encode(&mut head);
    let mut data = *b"hello";
    if let Some(key) = mask {
        apply_mask(&mut data, key, 0);
    }
    tcp.write_all(&[&head[..n], &data].concat()).expect("write");
    let mut answer = Vec::new();
    match tcp.read_to_end(&mut answer) {
        Ok(_) if answer.is_empty() => None,
        Ok(_) => Some(answer),
        // With the echo sent, the connection stays open: the timeout ends
        // the read.
        Err(err) if err.kind() == io::ErrorKind::WouldBlock => Some(answer),
        Err(_) => None,
    }
}

/// Proves that the server's mask check works: it drops a client that
/// sends an unmasked frame and echoes a masked one.
pub(super) fn masking_self_test(addr: SocketAddr) {
    let unmasked = raw_exchange(addr, None);
    assert!(unmasked.is_none(), "the server echoed an unmasked frame");
    let masked = raw_exchange(addr, Some([1, 2, 3, 4]));
    assert_eq!(
        masked.as_deref(),
        Some(&b"\x82\x05hello"[..]),
        "masked echo"
    );
    eprintln!("masking self-test: an unmasked frame was refused, a masked one echoed");
}
