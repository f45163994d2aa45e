use super::*;

#[test]
fn instance_names_fit_a_label_and_round_trip() {
    assert_eq!(instance_name("Jane's phone"), "Jane's phone");
    assert_eq!(instance_name("  "), "vmux signer");
    let long = "a.".repeat(40);
    let cut = instance_name(&long);
    assert!(cut.len() + cut.matches('.').count() <= MAX_LABEL);
    assert_eq!(instance_of(&format!("my\\.box.{SERVICE_TYPE}")), "my.box");
    assert_eq!(instance_of("odd"), "odd");
    assert_eq!(instance_of("Box._VMUXSIGNER._tcp.local."), "Box");
}

#[test]
fn host_names_are_dns_safe() {
    let fp = Fingerprint::from_string("SHA256:Ab+/cdEFgh12345".into());
    assert_eq!(
        host_name("Jane's Phone", &fp),
        "vmux-jane-s-phone-abcdefgh.local."
    );
    assert_eq!(host_name("", &fp), "vmux-abcdefgh.local.");
}

#[test]
fn preferred_signers_come_first_in_their_order() {
    let signer = |name: &str| FoundSigner {
        name: name.to_owned(),
        fingerprint: Fingerprint::of(name.as_bytes()),
        version: PROTOCOL_MAJOR,
        addresses: Vec::new(),
    };
    let mut found = vec![signer("d"), signer("c"), signer("b"), signer("a")];
    sort(
        &mut found,
        &[
            Fingerprint::of(b"b"),
            Fingerprint::of(b"x"),
            Fingerprint::of(b"d"),
        ],
    );
    let names: Vec<&str> = found.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["b", "d", "a", "c"]);
}

#[test]
fn records_with_hostile_text_are_refused() {
    let fp = Some("SHA256:Ab+/cdEFgh12345");
    let full = format!("phone.{SERVICE_TYPE}");
    let ok = signer_record(&full, Some("phone"), fp, Some("1"), Vec::new()).unwrap();
    assert_eq!((ok.name.as_str(), ok.version), ("phone", 1));
    // The instance label stands in for a missing name, under the same rules.
    let named = signer_record(&full, None, fp, None, Vec::new()).unwrap();
    assert_eq!(named.name, "phone");
    for name in ["evil\u{1b}[2J", "a\u{202e}b", "two\nlines"] {
        let why = signer_record(&full, Some(name), fp, None, Vec::new()).unwrap_err();
        assert!(why.contains("control or format character U+"), "{why}");
        let escaped = format!("{}.{SERVICE_TYPE}", name.replace('\\', "\\\\"));
        assert!(signer_record(&escaped, None, fp, None, Vec::new()).is_err());
    }
    let long = "x".repeat(65);
    assert!(signer_record(&full, Some(&long), fp, None, Vec::new()).is_err());
    for bad_fp in [
        None,
        Some("SHA256:"),
        Some("MD5:ab"),
        Some("SHA256:ab\u{1b}[2J"),
    ] {
        assert!(signer_record(&full, Some("phone"), bad_fp, None, Vec::new()).is_err());
    }
}

#[test]
fn truncation_respects_char_boundaries() {
    assert_eq!(truncate("ééé", 3), "é");
    assert_eq!(truncate("abc", 10), "abc");
}
