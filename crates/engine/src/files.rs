//! Bounded reads of the files himaplan is given (configuration, variables,
//! state, plans, journals): a file larger than its limit — or a special
//! file that never ends, like `/dev/zero` — is an error naming the limit,
//! never an unbounded allocation.

use std::io::{self, Read};
use std::path::Path;

/// Upper bound on a state file, its journal or a plan file: far above the
/// state of 100,000 resources, far below what would exhaust memory.
pub const MAX_STATE_BYTES: u64 = 1024 * 1024 * 1024;

/// The file's bytes, or an error if it holds more than `limit` bytes.
pub fn read_bytes(path: &Path, limit: u64) -> io::Result<Vec<u8>> {
    let too_large = || io::Error::new(io::ErrorKind::InvalidData, format!("the file is larger than {} (the limit)", human(limit)));
    let file = std::fs::File::open(path)?;
    // A regular file says its size; a pipe or device is read up to the limit.
    if file.metadata().is_ok_and(|m| m.is_file() && m.len() > limit) {
        return Err(too_large());
    }
    let mut bytes = Vec::new();
    file.take(limit.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(too_large());
    }
    Ok(bytes)
}

/// The file as UTF-8 text, or an error if it holds more than `limit` bytes.
pub fn read_text(path: &Path, limit: u64) -> io::Result<String> {
    String::from_utf8(read_bytes(path, limit)?)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "stream did not contain valid UTF-8"))
}

/// `16 MiB`, `1 GiB`.
fn human(bytes: u64) -> String {
    const MIB: u64 = 1024 * 1024;
    if bytes >= 1024 * MIB && bytes.is_multiple_of(1024 * MIB) {
        format!("{} GiB", bytes / (1024 * MIB))
    } else if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{} MiB", bytes / MIB)
    } else {
        format!("{bytes} bytes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_past_its_limit_is_an_error_naming_the_limit() {
        // /dev/zero never ends: the read stops one byte past the limit.
        let err = read_bytes(Path::new("/dev/zero"), 1024 * 1024).unwrap_err();
        assert!(err.to_string().contains("larger than 1 MiB"), "{err}");
    }
}
