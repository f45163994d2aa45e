//! The key icon, drawn here rather than shipped or taken from a theme:
//! filled while a signer is reachable, hollow (its outline only) when not,
//! as the seeds' menu-bar key does.

use super::menu::Icon;

/// Width and height in pixels.
pub const SIZE: usize = 32;

/// Coverage of each pixel, row by row: 255 inside the glyph, 0 outside.
pub fn mask(icon: Icon) -> Vec<u8> {
    let mut out = vec![0u8; SIZE * SIZE];
    for y in 0..SIZE {
        for x in 0..SIZE {
            let inside = match icon {
                Icon::Filled => in_key(x, y),
                Icon::Hollow => on_outline(x, y),
            };
            if inside && let Some(p) = out.get_mut(y * SIZE + x) {
                *p = 255;
            }
        }
    }
    out
}

/// ARGB32, network byte order, as StatusNotifierItem's IconPixmap wants.
pub fn argb(icon: Icon) -> Vec<u8> {
    mask(icon)
        .into_iter()
        .flat_map(|a| [a, GREY, GREY, GREY])
        .collect()
}

/// RGBA, as the macOS menu bar takes it (a template image: only the alpha
/// counts, the system colours it).
#[allow(dead_code)]
pub fn rgba(icon: Icon) -> Vec<u8> {
    mask(icon).into_iter().flat_map(|a| [0, 0, 0, a]).collect()
}

/// Light enough for the dark panels most desktops have, dark enough to be
/// seen on a light one.
const GREY: u8 = 0xd0;

/// The key: a ring (the bow) on the left, a shaft to the right with two
/// teeth below it.
fn in_key(x: usize, y: usize) -> bool {
    let (fx, fy) = (x as f32 + 0.5, y as f32 + 0.5);
    let d2 = (fx - 10.0).powi(2) + (fy - 16.0).powi(2);
    let bow = (3.0 * 3.0..=8.5 * 8.5).contains(&d2);
    let shaft = (17..30).contains(&x) && (13..19).contains(&y);
    let teeth = ((22..25).contains(&x) && (19..24).contains(&y))
        || ((27..30).contains(&x) && (19..23).contains(&y));
    bow || shaft || teeth
}

/// A pixel of the key next to one outside it (or to the edge).
fn on_outline(x: usize, y: usize) -> bool {
    in_key(x, y)
        && (x.saturating_sub(1)..=x + 1).any(|nx| {
            (y.saturating_sub(1)..=y + 1)
                .any(|ny| nx == 0 || ny == 0 || nx >= SIZE || ny >= SIZE || !in_key(nx, ny))
        })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::indexing_slicing)]
    use super::*;

    fn at(mask: &[u8], x: usize, y: usize) -> u8 {
        mask[y * SIZE + x]
    }

    #[test]
    fn filled_key_is_solid_and_hollow_one_only_its_outline() {
        let (filled, hollow) = (mask(Icon::Filled), mask(Icon::Hollow));
        let count = |m: &[u8]| m.iter().filter(|&&a| a == 255).count();
        assert!(count(&hollow) < count(&filled) * 3 / 4);
        // The middle of the shaft: ink when filled, empty when hollow.
        assert_eq!((at(&filled, 23, 15), at(&hollow, 23, 15)), (255, 0));
        // Its edge is drawn in both; outside the key, neither.
        assert_eq!((at(&filled, 23, 13), at(&hollow, 23, 13)), (255, 255));
        assert_eq!((at(&filled, 0, 0), at(&hollow, 0, 0)), (0, 0));
        // The hollow outline is part of the filled key.
        assert!(hollow.iter().zip(&filled).all(|(h, f)| *h <= *f));
    }

    #[test]
    fn pixmaps_are_four_bytes_a_pixel() {
        assert_eq!(argb(Icon::Filled).len(), SIZE * SIZE * 4);
        assert_eq!(rgba(Icon::Hollow).len(), SIZE * SIZE * 4);
        assert_ne!(argb(Icon::Filled), argb(Icon::Hollow));
    }
}
