#![allow(clippy::unwrap_used)]
use super::*;
use crate::reading::Hop;

const ED_A: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJzq0Q7kuqYcdP6oiXCebeVbiytRyDp+MmtywPpSpWsH";
const ED_B: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAG1Gv/sWKOlEnD6lqQyQ3kKmXFkWHj606XY2OysFXmv";

fn blob(s: &str) -> Vec<u8> {
    PublicKey::from_openssh(s).unwrap().to_bytes().unwrap()
}

fn login(host: Host, through: Vec<Hop>, forwarded: Forwarded) -> Reading {
    Reading {
        purpose: Purpose::Login {
            user: "root".into(),
        },
        host,
        through,
        forwarded,
    }
}

#[test]
fn a_verified_named_host_reads_user_at_name() {
    let mut hosts = HostKeys::default();
    hosts
        .add(
            "prod-db",
            &PublicKey::from_openssh(ED_A).unwrap(),
            Source::Imported,
            0,
        )
        .unwrap();
    let reading = login(
        Host::Verified {
            key: blob(ED_A),
            claimed_name: Some("[127.0.0.1]:2222".into()),
        },
        vec![],
        Forwarded::No,
    );
    let d = Destination::describe(&reading, &hosts, "laptop");
    assert_eq!(d.target.to_string(), "prod-db (verified by this signer)");
    assert_eq!(
        d.user.as_ref().unwrap().to_string(),
        "root (verified by this signer)"
    );
    assert_eq!(d.style, None);
    assert_eq!(d.purpose.to_string(), "SSH login (verified by this signer)");
    assert_eq!(
        d.path.unwrap().to_string(),
        "laptop → prod-db (verified by this signer)"
    );
    let line = d.host_key.unwrap();
    assert!(
        line.contains("imported 1970-01-01") && line.contains("calls it \"[127.0.0.1]:2222\""),
        "{line}"
    );
}

#[test]
fn learned_new_and_changed_hosts() {
    let mut hosts = HostKeys::default();
    hosts
        .add(
            "db",
            &PublicKey::from_openssh(ED_A).unwrap(),
            Source::Learned,
            1_700_000_000_000,
        )
        .unwrap();
    let verified = |key: &str, name: &str| {
        login(
            Host::Verified {
                key: blob(key),
                claimed_name: Some(name.into()),
            },
            vec![],
            Forwarded::No,
        )
    };
    let d = Destination::describe(&verified(ED_A, "db"), &hosts, "laptop");
    assert!(
        d.host_key
            .unwrap()
            .contains("same host key as approved on 2023-11-14")
    );
    let d = Destination::describe(&verified(ED_B, "db"), &hosts, "laptop");
    assert!(d.host_key.unwrap().contains("CHANGED HOST KEY"));
    assert!(d.target.text.starts_with("SHA256:"));
    let d = Destination::describe(&verified(ED_B, "web"), &hosts, "laptop");
    assert!(
        d.host_key
            .unwrap()
            .contains("new host, not on this signer's list; \"web\" claimed by laptop")
    );
}

#[test]
fn unverified_says_so_and_labels_the_claim() {
    let reading = login(
        Host::Unverified {
            why: "no session binding came with the request".into(),
            key: None,
            claimed_name: Some("prod\u{1b}[2J".into()),
        },
        vec![],
        Forwarded::No,
    );
    let d = Destination::describe(&reading, &HostKeys::default(), "laptop");
    let sheet = crate::approval::Sheet::Sign {
        device: "laptop".into(),
        claimed: None,
        destination: Box::new(d),
        key: "work".into(),
    };
    // Kept raw here; escaped on its way to the screen.
    let fields = crate::ui::text::fields(&sheet);
    assert!(
        fields.contains(&(
            "Destination",
            "unknown host (UNVERIFIED: no session binding came with the request)".to_owned()
        )),
        "{fields:?}"
    );
    assert!(
        fields.contains(&("Host name", "\"prod\\e[2J\" (claimed by laptop)".to_owned())),
        "{fields:?}"
    );
}

/// sshd logs in as the part before the first `:`: the sheet names that
/// account on its line, the style on its own, and the Destination line
/// holds the host alone.
#[test]
fn the_style_after_a_colon_is_its_own_line_and_never_the_destination() {
    let mut hosts = HostKeys::default();
    let prod = PublicKey::from_openssh(ED_A).unwrap();
    hosts.add("prod-db", &prod, Source::Imported, 0).unwrap();
    let reading = Reading {
        purpose: Purpose::Login {
            user: "root:@staging (verified by this signer)".into(),
        },
        ..login(
            Host::Verified {
                key: blob(ED_A),
                claimed_name: Some("staging".into()),
            },
            vec![],
            Forwarded::No,
        )
    };
    let d = Destination::describe(&reading, &hosts, "laptop");
    assert_eq!(d.target.to_string(), "prod-db (verified by this signer)");
    assert_eq!(d.user.as_ref().unwrap().text, "root");
    assert_eq!(
        d.style.as_deref(),
        Some("@staging (verified by this signer)")
    );
    let sheet = crate::approval::Sheet::Sign {
        device: "laptop".into(),
        claimed: None,
        destination: Box::new(d),
        key: "work".into(),
    };
    let fields = crate::ui::text::fields(&sheet);
    let line = |label: &str| {
        fields
            .iter()
            .find(|(l, _)| *l == label)
            .map(|(_, v)| v.clone())
            .unwrap()
    };
    assert_eq!(line("Destination"), "prod-db (verified by this signer)");
    assert_eq!(line("User"), "root (verified by this signer)");
    assert!(
        line("Style").starts_with("auth style requested: \"@staging (verified by this signer)\""),
        "{fields:?}"
    );
    // A long claim is cut, and says so.
    let long = Reading {
        host: Host::Unverified {
            why: "no session binding came with the request".into(),
            key: None,
            claimed_name: Some("x".repeat(1000)),
        },
        ..reading
    };
    let d = Destination::describe(&long, &hosts, "laptop");
    let claim = d.claimed_host.unwrap().text;
    assert!(claim.contains("744 more characters not shown"), "{claim}");
}

#[test]
fn a_userauth_for_another_service_reads_as_unknown_data() {
    let reading = Reading {
        purpose: Purpose::OtherUserauth {
            service: "pam_ssh_agent_auth".into(),
        },
        host: Host::NotALogin,
        through: vec![],
        forwarded: Forwarded::No,
    };
    let d = Destination::describe(&reading, &HostKeys::default(), "laptop");
    assert_eq!(
        d.purpose.to_string(),
        "unknown data (userauth for service \"pam_ssh_agent_auth\") (unknown)"
    );
    assert_eq!(d.target.to_string(), "unknown (unknown)");
    assert_eq!(d.user, None);
}

#[test]
fn the_path_goes_through_forwarded_hops() {
    let mut hosts = HostKeys::default();
    hosts
        .add(
            "a",
            &PublicKey::from_openssh(ED_A).unwrap(),
            Source::Imported,
            0,
        )
        .unwrap();
    hosts
        .add(
            "b",
            &PublicKey::from_openssh(ED_B).unwrap(),
            Source::Imported,
            0,
        )
        .unwrap();
    let reading = login(
        Host::Verified {
            key: blob(ED_B),
            claimed_name: None,
        },
        vec![Hop {
            key: blob(ED_A),
            claimed_name: None,
        }],
        Forwarded::Bound,
    );
    let d = Destination::describe(&reading, &hosts, "laptop");
    assert_eq!(
        d.path.unwrap().to_string(),
        "laptop → a (forwarded) → b (verified by this signer)"
    );
    // A hop not on the list: its key is proved, its name only claimed.
    let unlisted = Reading {
        through: vec![Hop {
            key: blob(ED_B),
            claimed_name: Some("bastion".into()),
        }],
        ..reading.clone()
    };
    let path = Destination::describe(&unlisted, &HostKeys::default(), "laptop")
        .path
        .unwrap()
        .text;
    assert!(
        path.starts_with("laptop → SHA256:")
            && path.contains("(forwarded; \"bastion\" claimed by laptop)"),
        "{path}"
    );
    let git = Reading {
        purpose: Purpose::Signature {
            namespace: "git".into(),
        },
        host: Host::NotALogin,
        through: vec![],
        forwarded: Forwarded::Claimed,
    };
    let d = Destination::describe(&git, &hosts, "laptop");
    assert_eq!(d.purpose.text, "git signature");
    assert_eq!(
        d.path.unwrap().to_string(),
        "laptop → (forwarded) (claimed by laptop)"
    );
    let file = Reading {
        purpose: Purpose::Signature {
            namespace: "file".into(),
        },
        ..git
    };
    assert_eq!(
        Destination::describe(&file, &hosts, "laptop").purpose.text,
        "file signature (namespace \"file\")"
    );
}
