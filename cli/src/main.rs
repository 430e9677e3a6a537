//! `wsstream`: the wsstream library on the command line.
//!
//! `wsstream connect URL` is an interactive client (lines of standard input
//! go out as messages, messages received come out on standard output), and
//! `wsstream serve ADDR` an echo or broadcast server to try clients
//! against. This file holds the command line's definitions, the dispatch
//! and the exit statuses; each command has a file of its own.

mod connect;
mod header;
mod interrupt;
mod report;
mod serve;
mod show;
mod stdin;
mod tls;

use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, Args, Parser, Subcommand};
use http::{HeaderName, HeaderValue};

/// The exit statuses, as `--help` shows them.
const EXIT_STATUS_HELP: &str = "\
Exit status:
  0    the connection closed cleanly with code 1000
  1    failure: could not connect, handshake refused, protocol error, or
       the connection ended without a close handshake
  2    usage error (bad arguments)
  3    the connection closed cleanly with a code other than 1000
  130  a second Ctrl-C quit without waiting for the close handshake
The close code (and reason) is always printed on stderr.";

/// A streams-first WebSocket client and server, on the command line.
#[derive(Debug, Parser)]
#[command(name = "wsstream", version, after_help = EXIT_STATUS_HELP)]
struct Cli {
    /// Print wsstream's events on stderr: -v for debug, -vv for trace.
    #[arg(short, long, action = ArgAction::Count, global = true)]
    verbose: u8,
    /// What to do.
    #[command(subcommand)]
    command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
enum Command {
    /// Connect to a WebSocket server and exchange messages.
    ///
    /// Each line of stdin is sent as a message; each message received is
    /// printed on stdout, as "< text" or "< [binary N bytes] 68 65 …" (the
    /// first 32 bytes in hex). Status lines (connected, protocol,
    /// extensions, the close code, errors) go to stderr. At the end of
    /// stdin (Ctrl-D) or on Ctrl-C the client closes with 1000 and reads on
    /// until the server answers; a second Ctrl-C quits at once. When the
    /// server closes first, the client exits without waiting for stdin.
    #[command(after_help = EXIT_STATUS_HELP)]
    Connect(ConnectArgs),
    /// Run an echo or broadcast WebSocket server to try clients against.
    ///
    /// By default each message goes back to its sender; with --broadcast,
    /// every message goes to every connected client, the sender included.
    /// Connections and closes are logged on stderr. Ctrl-C closes every
    /// client (code 1001, "server shutting down"), waits for their answers
    /// and exits 0.
    Serve(ServeArgs),
}

/// The arguments of `wsstream connect`.
#[derive(Debug, Args)]
pub(crate) struct ConnectArgs {
    /// The server's URL: ws://, wss://, http:// or https://.
    pub(crate) url: String,
    /// A subprotocol to offer (repeat for several, in order of preference).
    #[arg(long = "protocol", value_name = "PROTOCOL")]
    pub(crate) protocols: Vec<String>,
    /// A header field for the upgrade request, as 'Name: value' (repeatable).
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE", value_parser = header::parse)]
    pub(crate) headers: Vec<(HeaderName, HeaderValue)>,
    /// Connect through this proxy instead of the environment's.
    ///
    /// http://, https:// (HTTP CONNECT), socks5:// or socks5h:// (names
    /// resolved by the proxy), with an optional user:password@. Without
    /// it, the environment is used as curl does: wss:// through WSS_PROXY,
    /// else HTTPS_PROXY; ws:// through WS_PROXY, else HTTP_PROXY; both
    /// fall back to ALL_PROXY (lower-case names first), and NO_PROXY lists
    /// the hosts reached directly.
    #[arg(long, value_name = "URL")]
    pub(crate) proxy: Option<String>,
    /// Offer permessage-deflate compression (RFC 7692).
    #[arg(long)]
    pub(crate) deflate: bool,
    /// Trust the certificates of this PEM file for wss:// instead of the
    /// bundled Mozilla roots (a private or test CA).
    #[arg(long, value_name = "PEM")]
    pub(crate) ca_file: Option<PathBuf>,
    /// Send a keepalive ping every SECS seconds (default 20; 0 sends none).
    #[arg(long, value_name = "SECS", value_parser = parse_seconds)]
    pub(crate) ping_interval: Option<Duration>,
    /// Send each line as a binary message instead of a text one.
    #[arg(long)]
    pub(crate) binary: bool,
}

/// The arguments of `wsstream serve`.
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// The address to listen on, e.g. 127.0.0.1:9001 (port 0 picks a free
    /// one; the address is printed on stderr).
    pub(crate) addr: String,
    /// Send every message to every connected client, the sender included,
    /// instead of echoing it to its sender.
    #[arg(long)]
    pub(crate) broadcast: bool,
    /// A subprotocol the server speaks (repeatable, in order of
    /// preference): the first one the client offers is chosen.
    #[arg(long = "protocol", value_name = "PROTOCOL")]
    pub(crate) protocols: Vec<String>,
    /// Accept permessage-deflate compression when a client offers it.
    #[arg(long)]
    pub(crate) deflate: bool,
}

/// How a run ended; each has its exit status (see [`EXIT_STATUS_HELP`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exit {
    /// Closed cleanly with 1000, or a server stopped by Ctrl-C.
    Clean,
    /// Could not connect, or the connection failed.
    Failure,
    /// Closed cleanly with a code other than 1000.
    OtherCode,
    /// A second Ctrl-C quit without waiting.
    Forced,
}

impl Exit {
    /// The process's exit status.
    fn status(self) -> i32 {
        match self {
            Self::Clean => 0,
            Self::Failure => 1,
            Self::OtherCode => 3,
            Self::Forced => 130,
        }
    }
}

/// Parses a number of seconds (fractions allowed) for `--ping-interval`.
fn parse_seconds(arg: &str) -> Result<Duration, String> {
    let seconds: f64 = arg
        .trim()
        .parse()
        .map_err(|_| format!("expected a number of seconds, got {arg:?}"))?;
    Duration::try_from_secs_f64(seconds)
        .map_err(|_| format!("expected a number of seconds of 0 or more, got {arg:?}"))
}

fn main() {
    // Usage errors end here, with clap's message and status 2.
    let cli = Cli::parse();
    report::init_tracing(cli.verbose);
    let exit = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime.block_on(async {
            match cli.command {
                Command::Connect(args) => connect::run(args).await,
                Command::Serve(args) => serve::run(args).await,
            }
        }),
        Err(err) => {
            report::error("cannot start the runtime", &err);
            Exit::Failure
        }
    };
    // Exits without dropping the runtime or joining the thread that reads
    // stdin, which may sit in a read that cannot be cancelled.
    std::process::exit(exit.status());
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn seconds_parse_with_fractions_and_refuse_negatives() {
        assert_eq!(parse_seconds("2.5"), Ok(Duration::from_millis(2500)));
        assert_eq!(parse_seconds("0"), Ok(Duration::ZERO));
        assert!(parse_seconds("-1").is_err());
        assert!(parse_seconds("soon").is_err());
        assert!(parse_seconds("inf").is_err());
    }
}
