//! The outer layer every envelope shares: `{"v": 1, "type": name, "body": {...}}`.
//!
//! Decoding goes in two steps so the version is checked before anything
//! about the body is assumed: the input is parsed into a generic CBOR value,
//! `v` is checked, and only then is `body` read as the struct `type` names.

use ciborium::Value;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::limits::{MAX_ENVELOPE_LEN, MAX_TEXT_LEN, PROTOCOL_MAJOR};
use crate::{Error, Result};

/// Longest detail kept in an error, so that `error.to_string()` always fits an
/// `error` envelope's `message` (serde quotes offending strings in full).
const MAX_DETAIL_LEN: usize = 200;

/// An envelope whose version is ours, with its body not yet read.
pub(crate) struct Opened {
    pub(crate) type_name: String,
    pub(crate) body: Value,
}

/// Parses one envelope's outer map and checks its version.
pub(crate) fn open(input: &[u8]) -> Result<Opened> {
    let Value::Map(entries) = parse(input)? else {
        return Err(Error::Malformed("an envelope is a CBOR map"));
    };
    let (mut v, mut type_name, mut body) = (None, None, None);
    for (key, value) in entries {
        let slot = match key.as_text() {
            Some("v") => &mut v,
            Some("type") => &mut type_name,
            Some("body") => &mut body,
            // Unknown top-level keys are ignored, like unknown body fields.
            _ => continue,
        };
        if slot.replace(value).is_some() {
            return Err(Error::Malformed("duplicate key in the envelope map"));
        }
    }
    let v = v.ok_or(Error::Malformed("envelope has no `v`"))?;
    let v = v
        .as_integer()
        .and_then(|v| u64::try_from(v).ok())
        .ok_or(Error::Malformed("envelope `v` is not an unsigned integer"))?;
    if v != u64::from(PROTOCOL_MAJOR) {
        return Err(Error::UnsupportedVersion {
            got: v,
            supported: u64::from(PROTOCOL_MAJOR),
        });
    }
    let type_name = match type_name {
        Some(Value::Text(name)) => name,
        Some(_) => return Err(Error::Malformed("envelope `type` is not text")),
        None => return Err(Error::Malformed("envelope has no `type`")),
    };
    let body = body.ok_or(Error::Malformed("envelope has no `body`"))?;
    Ok(Opened { type_name, body })
}

/// Reads a body as the struct for envelope type `name`.
pub(crate) fn body<T: DeserializeOwned>(name: &'static str, body: &Value) -> Result<T> {
    body.deserialized().map_err(|e| {
        let ciborium::value::Error::Custom(e) = e;
        Error::Cbor(format!("{name}: {}", clip(e)))
    })
}

/// Encodes one envelope, refusing output larger than [`MAX_ENVELOPE_LEN`].
pub(crate) fn seal<T: Serialize>(name: &'static str, body: &T) -> Result<Vec<u8>> {
    #[derive(Serialize)]
    struct Sealed<'a, T> {
        v: u16,
        #[serde(rename = "type")]
        type_name: &'static str,
        body: &'a T,
    }
    let mut out = Vec::new();
    let sealed = Sealed {
        v: PROTOCOL_MAJOR,
        type_name: name,
        body,
    };
    ciborium::into_writer(&sealed, &mut out).map_err(|e| Error::Cbor(e.to_string()))?;
    if out.len() > MAX_ENVELOPE_LEN {
        return Err(Error::TooLong {
            len: out.len() as u64,
            max: MAX_ENVELOPE_LEN as u64,
        });
    }
    Ok(out)
}

/// `body.requestID` of an envelope that may not otherwise decode.
pub(crate) fn peek_request_id(input: &[u8]) -> Option<String> {
    let Value::Map(entries) = parse(input).ok()? else {
        return None;
    };
    let (_, body) = entries.iter().find(|(k, _)| k.as_text() == Some("body"))?;
    let (_, id) = body
        .as_map()?
        .iter()
        .find(|(k, _)| k.as_text() == Some("requestID"))?;
    let id = id.as_text()?;
    (id.len() <= MAX_TEXT_LEN).then(|| id.to_owned())
}

/// Parses exactly one CBOR item from at most [`MAX_ENVELOPE_LEN`] bytes.
///
/// Nothing is allocated from a declared length: ciborium reads byte and text
/// strings in chunks through a fixed scratch buffer and grows arrays and maps
/// one item at a time, so a header claiming 2^63 items fails at end of input.
fn parse(input: &[u8]) -> Result<Value> {
    if input.len() > MAX_ENVELOPE_LEN {
        return Err(Error::TooLong {
            len: input.len() as u64,
            max: MAX_ENVELOPE_LEN as u64,
        });
    }
    let mut rest = input;
    let value: Value = ciborium::from_reader(&mut rest).map_err(|e| match e {
        ciborium::de::Error::Io(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            Error::Truncated
        }
        ciborium::de::Error::Io(e) => Error::Cbor(e.to_string()),
        ciborium::de::Error::Syntax(at) => Error::Cbor(format!("invalid CBOR at byte {at}")),
        ciborium::de::Error::Semantic(_, what) => Error::Cbor(clip(what)),
        ciborium::de::Error::RecursionLimitExceeded => {
            Error::Cbor("CBOR nested too deeply".to_owned())
        }
    })?;
    if !rest.is_empty() {
        return Err(Error::TrailingBytes);
    }
    Ok(value)
}

/// Shortens `detail` to at most [`MAX_DETAIL_LEN`] bytes, on a char boundary.
pub(crate) fn clip(mut detail: String) -> String {
    if detail.len() > MAX_DETAIL_LEN {
        let mut end = MAX_DETAIL_LEN;
        while !detail.is_char_boundary(end) {
            end -= 1;
        }
        detail.truncate(end);
        detail.push_str("...");
    }
    detail
}
