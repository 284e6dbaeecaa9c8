//! Opaque pagination cursors: base62 (digits `0-9a-zA-Z`) of the big-endian integer formed by
//! the bytes of `"{resource}v{version}:{position}"`, as upstream encodes them.

use super::error::ApiError;

const ALPHABET: &[u8; 62] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
const VERSION: &str = "01";

fn base62_encode(bytes: &[u8]) -> String {
    let mut number: Vec<u8> = bytes.iter().copied().skip_while(|b| *b == 0).collect();
    let mut digits = Vec::new();
    while !number.is_empty() {
        let mut remainder = 0u32;
        let mut quotient = Vec::with_capacity(number.len());
        for byte in &number {
            let acc = (remainder << 8) | *byte as u32;
            let q = acc / 62;
            remainder = acc % 62;
            if !(quotient.is_empty() && q == 0) {
                quotient.push(q as u8);
            }
        }
        digits.push(ALPHABET[remainder as usize]);
        number = quotient;
    }
    if digits.is_empty() {
        digits.push(b'0');
    }
    digits.reverse();
    String::from_utf8(digits).unwrap_or_default()
}

fn base62_decode(text: &str) -> Option<Vec<u8>> {
    let mut number: Vec<u8> = Vec::new();
    for c in text.bytes() {
        let digit = ALPHABET.iter().position(|a| *a == c)? as u32;
        let mut carry = digit;
        for byte in number.iter_mut().rev() {
            let acc = *byte as u32 * 62 + carry;
            *byte = (acc & 0xff) as u8;
            carry = acc >> 8;
        }
        while carry > 0 {
            number.insert(0, (carry & 0xff) as u8);
            carry >>= 8;
        }
    }
    Some(number)
}

/// Encodes a position of `resource` (`evt`, `att`, `tnt`).
pub fn encode(resource: &str, position: &str) -> String {
    base62_encode(format!("{resource}v{VERSION}:{position}").as_bytes())
}

/// Decodes a cursor of `resource`, answering upstream's 400s for anything else.
pub fn decode(resource: &str, cursor: &str) -> Result<String, ApiError> {
    let invalid = || ApiError::bad_request("invalid cursor");
    if cursor.is_empty() || cursor.len() > 4096 {
        return Err(invalid());
    }
    let bytes = base62_decode(cursor).ok_or_else(invalid)?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    let rest = text.strip_prefix(resource).ok_or_else(invalid)?;
    let rest = rest.strip_prefix('v').ok_or_else(invalid)?;
    let (version, position) = rest.split_once(':').ok_or_else(invalid)?;
    if version != VERSION {
        return Err(ApiError::bad_request(format!(
            "cursor version mismatch: expected version {VERSION}"
        )));
    }
    Ok(position.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for position in ["", "0", "1717230216080::abc", "x:y:z"] {
            let cursor = encode("tnt", position);
            assert!(cursor.bytes().all(|b| b.is_ascii_alphanumeric()));
            assert_eq!(decode("tnt", &cursor).unwrap(), position);
        }
    }

    #[test]
    fn base62_matches_big_integer_value() {
        assert_eq!(base62_encode(&[0x01, 0x00]), "48"); // 256 = 4*62 + 8
        assert_eq!(base62_decode("48").unwrap(), vec![1, 0]);
    }

    #[test]
    fn refuses_other_resources_versions_and_garbage() {
        let evt = encode("evt", "1::a");
        assert_eq!(
            decode("tnt", &evt).unwrap_err().message.unwrap(),
            "invalid cursor"
        );
        let v2 = base62_encode(b"tntv02:1");
        assert_eq!(
            decode("tnt", &v2).unwrap_err().message.unwrap(),
            "cursor version mismatch: expected version 01"
        );
        assert!(decode("tnt", "!!").is_err());
        assert!(decode("tnt", "").is_err());
    }
}
