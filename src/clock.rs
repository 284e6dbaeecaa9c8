//! The clock seam: everything that needs "now" asks a `Clock` instead of the system directly,
//! so time-dependent code has one place to be controlled from.

#[derive(Clone, Debug, Default)]
pub struct Clock {
    _private: (),
}

impl Clock {
    pub fn system() -> Clock {
        Clock::default()
    }

    /// Milliseconds since the Unix epoch.
    pub fn now_ms(&self) -> i64 {
        self.now_nanos() / 1_000_000
    }

    /// Nanoseconds since the Unix epoch.
    pub fn now_nanos(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as i64)
            .unwrap_or(0)
    }
}
