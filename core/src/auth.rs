//! A cluster keyring: shared keys that authenticate messages with HMAC-SHA256.
//!
//! The first key signs; every key verifies. So a key is rotated through a running cluster one
//! node at a time: add the new key second everywhere, then move it first everywhere, then
//! remove the old one (the model of memberlist and Serf keyrings). A tag covers every byte it
//! follows, so nothing in a message (cluster, sender, recipient, term, body) can be changed
//! without the keys.
//!
//! Keys come from bytes or from a key file ([`Keyring::from_file`]): one key per line, in hex,
//! the first line signing. A key file that anyone may read is refused.

use std::fmt;
use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use sha2::Sha256;
use thiserror::Error;

/// Bytes in a tag (a full HMAC-SHA256).
pub const TAG_LEN: usize = 32;
/// The shortest key accepted: 128 bits.
pub const MIN_KEY_LEN: usize = 16;
/// The longest key accepted (a longer one adds nothing to HMAC-SHA256).
pub const MAX_KEY_LEN: usize = 64;

type HmacSha256 = Hmac<Sha256>;

/// Why a keyring could not be made, or a message was not authenticated.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AuthError {
    #[error("a keyring needs at least one key")]
    NoKeys,
    #[error("key {index} is {len} bytes; keys are {MIN_KEY_LEN} to {MAX_KEY_LEN} bytes")]
    KeyLength { index: usize, len: usize },
    #[error("key file {path}: {reason}")]
    KeyFile { path: PathBuf, reason: String },
    #[error(
        "key file {path} can be read by every user (mode {mode:o}); make it private, e.g. chmod 600"
    )]
    KeyFileReadable { path: PathBuf, mode: u32 },
    #[error("the message is not signed, and this node requires signed messages")]
    Unsigned,
    #[error("the message is signed, but this node has no keyring to check it")]
    NoKeyring,
    #[error("a replay: its sender's sequence number did not grow (it was sent before)")]
    Replayed,
    #[error(
        "the message's tag matches no key of this node: forged, tampered with, or signed with a key this node does not have"
    )]
    BadTag,
}

/// One or more shared keys; the first signs, all verify. Its `Debug` form never shows a key.
#[derive(Clone)]
pub struct Keyring {
    keys: Vec<HmacSha256>,
}

impl Keyring {
    /// A keyring of `keys`, the first of which signs. Each key is 16 to 64 bytes.
    pub fn new<K: AsRef<[u8]>>(keys: impl IntoIterator<Item = K>) -> Result<Self, AuthError> {
        let keys = keys
            .into_iter()
            .enumerate()
            .map(|(index, key)| {
                let key = key.as_ref();
                if !(MIN_KEY_LEN..=MAX_KEY_LEN).contains(&key.len()) {
                    return Err(AuthError::KeyLength {
                        index,
                        len: key.len(),
                    });
                }
                Ok(HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if keys.is_empty() {
            return Err(AuthError::NoKeys);
        }
        Ok(Keyring { keys })
    }

    /// Reads a key file: one key per line in hex (blank lines and lines starting with `#`
    /// are skipped), the first signing. Refuses a file that every user may read.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, AuthError> {
        let path = path.as_ref();
        let fail = |reason: String| AuthError::KeyFile {
            path: path.to_owned(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(path)
                .map_err(|e| fail(e.to_string()))?
                .permissions()
                .mode();
            if mode & 0o004 != 0 {
                return Err(AuthError::KeyFileReadable {
                    path: path.to_owned(),
                    mode: mode & 0o777,
                });
            }
        }
        let keys = text
            .lines()
            .map(str::trim)
            .enumerate()
            .filter(|(_, line)| !line.is_empty() && !line.starts_with('#'))
            .map(|(n, line)| {
                hex::decode(line).map_err(|e| fail(format!("line {}: not a hex key: {e}", n + 1)))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Keyring::new(keys).map_err(|e| fail(e.to_string()))
    }

    /// The tag of `message` under the signing key.
    pub fn sign(&self, message: &[u8]) -> [u8; TAG_LEN] {
        let mut mac = self.keys[0].clone();
        mac.update(message);
        mac.finalize().into_bytes().into()
    }

    /// Whether `tag` is the tag of `message` under any key, compared in constant time.
    pub fn verify(&self, message: &[u8], tag: &[u8]) -> Result<(), AuthError> {
        let matches = |key: &HmacSha256| {
            let mut mac = key.clone();
            mac.update(message);
            mac.verify_slice(tag).is_ok()
        };
        if self.keys.iter().any(matches) {
            Ok(())
        } else {
            Err(AuthError::BadTag)
        }
    }

    /// How many keys it holds.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Never true: a keyring holds at least one key.
    pub fn is_empty(&self) -> bool {
        false
    }
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Keyring({} keys)", self.keys.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OLD: [u8; 32] = [7; 32];
    const NEW: [u8; 32] = [9; 32];

    #[test]
    fn the_first_key_signs_and_every_key_verifies() {
        let old = Keyring::new([OLD]).unwrap();
        let both = Keyring::new([NEW, OLD]).unwrap();
        let new = Keyring::new([NEW]).unwrap();
        let msg = b"a message";
        // Rotation: a node with [new, old] accepts both, and signs with the new key.
        both.verify(msg, &old.sign(msg)).unwrap();
        both.verify(msg, &new.sign(msg)).unwrap();
        assert_eq!(both.sign(msg), new.sign(msg));
        assert_eq!(old.verify(msg, &new.sign(msg)), Err(AuthError::BadTag));
    }

    #[test]
    fn any_change_to_the_message_or_the_tag_is_refused() {
        let ring = Keyring::new([OLD]).unwrap();
        let msg = b"cluster a->b term 7 heartbeat".to_vec();
        let tag = ring.sign(&msg);
        for i in 0..msg.len() {
            let mut tampered = msg.clone();
            tampered[i] ^= 1;
            assert_eq!(
                ring.verify(&tampered, &tag),
                Err(AuthError::BadTag),
                "byte {i}"
            );
        }
        for i in 0..TAG_LEN {
            let mut bad = tag;
            bad[i] ^= 0x80;
            assert_eq!(
                ring.verify(&msg, &bad),
                Err(AuthError::BadTag),
                "tag byte {i}"
            );
        }
        assert_eq!(
            ring.verify(&msg, &tag[..16]),
            Err(AuthError::BadTag),
            "a short tag"
        );
    }

    /// RFC 4231, test case 1: the tags are standard HMAC-SHA256, which any other
    /// implementation of the wire format can reproduce.
    #[test]
    fn tags_are_standard_hmac_sha256() {
        let ring = Keyring::new([[0x0b; 20]]).unwrap();
        assert_eq!(
            hex::encode(ring.sign(b"Hi There")),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
    }

    #[test]
    fn bad_keys_are_refused_with_a_reason() {
        assert_eq!(
            Keyring::new(Vec::<Vec<u8>>::new()).unwrap_err(),
            AuthError::NoKeys
        );
        assert_eq!(
            Keyring::new([vec![1u8; 15]]).unwrap_err(),
            AuthError::KeyLength { index: 0, len: 15 }
        );
        assert_eq!(
            Keyring::new([vec![1u8; 16], vec![1u8; 65]]).unwrap_err(),
            AuthError::KeyLength { index: 1, len: 65 }
        );
        assert_eq!(
            format!("{:?}", Keyring::new([OLD]).unwrap()),
            "Keyring(1 keys)"
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_key_file_is_read_and_a_readable_one_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        std::fs::write(
            &path,
            format!("# rotation\n{}\n\n{}\n", hex::encode(NEW), hex::encode(OLD)),
        )
        .unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let ring = Keyring::from_file(&path).unwrap();
        assert_eq!(ring.len(), 2);
        assert_eq!(ring.sign(b"x"), Keyring::new([NEW]).unwrap().sign(b"x"));

        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = Keyring::from_file(&path).unwrap_err();
        assert!(
            matches!(err, AuthError::KeyFileReadable { mode: 0o644, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("chmod 600"), "{err}");

        std::fs::write(&path, "not hex\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let err = Keyring::from_file(&path).unwrap_err().to_string();
        assert!(err.contains("line 1: not a hex key"), "{err}");
        let missing = Keyring::from_file(dir.path().join("none"))
            .unwrap_err()
            .to_string();
        assert!(missing.contains("none"), "{missing}");
    }
}
