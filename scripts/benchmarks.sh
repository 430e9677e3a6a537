#!/usr/bin/env bash
# Runs the end-to-end comparison with other WebSocket libraries
# (benches/compare/, about 3 minutes), their servers beside wsstream's
# and beside its sans-io core driven by hand (benches/server/ with
# SERVER_CORE=1, about 9 minutes), one message to many connections
# (benches/fanout/, about 6 minutes), the sans-io micro-benchmarks
# (benches/core.rs, about 3 minutes) and the streamed-message benchmark
# (benches/streamed.rs, about 3 minutes), then writes docs/benchmarks.md.
#
#   bash scripts/benchmarks.sh
#
# Run it on an otherwise idle machine: every figure is a time.
set -euo pipefail
cd "$(dirname "$0")/.."

out=docs/benchmarks.md
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "==> cargo bench -p wsstream-benches --bench compare" >&2
cargo bench -p wsstream-benches --bench compare >"$work/compare.md"
grep -q '^| workload ' "$work/compare.md" || {
  echo "compare printed no table" >&2
  exit 1
}

echo "==> SERVER_CORE=1 cargo bench -p wsstream-benches --bench server" >&2
SERVER_CORE=1 cargo bench -p wsstream-benches --bench server >"$work/server.md"
grep -q '^| workload ' "$work/server.md" || {
  echo "server printed no table" >&2
  exit 1
}

echo "==> cargo bench -p wsstream-benches --bench fanout" >&2
cargo bench -p wsstream-benches --bench fanout >"$work/fanout.md"
grep -q '^| case ' "$work/fanout.md" || {
  echo "fanout printed no table" >&2
  exit 1
}

echo "==> cargo bench -p wsstream-benches --bench streamed" >&2
cargo bench -p wsstream-benches --bench streamed >"$work/streamed.md"
grep -q '^| case ' "$work/streamed.md" || {
  echo "streamed printed no table" >&2
  exit 1
}

echo "==> cargo bench -p wsstream-benches --bench core" >&2
cargo bench -p wsstream-benches --bench core -- --color never >"$work/core.txt"

# Criterion's result lines as a table: the first `time:` and `thrpt:` after
# each mask/, decode_masked_frame/ or encode_masked_frame/ id (its point estimates; the `change:`
# lines that follow when a baseline exists are skipped).
awk '
  /^(mask|decode_masked_frame|encode_masked_frame)\// { name = $1; time = "" }
  name != "" && /time:/ && time == "" { time = middle($0); next }
  name != "" && /thrpt:/ && time != "" {
    printf "| %s | %s | %s |\n", name, time, middle($0)
    name = ""
  }
  function middle(line,   f) {
    sub(/.*\[/, "", line); sub(/\].*/, "", line); split(line, f, " ")
    return f[3] " " f[4]
  }
' "$work/core.txt" >"$work/core.md"
[ -s "$work/core.md" ] || {
  echo "no criterion results found in the core bench output" >&2
  exit 1
}

{
  cat <<'EOF'
# Benchmarks

Written by `bash scripts/benchmarks.sh`, which runs the five benchmarks below;
each can also be run alone. [performance.md](performance.md) explains the
figures: what the hot paths do and what holds the remaining gaps.

## wsstream beside other Rust WebSocket libraries

`cargo bench -p wsstream-benches --bench compare` (`COMPARE_QUICK=1` for a one-round smoke run)

Every library's client talks to the same echo server (fastwebsockets, one
thread) over 127.0.0.1; server and client are pinned to the same core, and
each measurement is a fresh client process, so its CPU time and peak RSS are
its own. The workloads run round after round, every library once per round,
and the tables give the median of the rounds. The doc comment at the top of
[`benches/compare/main.rs`](../benches/compare/main.rs) describes the method in full.

EOF
  cat "$work/compare.md"
  cat <<'EOF'

## wsstream as a server beside other Rust WebSocket servers

`SERVER_CORE=1 cargo bench -p wsstream-benches --bench server` (`SERVER_QUICK=1` for a
one-round smoke run with a tenth of the messages; without `SERVER_CORE=1`, the last section,
wsstream's sans-io core alone, is left out)

Each library runs the same echo server, a spawned task per connection
with `TCP_NODELAY` and library defaults (wsstream with
`readable.forward(writable)`, tokio-tungstenite and tokio-websockets with
one `Stream` + `Sink` loop that flushes when reading would block,
fastwebsockets frame by frame through a buffered writer), and one load
generator, written once, drives them all: raw TCP, the upgrade by hand,
masked frames made before the run, the echoes parsed and checked by hand,
and a fixed number of messages kept in flight on every connection. The
workloads are those of uWebSockets' load_test that tokio-websockets' and
fastwebsockets' READMEs chart: 100 connections × 20 B (32 messages in
flight per connection), 10 × 1 KiB (64 in flight), 200 × 16 KiB (4 in
flight) and 500 × 16 KiB (2 in flight); and 10,000 connections of which
1,000 echo 32 B messages (32 in flight) while 9,000 stay idle, for the
server's memory per idle connection. On the single-thread runtime the
server is pinned to one core and the load generator to the other; on the
multi-thread runtime (a worker per core) nothing is pinned, so the load
generator shares the two cores with the server. Every measurement is a
fresh server process, which reports its own CPU time (user + system) and
memory before and after the timed run; each workload runs 5 rounds,
every library once per round, and the tables give the medians. A run in
which other processes took more than 10% of a core is made again. The
doc comment at the top of [`benches/server/main.rs`](../benches/server/main.rs)
describes the method in full.

EOF
  cat "$work/server.md"
  cat <<'EOF'

## Fan-out

`cargo bench -p wsstream-benches --bench fanout` (`FANOUT_QUICK=1` for a one-round smoke run
with a tenth of the messages)

One server sends the same binary message to every connection: 128 B and
16 KiB to 1,000 and 10,000 connections, as a burst of messages, and 128 B
to 10,000 connections one message every 10 ms. Five designs, each with
its own server process pinned to one core, and one client process
(written once: raw TCP, every frame's number, length and pattern checked)
pinned to the other:

- **wsstream `Broadcast`**: every connection's writable joins one
  `Broadcast` (256 KiB per member, `Backpressure::Wait`); a burst is one
  `send_batch` of its messages, a paced message is `send`;
- **wsstream, a task per connection**: a `tokio::sync::broadcast` channel
  of `PreparedMessage`, each connection's task queuing what the channel
  has with `start_send_prepared` and flushing when it is empty;
- **tokio-tungstenite, fastwebsockets, tokio-websockets**: the same channel
  design with each library's own API, every task sending its own copy of
  the message.

CPU is the server's (user + system) from the moment every connection has
joined to the client's last byte, divided by the messages delivered. The
slow-consumer case sends 16 KiB to 1,000 connections of which 10 never
read, one message every 30 ms, with a 64 KiB socket send buffer so that a
silent client fills the kernel's buffers quickly. The doc comment at the
top of [`benches/fanout/main.rs`](../benches/fanout/main.rs) describes the
method in full.

EOF
  cat "$work/fanout.md"
  cat <<'EOF'

## The sans-io hot paths beside memcpy

`cargo bench -p wsstream-benches --bench core`: masking (ours, a plain u64-word loop, a byte
loop, and a plain copy of the same bytes), decoding a masked frame and
encoding one (each beside copying the same bytes), as criterion reports
them (point estimates).

| benchmark | time | throughput |
|---|---:|---:|
EOF
  cat "$work/core.md"
  cat <<'EOF'

## Streamed messages

`cargo bench -p wsstream-benches --bench streamed` (`STREAMED_BENCH_QUICK=1` or
`-- --quick` for 128 MiB and 3 rounds)

A wsstream client and a wsstream server over 127.0.0.1 move 1 GiB each
way. Streamed: one message of 1 GiB, fed to a `MessageWriter` in 64 KiB
`Bytes` chunks (the default fragment size) and read from `next_streamed`
chunk by chunk; binary, JSON-like text, and the same text with
permessage-deflate (`DeflateConfig::default()` on both sides: level 1,
15-bit windows, context takeover). Whole messages: the same gigabyte as
16 binary messages of 64 MiB, the largest the default `max_message_size`
lets through, sent with `SinkExt::send` and read with `StreamExt::next`
(a 64 MiB message is one frame, so both sides raise `max_frame_size` to
64 MiB for this case). Each measurement is a fresh server process and a
fresh client process, both pinned to the same core, so MiB/s is what one
core does running sender, receiver and loopback. Peak RSS is `VmHWM`
after the transfer less the RSS once the connection is open (the peak is
reset there through `/proc/self/clear_refs`); it includes the 64 MiB
message a whole-message sender builds. CPU is user + system time over the
transfer. The cases run round after round, the order rotated each round;
the tables give the medians. The doc comment at the top of
[`benches/streamed.rs`](../benches/streamed.rs) describes the method.

EOF
  cat "$work/streamed.md"
} >"$out.tmp"
mv "$out.tmp" "$out"
echo "wrote $out" >&2
