//! The CRC hashes: crc16 (XMODEM, left running in 32 bits), crc32 (15 bits of CRC-32) and
//! crc32a (CRC-32), with their tables built at compile time from the polynomials.

/// CRC16 XMODEM's table (polynomial 0x1021, not reflected), built at compile time.
const CRC16_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = (i as u32) << 8;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
            bit += 1;
        }
        table[i] = crc & 0xffff;
        i += 1;
    }
    table
};

pub(super) fn crc16(key: &[u8]) -> u32 {
    let mut crc: u32 = 0;
    for &byte in key {
        // The table index is masked to a byte, so signedness of the key byte does not matter
        // here; the running value is not masked (nutcracker's quirk).
        crc = (crc << 8) ^ CRC16_TABLE[((crc >> 8) ^ u32::from(byte)) as usize & 0xff];
    }
    crc
}

/// CRC-32's table (IEEE polynomial, reflected: 0xedb88320), built at compile time.
const CRC32_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
};

/// The standard CRC-32 of `key`.
fn crc32_full(key: &[u8]) -> u32 {
    let mut crc = u32::MAX;
    for &byte in key {
        crc = (crc >> 8) ^ CRC32_TABLE[((crc ^ u32::from(byte)) & 0xff) as usize];
    }
    !crc
}

pub(super) fn crc32(key: &[u8]) -> u32 {
    (crc32_full(key) >> 16) & 0x7fff
}

pub(super) fn crc32a(key: &[u8]) -> u32 {
    crc32_full(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_the_standard_ones() {
        // Entries as printed in nutcracker's nc_crc16.c / nc_crc32.c (and every CRC table).
        assert_eq!(
            [CRC16_TABLE[1], CRC16_TABLE[128], CRC16_TABLE[255]],
            [0x1021, 0x9188, 0x1ef0]
        );
        assert_eq!(
            [CRC32_TABLE[1], CRC32_TABLE[128], CRC32_TABLE[255]],
            [0x7707_3096, 0xedb8_8320, 0x2d02_ef8d]
        );
    }

    #[test]
    fn crc16_keeps_the_bits_shifted_past_16() {
        assert_eq!(crc16(b""), 0);
        assert_eq!(crc16(b"1"), 0x2672);
        // Two bytes: the first byte's CRC shifted left by 8 stays above bit 15.
        assert_eq!(crc16(b"12") >> 16, 0x26);
        assert_eq!(crc16(b"123456789") & 0xffff, 0x31c3);
    }

    #[test]
    fn crc32_is_fifteen_bits_of_crc32a() {
        for key in [&b""[..], b"a", b"123456789", b"\xff\x00\x80"] {
            assert_eq!(crc32(key), (crc32a(key) >> 16) & 0x7fff);
            assert!(crc32(key) <= 0x7fff);
        }
    }
}
