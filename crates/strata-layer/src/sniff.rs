//! Recognising a tar stream by its first 512-byte header block, so a caller can refuse a
//! file that is not a tar at all with a plain message, before storing any of it.

/// Size of a tar header block.
pub const TAR_BLOCK: usize = 512;

/// True if `block` (the first 512 bytes of a stream) is a tar header with a valid checksum,
/// or the all-zero block of an empty archive. Accepts ustar, GNU and old v7 headers alike:
/// the checksum is what every tar reader checks first.
pub fn is_tar_header(block: &[u8]) -> bool {
    if block.len() != TAR_BLOCK {
        return false;
    }
    if block.iter().all(|&b| b == 0) {
        return true;
    }
    let field = &block[148..156];
    let digits: String = field
        .iter()
        .take_while(|&&b| b != 0)
        .map(|&b| b as char)
        .collect::<String>()
        .trim()
        .to_string();
    let Ok(stored) = u32::from_str_radix(&digits, 8) else {
        return false;
    };
    // The checksum is computed with its own field read as eight spaces; some old writers
    // summed signed bytes, which readers accept too.
    let unsigned: u32 = block
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                32
            } else {
                u32::from(b)
            }
        })
        .sum();
    let signed: i64 = block
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                32
            } else {
                i64::from(b as i8)
            }
        })
        .sum();
    stored == unsigned || i64::from(stored) == signed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_real_headers_and_refuses_text() {
        let mut builder = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(3);
        h.set_mode(0o644);
        h.set_cksum();
        builder.append_data(&mut h, "a.txt", &b"abc"[..]).unwrap();
        let bytes = builder.into_inner().unwrap();
        assert!(is_tar_header(&bytes[..TAR_BLOCK]));
        assert!(is_tar_header(&[0u8; TAR_BLOCK]));

        let mut corrupt = bytes[..TAR_BLOCK].to_vec();
        corrupt[0] ^= 1;
        assert!(!is_tar_header(&corrupt));
        let text = b"root:x:0:0:root:/root:/bin/bash\n".repeat(20);
        assert!(!is_tar_header(&text[..TAR_BLOCK]));
        assert!(!is_tar_header(b"short"));
    }
}
