//! The proxy-wasm encoding of a header map, as the host hands one over and takes one: the
//! pair count, each pair's (name length, value length), then each name and value followed by
//! a NUL, every number a little-endian `u32`. Pure, so that a malformed map is a `None` here
//! and never a panic in the shell.

/// The proxy-wasm header map encoding: count, (name length, value length) pairs, then each
/// name and value followed by a NUL.
pub fn serialize_map(map: &[(&str, &str)]) -> Vec<u8> {
    let length = |n: usize| u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes();
    let mut bytes = length(map.len()).to_vec();
    for (name, value) in map {
        bytes.extend_from_slice(&length(name.len()));
        bytes.extend_from_slice(&length(value.len()));
    }
    for (name, value) in map {
        bytes.extend_from_slice(name.as_bytes());
        bytes.push(0);
        bytes.extend_from_slice(value.as_bytes());
        bytes.push(0);
    }
    bytes
}

/// Reads a map in the encoding of [`serialize_map`]; `None` when it is malformed.
pub fn deserialize_map(bytes: &[u8]) -> Option<Vec<(String, Vec<u8>)>> {
    let word = |at: usize| -> Option<usize> {
        let four: [u8; 4] = bytes.get(at..at.checked_add(4)?)?.try_into().ok()?;
        usize::try_from(u32::from_le_bytes(four)).ok()
    };
    let count = word(0)?;
    let mut data = count.checked_mul(8)?.checked_add(4)?;
    let mut map = Vec::with_capacity(count.min(256));
    for pair in 0..count {
        let sizes = pair.checked_mul(8)?.checked_add(4)?;
        let (name_size, value_size) = (word(sizes)?, word(sizes.checked_add(4)?)?);
        let name = bytes.get(data..data.checked_add(name_size)?)?;
        data = data.checked_add(name_size)?.checked_add(1)?;
        let value = bytes.get(data..data.checked_add(value_size)?)?;
        data = data.checked_add(value_size)?.checked_add(1)?;
        map.push((String::from_utf8_lossy(name).into_owned(), value.to_vec()));
    }
    Some(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_map_reads_back_as_it_was_written() {
        let map = [
            (":status", "200"),
            ("www-authenticate", "Bearer error=\"invalid_token\""),
            ("x", ""),
        ];
        let read = deserialize_map(&serialize_map(&map)).unwrap();
        let expected: Vec<(String, Vec<u8>)> = map
            .iter()
            .map(|(n, v)| ((*n).to_owned(), v.as_bytes().to_vec()))
            .collect();
        assert_eq!(read, expected);
        assert_eq!(deserialize_map(&serialize_map(&[])).unwrap(), Vec::new());
    }

    #[test]
    fn a_truncated_or_lying_map_is_refused_not_a_panic() {
        let whole = serialize_map(&[("name", "value")]);
        for cut in 0..whole.len() - 1 {
            assert_eq!(deserialize_map(&whole[..cut]), None, "cut at {cut}");
        }
        let mut huge_count = whole.clone();
        huge_count[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(deserialize_map(&huge_count), None);
        let mut huge_name = whole;
        huge_name[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(deserialize_map(&huge_name), None);
    }
}
