//! The vmux agent.
