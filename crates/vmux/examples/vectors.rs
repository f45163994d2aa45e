//! Writes the known-answer vectors of `docs/vectors/` from the project's own
//! code:
//!
//! ```text
//! cargo run -p vmux --example vectors
//! ```
//!
//! `cargo test -p vmux --test it vectors::` fails until the files say what the
//! code computes, so run this after changing the link, the envelopes or the
//! signature encoding, and review the diff.

use std::path::Path;

use vmux_testkit::vectors as generate;

fn main() -> generate::Result<()> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/vectors");
    std::fs::create_dir_all(&dir)?;
    for (name, content) in generate::files()? {
        let path = dir.join(name);
        std::fs::write(&path, content)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}
