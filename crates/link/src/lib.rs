//! The vmux link.
