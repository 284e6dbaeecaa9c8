//! Writing a command's answer to standard output. A closed pipe (`outpost --help | head -1`) or
//! a full disk behind a redirect ends the output quietly instead of panicking as `println!`
//! does: the command has nothing useful left to say.

use std::io::Write;

/// Writes one line to standard output, ignoring a reader that went away.
pub fn line(text: impl std::fmt::Display) {
    let _ = writeln!(std::io::stdout().lock(), "{text}");
}
