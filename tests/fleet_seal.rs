//! Sealed credentials: round trips, contexts, tampering, rotation, redaction.
#![cfg(feature = "fleet")]

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use receipt_sync::ErrorKind;
use receipt_sync::fleet::seal::{KeyId, Keyring, SealContext, SealedSecret};

const SECRET: &str = "qonto-secret-key-4f1c2a9e7b";

fn key_text(fill: u8) -> String {
    STANDARD.encode([fill; 32])
}

fn ring(entries: &[(&str, u8)]) -> Keyring {
    let text: Vec<String> = entries
        .iter()
        .map(|(id, fill)| format!("{id}:{}", key_text(*fill)))
        .collect();
    Keyring::parse(&text.join(",")).unwrap()
}

fn qonto_key_of(org: &str) -> SealContext {
    SealContext::new(org, "qonto-api-key")
}

#[test]
fn a_sealed_secret_opens_in_its_context() {
    let keys = ring(&[("k1", 1)]);
    let sealed = keys.seal(&qonto_key_of("org-1"), SECRET).unwrap();
    assert_eq!(sealed.key_id().as_str(), "k1");
    assert!(sealed.as_str().starts_with("v1.k1."), "{}", sealed.as_str());
    let opened = keys.open(&qonto_key_of("org-1"), &sealed).unwrap();
    assert_eq!(opened.expose(), SECRET);

    // Through the stored forms and back.
    let from_text: SealedSecret = sealed.as_str().parse().unwrap();
    let from_bytes = SealedSecret::from_bytes(sealed.as_bytes()).unwrap();
    assert_eq!(from_text, sealed);
    assert_eq!(
        keys.open(&qonto_key_of("org-1"), &from_bytes)
            .unwrap()
            .expose(),
        SECRET
    );
    // An empty secret is a secret too.
    let empty = keys.seal(&qonto_key_of("org-1"), "").unwrap();
    assert_eq!(
        keys.open(&qonto_key_of("org-1"), &empty).unwrap().expose(),
        ""
    );
}

#[test]
fn each_seal_uses_a_fresh_nonce() {
    let keys = ring(&[("k1", 1)]);
    let a = keys.seal(&qonto_key_of("org-1"), SECRET).unwrap();
    let b = keys.seal(&qonto_key_of("org-1"), SECRET).unwrap();
    assert_ne!(a.as_str(), b.as_str());
}

#[test]
fn a_sealed_secret_does_not_open_in_another_context() {
    let keys = ring(&[("k1", 1)]);
    let sealed = keys.seal(&qonto_key_of("org-1"), SECRET).unwrap();
    for other in [
        qonto_key_of("org-2"),
        SealContext::new("org-1", "microsoft-refresh-token"),
        // The parts are length-prefixed: moving a character across the boundary differs.
        SealContext::new("org-1q", "onto-api-key"),
    ] {
        let error = keys.open(&other, &sealed).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Config, "{error}");
        assert!(!error.to_string().contains(SECRET));
    }
}

#[test]
fn any_changed_byte_stops_it_opening() {
    let keys = ring(&[("k1", 1)]);
    let context = qonto_key_of("org-1");
    let sealed = keys.seal(&context, SECRET).unwrap();
    let (head, encoded) = sealed.as_str().rsplit_once('.').unwrap();
    let payload = URL_SAFE_NO_PAD.decode(encoded).unwrap();
    for at in 0..payload.len() {
        let mut changed = payload.clone();
        changed[at] ^= 0x01;
        let text = format!("{head}.{}", URL_SAFE_NO_PAD.encode(&changed));
        let tampered: SealedSecret = text.parse().unwrap();
        let error = keys.open(&context, &tampered).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Config, "byte {at}: {error}");
    }
    // Truncated: refused when read.
    let short = format!("{head}.{}", URL_SAFE_NO_PAD.encode(&payload[..39]));
    assert!(short.parse::<SealedSecret>().is_err());
}

#[test]
fn relabelling_the_key_id_stops_it_opening() {
    // Two keys with the same bytes: only the key id in the associated data tells them apart.
    let keys = ring(&[("k2", 7), ("k1", 7)]);
    let context = qonto_key_of("org-1");
    let sealed = keys.seal(&context, SECRET).unwrap();
    let relabelled: SealedSecret = sealed
        .as_str()
        .replacen("v1.k2.", "v1.k1.", 1)
        .parse()
        .unwrap();
    assert!(keys.open(&context, &relabelled).is_err());
}

#[test]
fn an_unknown_key_id_says_which_key_to_add_back() {
    let old = ring(&[("k1", 1)]);
    let sealed = old.seal(&qonto_key_of("org-1"), SECRET).unwrap();
    let new = ring(&[("k2", 2)]);
    let error = new.open(&qonto_key_of("org-1"), &sealed).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Config);
    assert!(error.stops_sync());
    let message = error.to_string();
    assert!(
        message.contains("`k1`") && message.contains("add that key back"),
        "{message}"
    );
    assert!(!message.contains(&key_text(2)) && !message.contains(SECRET));
}

#[test]
fn rotation_keeps_old_values_open_and_reseal_moves_them() {
    let context = qonto_key_of("org-1");
    let before = ring(&[("k1", 1)]);
    let old = before.seal(&context, SECRET).unwrap();

    // k2 is added in front: it seals from now on; k1 still opens.
    let after = ring(&[("k2", 2), ("k1", 1)]);
    assert_eq!(after.current_key_id().as_str(), "k2");
    assert_eq!(after.open(&context, &old).unwrap().expose(), SECRET);
    assert!(after.needs_reseal(&old));

    let moved = after.reseal(&context, &old).unwrap();
    assert_eq!(moved.key_id().as_str(), "k2");
    assert!(!after.needs_reseal(&moved));
    assert_eq!(after.open(&context, &moved).unwrap().expose(), SECRET);

    // Once every value is resealed, k1 can go.
    let only_new = ring(&[("k2", 2)]);
    assert_eq!(only_new.open(&context, &moved).unwrap().expose(), SECRET);
    assert!(only_new.open(&context, &old).is_err());
    // A new value is sealed with the current key.
    assert_eq!(
        after.seal(&context, SECRET).unwrap().key_id().as_str(),
        "k2"
    );
}

#[test]
fn the_sealed_form_holds_no_plaintext() {
    let keys = ring(&[("k1", 1)]);
    let sealed = keys.seal(&qonto_key_of("org-1"), SECRET).unwrap();
    let (_, encoded) = sealed.as_str().rsplit_once('.').unwrap();
    let payload = URL_SAFE_NO_PAD.decode(encoded).unwrap();
    // No run of 8 plaintext bytes, anywhere: neither in the text nor in the raw payload.
    for stored in [sealed.as_bytes(), payload.as_slice()] {
        for fragment in SECRET.as_bytes().windows(8) {
            assert!(
                !stored.windows(8).any(|w| w == fragment),
                "plaintext in the sealed form"
            );
        }
    }
    // Nor the key.
    assert!(!sealed.as_str().contains(&key_text(1)));
}

#[test]
fn debug_and_display_show_no_key_and_no_plaintext() {
    let keys = ring(&[("k2", 2), ("k1", 1)]);
    let context = qonto_key_of("org-1");
    let sealed = keys.seal(&context, SECRET).unwrap();
    let opened = keys.open(&context, &sealed).unwrap();
    let shown = format!(
        "{keys:?} {sealed:?} {opened:?} {opened} {context:?} {:?} {}",
        KeyId::new("k1").unwrap(),
        Keyring::generate_key_text()
    );
    for hidden in [key_text(1), key_text(2), SECRET.to_owned()] {
        assert!(!shown.contains(&hidden), "{hidden} in {shown}");
    }
    // The sealed bytes are not shown either: only the key id.
    let (_, encoded) = sealed.as_str().rsplit_once('.').unwrap();
    assert!(!shown.contains(encoded), "{shown}");
    assert!(
        shown.contains("\"k2\"") && shown.contains("\"k1\""),
        "{shown}"
    );
}

#[test]
fn bad_key_strings_are_refused_without_echoing_the_key() {
    let good = key_text(3);
    let short = STANDARD.encode([9u8; 31]);
    let not_base64 = "%%%%-not-base64-secretish-%%%%";
    let cases: Vec<(String, &str)> = vec![
        (String::new(), "empty"),
        ("   ".to_owned(), "empty"),
        (format!("k1{good}"), "no `:`"),
        (format!("k1:{good},"), "empty"),
        (format!(":{good}"), "bad id"),
        (format!("k.1:{good}"), "bad id"),
        (format!("{}:{good}", "k".repeat(33)), "bad id"),
        (format!("k1:{short}"), "31 bytes"),
        (format!("k1:{not_base64}"), "not standard base64"),
        (format!("k1:{good},k1:{}", key_text(4)), "given twice"),
    ];
    for (text, expected) in cases {
        let error = Keyring::parse(&text).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Config);
        let message = error.to_string();
        assert!(message.contains(expected), "{text:?}: {message}");
        for key in [good.as_str(), short.as_str(), not_base64, &key_text(4)] {
            assert!(!message.contains(key), "{message}");
        }
    }
    // Spaces around entries are fine.
    let keys = Keyring::parse(&format!(" k2 : {good} , k1:{}", key_text(4))).unwrap();
    let ids: Vec<&str> = keys.key_ids().map(KeyId::as_str).collect();
    assert_eq!(ids, ["k2", "k1"]);
}

#[test]
fn a_generated_key_parses() {
    let text = Keyring::generate_key_text();
    let keys = Keyring::parse(&format!("fresh:{}", text.expose())).unwrap();
    let sealed = keys.seal(&qonto_key_of("org-1"), SECRET).unwrap();
    assert_eq!(
        keys.open(&qonto_key_of("org-1"), &sealed).unwrap().expose(),
        SECRET
    );
    assert_ne!(
        Keyring::generate_key_text().expose(),
        text.expose(),
        "keys are random"
    );
}

#[test]
fn stored_values_of_the_wrong_shape_are_refused() {
    for text in [
        "",
        "v1.k1",
        "v2.k1.AAAA",
        "v1.k1.not base64!",
        "v1..AAAA",
        "v1.k1.AA.BB",
    ] {
        let error = text.parse::<SealedSecret>().unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Config, "{text}");
    }
    assert!(SealedSecret::from_bytes(&[0xff, 0xfe]).is_err());
}
