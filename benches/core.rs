//! The sans-io hot paths beside the cost of moving the same bytes:
//! masking against a byte-at-a-time loop and memcpy, decoding and encoding
//! a masked frame against memcpy, and reading text without re-validating it.
//!
//! `cargo bench -p wsstream-benches --bench core`

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;
use wsstream::proto::{
    apply_mask, encode_frame, put_masked, FrameDecoder, FrameHeader, OpCode, Role, MAX_HEADER_LEN,
};
use wsstream::Utf8Bytes;

const SIZES: [usize; 4] = [16, 1024, 64 * 1024, 1 << 20];
const KEY: [u8; 4] = [0x37, 0xFA, 0x21, 0x3D];

fn masking(c: &mut Criterion) {
    let mut group = c.benchmark_group("mask");
    for size in SIZES {
        let mut buf = vec![0x5Au8; size];
        let src = vec![0xA5u8; size];
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(BenchmarkId::new("words", size), &size, |b, _| {
            b.iter(|| apply_mask(black_box(&mut buf), KEY, 0))
        });
        group.bench_with_input(BenchmarkId::new("u64_loop", size), &size, |b, _| {
            b.iter(|| plain_u64_mask(black_box(&mut buf), KEY))
        });
        group.bench_with_input(BenchmarkId::new("bytewise", size), &size, |b, _| {
            b.iter(|| {
                for (i, byte) in black_box(&mut buf).iter_mut().enumerate() {
                    *byte ^= KEY[i & 3];
                }
            })
        });
        group.bench_with_input(BenchmarkId::new("memcpy", size), &size, |b, _| {
            b.iter(|| black_box(&mut buf).copy_from_slice(black_box(&src)))
        });
    }
    group.finish();
}

/// Appending a masked copy of a payload the sender still shares, as a
/// client must: copy then mask in place (two passes), or one fused pass.
fn copy_and_mask(c: &mut Criterion) {
    let mut group = c.benchmark_group("copy_and_mask");
    for size in SIZES {
        let src = vec![0x42u8; size];
        let mut dst = BytesMut::with_capacity(size);
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(BenchmarkId::new("copy_then_mask", size), &size, |b, _| {
            b.iter(|| {
                dst.clear();
                dst.extend_from_slice(black_box(&src));
                apply_mask(&mut dst, KEY, 0);
                black_box(&dst);
            })
        });
        group.bench_with_input(BenchmarkId::new("fused", size), &size, |b, _| {
            b.iter(|| {
                dst.clear();
                put_masked(&mut dst, black_box(&src), KEY);
                black_box(&dst);
            })
        });
    }
    group.finish();
}

/// The reference the issue measures masking against: whole u64 words, then
/// the tail a byte at a time, with no offset support.
fn plain_u64_mask(buf: &mut [u8], key: [u8; 4]) {
    let word = u64::from_ne_bytes([
        key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3],
    ]);
    let mut chunks = buf.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(chunk);
        chunk.copy_from_slice(&(u64::from_ne_bytes(bytes) ^ word).to_ne_bytes());
    }
    for (i, byte) in chunks.into_remainder().iter_mut().enumerate() {
        *byte ^= key[i & 3];
    }
}

fn masked_frame(size: usize) -> Vec<u8> {
    let header = FrameHeader {
        fin: true,
        rsv: 0,
        opcode: OpCode::Binary,
        mask: Some(KEY),
        payload_len: size as u64,
    };
    let mut head = [0u8; MAX_HEADER_LEN];
    let n = header.encode(&mut head);
    let mut wire = head[..n].to_vec();
    wire.extend(std::iter::repeat_n(0x42u8, size));
    wire
}

fn decoding(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode_masked_frame");
    for size in SIZES {
        let wire = masked_frame(size);
        group.throughput(Throughput::Bytes(size as u64));
        let mut decoder = FrameDecoder::new(Role::Server, usize::MAX);
        // The bytes arrive in the buffer by a socket read, which is not
        // timed: what is timed is the decoder's own work (header, unmasking
        // in place, splitting the payload off), beside copying the same
        // bytes once.
        let filled = || {
            let mut buf = BytesMut::with_capacity(wire.len());
            buf.extend_from_slice(&wire);
            buf
        };
        // Batches of about 256 KiB of frames, filled just before they are
        // timed: the decoder works on bytes in cache, as memcpy below does
        // (criterion's `LargeInput` filled ~200 MiB of frames per batch at
        // 64 KiB, so every decode read memory the copy found in cache).
        let batch = (256 * 1024 / wire.len()).max(1) as u64;
        group.bench_with_input(BenchmarkId::new("decode", size), &size, |b, _| {
            b.iter_batched_ref(
                filled,
                |buf| black_box(decoder.decode(buf).ok().flatten()),
                BatchSize::NumIterations(batch),
            )
        });
        let mut dst = vec![0u8; wire.len()];
        group.bench_with_input(BenchmarkId::new("memcpy", size), &size, |b, _| {
            b.iter(|| black_box(&mut dst).copy_from_slice(black_box(&wire)))
        });
    }
    group.finish();
}

fn encoding(c: &mut Criterion) {
    let mut group = c.benchmark_group("encode_masked_frame");
    for size in SIZES {
        let payload = vec![0x42u8; size];
        let header = FrameHeader {
            fin: true,
            rsv: 0,
            opcode: OpCode::Binary,
            mask: Some(KEY),
            payload_len: size as u64,
        };
        let mut out = BytesMut::with_capacity(size + MAX_HEADER_LEN);
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(BenchmarkId::new("encode", size), &size, |b, _| {
            b.iter(|| {
                out.clear();
                encode_frame(&header, black_box(&payload), &mut out);
                black_box(out.len())
            })
        });
        let mut dst = vec![0u8; size];
        group.bench_with_input(BenchmarkId::new("memcpy", size), &size, |b, _| {
            b.iter(|| black_box(&mut dst).copy_from_slice(black_box(&payload)))
        });
    }
    group.finish();
}

fn text_access(c: &mut Criterion) {
    let mut group = c.benchmark_group("text_as_str");
    let text = Utf8Bytes::from("ünïcödé text ".repeat(5000));
    let raw = Bytes::from(text.as_bytes().to_vec());
    group.throughput(Throughput::Bytes(raw.len() as u64));
    group.bench_function("utf8bytes_as_str", |b| {
        b.iter(|| black_box(black_box(&text).as_str()).len())
    });
    group.bench_function("from_utf8_checked", |b| {
        b.iter(|| {
            std::str::from_utf8(black_box(&raw))
                .map(str::len)
                .unwrap_or(0)
        })
    });
    group.finish();
}

criterion_group!(
    benches,
    masking,
    copy_and_mask,
    decoding,
    encoding,
    text_access
);
criterion_main!(benches);
