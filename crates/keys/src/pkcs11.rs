//! PKCS#11 token store: P-256 and Ed25519 keys generated on, and never
//! leaving, a token. The TPM store ([`crate::tpm`]) is this store driven
//! through the tpm2-pkcs11 module.
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
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::TokenInfo;
use cryptoki::types::AuthPin;
use ssh_key::PublicKey;
use ssh_key::public::{EcdsaPublicKey, Ed25519PublicKey, KeyData};
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

/// The key types vmux signs with on a token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Curve {
    /// ECDSA on P-256 (`ecdsa-sha2-nistp256`): every token has it.
    P256,
    /// Ed25519 (`ssh-ed25519`): tokens with CKM_EC_EDWARDS_KEY_PAIR_GEN and
    /// CKM_EDDSA (PKCS#11 3.0; SoftHSM2 2.6 has them, many cards don't).
    Ed25519,
}

impl Curve {
    fn word(self) -> &'static str {
        match self {
            Curve::P256 => "P-256",
            Curve::Ed25519 => "Ed25519",
        }
    }
}

/// What kind of device is behind the module. Only the advice in errors
/// differs: a TPM's lockout and absence are worded for a TPM.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Device {
    /// A token or HSM (YubiKey, SoftHSM2, ...).
    Token,
    /// The TPM, through tpm2-pkcs11.
    Tpm,
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

/// Generates a `curve` key pair on the token; returns its public key.
///
/// The private key is sensitive and non-extractable. Refuses a `key_label`
/// that any object on the token already has, and a curve the token cannot
/// make.
pub fn generate(
    module: &Path,
    token_label: &str,
    key_label: &str,
    pin: &Zeroizing<String>,
    curve: Curve,
) -> Result<(TokenKey, PublicKey)> {
    generate_on(module, token_label, key_label, pin, curve, Device::Token)
}

/// [`generate`] on a given kind of device.
pub(crate) fn generate_on(
    module: &Path,
    token_label: &str,
    key_label: &str,
    pin: &Zeroizing<String>,
    curve: Curve,
    device: Device,
) -> Result<(TokenKey, PublicKey)> {
    if key_label.is_empty() {
        return Err(Error::Other("the key label must not be empty".into()));
    }
    let public = with_session(module, token_label, true, device, |session, token| {
        login(session, token, pin, device)?;
        let result = generate_in(session, token_label, key_label, curve);
        let _ = session.logout();
        result
    })?;
    Ok((token_key(module, token_label, key_label), public))
}

/// Finds an existing key pair on the token by label; returns its public key.
///
/// Reads the public key object without a PIN where the token shows it.
/// Tokens that show their objects only after login answer
/// [`Error::PinNeeded`] when `pin` is `None`: ask for it and call again.
pub fn find(
    module: &Path,
    token_label: &str,
    key_label: &str,
    pin: Option<&Zeroizing<String>>,
) -> Result<(TokenKey, PublicKey)> {
    let public = with_session(
        module,
        token_label,
        false,
        Device::Token,
        |session, token| {
            if let Some(pin) = pin {
                login(session, token, pin, Device::Token)?;
            }
            let result = find_one(session, ObjectClass::PUBLIC_KEY, key_label).and_then(|found| {
                match found {
                    Some(handle) => public_key(session, handle, key_label),
                    // Not shown may mean not shown yet: ask for the PIN first.
                    None if pin.is_none() && token.login_required() => Err(Error::PinNeeded),
                    None => Err(Error::Other(format!(
                        "no public key labelled \"{key_label}\" on token \"{token_label}\""
                    ))),
                }
            });
            if pin.is_some() {
                let _ = session.logout();
            }
            result
        },
    )?;
    Ok((token_key(module, token_label, key_label), public))
}

/// A token key, ready to sign after the PIN.
#[derive(Debug)]
pub struct Pkcs11Key {
    key: TokenKey,
    device: Device,
}

impl Pkcs11Key {
    /// Opens the key described by `key` (the module is loaded per signature).
    pub fn new(key: TokenKey) -> Self {
        Self::on(key, Device::Token)
    }

    /// Like [`Pkcs11Key::new`], on a given kind of device.
    pub fn on(key: TokenKey, device: Device) -> Self {
        Self { key, device }
    }
}

impl SigningKey for Pkcs11Key {
    fn verification(&self) -> Verification {
        Verification::Pin
    }

    /// ECDSA P-256 over a SHA-256 digest computed here, or Ed25519 over the
    /// data itself (EdDSA hashes inside), whichever the key on the token is.
    fn sign(&self, pin: &Zeroizing<String>, data: &[u8], _rsa_hash: RsaHash) -> Result<Vec<u8>> {
        let TokenKey {
            module,
            token_label,
            key_label,
        } = &self.key;
        let device = self.device;
        with_session(module, token_label, false, device, |session, token| {
            login(session, token, pin, device)?;
            let result = sign_in(session, token_label, key_label, data, device);
            let _ = session.logout();
            result
        })
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
    device: Device,
    f: impl FnOnce(&Session, &TokenInfo) -> Result<T>,
) -> Result<T> {
    with_module(module, device, |ctx| {
        let (session, token) = open_session(ctx, token_label, rw, device)?;
        f(&session, &token)
    })
}

/// Loads and initializes `module`, runs `f`, then finalizes the module.
pub(crate) fn with_module<T>(
    module: &Path,
    device: Device,
    f: impl FnOnce(&Pkcs11) -> Result<T>,
) -> Result<T> {
    let _guard = MODULE_LOCK.lock().unwrap_or_else(PoisonError::into_inner);
    let ctx = Pkcs11::new(module).map_err(|e| match device {
        Device::Token => Error::Other(format!(
            "cannot load the PKCS#11 module {}: {e}",
            module.display()
        )),
        Device::Tpm => crate::tpm::module_error(module, &e),
    })?;
    // Someone else in the process initialized it: leave finalizing to them.
    let owned = match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) => true,
        Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => false,
        Err(e) => {
            return Err(match device {
                Device::Token => Error::Other(format!(
                    "cannot initialize the PKCS#11 module {}: {e}",
                    module.display()
                )),
                Device::Tpm => crate::tpm::unreachable(&e),
            });
        }
    };
    let result = f(&ctx);
    if owned {
        let _ = ctx.finalize();
    }
    result
}

fn open_session(
    ctx: &Pkcs11,
    token_label: &str,
    rw: bool,
    device: Device,
) -> Result<(Session, TokenInfo)> {
    let slots = ctx.get_slots_with_token().map_err(|e| match device {
        Device::Token => ck("cannot list the PKCS#11 slots", e),
        Device::Tpm => crate::tpm::unreachable(&e),
    })?;
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
        None if device == Device::Tpm => return Err(crate::tpm::token_gone(token_label)),
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
pub(crate) fn login(
    session: &Session,
    token: &TokenInfo,
    pin: &Zeroizing<String>,
    device: Device,
) -> Result<()> {
    let token_label = token.label();
    // Don't spend an attempt (or count a wrong PIN) on a locked token.
    if token.user_pin_locked() {
        return Err(locked(token_label, device));
    }
    // From &str the String is allocated exactly, so boxing it doesn't leave a copy behind.
    let auth = AuthPin::from(pin.as_str());
    match session.login(UserType::User, Some(&auth)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok(()),
        Err(CkError::Pkcs11(RvError::PinIncorrect | RvError::PinLenRange, _)) => {
            Err(Error::WrongSecret)
        }
        Err(CkError::Pkcs11(RvError::PinLocked, _)) => Err(locked(token_label, device)),
        Err(e) if device == Device::Tpm => Err(crate::tpm::login_error(token_label, &e)),
        Err(e) => Err(ck(&format!("cannot log in to token \"{token_label}\""), e)),
    }
}

fn locked(token_label: &str, device: Device) -> Error {
    match device {
        Device::Token => Error::Other(format!(
            "the user PIN of token \"{token_label}\" is locked after too many wrong attempts; unblock it with the token's tools"
        )),
        Device::Tpm => crate::tpm::lockout(),
    }
}

fn generate_in(
    session: &Session,
    token_label: &str,
    key_label: &str,
    curve: Curve,
) -> Result<PublicKey> {
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
    let (mechanism, params) = match curve {
        Curve::P256 => (Mechanism::EccKeyPairGen, wire::P256_EC_PARAMS.to_vec()),
        Curve::Ed25519 => (
            Mechanism::EccEdwardsKeyPairGen,
            wire::ED25519_EC_PARAMS_OID.to_vec(),
        ),
    };
    let public_template = [
        Attribute::Token(true),
        Attribute::Private(false),
        Attribute::Verify(true),
        Attribute::EcParams(params),
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
        .generate_key_pair(&mechanism, &public_template, &private_template)
        .map_err(|e| match e {
            CkError::Pkcs11(RvError::MechanismInvalid | RvError::CurveNotSupported, _) => {
                Error::Other(format!(
                    "token \"{token_label}\" cannot make {} keys; use --type ecdsa (P-256)",
                    curve.word()
                ))
            }
            e => ck(
                &format!(
                    "token \"{token_label}\" could not generate a {} key",
                    curve.word()
                ),
                e,
            ),
        })?;
    public_key(session, public, key_label)
}

/// Signs `data` and returns the SSH signature blob.
fn sign_in(
    session: &Session,
    token_label: &str,
    key_label: &str,
    data: &[u8],
    device: Device,
) -> Result<Vec<u8>> {
    let key = find_one(session, ObjectClass::PRIVATE_KEY, key_label)?.ok_or_else(|| {
        Error::Other(format!(
            "no private key labelled \"{key_label}\" on token \"{token_label}\""
        ))
    })?;
    let curve = curve_of(session, key, key_label)?;
    let failed = |e| match e {
        CkError::Pkcs11(RvError::PinLocked, _) => locked(token_label, device),
        e => ck(
            &format!("token \"{token_label}\" could not sign with \"{key_label}\""),
            e,
        ),
    };
    match curve {
        Curve::P256 => {
            let digest = Sha256::digest(data);
            let raw = session
                .sign(&Mechanism::Ecdsa, key, &digest)
                .map_err(failed)?;
            wire::p256_signature_blob(&raw)
        }
        Curve::Ed25519 => {
            let pure = Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure));
            let raw = session.sign(&pure, key, data).map_err(failed)?;
            wire::ed25519_signature_blob(&raw)
        }
    }
}

/// The one object of `class` labelled `label`; several is an error.
pub(crate) fn find_one(
    session: &Session,
    class: ObjectClass,
    label: &str,
) -> Result<Option<ObjectHandle>> {
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

/// The key's curve; anything but P-256 and Ed25519 is refused.
fn curve_of(session: &Session, key: ObjectHandle, label: &str) -> Result<Curve> {
    let attrs = session
        .get_attributes(key, &[AttributeType::KeyType, AttributeType::EcParams])
        .map_err(|e| ck(&format!("cannot read key \"{label}\""), e))?;
    let key_type = attrs.iter().find_map(|a| match a {
        Attribute::KeyType(t) => Some(*t),
        _ => None,
    });
    let params = attrs.iter().find_map(|a| match a {
        Attribute::EcParams(p) => Some(p.as_slice()),
        _ => None,
    });
    match (key_type, params) {
        (Some(KeyType::EC), Some(p)) if p == wire::P256_EC_PARAMS => Ok(Curve::P256),
        (Some(KeyType::EC_EDWARDS), Some(p))
            if p == wire::ED25519_EC_PARAMS_OID || p == wire::ED25519_EC_PARAMS_NAME =>
        {
            Ok(Curve::Ed25519)
        }
        _ => Err(Error::Other(format!(
            "key \"{label}\" is neither P-256 nor Ed25519; vmux signs with those token keys only"
        ))),
    }
}

fn public_key(session: &Session, handle: ObjectHandle, label: &str) -> Result<PublicKey> {
    let curve = curve_of(session, handle, label)?;
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
                "the token did not return the public point of key \"{label}\""
            ))
        })?;
    let invalid = |e: &dyn core::fmt::Display| {
        Error::Other(format!(
            "the token's public key \"{label}\" is invalid: {e}"
        ))
    };
    let data = match curve {
        Curve::P256 => KeyData::Ecdsa(
            EcdsaPublicKey::from_sec1_bytes(wire::ec_point(point)?).map_err(|e| invalid(&e))?,
        ),
        Curve::Ed25519 => KeyData::Ed25519(
            Ed25519PublicKey::try_from(wire::ed25519_point(point)?).map_err(|e| invalid(&e))?,
        ),
    };
    Ok(PublicKey::new(data, ""))
}

pub(crate) fn token_key(module: &Path, token_label: &str, key_label: &str) -> TokenKey {
    TokenKey {
        module: module.to_path_buf(),
        token_label: token_label.to_owned(),
        key_label: key_label.to_owned(),
    }
}

/// Words a cryptoki error for a person.
pub(crate) fn ck(what: &str, e: CkError) -> Error {
    Error::Other(format!("{what}: {e}"))
}
