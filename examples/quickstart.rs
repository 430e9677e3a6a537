//! The demo: an embedded echo server on 127.0.0.1 and a client that streams
//! messages through it with `StreamExt`/`SinkExt` combinators.
//!
//! Run with `cargo run --example quickstart`.

use futures::{stream, SinkExt, StreamExt, TryStreamExt};
use tokio::net::TcpListener;
use wsstream::{Error, Message, Options, ServerOptions, WebSocketStream};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    println!("server: listening on {addr}");
    tokio::spawn(serve(listener));

    // Starts connecting at once, like `new WebSocketStream(url, options)`.
    let ws = WebSocketStream::connect(
        format!("ws://{addr}/demo"),
        Options::default().protocols(["shout", "echo"]),
    );
    let opened = ws.opened().await?;
    println!("client: opened, protocol {:?}", opened.protocol);
    let (mut readable, mut writable) = (opened.readable, opened.writable);

    // The writer runs on its own task: five messages, batched into as few
    // writes as the socket allows.
    let writer = tokio::spawn(async move {
        let mut outgoing = stream::iter(1..=5).map(|i| Ok(Message::text(format!("message {i}"))));
        writable.send_all(&mut outgoing).await?;
        Ok::<_, Error>(writable)
    });

    let mut received = 0;
    while let Some(message) = readable.next().await {
        let message = message?;
        println!(
            "client: received {:?}",
            message.as_text().unwrap_or("<binary>")
        );
        received += 1;
        if received == 5 {
            println!("client: closing with 1000 \"bye\"");
            ws.close(1000, "bye")?;
        }
    }
    writer.await??;
    let closed = ws.closed().await?;
    println!(
        "client: closed cleanly, code {} reason {:?}",
        closed.code, closed.reason
    );
    Ok(())
}

/// Accepts connections and answers each message in upper case.
async fn serve(listener: TcpListener) -> std::io::Result<()> {
    loop {
        let (tcp, peer) = listener.accept().await?;
        tokio::spawn(async move {
            let ws =
                WebSocketStream::accept(tcp, ServerOptions::default().protocols(["shout"])).await?;
            let opened = ws.opened().await?;
            println!("server: accepted {peer}, protocol {:?}", opened.protocol);
            opened
                .readable
                .map_ok(|message| match message.as_text() {
                    Some(text) => Message::text(text.to_uppercase()),
                    None => message,
                })
                .forward(opened.writable)
                .await?;
            let closed = ws.closed().await?;
            println!(
                "server: peer closed with {} {:?}",
                closed.code, closed.reason
            );
            Ok::<_, Error>(())
        });
    }
}
