#![allow(clippy::unwrap_used, clippy::indexing_slicing)]
use super::*;

// Host keys made with `ssh-keygen -t ed25519` / `-t ecdsa` (OpenSSH 9.2p1).
const ED_A: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJzq0Q7kuqYcdP6oiXCebeVbiytRyDp+MmtywPpSpWsH";
const ED_B: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAG1Gv/sWKOlEnD6lqQyQ3kKmXFkWHj606XY2OysFXmv";
const EC_A: &str = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBOGLEnBnIf+7pGbsSn6NT1+fr6JdY21/HBe8jbVlhz1R63JHpxDfBoy89xDf7DLMx//ObcHWkj4XPvDlACoH4kI=";

fn key(s: &str) -> PublicKey {
    PublicKey::from_openssh(s).unwrap()
}

fn blob(s: &str) -> Vec<u8> {
    key(s).to_bytes().unwrap()
}

#[test]
fn import_takes_plain_names_and_says_what_it_skipped() {
    let file = format!(
        "# 127.0.0.1:22 SSH-2.0-OpenSSH_9.2p1\n\
         prod-db,10.0.0.5 {ED_A} admin@laptop\n\
         [127.0.0.1]:2222 {EC_A}\n\
         |1|Vx3/K7+mitYG8qjnX1CHJKvEqiA=|KRG82dB/Mj54OV2BXheqEWFiu2A= {ED_B}\n\
         *.corp,!bad.corp {ED_B}\n\
         @revoked evil {ED_B}\n\
         evil\u{1b}[2J {ED_B}\n\
         not a line\n\n"
    );
    let mut list = HostKeys::default();
    let report = list.import(&file, 7).unwrap();
    assert_eq!(report.added, 3);
    assert_eq!(report.hashed, 1);
    assert_eq!(report.patterns, 2);
    assert_eq!(report.marked, 1);
    assert_eq!(report.unreadable, 1);
    assert_eq!(report.refused.len(), 1);
    let (line, name, _) = &report.refused[0];
    assert_eq!((*line, name.as_str()), (7, "evil\\e[2J"));
    let names: Vec<&str> = list
        .names_of(&blob(ED_A))
        .iter()
        .map(|h| h.name.as_str())
        .collect();
    assert_eq!(names, ["prod-db", "10.0.0.5"]);
    // Importing again changes nothing.
    let again = list.import(&file, 8).unwrap();
    assert_eq!((again.added, again.already), (0, 3));
}

#[test]
fn known_new_and_changed_in_openssh_terms() {
    let mut list = HostKeys::default();
    list.add("prod-db", &key(ED_A), Source::Added, 1).unwrap();
    assert!(matches!(list.naming(&blob(ED_A), None), Naming::Known(h) if h.name == "prod-db"));
    assert!(matches!(
        list.naming(&blob(ED_A), Some("other")),
        Naming::Known(_)
    ));
    assert_eq!(list.naming(&blob(ED_B), None), Naming::New);
    assert_eq!(list.naming(&blob(ED_B), Some("elsewhere")), Naming::New);
    assert!(
        matches!(list.naming(&blob(ED_B), Some("PROD-DB")), Naming::Changed(h) if h.name == "prod-db")
    );
    // A listed name with a key of another type is a changed key too.
    assert!(
        matches!(list.naming(&blob(EC_A), Some("prod-db")), Naming::Changed(h) if h.name == "prod-db")
    );
    assert_eq!(list.naming(b"junk", Some("prod-db")), Naming::New);
    // A learned name is OpenSSH's sense only: another type is new.
    list.learn("web", &blob(ED_B), 2).unwrap();
    assert_eq!(list.naming(&blob(EC_A), Some("web")), Naming::New);
}

#[test]
fn a_learned_name_never_shadows_a_listed_one() {
    let mut list = HostKeys::default();
    list.add("prod-db", &key(ED_A), Source::Imported, 1)
        .unwrap();
    // Another type, claimed under the listed name: changed, not learned.
    assert!(!list.learn("prod-db", &blob(EC_A), 2).unwrap());
    assert!(matches!(
        list.naming(&blob(EC_A), Some("prod-db")),
        Naming::Changed(_)
    ));
    // A key learned first, the name listed for another key after it.
    let mut list = HostKeys::default();
    assert!(list.learn("db", &blob(EC_A), 1).unwrap());
    let mut kept = list.clone();
    kept.hosts.push(HostKey {
        name: "db".into(),
        key: key(ED_A),
        source: Source::Added,
        since_ms: 2,
    });
    assert!(
        matches!(kept.naming(&blob(EC_A), None), Naming::Changed(h) if h.source == Source::Added)
    );
    // Listing the name drops what was learned under it.
    assert_eq!(
        list.add("db", &key(ED_A), Source::Added, 2).unwrap(),
        Added::Replaced
    );
    assert_eq!(list.list().len(), 1);
    assert!(matches!(
        list.naming(&blob(EC_A), Some("db")),
        Naming::Changed(_)
    ));
}

#[test]
fn learning_never_overrides_what_is_known() {
    let mut list = HostKeys::default();
    assert!(list.learn("db", &blob(ED_A), 5).unwrap());
    assert!(!list.learn("db", &blob(ED_A), 6).unwrap(), "already known");
    assert!(!list.learn("db", &blob(ED_B), 6).unwrap(), "changed");
    assert!(!list.learn("*", &blob(ED_B), 6).unwrap(), "not a name");
    assert_eq!(list.list().len(), 1);
    assert_eq!(list.list()[0].source, Source::Learned);
    assert_eq!(list.list()[0].since_ms, 5);
}

#[test]
fn add_replaces_the_same_type_and_remove_forgets_a_name() {
    let mut list = HostKeys::default();
    assert_eq!(
        list.add("db", &key(ED_A), Source::Added, 1).unwrap(),
        Added::New
    );
    assert_eq!(
        list.add("db", &key(ED_A), Source::Added, 2).unwrap(),
        Added::AlreadyKnown
    );
    assert_eq!(
        list.add("db", &key(EC_A), Source::Added, 3).unwrap(),
        Added::New
    );
    assert_eq!(
        list.add("DB", &key(ED_B), Source::Added, 4).unwrap(),
        Added::Replaced
    );
    assert_eq!(list.list().len(), 2);
    assert!(list.names_of(&blob(ED_A)).is_empty());
    assert!(list.add("a b", &key(ED_A), Source::Added, 5).is_err());
    assert!(list.add("\u{202e}x", &key(ED_A), Source::Added, 5).is_err());
    assert_eq!(list.remove("db"), 2);
    assert_eq!(list.remove("db"), 0);
}

#[test]
fn the_file_round_trips_and_a_tampered_one_is_refused() {
    let mut list = HostKeys::default();
    list.add("prod-db", &key(ED_A), Source::Learned, 1_700_000_000_000)
        .unwrap();
    let bytes = list.to_json();
    assert_eq!(HostKeys::from_json(&bytes).unwrap(), list);
    let text = String::from_utf8(bytes).unwrap();
    let evil = text.replace("prod-db", "prod\\u001b[31m");
    assert!(
        HostKeys::from_json(evil.as_bytes())
            .unwrap_err()
            .contains("control")
    );
    assert!(HostKeys::from_json(b"{\"version\":2,\"hosts\":[]}").is_err());
    assert!(HostKeys::from_json(b"[]").is_err());
}

#[test]
fn update_saves_under_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::at(dir.path().to_owned()).unwrap();
    HostKeys::update(&home, |l| l.add("db", &key(ED_A), Source::Added, 1)).unwrap();
    let list = HostKeys::load(&home).unwrap();
    assert_eq!(list.list()[0].name, "db");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path(&home)).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
}
