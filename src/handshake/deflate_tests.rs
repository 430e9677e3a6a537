//! Negotiation rules of RFC 7692 §7.1, from both ends.

use super::*;

fn params(value: &str) -> Result<DeflateParams, &'static str> {
    DeflateConfig::default().accept_response(value)
}

#[test]
fn offers_say_what_the_config_wants() {
    assert_eq!(
        DeflateConfig::default().offer(),
        "permessage-deflate; client_max_window_bits"
    );
    let config = DeflateConfig::default()
        .client_no_context_takeover(true)
        .server_no_context_takeover(true)
        .server_max_window_bits(10)
        .client_max_window_bits(9);
    assert_eq!(
        config.offer(),
        "permessage-deflate; client_no_context_takeover; server_no_context_takeover; \
         server_max_window_bits=10; client_max_window_bits=9"
    );
}

#[test]
fn client_accepts_answers_that_fit_the_offer() {
    let plain = params("permessage-deflate").unwrap();
    assert_eq!(
        (plain.server_max_window_bits, plain.client_max_window_bits),
        (15, 15)
    );
    assert!(!plain.server_no_context_takeover && !plain.client_no_context_takeover);
    let all = params(
        "Permessage-Deflate; server_no_context_takeover; client_no_context_takeover; \
         server_max_window_bits=8; client_max_window_bits=\"10\"",
    )
    .unwrap();
    assert!(all.server_no_context_takeover && all.client_no_context_takeover);
    assert_eq!(
        (all.server_max_window_bits, all.client_max_window_bits),
        (8, 10)
    );
}

#[test]
fn client_rejects_answers_outside_the_offer() {
    for bad in [
        "",
        "x-webkit-deflate-frame",
        "permessage-deflate, permessage-deflate",
        "permessage-deflate; foo",
        "permessage-deflate; server_max_window_bits",
        "permessage-deflate; server_max_window_bits=7",
        "permessage-deflate; server_max_window_bits=16",
        "permessage-deflate; server_max_window_bits=010",
        "permessage-deflate; client_max_window_bits",
        "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
        "permessage-deflate; server_no_context_takeover=1",
        "permessage-deflate; client_max_window_bits=9; client_max_window_bits=9",
        "permessage-deflate; server_max_window_bits=\"9",
    ] {
        assert!(params(bad).is_err(), "{bad:?} was accepted");
    }
    // What was asked for must be granted.
    let asking = DeflateConfig::default()
        .server_no_context_takeover(true)
        .server_max_window_bits(10);
    assert!(asking
        .accept_response("permessage-deflate; server_max_window_bits=10")
        .is_err());
    assert!(asking
        .accept_response("permessage-deflate; server_no_context_takeover")
        .is_err());
    assert!(asking
        .accept_response(
            "permessage-deflate; server_no_context_takeover; server_max_window_bits=11"
        )
        .is_err());
    let granted = asking
        .accept_response("permessage-deflate; server_no_context_takeover; server_max_window_bits=9")
        .unwrap();
    assert_eq!(granted.server_max_window_bits, 9);
}

#[test]
fn client_honours_its_own_limits() {
    let config = DeflateConfig::default()
        .client_max_window_bits(10)
        .client_no_context_takeover(true);
    let params = config
        .accept_response("permessage-deflate; client_max_window_bits=9")
        .unwrap();
    assert_eq!(params.client_max_window_bits, 9);
    assert!(params.client_no_context_takeover);
    let params = config.accept_response("permessage-deflate").unwrap();
    assert_eq!(params.client_max_window_bits, 10);
    // Raising the offered limit does not fit the offer.
    assert!(config
        .accept_response("permessage-deflate; client_max_window_bits=12")
        .is_err());
}

fn choose(config: DeflateConfig, offers: &[&str]) -> Option<(DeflateParams, String)> {
    config.choose(offers.iter().copied())
}

#[test]
fn server_answers_the_first_acceptable_offer() {
    let (params, answer) = choose(DeflateConfig::default(), &["permessage-deflate"]).unwrap();
    assert_eq!(answer, "permessage-deflate");
    assert_eq!(
        (params.server_max_window_bits, params.client_max_window_bits),
        (15, 15)
    );

    let (params, answer) = choose(
        DeflateConfig::default(),
        &["x-unknown, permessage-deflate; foo=1, permessage-deflate; server_max_window_bits=9; client_max_window_bits"],
    )
    .unwrap();
    assert_eq!(answer, "permessage-deflate; server_max_window_bits=9");
    assert_eq!(params.server_max_window_bits, 9);

    let (params, answer) = choose(
        DeflateConfig::default(),
        &["permessage-deflate; client_max_window_bits=8; client_no_context_takeover"],
    )
    .unwrap();
    assert_eq!(
        answer,
        "permessage-deflate; client_no_context_takeover; client_max_window_bits=8"
    );
    assert_eq!(params.client_max_window_bits, 8);
    assert!(params.client_no_context_takeover);

    assert!(choose(DeflateConfig::default(), &["x-webkit-deflate-frame"]).is_none());
    assert!(choose(
        DeflateConfig::default(),
        &["permessage-deflate; server_max_window_bits"]
    )
    .is_none());
    assert!(choose(DeflateConfig::default(), &[]).is_none());
}

#[test]
fn server_policy_shapes_the_answer() {
    let policy = DeflateConfig::default()
        .server_no_context_takeover(true)
        .client_no_context_takeover(true)
        .server_max_window_bits(10)
        .client_max_window_bits(11);
    // The client can be limited only if it offered client_max_window_bits.
    let (params, answer) = choose(policy, &["permessage-deflate"]).unwrap();
    assert_eq!(
        answer,
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
         server_max_window_bits=10"
    );
    assert_eq!(params.client_max_window_bits, 15);
    let (params, answer) = choose(
        policy,
        &["permessage-deflate; client_max_window_bits; server_max_window_bits=12"],
    )
    .unwrap();
    assert!(
        answer.ends_with("server_max_window_bits=10; client_max_window_bits=11"),
        "{answer}"
    );
    assert_eq!(
        (params.server_max_window_bits, params.client_max_window_bits),
        (10, 11)
    );
    // Every answer the server gives is one a client accepts.
    let client = DeflateConfig::default();
    assert_eq!(
        client
            .accept_response(&answer)
            .unwrap()
            .server_max_window_bits,
        10
    );
}

#[test]
fn quoted_values_and_odd_spacing() {
    let (params, _) = choose(
        DeflateConfig::default(),
        &["permessage-deflate ;client_max_window_bits = \"9\" ; server_max_window_bits=\"1\\5\""],
    )
    .unwrap();
    assert_eq!(
        (params.client_max_window_bits, params.server_max_window_bits),
        (9, 15)
    );
}
