//! Streams messages to an embedded echo server on 127.0.0.1 through a
//! proxy: the URL given as the argument (`http://`, `https://`,
//! `socks5://`, `socks5h://`, with optional `user:password@`), or, without
//! one, whatever `HTTP_PROXY`, `ALL_PROXY` and `NO_PROXY` say.
//!
//! ```sh
//! cargo run --example proxy -- http://127.0.0.1:8888
//! cargo run --example proxy -- socks5h://user:pass@127.0.0.1:1080
//! HTTP_PROXY=http://127.0.0.1:8888 cargo run --example proxy
//! ```

use futures::{stream, SinkExt, StreamExt, TryStreamExt};
use tokio::net::TcpListener;
use wsstream::proxy::EnvProxy;
use wsstream::transport::Endpoint;
use wsstream::{Message, Options, ServerOptions, WebSocketStream};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let url = format!("ws://{addr}/echo");
    tokio::spawn(async move {
        while let Ok((tcp, peer)) = listener.accept().await {
            println!("server: connection from {peer}");
            tokio::spawn(async move {
                let ws = WebSocketStream::accept(tcp, ServerOptions::default()).await?;
                let opened = ws.opened().await?;
                opened.readable.forward(opened.writable).await
            });
        }
    });

    // The one line that routes the connection through a proxy.
    let (options, route) = match std::env::args().nth(1) {
        Some(proxy) => (Options::default().proxy(&proxy), "through the proxy given"),
        None => {
            // What `Options::proxy_from_env` does, kept here to say which
            // way the connection goes: NO_PROXY, or no variable at all,
            // means directly.
            let env = EnvProxy::from_env();
            let to = Endpoint::new("127.0.0.1", addr.port(), false);
            let route = match env.proxy_for(&to)? {
                Some(_) => "through the proxy the environment names",
                None => "directly: the environment names no proxy for it",
            };
            (Options::default().connector(env), route)
        }
    };
    let ws = WebSocketStream::connect(&url, options);
    let opened = ws.opened().await?;
    println!("client: opened {url} {route}");
    let (readable, mut writable) = (opened.readable, opened.writable);

    let mut outgoing = stream::iter(1..=3).map(|i| Ok(Message::text(format!("message {i}"))));
    writable.send_all(&mut outgoing).await?;
    let echoed: Vec<Message> = readable.take(3).try_collect().await?;
    for message in &echoed {
        println!(
            "client: echoed {:?}",
            message.as_text().unwrap_or("<binary>")
        );
    }
    ws.close(1000, "done")?;
    let closed = ws.closed().await?;
    println!("client: closed cleanly with {}", closed.code);
    Ok(())
}
