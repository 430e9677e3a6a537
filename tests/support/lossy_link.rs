//! A lossy, slow, reordering link between two network namespaces, made in
//! user space: a TUN device in each namespace, and two threads of the test
//! process that carry the IP packets from one device to the other, dropping
//! some at random and delaying each by its own random time.
//!
//! Why not `tc qdisc ... netem`: the kernels of this project's machines (and
//! CI's) are built without netem (`CONFIG_NET_SCH_NETEM` is not set, so `tc`
//! answers "Specified qdisc kind is unknown"), while TUN is built in. A
//! relay in the test process also needs no program to install, runs the same
//! on every Linux, and its seed makes the pattern of losses repeatable.
//! It is written in Rust rather than Python so that it lives and dies with
//! the test: no interpreter, no child process to clean up.
//!
//! Each packet that survives the loss draw is delivered after `delay ±
//! jitter`, drawn uniformly and independently per packet: a packet sent
//! right after another may overtake it, so the link reorders as well.
//! [`open_tun`] creates a device in the namespace of the calling thread;
//! `netns.rs` calls it from a thread that entered the namespace, gives the
//! two devices point-to-point addresses and starts the [`LossyLink`].
//! Dropping the link stops its threads and closes the devices' descriptors,
//! which removes the devices.

#![allow(dead_code)]

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How lossy and slow the link is, in each direction.
#[derive(Debug, Clone, Copy)]
pub struct LinkParams {
    /// The share of packets dropped (0.02 drops 2%).
    pub loss: f64,
    /// The mean one-way delay.
    pub delay: Duration,
    /// Each packet's delay is drawn uniformly from `delay ± jitter`.
    pub jitter: Duration,
    /// Seeds the draws: the same seed drops and delays the same way.
    pub seed: u64,
}

/// The longest a relay thread waits before it looks at its stop flag.
const TICK: Duration = Duration::from_millis(20);

/// Larger than any packet a TUN device with the default MTU hands out.
const PACKET_BUFFER: usize = 65_536;

/// Creates the TUN device `name` (layer 3, no packet information header:
/// each read is one IP packet) in the network namespace of the calling
/// thread, non-blocking. The device lives as long as the descriptor.
#[allow(unsafe_code)]
pub fn open_tun(name: &str) -> io::Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open("/dev/net/tun")?;
    let mut ifr_name = [0 as libc::c_char; libc::IFNAMSIZ];
    if name.len() >= libc::IFNAMSIZ || name.bytes().any(|b| b == 0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("bad interface name {name:?}"),
        ));
    }
    for (slot, byte) in ifr_name.iter_mut().zip(name.bytes()) {
        *slot = byte as libc::c_char;
    }
    let request = libc::ifreq {
        ifr_name,
        ifr_ifru: libc::__c_anonymous_ifr_ifru {
            ifru_flags: (libc::IFF_TUN | libc::IFF_NO_PI) as libc::c_short,
        },
    };
    // SAFETY: TUNSETIFF reads (and may write back the name into) a
    // `struct ifreq`; `request` is one, initialised, and lives across the
    // call; the descriptor is open for the call's whole length.
    let rc = unsafe { libc::ioctl(file.as_raw_fd(), libc::TUNSETIFF, &request) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(file)
}

/// Waits until `file` has something to read, for at most `timeout`.
#[allow(unsafe_code)]
fn wait_readable(file: &File, timeout: Duration) {
    let mut fds = libc::pollfd {
        fd: file.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // Rounded up, so that a packet due in 0.4 ms is not polled for in a
    // busy loop of zero timeouts.
    let millis = timeout.as_micros().div_ceil(1000).min(i32::MAX as u128) as libc::c_int;
    // SAFETY: `fds` is one valid pollfd, borrowed for the call; the count
    // says one.
    let _ = unsafe { libc::poll(&mut fds, 1, millis) };
}

/// What one direction of the link did.
#[derive(Debug, Default)]
pub struct DirectionStats {
    /// Packets read from the sending device.
    pub packets: AtomicU64,
    /// Bytes of those packets.
    pub bytes: AtomicU64,
    /// Packets dropped by the loss draw.
    pub dropped: AtomicU64,
    /// Packets delivered later than one sent after them.
    pub reordered: AtomicU64,
    /// Packets the receiving device refused (it was down, say).
    pub write_errors: AtomicU64,
}

impl fmt::Display for DirectionStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let packets = self.packets.load(Ordering::Relaxed);
        let dropped = self.dropped.load(Ordering::Relaxed);
        let share = if packets == 0 {
            0.0
        } else {
            dropped as f64 * 100.0 / packets as f64
        };
        write!(
            f,
            "{packets} packets ({} KiB), {dropped} dropped ({share:.1}%), {} delivered out of order",
            self.bytes.load(Ordering::Relaxed) / 1024,
            self.reordered.load(Ordering::Relaxed),
        )
    }
}

/// The relay between two TUN devices; stops when dropped.
pub struct LossyLink {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    /// From the first device to the second, and back.
    pub forward: Arc<DirectionStats>,
    pub backward: Arc<DirectionStats>,
    pub params: LinkParams,
}

impl LossyLink {
    /// Relays packets between the devices `a` and `b` (from [`open_tun`]),
    /// in both directions, on two threads.
    pub fn start(a: File, b: File, params: LinkParams) -> io::Result<Self> {
        let (a, b) = (Arc::new(a), Arc::new(b));
        let stop = Arc::new(AtomicBool::new(false));
        let forward = Arc::new(DirectionStats::default());
        let backward = Arc::new(DirectionStats::default());
        let mut link = Self {
            stop: stop.clone(),
            threads: Vec::new(),
            forward: forward.clone(),
            backward: backward.clone(),
            params,
        };
        for (from, to, stats, seed) in [
            (a.clone(), b.clone(), forward, params.seed),
            (b, a, backward, params.seed ^ 0x9E37_79B9_7F4A_7C15),
        ] {
            let stop = stop.clone();
            let relay = Relay {
                from,
                to,
                stats,
                params,
                rng: SplitMix64(seed),
            };
            // If the second thread cannot start, dropping `link` stops the
            // first.
            let thread = std::thread::Builder::new()
                .name("lossy link".into())
                .spawn(move || relay.run(&stop))?;
            link.threads.push(thread);
        }
        Ok(link)
    }

    /// Both directions, for the record.
    pub fn summary(&self) -> String {
        format!(
            "client to server: {}; server to client: {}",
            self.forward, self.backward
        )
    }
}

impl Drop for LossyLink {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// One direction: reads packets from `from`, writes them to `to` when due.
struct Relay {
    from: Arc<File>,
    to: Arc<File>,
    stats: Arc<DirectionStats>,
    params: LinkParams,
    rng: SplitMix64,
}

/// A packet on its way: when it is due, its place in the sending order, and
/// its bytes. Ordered by due time, then by sending order.
type InFlight = Reverse<(Instant, u64, Vec<u8>)>;

impl Relay {
    fn run(mut self, stop: &AtomicBool) {
        let mut queue: BinaryHeap<InFlight> = BinaryHeap::new();
        let mut buf = vec![0u8; PACKET_BUFFER];
        let mut sent = 0u64;
        let mut delivered_up_to = 0u64;
        while !stop.load(Ordering::Relaxed) {
            let now = Instant::now();
            while queue.peek().is_some_and(|Reverse((due, _, _))| *due <= now) {
                let Some(Reverse((_, seq, packet))) = queue.pop() else {
                    break;
                };
                if seq < delivered_up_to {
                    self.stats.reordered.fetch_add(1, Ordering::Relaxed);
                }
                delivered_up_to = delivered_up_to.max(seq + 1);
                if (&*self.to).write(&packet).is_err() {
                    self.stats.write_errors.fetch_add(1, Ordering::Relaxed);
                }
            }
            let wait = queue
                .peek()
                .map_or(TICK, |Reverse((due, _, _))| {
                    due.saturating_duration_since(now)
                })
                .min(TICK);
            wait_readable(&self.from, wait);
            loop {
                match (&*self.from).read(&mut buf) {
                    Ok(n) => {
                        self.stats.packets.fetch_add(1, Ordering::Relaxed);
                        self.stats.bytes.fetch_add(n as u64, Ordering::Relaxed);
                        if self.rng.unit() < self.params.loss {
                            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                            continue;
                        }
                        let due = Instant::now() + self.draw_delay();
                        queue.push(Reverse((due, sent, buf[..n].to_vec())));
                        sent += 1;
                    }
                    Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                    // WouldBlock: nothing more for now. Any other error (the
                    // device went away) ends the read; the loop goes on
                    // until stopped, delivering what it holds.
                    Err(_) => break,
                }
            }
        }
    }

    /// `delay ± jitter`, uniformly.
    fn draw_delay(&mut self) -> Duration {
        let low = self.params.delay.saturating_sub(self.params.jitter);
        let span = (self.params.delay + self.params.jitter).saturating_sub(low);
        low + span.mul_f64(self.rng.unit())
    }
}

/// A small, fast, seedable generator (splitmix64): enough for loss and
/// delay draws and for test data, and needs no crate.
#[derive(Debug, Clone)]
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `low..=high`.
    pub fn range(&mut self, low: u64, high: u64) -> u64 {
        low + self.next_u64() % (high - low + 1)
    }
}
