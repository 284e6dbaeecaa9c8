//! The operating system's random source: the only randomness outpost uses (generated ids,
//! signing secrets, first-start credentials). Its failure is an error for the caller to answer,
//! never a fallback to something predictable.
//!
//! Code that draws randomness takes the source as a parameter of type
//! `&mut dyn FnMut(&mut [u8]) -> Result<(), RandomError>`, so tests can pass a fixed or failing
//! one; production passes [`os_random`].

use ring::rand::{SecureRandom, SystemRandom};

/// The operating system's random number generator failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the operating system's random number generator failed")]
pub struct RandomError;

/// Fills `buf` from the OS CSPRNG (`ring::rand::SystemRandom`).
pub fn os_random(buf: &mut [u8]) -> Result<(), RandomError> {
    SystemRandom::new().fill(buf).map_err(|_| RandomError)
}

/// A source that always fails, for tests of the failure paths.
#[cfg(test)]
pub fn failing(_buf: &mut [u8]) -> Result<(), RandomError> {
    Err(RandomError)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_random_fills_the_buffer() {
        let mut a = [0u8; 64];
        let mut b = [0u8; 64];
        assert_eq!(os_random(&mut a), Ok(()));
        assert_eq!(os_random(&mut b), Ok(()));
        assert_ne!(a, [0u8; 64]);
        assert_ne!(a, b);
        assert_eq!(os_random(&mut []), Ok(()));
    }
}
