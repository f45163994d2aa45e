#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use super::*;

fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::from([a, b, c, d])
}

/// Whether `handshake` was told it is evicted (without waiting).
fn is_evicted(handshake: &mut Handshake) -> bool {
    let mut evicted = pin!(handshake.evicted());
    let mut cx = Context::from_waker(Waker::noop());
    matches!(evicted.as_mut().poll(&mut cx), Poll::Ready(()))
}

fn strangers(handshakes: &Handshakes) -> usize {
    handshakes.lock().strangers.len()
}

#[test]
fn a_full_address_makes_room_with_its_own_oldest() {
    let handshakes = Handshakes::default();
    let mut mine: Vec<_> = (0..MAX_PER_ADDRESS)
        .map(|_| handshakes.start(v4(10, 0, 0, 1)))
        .collect();
    assert!(!mine.iter_mut().any(is_evicted));
    // The same host as IPv4-mapped IPv6 is the same address.
    let mapped = IpAddr::from(Ipv4Addr::new(10, 0, 0, 1).to_ipv6_mapped());
    let mut newest = handshakes.start(mapped);
    assert!(is_evicted(&mut mine[0]));
    assert!(!mine[1..].iter_mut().any(is_evicted));
    assert!(!is_evicted(&mut newest));
    assert_eq!(strangers(&handshakes), MAX_PER_ADDRESS);
    drop((mine, newest));
    assert_eq!(strangers(&handshakes), 0);
}

/// The flood of issue 21: eight addresses of one /24 hold every slot the
/// network may; a device in the same /24 still gets in, and the flood's
/// own connections make room, again and again.
#[test]
fn a_crowded_network_evicts_the_flood_not_the_device() {
    let handshakes = Handshakes::default();
    let mut flood: Vec<_> = (0..MAX_PER_NETWORK)
        .map(|i| handshakes.start(v4(127, 0, 0, 2 + u8::try_from(i % 8).unwrap())))
        .collect();
    let mut device = handshakes.start(v4(127, 0, 0, 1));
    for round in 0..10 * MAX_PER_NETWORK {
        // Each evicted flood connection comes back at once.
        flood.retain_mut(|h| !is_evicted(h));
        flood.push(handshakes.start(v4(127, 0, 0, 2 + u8::try_from(round % 8).unwrap())));
        assert!(!is_evicted(&mut device), "round {round}");
    }
    assert_eq!(strangers(&handshakes), MAX_PER_NETWORK);
}

#[test]
fn an_ipv6_64_is_one_network() {
    let handshakes = Handshakes::default();
    let base = u128::from(Ipv6Addr::new(0x2001, 0xdb8, 0, 1, 0, 0, 0, 0));
    let mut flood: Vec<_> = (0..MAX_PER_NETWORK as u128)
        .map(|i| handshakes.start(IpAddr::from(Ipv6Addr::from(base + i))))
        .collect();
    // Another /64 is not crowded.
    let elsewhere = handshakes.start(IpAddr::from(Ipv6Addr::new(0x2001, 0xdb8, 0, 2, 0, 0, 0, 1)));
    assert!(!flood.iter_mut().any(is_evicted));
    let _newcomer = handshakes.start(IpAddr::from(Ipv6Addr::from(base + 999)));
    assert!(is_evicted(&mut flood[0]));
    drop(elsewhere);
}

#[test]
fn the_total_is_bounded_and_the_most_crowded_network_gives_way() {
    let handshakes = Handshakes::default();
    // A full table; a newcomer from a fresh network evicts the oldest of
    // the most crowded one.
    let mut held: Vec<_> = (0..MAX_STRANGERS)
        .map(|i| {
            let i = u8::try_from(i).unwrap();
            // Network 0 holds 8 (from 8 addresses), the others 4 each.
            let net = if i < 8 { 0 } else { 1 + (i - 8) / 4 };
            handshakes.start(v4(10, 0, net, i))
        })
        .collect();
    let _newcomer = handshakes.start(v4(192, 168, 0, 1));
    assert_eq!(strangers(&handshakes), MAX_STRANGERS);
    assert!(is_evicted(&mut held[0]));
    assert!(!held[1..].iter_mut().any(is_evicted));
}

#[test]
fn a_proved_pinned_key_leaves_the_strangers_slots() {
    let handshakes = Handshakes::default();
    let mut device = handshakes.start(v4(10, 0, 0, 1));
    assert!(device.proved_pinned([1; KEY_LEN]));
    assert_eq!(strangers(&handshakes), 0);
    // A full flood from the same address no longer touches it.
    let _flood: Vec<_> = (0..2 * MAX_PER_ADDRESS)
        .map(|_| handshakes.start(v4(10, 0, 0, 1)))
        .collect();
    assert!(!is_evicted(&mut device));
    drop(device);
    assert!(handshakes.lock().pinned.is_empty());
}

#[test]
fn the_reserve_is_bounded_per_key_and_in_all() {
    let handshakes = Handshakes::default();
    let mut one_key: Vec<_> = (0..=RESERVED_PER_DEVICE)
        .map(|_| handshakes.start(v4(10, 0, 0, 1)))
        .collect();
    for h in &mut one_key {
        assert!(h.proved_pinned([1; KEY_LEN]));
    }
    // The last one found the key's share used: it stays a stranger's.
    assert_eq!(strangers(&handshakes), 1);
    let mut others: Vec<_> = (0..RESERVED_FOR_PINNED)
        .map(|i| handshakes.start(v4(10, 0, 1, u8::try_from(i).unwrap())))
        .collect();
    for (i, h) in others.iter_mut().enumerate() {
        assert!(h.proved_pinned([2 + u8::try_from(i).unwrap(); KEY_LEN]));
    }
    let reserved: usize = handshakes.lock().pinned.values().sum();
    assert_eq!(reserved, RESERVED_FOR_PINNED);
}

#[test]
fn an_evicted_handshake_cannot_be_promoted() {
    let handshakes = Handshakes::default();
    let mut first = handshakes.start(v4(10, 0, 0, 1));
    let _rest: Vec<_> = (0..MAX_PER_ADDRESS)
        .map(|_| handshakes.start(v4(10, 0, 0, 1)))
        .collect();
    assert!(is_evicted(&mut first));
    assert!(!first.proved_pinned([1; KEY_LEN]));
}
