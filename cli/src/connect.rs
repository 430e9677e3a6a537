//! `wsstream connect URL`: stdin's lines out as messages, received
//! messages on stdout, and a clean close at the end of stdin or on Ctrl-C.

use std::io::{self, IsTerminal, Write};

use futures::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use wsstream::{DeflateConfig, Message, Opened, Options, WebSocketStream, Writable};

use crate::interrupt::Interrupts;
use crate::report::{self, status};
use crate::{show, stdin, tls, ConnectArgs, Exit};

/// The reason sent with the close that Ctrl-C starts.
const INTERRUPTED: &str = "interrupted";

/// Runs the client until the connection ends.
pub(crate) async fn run(args: ConnectArgs) -> Exit {
    let options = match options(&args) {
        Ok(options) => options,
        Err(err) => {
            status(err);
            return Exit::Failure;
        }
    };
    let mut interrupts = match Interrupts::new() {
        Ok(interrupts) => interrupts,
        Err(err) => {
            report::error("cannot listen for Ctrl-C", &err);
            return Exit::Failure;
        }
    };
    let ws = WebSocketStream::connect(&args.url, options);
    let opened = tokio::select! {
        opened = ws.opened() => opened,
        () = interrupts.next() => {
            // Before it opens, closing aborts the connection.
            let _ = ws.close(1000, INTERRUPTED);
            status("interrupted while connecting");
            return Exit::Failure;
        }
    };
    let opened = match opened {
        Ok(opened) => opened,
        Err(err) => {
            report::error(
                format_args!("could not connect to {}", shown(&args.url)),
                &err,
            );
            return Exit::Failure;
        }
    };
    announce(&args.url, &opened);
    let lines = match stdin::lines() {
        Ok(lines) => lines,
        Err(err) => {
            report::error("cannot read stdin", &err);
            let _ = ws.close(1000, "");
            return Exit::Failure;
        }
    };
    let Opened {
        mut readable,
        writable,
        ..
    } = opened;
    let mut writer = tokio::spawn(send_lines(writable, lines, args.binary));
    let mut writing = true;
    let mut interrupted = false;
    let mut failed = false;
    let mut stdout_gone = false;
    loop {
        tokio::select! {
            message = readable.next() => match message {
                // Once stdout is gone (`| head -1`), what still arrives
                // before the close completes is dropped.
                Some(Ok(message)) if !stdout_gone => {
                    if let Err(err) = print(&message) {
                        report::error("cannot write to stdout", &err);
                        // No one sees the replies: stop sending, and close.
                        stdout_gone = true;
                        failed = true;
                        writer.abort();
                        writing = false;
                        let _ = ws.close(1000, "");
                    }
                }
                Some(Ok(_)) => {}
                // A failure is told by `closed` below.
                Some(Err(_)) | None => break,
            },
            sent = &mut writer, if writing => {
                writing = false;
                match sent {
                    Ok(Ok(()) | Err(SendStop::Connection)) => {}
                    Ok(Err(SendStop::Stdin(err))) => {
                        report::error("cannot read stdin", &err);
                        failed = true;
                    }
                    Err(err) => {
                        report::error("the writer failed", &err);
                        failed = true;
                    }
                }
                // The end of stdin: close, and read on until the server
                // answers (it may still send messages before that). After
                // the connection's end, this does nothing.
                let _ = ws.close(1000, "");
            }
            () = interrupts.next() => {
                if interrupted {
                    status("interrupted again: quitting without waiting for the close handshake");
                    return Exit::Forced;
                }
                interrupted = true;
                status("interrupted: closing (Ctrl-C again to quit at once)");
                let _ = ws.close(1000, INTERRUPTED);
            }
        }
    }
    writer.abort();
    match ws.closed().await {
        Ok(closed) => {
            status(format_args!(
                "closed: {}",
                report::close(closed.code, &closed.reason)
            ));
            match (failed, closed.code) {
                (true, _) => Exit::Failure,
                (false, 1000) => Exit::Clean,
                (false, _) => Exit::OtherCode,
            }
        }
        Err(err) => {
            report::error("connection failed", &err);
            Exit::Failure
        }
    }
}

/// The connection's options from the command line; `Err` when the CA file
/// cannot be used.
fn options(args: &ConnectArgs) -> Result<Options, String> {
    let mut options = Options::default().protocols(args.protocols.iter().cloned());
    for (name, value) in &args.headers {
        options = options.header(name.clone(), value.clone());
    }
    options = match &args.proxy {
        Some(proxy) => options.proxy(proxy),
        None => options.proxy_from_env(),
    };
    if args.deflate {
        options = options.deflate(DeflateConfig::default());
    }
    if let Some(path) = &args.ca_file {
        options = options.tls_config(tls::client_config(path)?);
    }
    if let Some(interval) = args.ping_interval {
        options = options.ping_interval((!interval.is_zero()).then_some(interval));
    }
    Ok(options)
}

/// `url` as status lines show it: without its password, which would
/// otherwise end up in terminal scrollback and logs.
fn shown(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}

/// Tells on stderr what was opened and negotiated.
fn announce(url: &str, opened: &Opened) {
    status(format_args!("connected to {}", shown(url)));
    if let Some(protocol) = &opened.protocol {
        status(format_args!("protocol: {protocol}"));
    }
    if !opened.extensions.is_empty() {
        status(format_args!("extensions: {}", opened.extensions));
    }
    if io::stdin().is_terminal() {
        status("each line typed is sent; Ctrl-D or Ctrl-C closes");
    }
}

/// Prints a received message on stdout, flushed at once for pipelines.
fn print(message: &Message) -> io::Result<()> {
    let mut out = io::stdout().lock();
    writeln!(out, "{}", show::format(message))?;
    out.flush()
}

/// Why [`send_lines`] stopped before the end of stdin.
#[derive(Debug)]
enum SendStop {
    /// Reading stdin failed.
    Stdin(io::Error),
    /// The connection would take no more: it is closing or failed, which
    /// `closed` tells.
    Connection,
}

/// Sends each line as a message until stdin ends, flushing whenever no
/// more lines wait.
async fn send_lines(
    mut writable: Writable,
    mut lines: mpsc::Receiver<io::Result<Vec<u8>>>,
    binary: bool,
) -> Result<(), SendStop> {
    let mut number = 0u64;
    while let Some(line) = lines.recv().await {
        number += 1;
        let line = line.map_err(SendStop::Stdin)?;
        let message = if binary {
            Message::binary(line)
        } else {
            match String::from_utf8(line) {
                Ok(text) => Message::text(text),
                Err(_) => {
                    status(format_args!(
                        "line {number} is not UTF-8, not sent (--binary sends bytes)"
                    ));
                    continue;
                }
            }
        };
        let sent = if lines.is_empty() {
            writable.send(message).await
        } else {
            writable.feed(message).await
        };
        sent.map_err(|_| SendStop::Connection)?;
    }
    writable.flush().await.map_err(|_| SendStop::Connection)
}

#[cfg(test)]
mod tests {
    use super::shown;

    #[test]
    fn status_lines_hide_the_password_only() {
        assert_eq!(
            shown("ws://ann:s3cret@127.0.0.1:9001/feed?room=1"),
            "ws://ann:***@127.0.0.1:9001/feed?room=1"
        );
        assert_eq!(shown("wss://example.com/"), "wss://example.com/");
        assert_eq!(shown("not a url"), "not a url");
    }
}
