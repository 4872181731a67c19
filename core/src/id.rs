//! Node ids: non-empty UTF-8 strings of at most [`MAX_ID_LEN`] bytes.

use thiserror::Error;

/// A node's id. Ids are compared byte for byte; the application chooses them (host names,
/// UUIDs...) and must give every node of a cluster a distinct one.
pub type NodeId = String;

/// The longest id, and the longest cluster name, in bytes of UTF-8 (so it fits the wire's
/// one-byte length prefix).
pub const MAX_ID_LEN: usize = 255;

/// Why an id (or cluster name) was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum IdError {
    #[error("node id must not be empty")]
    Empty,
    #[error("node id is {len} bytes long; the limit is {MAX_ID_LEN} bytes of UTF-8")]
    TooLong { len: usize },
}

/// Checks that `id` can be used as a node id.
pub fn validate_id(id: &str) -> Result<(), IdError> {
    match id.len() {
        0 => Err(IdError::Empty),
        len if len > MAX_ID_LEN => Err(IdError::TooLong { len }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ids_up_to_the_limit_and_refuses_empty_or_longer() {
        assert_eq!(validate_id("a"), Ok(()));
        assert_eq!(validate_id(&"é".repeat(127)), Ok(())); // 254 bytes
        assert_eq!(validate_id(&"x".repeat(255)), Ok(()));
        assert_eq!(validate_id(""), Err(IdError::Empty));
        assert_eq!(
            validate_id(&"x".repeat(256)),
            Err(IdError::TooLong { len: 256 })
        );
    }
}
