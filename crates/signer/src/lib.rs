//! The vmux signer.
