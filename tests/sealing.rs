//! Properties of the encrypted-room format (`mqttchat::room::seal`), on arbitrary envelopes:
//! what a member seals opens to the same bytes with the room's key and topic, and any
//! change of a single byte of the payload — or another topic — is rejected, never opened
//! to something else.

use std::sync::OnceLock;

use proptest::prelude::*;

use mqttchat::room::envelope::IdSource;
use mqttchat::room::seal::{self, Rejected, RoomKey, RoomSecret};
use mqttchat::room::sign;

const TOPIC: &str = "team/x";

/// One key for every case: deriving costs an Argon2id run.
fn key() -> &'static RoomKey {
    static KEY: OnceLock<RoomKey> = OnceLock::new();
    KEY.get_or_init(|| {
        let secret = RoomSecret::new(b"a shared secret for the tests".to_vec()).expect("secret");
        RoomKey::derive(&secret, TOPIC)
    })
}

/// An envelope as chat-pub writes it, with arbitrary nick and text.
fn envelope(from: &str, text: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let id = IdSource::default().next_id();
    mqttchat::room::envelope::encode(&mut out, &id, from, "2026-11-29T12:00:00.000Z", text);
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn a_sealed_envelope_opens_to_the_same_bytes(from in ".{0,20}", text in ".{0,300}") {
        let plain = envelope(&from, &text);
        let sealed = seal::seal(key(), TOPIC, &plain).expect("seal");
        prop_assert!(sealed.is_ascii(), "an opaque ASCII line for outsiders");
        prop_assert_eq!(seal::open(key(), TOPIC, &sealed).expect("open").1, plain);
    }

    #[test]
    fn any_single_byte_change_is_rejected(
        text in ".{0,100}",
        at in any::<prop::sample::Index>(),
        to in any::<u8>(),
    ) {
        let sealed = seal::seal(key(), TOPIC, &envelope("bob", &text)).expect("seal");
        let mut changed = sealed.clone();
        let i = at.index(changed.len());
        prop_assume!(changed[i] != to);
        changed[i] = to;
        prop_assert!(seal::open(key(), TOPIC, &changed).is_err(), "byte {} changed", i);
    }

    #[test]
    fn a_copy_on_another_topic_or_a_cut_is_rejected(text in ".{0,100}", cut in 1usize..40) {
        let sealed = seal::seal(key(), TOPIC, &envelope("bob", &text)).expect("seal");
        prop_assert_eq!(seal::open(key(), "team/y", &sealed), Err(Rejected::Forged));
        let short = &sealed[..sealed.len().saturating_sub(cut)];
        prop_assert!(seal::open(key(), TOPIC, short).is_err());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Format version 2: each record of a batch of any size checks alone, as the record
    /// it was, signed by its member; a change of any byte of any record's plaintext, or
    /// another room or topic, never checks.
    #[test]
    fn every_signed_record_checks_alone_and_any_change_does_not(
        records in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..200), 1..=sign::BATCH),
        which in any::<prop::sample::Index>(),
        at in any::<prop::sample::Index>(),
        bit in 0u8..8,
        seed in any::<[u8; 32]>(),
    ) {
        let me = sign::Identity::from_seed(&seed);
        let items: Vec<sign::Item> = records
            .iter()
            .map(|r| sign::Item { room: TOPIC, topic: TOPIC, record: r })
            .collect();
        let signed = me.sign(&items);
        let mut v = sign::Verifier::default();
        for (plain, record) in signed.iter().zip(&records) {
            let got = v.check(TOPIC, TOPIC, plain).expect("checks");
            prop_assert_eq!(got.record, &record[..]);
            prop_assert_eq!(got.fingerprint, me.fingerprint());
        }
        let plain = &signed[which.index(signed.len())];
        let mut changed = plain.clone();
        let i = at.index(changed.len());
        changed[i] ^= 1 << bit;
        prop_assert!(v.check(TOPIC, TOPIC, &changed).is_err());
        prop_assert!(sign::Verifier::default().check(TOPIC, TOPIC, &changed).is_err());
        prop_assert!(v.check("team/y", TOPIC, plain).is_err());
        prop_assert!(v.check(TOPIC, "team/y", plain).is_err());
    }
}
