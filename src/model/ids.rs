//! Identifier generation as upstream's `IDGEN_*` settings describe: uuidv4 (default), uuidv7 or
//! 26-character nanoid, each with an optional per-kind prefix. Tenant ids are always
//! caller-supplied and never generated here.

use ring::rand::{SecureRandom, SystemRandom};

/// Which algorithm `IDGEN_TYPE` selects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdKind {
    UuidV4,
    UuidV7,
    NanoId,
}

impl IdKind {
    pub fn from_setting(value: &str) -> Option<IdKind> {
        match value {
            "uuidv4" => Some(IdKind::UuidV4),
            "uuidv7" => Some(IdKind::UuidV7),
            "nanoid" => Some(IdKind::NanoId),
            _ => None,
        }
    }
}

/// Generates event, destination and attempt ids.
#[derive(Clone, Debug)]
pub struct IdGenerator {
    pub kind: IdKind,
    pub event_prefix: String,
    pub destination_prefix: String,
    pub attempt_prefix: String,
}

const NANOID_ALPHABET: &[u8; 62] =
    b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    // The OS random source failing is not recoverable; fall back to a time-derived value so
    // an id is still produced (uniqueness then rests on the clock).
    if SystemRandom::new().fill(&mut buf).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        for (i, b) in buf.iter_mut().enumerate() {
            *b = (nanos >> ((i % 16) * 8)) as u8 ^ i as u8;
        }
    }
    buf
}

fn hyphenated(bytes: &[u8; 16]) -> String {
    let mut out = String::with_capacity(36);
    for (i, b) in bytes.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out.push('-');
        }
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// A random (version 4) UUID in canonical lowercase form.
pub fn uuid_v4() -> String {
    let mut bytes = random_bytes::<16>();
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    hyphenated(&bytes)
}

/// A time-ordered (version 7) UUID for the given unix milliseconds.
pub fn uuid_v7(unix_ms: u64) -> String {
    let mut bytes = random_bytes::<16>();
    bytes[..6].copy_from_slice(&unix_ms.to_be_bytes()[2..]);
    bytes[6] = (bytes[6] & 0x0f) | 0x70;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    hyphenated(&bytes)
}

/// A 26-character id from `0-9A-Za-z` (rejection sampling keeps it uniform).
pub fn nanoid() -> String {
    let mut out = String::with_capacity(26);
    while out.len() < 26 {
        for b in random_bytes::<32>() {
            let v = b & 0x3f;
            if (v as usize) < NANOID_ALPHABET.len() && out.len() < 26 {
                out.push(NANOID_ALPHABET[v as usize] as char);
            }
        }
    }
    out
}

impl IdGenerator {
    fn bare(&self, unix_ms: u64) -> String {
        match self.kind {
            IdKind::UuidV4 => uuid_v4(),
            IdKind::UuidV7 => uuid_v7(unix_ms),
            IdKind::NanoId => nanoid(),
        }
    }
    pub fn event_id(&self, unix_ms: u64) -> String {
        format!("{}{}", self.event_prefix, self.bare(unix_ms))
    }
    pub fn destination_id(&self, unix_ms: u64) -> String {
        format!("{}{}", self.destination_prefix, self.bare(unix_ms))
    }
    pub fn attempt_id(&self, unix_ms: u64) -> String {
        format!("{}{}", self.attempt_prefix, self.bare(unix_ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_v4_is_canonical() {
        let id = uuid_v4();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert!(matches!(&id[19..20], "8" | "9" | "a" | "b"));
        assert_ne!(uuid_v4(), id);
    }

    #[test]
    fn uuid_v7_carries_time() {
        let id = uuid_v7(0x0123_4567_89ab);
        assert!(id.starts_with("01234567-89ab-7"), "{id}");
    }

    #[test]
    fn nanoid_alphabet_and_length() {
        let id = nanoid();
        assert_eq!(id.len(), 26);
        assert!(id.bytes().all(|b| b.is_ascii_alphanumeric()));
    }

    #[test]
    fn prefixes_apply_per_kind() {
        let gen = IdGenerator {
            kind: IdKind::NanoId,
            event_prefix: "evt_".into(),
            destination_prefix: "des_".into(),
            attempt_prefix: "atm_".into(),
        };
        assert!(gen.event_id(0).starts_with("evt_"));
        assert!(gen.destination_id(0).starts_with("des_"));
        assert_eq!(gen.attempt_id(0).len(), 30);
    }
}
