//! A broadcast chat on axum: open the printed URL in two browser tabs and
//! type. The page uses the browser's own `WebSocket`; the server is
//! `wsstream::axum::WebSocketUpgrade`, one task per connection.
//!
//! Run with `cargo run --example chat --features axum` (listens on
//! 127.0.0.1:8080; pass another address as the first argument).

use std::sync::atomic::{AtomicUsize, Ordering};

use axum::extract::State;
use axum::response::{Html, Response};
use axum::routing::get;
use axum::Router;
use futures::{SinkExt, StreamExt};
use tokio::sync::broadcast;
use wsstream::axum::WebSocketUpgrade;
use wsstream::{DeflateConfig, Message, ServerOptions};

const PAGE: &str = r#"<!doctype html><meta charset="utf-8"><title>wsstream chat</title>
<ul id="log"></ul><form id="say"><input id="text" autocomplete="off" autofocus> <button>Send</button></form>
<script>
const ws = new WebSocket(`ws://${location.host}/chat`, ["chat"]);
const show = (line) => log.appendChild(document.createElement("li")).textContent = line;
ws.onopen = () => show(`connected (${ws.protocol}, ${ws.extensions || "no extensions"})`);
ws.onmessage = (event) => show(event.data);
ws.onclose = (event) => show(`closed: ${event.code} ${event.reason}`);
say.onsubmit = (event) => { event.preventDefault(); ws.send(text.value); text.value = ""; };
</script>"#;

/// Numbers the guests.
static GUESTS: AtomicUsize = AtomicUsize::new(0);

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args().nth(1).unwrap_or("127.0.0.1:8080".into());
    // Every message said goes to every connection; a reader more than 256
    // messages behind is told how many it missed.
    let (room, _) = broadcast::channel::<String>(256);
    let app = Router::new()
        .route("/", get(|| async { Html(PAGE) }))
        .route("/chat", get(join))
        .with_state(room);
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("chat: open http://{} in two tabs", listener.local_addr()?);
    axum::serve(listener, app).await
}

async fn join(ws: WebSocketUpgrade, State(room): State<broadcast::Sender<String>>) -> Response {
    let options = ServerOptions::default()
        .protocols(["chat"])
        .max_message_size(4096)
        .deflate(DeflateConfig::default());
    ws.options(options).on_upgrade(move |ws| async move {
        let Ok(opened) = ws.opened().await else {
            return;
        };
        let (mut readable, mut writable) = (opened.readable, opened.writable);
        let mut heard = room.subscribe();
        let name = format!("guest{}", GUESTS.fetch_add(1, Ordering::Relaxed) + 1);
        let _ = room.send(format!("{name} joined"));
        // Out: the room to this browser. The writable's backpressure holds
        // this task when the browser reads slowly.
        let speaker = tokio::spawn(async move {
            loop {
                let line = match heard.recv().await {
                    Ok(line) => line,
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        format!("({missed} messages missed)")
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                };
                if writable.send(Message::text(line)).await.is_err() {
                    break;
                }
            }
        });
        // In: this browser to the room, until it closes.
        while let Some(Ok(message)) = readable.next().await {
            if let Some(text) = message.as_text() {
                let _ = room.send(format!("{name}: {text}"));
            }
        }
        speaker.abort();
        let _ = room.send(format!("{name} left"));
    })
}
