//! Identifier generation as upstream's `IDGEN_*` settings describe: uuidv4 (default), uuidv7 or
//! 26-character nanoid, each with an optional per-kind prefix. Tenant ids are always
//! caller-supplied and never generated here. Ids are drawn from the OS random source; when it
//! fails, generation fails ([`IdError`]) rather than produce a guessable or colliding id.

use super::identifiers::{AttemptId, DestinationId, EventId};
use super::random::{self, RandomError};

/// Why no id could be generated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdError {
    #[error("cannot generate an id: {0}")]
    RandomSource(#[from] RandomError),
}

/// Where an id's random bits come from (see [`random`]).
type Source<'a> = &'a mut dyn FnMut(&mut [u8]) -> Result<(), RandomError>;

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

fn random_bytes<const N: usize>(random: Source<'_>) -> Result<[u8; N], IdError> {
    let mut buf = [0u8; N];
    random(&mut buf)?;
    Ok(buf)
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
fn uuid_v4(random: Source<'_>) -> Result<String, IdError> {
    let mut bytes = random_bytes::<16>(random)?;
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    Ok(hyphenated(&bytes))
}

/// A time-ordered (version 7) UUID for the given unix milliseconds.
fn uuid_v7(unix_ms: u64, random: Source<'_>) -> Result<String, IdError> {
    let mut bytes = random_bytes::<16>(random)?;
    bytes[..6].copy_from_slice(&unix_ms.to_be_bytes()[2..]);
    bytes[6] = (bytes[6] & 0x0f) | 0x70;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    Ok(hyphenated(&bytes))
}

/// A 26-character id from `0-9A-Za-z` (rejection sampling keeps it uniform).
fn nanoid(random: Source<'_>) -> Result<String, IdError> {
    let mut out = String::with_capacity(26);
    while out.len() < 26 {
        for b in random_bytes::<32>(random)? {
            let v = b & 0x3f;
            if (v as usize) < NANOID_ALPHABET.len() && out.len() < 26 {
                out.push(NANOID_ALPHABET[v as usize] as char);
            }
        }
    }
    Ok(out)
}

/// A random (version 4) UUID from the operating system's random source: ids of records that
/// are not events, destinations or attempts (operator events).
pub fn random_uuid() -> Result<String, IdError> {
    uuid_v4(&mut random::os_random)
}

impl IdGenerator {
    fn prefixed(&self, prefix: &str, unix_ms: u64, random: Source<'_>) -> Result<String, IdError> {
        let bare = match self.kind {
            IdKind::UuidV4 => uuid_v4(random)?,
            IdKind::UuidV7 => uuid_v7(unix_ms, random)?,
            IdKind::NanoId => nanoid(random)?,
        };
        Ok(format!("{prefix}{bare}"))
    }
    pub fn event_id(&self, unix_ms: u64) -> Result<EventId, IdError> {
        self.prefixed(&self.event_prefix, unix_ms, &mut random::os_random)
            .map(EventId::from)
    }
    pub fn destination_id(&self, unix_ms: u64) -> Result<DestinationId, IdError> {
        self.prefixed(&self.destination_prefix, unix_ms, &mut random::os_random)
            .map(DestinationId::from)
    }
    pub fn attempt_id(&self, unix_ms: u64) -> Result<AttemptId, IdError> {
        self.prefixed(&self.attempt_prefix, unix_ms, &mut random::os_random)
            .map(AttemptId::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_v4_is_canonical() {
        let id = uuid_v4(&mut random::os_random).unwrap();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert!(matches!(&id[19..20], "8" | "9" | "a" | "b"));
        assert_ne!(uuid_v4(&mut random::os_random).unwrap(), id);
    }

    #[test]
    fn uuid_v7_carries_time() {
        let id = uuid_v7(0x0123_4567_89ab, &mut random::os_random).unwrap();
        assert!(id.starts_with("01234567-89ab-7"), "{id}");
    }

    #[test]
    fn nanoid_alphabet_and_length() {
        let id = nanoid(&mut random::os_random).unwrap();
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
        assert!(gen.event_id(0).unwrap().starts_with("evt_"));
        assert!(gen.destination_id(0).unwrap().starts_with("des_"));
        assert_eq!(gen.attempt_id(0).unwrap().len(), 30);
    }

    #[test]
    fn a_failing_random_source_is_an_error_for_every_kind() {
        for kind in [IdKind::UuidV4, IdKind::UuidV7, IdKind::NanoId] {
            let gen = IdGenerator {
                kind,
                event_prefix: "evt_".into(),
                destination_prefix: String::new(),
                attempt_prefix: String::new(),
            };
            assert_eq!(
                gen.prefixed("evt_", 1_717_230_216_123, &mut random::failing),
                Err(IdError::RandomSource(RandomError)),
                "{kind:?}"
            );
        }
    }
}
