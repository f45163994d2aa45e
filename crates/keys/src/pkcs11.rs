//! PKCS#11 token store: P-256 keys generated on, and never leaving, a token.
//!
//! Every operation loads and initializes the module, works, and finalizes it
//! again, so tokens plugged in after start are seen. A process-wide lock
//! serializes operations, since C_Initialize/C_Finalize are per process.

pub mod wire;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::TokenInfo;
use cryptoki::types::AuthPin;
use ssh_key::PublicKey;
use ssh_key::public::{EcdsaPublicKey, KeyData};
use ssh_key::sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::store::{RsaHash, SigningKey, Verification};
use crate::{Error, Result};

/// Where a token key lives.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenKey {
    /// The PKCS#11 module (shared library) path.
    pub module: PathBuf,
    /// The token's label (slots renumber; labels don't).
    pub token_label: String,
    /// The key objects' CKA_LABEL.
    pub key_label: String,
}

/// Where SoftHSM2's module usually lives, most likely first.
const SOFTHSM_PATHS: &[&str] = &[
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
    "/usr/lib64/pkcs11/libsofthsm2.so",
    "/usr/lib/pkcs11/libsofthsm2.so",
    "/opt/homebrew/lib/softhsm/libsofthsm2.so",
    "/usr/local/opt/softhsm/lib/softhsm/libsofthsm2.so",
];

/// The SoftHSM2 module, if installed in a usual place (tests, demos).
pub fn find_softhsm_module() -> Option<PathBuf> {
    SOFTHSM_PATHS
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

/// Generates a P-256 key pair on the token; returns its public key.
///
/// The private key is sensitive and non-extractable. Refuses a `key_label`
/// that any object on the token already has.
pub fn generate(
    module: &Path,
    token_label: &str,
    key_label: &str,
    pin: &Zeroizing<String>,
) -> Result<(TokenKey, PublicKey)> {
    if key_label.is_empty() {
        return Err(Error::Other("the key label must not be empty".into()));
    }
    let public = with_session(module, token_label, true, |session, token| {
        login(session, token, pin)?;
        let result = generate_in(session, token_label, key_label);
        let _ = session.logout();
        result
    })?;
    Ok((token_key(module, token_label, key_label), public))
}

/// Finds an existing key pair on the token by label; returns its public key.
///
/// Reads the public key object, which needs no PIN on most tokens.
pub fn find(module: &Path, token_label: &str, key_label: &str) -> Result<(TokenKey, PublicKey)> {
    let public = with_session(module, token_label, false, |session, token| {
        let handle = match find_one(session, ObjectClass::PUBLIC_KEY, key_label)? {
            Some(h) => h,
            None => {
                let hint = if token.login_required() {
                    " (tokens that show public keys only after PIN entry are not supported yet)"
                } else {
                    ""
                };
                return Err(Error::Other(format!(
                    "no public key labelled \"{key_label}\" on token \"{token_label}\"{hint}"
                )));
            }
        };
        public_key(session, handle, key_label)
    })?;
    Ok((token_key(module, token_label, key_label), public))
}

/// A token key, ready to sign after the PIN.
#[derive(Debug)]
pub struct Pkcs11Key {
    key: TokenKey,
}

impl Pkcs11Key {
    /// Opens the key described by `key` (the module is loaded per signature).
    pub fn new(key: TokenKey) -> Self {
        Self { key }
    }
}

impl SigningKey for Pkcs11Key {
    fn verification(&self) -> Verification {
        Verification::Pin
    }

    /// ECDSA P-256 with SHA-256, computed here; the token signs the digest.
    fn sign(&self, pin: &Zeroizing<String>, data: &[u8], _rsa_hash: RsaHash) -> Result<Vec<u8>> {
        let TokenKey {
            module,
            token_label,
            key_label,
        } = &self.key;
        let digest = Sha256::digest(data);
        let raw = with_session(module, token_label, false, |session, token| {
            login(session, token, pin)?;
            let result = sign_in(session, token_label, key_label, &digest);
            let _ = session.logout();
            result
        })?;
        wire::p256_signature_blob(&raw)
    }
}

/// Serializes module use within the process (see the module docs).
static MODULE_LOCK: Mutex<()> = Mutex::new(());

/// Loads `module`, opens a session on the token labelled `token_label`, runs
/// `f`, then closes the session and finalizes the module.
fn with_session<T>(
    module: &Path,
    token_label: &str,
    rw: bool,
    f: impl FnOnce(&Session, &TokenInfo) -> Result<T>,
) -> Result<T> {
    let _guard = MODULE_LOCK.lock().unwrap_or_else(PoisonError::into_inner);
    let ctx = Pkcs11::new(module).map_err(|e| {
        Error::Other(format!(
            "cannot load the PKCS#11 module {}: {e}",
            module.display()
        ))
    })?;
    // Someone else in the process initialized it: leave finalizing to them.
    let owned = match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) => true,
        Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => false,
        Err(e) => {
            return Err(Error::Other(format!(
                "cannot initialize the PKCS#11 module {}: {e}",
                module.display()
            )));
        }
    };
    let result =
        open_session(&ctx, token_label, rw).and_then(|(session, token)| f(&session, &token));
    if owned {
        let _ = ctx.finalize();
    }
    result
}

fn open_session(ctx: &Pkcs11, token_label: &str, rw: bool) -> Result<(Session, TokenInfo)> {
    let slots = ctx
        .get_slots_with_token()
        .map_err(|e| ck("cannot list the PKCS#11 slots", e))?;
    let mut found = Vec::new();
    let mut others = Vec::new();
    for slot in slots {
        let Ok(info) = ctx.get_token_info(slot) else {
            continue;
        };
        if info.label() == token_label {
            found.push((slot, info));
        } else if info.token_initialized() {
            others.push(format!("\"{}\"", info.label()));
        }
    }
    let (slot, token) = match found.pop() {
        Some(one) if found.is_empty() => one,
        None => {
            let seen = if others.is_empty() {
                "none".to_owned()
            } else {
                others.join(", ")
            };
            return Err(Error::Other(format!(
                "no PKCS#11 token labelled \"{token_label}\" is present (tokens seen: {seen})"
            )));
        }
        Some(_) => {
            return Err(Error::Other(format!(
                "several PKCS#11 tokens are labelled \"{token_label}\"; connect only one"
            )));
        }
    };
    let session = if rw {
        ctx.open_rw_session(slot)
    } else {
        ctx.open_ro_session(slot)
    };
    let session = session.map_err(|e| {
        ck(
            &format!("cannot open a session on token \"{token_label}\""),
            e,
        )
    })?;
    Ok((session, token))
}

/// Logs in as the user; a wrong PIN is [`Error::WrongSecret`].
fn login(session: &Session, token: &TokenInfo, pin: &Zeroizing<String>) -> Result<()> {
    let token_label = token.label();
    // Don't spend an attempt (or count a wrong PIN) on a locked token.
    if token.user_pin_locked() {
        return Err(locked(token_label));
    }
    // From &str the String is allocated exactly, so boxing it doesn't leave a copy behind.
    let auth = AuthPin::from(pin.as_str());
    match session.login(UserType::User, Some(&auth)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok(()),
        Err(CkError::Pkcs11(RvError::PinIncorrect | RvError::PinLenRange, _)) => {
            Err(Error::WrongSecret)
        }
        Err(CkError::Pkcs11(RvError::PinLocked, _)) => Err(locked(token_label)),
        Err(e) => Err(ck(&format!("cannot log in to token \"{token_label}\""), e)),
    }
}

fn locked(token_label: &str) -> Error {
    Error::Other(format!(
        "the user PIN of token \"{token_label}\" is locked after too many wrong attempts; unblock it with the token's tools"
    ))
}

fn generate_in(session: &Session, token_label: &str, key_label: &str) -> Result<PublicKey> {
    let label = key_label.as_bytes().to_vec();
    let taken = session
        .find_objects(&[Attribute::Label(label.clone())])
        .map_err(|e| ck("cannot search the token", e))?;
    if !taken.is_empty() {
        return Err(Error::Other(format!(
            "token \"{token_label}\" already has a key labelled \"{key_label}\""
        )));
    }
    // CKA_ID pairs the two objects for tools that match by ID (ssh -I, pkcs11-tool).
    let mut id = vec![0u8; 16];
    getrandom::fill(&mut id)
        .map_err(|e| Error::Other(format!("no randomness for the key ID: {e}")))?;
    let public_template = [
        Attribute::Token(true),
        Attribute::Private(false),
        Attribute::Verify(true),
        Attribute::EcParams(wire::P256_EC_PARAMS.to_vec()),
        Attribute::Label(label.clone()),
        Attribute::Id(id.clone()),
    ];
    let private_template = [
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Sign(true),
        Attribute::Label(label),
        Attribute::Id(id),
    ];
    let (public, _private) = session
        .generate_key_pair(
            &Mechanism::EccKeyPairGen,
            &public_template,
            &private_template,
        )
        .map_err(|e| {
            ck(
                &format!("token \"{token_label}\" could not generate a P-256 key"),
                e,
            )
        })?;
    public_key(session, public, key_label)
}

fn sign_in(
    session: &Session,
    token_label: &str,
    key_label: &str,
    digest: &[u8],
) -> Result<Vec<u8>> {
    let key = find_one(session, ObjectClass::PRIVATE_KEY, key_label)?.ok_or_else(|| {
        Error::Other(format!(
            "no private key labelled \"{key_label}\" on token \"{token_label}\""
        ))
    })?;
    check_p256(session, key, key_label)?;
    session
        .sign(&Mechanism::Ecdsa, key, digest)
        .map_err(|e| match e {
            CkError::Pkcs11(RvError::PinLocked, _) => locked(token_label),
            e => ck(
                &format!("token \"{token_label}\" could not sign with \"{key_label}\""),
                e,
            ),
        })
}

/// The one object of `class` labelled `label`; several is an error.
fn find_one(session: &Session, class: ObjectClass, label: &str) -> Result<Option<ObjectHandle>> {
    let found = session
        .find_objects(&[
            Attribute::Class(class),
            Attribute::Label(label.as_bytes().to_vec()),
        ])
        .map_err(|e| ck("cannot search the token", e))?;
    match found.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(*one)),
        _ => Err(Error::Other(format!(
            "several keys are labelled \"{label}\" on the token; vmux needs the label to be unique"
        ))),
    }
}

/// Refuses anything but an EC key on P-256 (the only kind supported so far).
fn check_p256(session: &Session, key: ObjectHandle, label: &str) -> Result<()> {
    let attrs = session
        .get_attributes(key, &[AttributeType::KeyType, AttributeType::EcParams])
        .map_err(|e| ck(&format!("cannot read key \"{label}\""), e))?;
    let is_ec = attrs
        .iter()
        .any(|a| matches!(a, Attribute::KeyType(t) if *t == KeyType::EC));
    let is_p256 = attrs
        .iter()
        .any(|a| matches!(a, Attribute::EcParams(p) if p.as_slice() == wire::P256_EC_PARAMS));
    if is_ec && is_p256 {
        Ok(())
    } else {
        Err(Error::Other(format!(
            "key \"{label}\" is not an EC P-256 key; only P-256 token keys are supported for now"
        )))
    }
}

fn public_key(session: &Session, handle: ObjectHandle, label: &str) -> Result<PublicKey> {
    check_p256(session, handle, label)?;
    let attrs = session
        .get_attributes(handle, &[AttributeType::EcPoint])
        .map_err(|e| ck(&format!("cannot read public key \"{label}\""), e))?;
    let point = attrs
        .iter()
        .find_map(|a| match a {
            Attribute::EcPoint(p) => Some(p.as_slice()),
            _ => None,
        })
        .ok_or_else(|| {
            Error::Other(format!(
                "the token did not return the EC point of public key \"{label}\""
            ))
        })?;
    let key = EcdsaPublicKey::from_sec1_bytes(wire::ec_point(point)?).map_err(|e| {
        Error::Other(format!(
            "the token's public key \"{label}\" is invalid: {e}"
        ))
    })?;
    Ok(PublicKey::new(KeyData::Ecdsa(key), ""))
}

fn token_key(module: &Path, token_label: &str, key_label: &str) -> TokenKey {
    TokenKey {
        module: module.to_path_buf(),
        token_label: token_label.to_owned(),
        key_label: key_label.to_owned(),
    }
}

/// Words a cryptoki error for a person.
fn ck(what: &str, e: CkError) -> Error {
    Error::Other(format!("{what}: {e}"))
}
