//! The argon2 crate alone, doing what a sign-in's verify does: Argon2id with the functions'
//! parameters (m=19456 KiB, t=2, p=1) into one reused working memory, then a comparison.
//! `make bench` builds it with the `argon2-alone` profile (opt-level 3, no LTO) and compares
//! the release build's verify with it, so a profile that slows Argon2 down shows as a ratio.
//!
//! Usage: bench-argon2 [RUNS]   prints `{"runs":N,"p50_ms":..,"p95_ms":..}`

use argon2::{Algorithm, Argon2, Block, Params, Version};
use std::time::Instant;

fn main() {
    let runs: usize = std::env::args()
        .nth(1)
        .map(|r| r.parse().expect("RUNS is a number"))
        .unwrap_or(50)
        .max(1);
    let params = Params::new(19_456, 2, 1, Some(32)).expect("valid parameters");
    let mut memory = vec![Block::default(); params.block_count()];
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
    let (password, salt) = (b"bench horse battery staple", b"0123456789abcdef");
    let mut expected = [0u8; 32];
    argon
        .hash_password_into_with_memory(password, salt, &mut expected, &mut memory)
        .expect("hash");
    let mut ms = Vec::with_capacity(runs);
    for _ in 0..runs {
        let started = Instant::now();
        let mut out = [0u8; 32];
        argon
            .hash_password_into_with_memory(password, salt, &mut out, &mut memory)
            .expect("hash");
        assert!(out == expected, "the same input gives the same hash");
        ms.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    ms.sort_by(f64::total_cmp);
    let at = |p: f64| ms[((p / 100.0) * (ms.len() - 1) as f64).round() as usize];
    println!(
        "{{\"runs\":{runs},\"p50_ms\":{:.3},\"p95_ms\":{:.3}}}",
        at(50.0),
        at(95.0)
    );
}
