use super::*;

fn identity() -> Identity {
    Identity::from_seed(&std::array::from_fn(|i| i as u8))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn items<'a>(records: &'a [Vec<u8>], topic: &'a str) -> Vec<Item<'a>> {
    records
        .iter()
        .map(|r| Item {
            room: topic,
            topic,
            record: r,
        })
        .collect()
}

#[test]
fn every_record_of_every_batch_size_checks_alone() {
    let me = identity();
    for n in 1..=BATCH {
        let records: Vec<Vec<u8>> = (0..n).map(|i| format!("line {i}").into_bytes()).collect();
        let signed = me.sign(&items(&records, "r"));
        // A fresh verifier per record: each carries what it needs.
        for (plain, record) in signed.iter().zip(&records) {
            let got = Verifier::default().check("r", "r", plain).expect("checks");
            assert_eq!(got.record, &record[..]);
            assert_eq!(got.fingerprint, me.fingerprint());
            assert!(plain.len() <= HEAD + (MAX_BLOCK - HEAD) + record.len());
        }
    }
}

#[test]
fn a_change_anywhere_or_another_room_or_topic_does_not_check() {
    let me = identity();
    let records = vec![b"one".to_vec(), b"two".to_vec(), b"three".to_vec()];
    let signed = me.sign(&items(&records, "team/x"));
    for plain in &signed {
        for i in 0..plain.len() {
            for bit in [0x01u8, 0x80] {
                let mut changed = plain.clone();
                changed[i] ^= bit;
                assert!(
                    Verifier::default()
                        .check("team/x", "team/x", &changed)
                        .is_err(),
                    "byte {i} bit {bit:#x} changed"
                );
            }
        }
        let mut v = Verifier::default();
        assert!(v.check("team/y", "team/x", plain).is_err());
        assert!(v.check("team/x", "team/y", plain).is_err());
        assert!(
            v.check("team/x", "team/x", &plain[..plain.len() - 1])
                .is_err()
        );
        assert!(
            v.check("team/x", "team/x", &[plain.as_slice(), b"!"].concat())
                .is_err()
        );
    }
    for short in [&b""[..], &[0], &[0, 0], &signed[0][..HEAD - 1]] {
        assert_eq!(
            Verifier::default().check("team/x", "team/x", short),
            Err(BadSignature::Malformed)
        );
    }
}

#[test]
fn another_members_key_with_a_copied_signature_does_not_check() {
    let (me, other) = (identity(), Identity::from_seed(&[9; 32]));
    let mine = me.sign(&items(&[b"hi".to_vec()], "r")).remove(0);
    let mut forged = mine.clone();
    forged[2..2 + 32].copy_from_slice(&other.public());
    assert_eq!(
        Verifier::default().check("r", "r", &forged),
        Err(BadSignature::Invalid)
    );
}

#[test]
fn a_batch_costs_one_signature_check() {
    let me = identity();
    let records: Vec<Vec<u8>> = (0..BATCH).map(|i| vec![i as u8; 10]).collect();
    let signed = me.sign(&items(&records, "r"));
    let mut v = Verifier::default();
    for plain in &signed {
        v.check("r", "r", plain).expect("checks");
    }
    assert_eq!((v.checked.len(), v.order.len()), (1, 1));
    // The cache holds the signature too: a record of the batch with its signature
    // changed is checked again, and fails.
    let mut changed = signed[1].clone();
    changed[2 + 32] ^= 1;
    assert_eq!(v.check("r", "r", &changed), Err(BadSignature::Invalid));
}

#[test]
fn deeper_than_allowed_or_stray_path_bits_are_malformed() {
    let me = identity();
    let mut plain = me.sign(&items(&[b"x".to_vec()], "r")).remove(0);
    plain[1] = 1; // a path bit without a sibling
    assert_eq!(
        Verifier::default().check("r", "r", &plain),
        Err(BadSignature::Malformed)
    );
    plain[0] = MAX_DEPTH as u8 + 1;
    plain[1] = 0;
    plain.extend_from_slice(&[0; 32 * (MAX_DEPTH + 1)]);
    assert_eq!(
        Verifier::default().check("r", "r", &plain),
        Err(BadSignature::Malformed)
    );
}

/// Known answers computed independently (Python's `cryptography` for Ed25519 and
/// hashlib for SHA-256, from the format as the module doc states it): a single record,
/// and a batch of three whose last went up the tree unpaired, one of them presence.
#[test]
fn known_answers() {
    let me = identity();
    assert_eq!(
        me.fingerprint().to_string(),
        "56475aa75463474c0285df5dbf2bcab73da651358839e9b77481b2eab107708c"
    );
    let one = me.sign(&items(&[br#"{"text":"hi"}"#.to_vec()], "room"));
    assert_eq!(hex(&one[0]), KNOWN_ONE);
    let (room, presence) = ("team/x", "mqttchat-presence/team/x/c1");
    let three = me.sign(&[
        Item {
            room,
            topic: room,
            record: b"a",
        },
        Item {
            room,
            topic: room,
            record: b"bb",
        },
        Item {
            room,
            topic: presence,
            record: b"ccc",
        },
    ]);
    let got: Vec<String> = three.iter().map(|p| hex(p)).collect();
    assert_eq!(got, KNOWN_THREE);
    let mut v = Verifier::default();
    assert_eq!(
        v.check(room, presence, &three[2]).map(|s| s.record),
        Ok(&b"ccc"[..])
    );
}

const KNOWN_ONE: &str = "000003a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8ffeed5f15d146836bd444851ed1105db9eb1c5cbffa8e7938d5f000066ab8526bb45b90cc0a5b263526e2ceabf42bc3f218ab5fb3eb432fd56dc602075fe92047b2274657874223a226869227d";
const KNOWN_THREE: [&str; 3] = [
    "020003a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b878ab6039ee30e10e919f62adff19dc3c10429635bc3ac32503075775366401b235c1c239dbc13ff264e79aac61ab35176b8376d99b516227552967546bac1a01df347053eab32cd1b89a032cf48a675d9aa8426b6a6a0c641e5f8f9fc5cf5b9447817de4d80e9519780347e2491fb5873b0aca6b4286178cdb347aa55cfa1d6a61",
    "020103a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b878ab6039ee30e10e919f62adff19dc3c10429635bc3ac32503075775366401b235c1c239dbc13ff264e79aac61ab35176b8376d99b516227552967546bac1a0108b96704b670436286b9c6fee6442fbd0199ddb85ab45c22f6477a120b43bd6c47817de4d80e9519780347e2491fb5873b0aca6b4286178cdb347aa55cfa1d6a6262",
    "010103a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b878ab6039ee30e10e919f62adff19dc3c10429635bc3ac32503075775366401b235c1c239dbc13ff264e79aac61ab35176b8376d99b516227552967546bac1a018565e165f98cc1fe29959228ea69f0293909b08ed6a4a0c0c4c7af033c6cbea7636363",
];

#[test]
fn an_identity_is_read_back_from_its_pem_and_from_openssls() {
    let me = identity();
    let pem = me.to_pem();
    assert_eq!(Identity::from_pem(&pem).expect("pem").public(), me.public());
    // Written by Python's cryptography (OpenSSL's PKCS#8) for the same seed.
    let openssl = "-----BEGIN PRIVATE KEY-----\n\
                   MC4CAQAwBQYDK2VwBCIEIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f\n\
                   -----END PRIVATE KEY-----\n";
    assert_eq!(*pem, openssl);
    for bad in ["", "hello", &pem.replace("MC4C", "MC4D"), &pem[..40]] {
        assert!(Identity::from_pem(bad).is_err(), "{bad:?}");
    }
    assert!(!format!("{me:?}").contains(&hex(&me.key.to_bytes())));
}

#[test]
fn fingerprints_parse_in_either_case_with_separators() {
    let fp = identity().fingerprint();
    let text = fp.to_string();
    assert_eq!(Fingerprint::parse(&text), Ok(fp));
    assert_eq!(Fingerprint::parse(&text.to_uppercase()), Ok(fp));
    let grouped: Vec<&str> = (0..16).map(|i| &text[i * 4..i * 4 + 4]).collect();
    assert_eq!(Fingerprint::parse(&grouped.join(":")), Ok(fp));
    assert!(Fingerprint::parse(&text[..63]).is_err());
    assert!(Fingerprint::parse(&format!("{}g", &text[..63])).is_err());
    assert_eq!(fp.short(), "56475aa75463474c…");
}
