//! vmux key stores, the identity registry and the certificate authority.
//!
//! Signing is separate from managing: the signer's request path sees only
//! [`store::SigningKey`], which can do nothing but produce a signature after
//! the person has supplied the store's user verification.

pub mod ca;
mod error;
pub mod keyring;
pub mod krl;
pub mod pkcs11;
mod random;
pub mod software;
pub mod store;
pub mod tpm;

pub use error::{Error, Result};
pub use keyring::{Identity, Keyring};
pub use software::{KeyType, SoftwareKey};
