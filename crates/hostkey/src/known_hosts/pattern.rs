//! The host field of a known_hosts line: comma-separated patterns with
//! `*`/`?` wildcards and `!` negation, or one hashed name (`|1|salt|hash`).

use base64ct::{Base64, Encoding};
use hmac::{KeyInit, Mac};
use subtle::ConstantTimeEq;

type HmacSha1 = hmac::Hmac<sha1::Sha1>;

/// The name OpenSSH looks a host up by: `host`, or `[host]:port` off port 22.
pub fn lookup_name(host: &str, port: u16) -> String {
    if port == 22 {
        host.to_owned()
    } else {
        format!("[{host}]:{port}")
    }
}

/// Whether the host field `field` of a line names `name` (a lookup name).
pub fn matches(field: &str, name: &str) -> bool {
    if let Some(hashed) = field.strip_prefix("|1|") {
        return hashed_matches(hashed, name);
    }
    // OpenSSH's match_hostname: a negated match rules the line out even if
    // another pattern matches.
    let mut matched = false;
    for pattern in field.split(',') {
        match pattern.strip_prefix('!') {
            Some(negated) if glob(negated, name) => return false,
            Some(_) => {}
            None => matched |= glob(pattern, name),
        }
    }
    matched
}

/// `salt|hash`, both base64, hash = HMAC-SHA1(salt, name).
fn hashed_matches(hashed: &str, name: &str) -> bool {
    let Some((salt, hash)) = hashed.split_once('|') else {
        return false;
    };
    let (Ok(salt), Ok(hash)) = (Base64::decode_vec(salt), Base64::decode_vec(hash)) else {
        return false;
    };
    hmac_sha1(&salt, name).ct_eq(&hash).into()
}

/// A hashed host field for `name` with a fresh salt, as `ssh-keygen -H`
/// writes it.
pub fn hashed(name: &str) -> Result<String, getrandom::Error> {
    let mut salt = [0u8; 20];
    getrandom::fill(&mut salt)?;
    Ok(format!(
        "|1|{}|{}",
        Base64::encode_string(&salt),
        Base64::encode_string(&hmac_sha1(&salt, name))
    ))
}

fn hmac_sha1(salt: &[u8], name: &str) -> Vec<u8> {
    // HMAC takes a key of any length; this cannot fail.
    let Ok(mut mac) = HmacSha1::new_from_slice(salt) else {
        return Vec::new();
    };
    mac.update(name.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// Case-insensitive glob with `*` and `?`, iterative so that no pattern
/// can make it recurse deeply or take exponential time.
pub fn glob(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.to_lowercase().chars().collect();
    let n: Vec<char> = name.to_lowercase().chars().collect();
    let (mut pi, mut ni) = (0, 0);
    // Where the last `*` was, and where in `name` it started matching.
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ni));
                pi += 1;
            }
            Some(&c) if c == '?' || Some(&c) == n.get(ni) => {
                pi += 1;
                ni += 1;
            }
            _ => match star {
                Some((sp, sn)) => {
                    pi = sp + 1;
                    ni = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    p.get(pi..)
        .is_some_and(|rest| rest.iter().all(|&c| c == '*'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_names_follow_openssh() {
        assert_eq!(lookup_name("example.com", 22), "example.com");
        assert_eq!(lookup_name("127.0.0.1", 2222), "[127.0.0.1]:2222");
    }

    #[test]
    fn patterns_wildcards_and_negation() {
        assert!(matches("example.com", "example.com"));
        assert!(matches("EXAMPLE.com", "example.COM"));
        assert!(!matches("example.com", "example.org"));
        assert!(matches("a.org,example.com", "example.com"));
        assert!(matches("*.example.com", "www.example.com"));
        assert!(!matches("*.example.com", "example.com"));
        assert!(matches("host?", "host1"));
        assert!(!matches("host?", "host12"));
        assert!(matches("*", "anything"));
        assert!(matches("[127.0.0.1]:2222", "[127.0.0.1]:2222"));
        assert!(!matches("127.0.0.1", "[127.0.0.1]:2222"));
        assert!(!matches(
            "*.example.com,!bad.example.com",
            "bad.example.com"
        ));
        assert!(matches("*.example.com,!bad.example.com", "ok.example.com"));
        assert!(!matches("!bad.example.com", "ok.example.com"));
        assert!(matches("a*b*c", "aXXbYYc"));
        assert!(!matches("a*b*c", "aXXbYY"));
    }

    #[test]
    fn a_pathological_pattern_is_quick() {
        let pattern = "*a".repeat(200) + "b";
        let name = "a".repeat(4000);
        assert!(!glob(&pattern, &name));
    }

    #[test]
    fn hashed_names_round_trip_and_match_ssh_keygen() {
        let field = hashed("[127.0.0.1]:2222").unwrap();
        assert!(matches(&field, "[127.0.0.1]:2222"));
        assert!(!matches(&field, "127.0.0.1"));
        // Made with `ssh-keygen -H` on a known_hosts line for
        // `example.com` (OpenSSH 9.2p1).
        let openssh = "|1|Vx3/K7+mitYG8qjnX1CHJKvEqiA=|KRG82dB/Mj54OV2BXheqEWFiu2A=";
        assert!(matches(openssh, "example.com"));
        assert!(!matches(openssh, "example.org"));
        assert!(!matches("|1|garbage", "example.com"));
        assert!(!matches("|1|!!|!!", "example.com"));
    }
}
