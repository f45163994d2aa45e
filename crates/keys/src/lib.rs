//! vmux key stores, the identity registry and the certificate authority.
//!
//! Signing is separate from managing: the signer's request path sees only
//! [`store::SigningKey`], which can do nothing but produce a signature after
//! the person has supplied the store's user verification.

mod error;
pub mod pkcs11;
pub mod store;

pub use error::{Error, Result};
