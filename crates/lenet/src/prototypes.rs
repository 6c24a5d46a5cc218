//! The fixed parameter vectors of the output RBF units: stylized 7×12 digit bitmaps.
//!
//! LeCun et al. 1998, §II.B: "the components of those parameters vectors were set to -1 or
//! +1 […] they were designed to represent a stylized image of the corresponding character
//! class drawn on a 7x12 bitmap (hence the number 84)", with Fig. 3 showing the set for the
//! printable ASCII characters. The bitmaps live in `prototypes.txt` beside this file, as a
//! font sheet anyone can read and check; they are parsed at compile time, so a malformed
//! sheet does not build.

/// Width of a prototype bitmap.
pub const PROTOTYPE_WIDTH: usize = 7;
/// Height of a prototype bitmap.
pub const PROTOTYPE_HEIGHT: usize = 12;
/// Length of a prototype, the number of F6 units: 7 × 12 = 84.
pub const PROTOTYPE_LEN: usize = PROTOTYPE_WIDTH * PROTOTYPE_HEIGHT;
/// Number of prototypes: the ten digits.
pub const NUM_PROTOTYPES: usize = 10;

/// The font sheet, as committed.
pub const PROTOTYPE_SHEET: &str = include_str!("prototypes.txt");

/// The prototypes, digit by digit, each row-major over its 7×12 bitmap: `+1` where the
/// sheet has ink (`#`), `-1` where it has paper (`.`).
pub const PROTOTYPES: [[f32; PROTOTYPE_LEN]; NUM_PROTOTYPES] = parse_sheet(PROTOTYPE_SHEET);

/// Parses the sheet: lines starting with `//` and empty lines are comments; the other twelve
/// lines each hold one bitmap row of the ten digits, 7 characters per digit, digits separated
/// by one space.
const fn parse_sheet(sheet: &str) -> [[f32; PROTOTYPE_LEN]; NUM_PROTOTYPES] {
    const LINE: usize = NUM_PROTOTYPES * (PROTOTYPE_WIDTH + 1) - 1;
    let bytes = sheet.as_bytes();
    let mut out = [[0f32; PROTOTYPE_LEN]; NUM_PROTOTYPES];
    let mut row = 0;
    let mut start = 0;
    while start < bytes.len() {
        let mut end = start;
        while end < bytes.len() && bytes[end] != b'\n' {
            end += 1;
        }
        let len = end - start;
        let comment = len == 0 || (len >= 2 && bytes[start] == b'/' && bytes[start + 1] == b'/');
        if !comment {
            assert!(row < PROTOTYPE_HEIGHT, "prototype sheet: more than 12 rows");
            assert!(
                len == LINE,
                "prototype sheet: a row is not 10 × 7 characters"
            );
            let mut digit = 0;
            while digit < NUM_PROTOTYPES {
                let mut col = 0;
                while col < PROTOTYPE_WIDTH {
                    let c = bytes[start + digit * (PROTOTYPE_WIDTH + 1) + col];
                    out[digit][row * PROTOTYPE_WIDTH + col] = match c {
                        b'#' => 1.0,
                        b'.' => -1.0,
                        _ => panic!("prototype sheet: a pixel is neither `#` nor `.`"),
                    };
                    col += 1;
                }
                if digit + 1 < NUM_PROTOTYPES {
                    assert!(
                        bytes[start + (digit + 1) * (PROTOTYPE_WIDTH + 1) - 1] == b' ',
                        "prototype sheet: digits must be separated by one space"
                    );
                }
                digit += 1;
            }
            row += 1;
        }
        start = end + 1;
    }
    assert!(
        row == PROTOTYPE_HEIGHT,
        "prototype sheet: fewer than 12 rows"
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hamming(a: &[f32], b: &[f32]) -> usize {
        a.iter().zip(b).filter(|(x, y)| x != y).count()
    }

    #[test]
    fn every_component_is_plus_or_minus_one_and_digits_differ() {
        for p in &PROTOTYPES {
            assert!(p.iter().all(|&x| x == 1.0 || x == -1.0));
        }
        // The closest pair (0 and 8, which differ by the middle bar) still lies 5 pixels, a
        // squared distance of 20, apart.
        let mut closest = usize::MAX;
        for (i, a) in PROTOTYPES.iter().enumerate() {
            for b in &PROTOTYPES[i + 1..] {
                closest = closest.min(hamming(a, b));
            }
        }
        assert_eq!(closest, 5);
    }

    #[test]
    fn the_sheet_reads_as_drawn() {
        // The "1": a stem in columns 3-4 on rows 1-9, a foot on row 9.
        let one = &PROTOTYPES[1];
        let ink = |r: usize, c: usize| one[r * PROTOTYPE_WIDTH + c] > 0.0;
        assert!((1..=9).all(|r| ink(r, 3) && ink(r, 4)));
        assert!((1..=6).all(|c| ink(9, c)) && !ink(9, 0));
        // Row 0 and rows 10-11 are blank in every digit.
        for p in &PROTOTYPES {
            for r in [0, 10, 11] {
                assert!((0..PROTOTYPE_WIDTH).all(|c| p[r * PROTOTYPE_WIDTH + c] < 0.0));
            }
        }
    }
}
