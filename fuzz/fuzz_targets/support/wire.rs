//! What the `sshsig` and `userauth` targets share: a plain reader of SSH
//! wire strings (the reference the parsers are checked against, so kept
//! apart from vmux's own reader), its writer, and the sign request an
//! honest agent would send for some data. Not every target uses all.
#![allow(dead_code)]

use vmux_proto::envelope::{Origin, SignContext, SignRequest};

/// A sign request for `data` with the agent's own context for it, as the
/// signer receives it from an honest agent.
pub fn request(data: &[u8], key: &[u8], context: SignContext) -> SignRequest {
    SignRequest {
        request_id: "fuzz".into(),
        key_algorithm: "ssh-ed25519".into(),
        public_key_blob: key.to_vec(),
        source_device_id: "fuzz".into(),
        source_device_name: "laptop".into(),
        origin: Origin::GenericAgent,
        data_to_sign: data.to_vec(),
        nonce: vec![0; 16],
        issued_at_milliseconds: 0,
        expires_at_milliseconds: 1,
        flags: 0,
        context,
        bindings: Vec::new(),
    }
}

pub struct Reader<'a>(pub &'a [u8]);

impl<'a> Reader<'a> {
    pub fn u8(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }

    pub fn string(&mut self) -> Option<&'a [u8]> {
        let (len, rest) = self.0.split_first_chunk::<4>()?;
        let (s, rest) = rest.split_at_checked(u32::from_be_bytes(*len) as usize)?;
        self.0 = rest;
        Some(s)
    }

    /// A UTF-8 string of at most `max` bytes.
    pub fn text(&mut self, max: usize) -> Option<&'a str> {
        std::str::from_utf8(self.string()?)
            .ok()
            .filter(|s| s.len() <= max)
    }
}

pub fn put_string(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(&u32::try_from(s.len()).expect("short").to_be_bytes());
    out.extend_from_slice(s);
}
