//! Durable hard state: the current term and the vote cast in it.
//!
//! Raft's safety rests on these two values surviving a crash together: a node that forgets
//! its vote can vote twice in one term, and two leaders can be elected. They are saved as one
//! record, before any message that depends on them is sent.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::id::{MAX_ID_LEN, NodeId};

/// What must be on disk before a message that depends on it is sent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct HardState {
    pub term: u64,
    pub voted_for: Option<NodeId>,
}

/// Why hard state could not be loaded or saved.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum StorageError {
    #[error("cannot {action} state file {path}: {message}")]
    Io {
        action: &'static str,
        path: PathBuf,
        kind: io::ErrorKind,
        message: String,
    },
    #[error("state file {path} is corrupt ({reason}); refusing to start rather than forget a vote")]
    Corrupt { path: PathBuf, reason: String },
    #[error("cannot save the state: {reason}")]
    Failed { reason: String },
    #[error("voted_for is {len} bytes long; the limit is {MAX_ID_LEN}")]
    IdTooLong { len: usize },
    #[error(
        "state file {path} is in use by another node (its lock {lock} is held, by this process or another); two nodes on one state file could vote twice in a term"
    )]
    Locked { path: PathBuf, lock: PathBuf },
}

/// Where a node keeps its hard state. `save` returns only once the state is durable.
pub trait Storage: Send {
    /// The last saved state, or the default (term 0, no vote) for a node that never saved.
    fn load(&mut self) -> Result<HardState, StorageError>;
    /// Replaces the saved state atomically and durably.
    fn save(&mut self, state: &HardState) -> Result<(), StorageError>;

    /// Whether `save` blocks on I/O, so a runtime should call it off its async threads.
    fn blocks(&self) -> bool {
        true
    }
}

/// `<path>.lock`, beside a state file.
fn lock_path_of(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".lock");
    path.with_file_name(name)
}

/// Takes the lock beside the state file at `path`, held while the returned file is open, so
/// that a second node (or host) on the same state fails instead of voting twice.
pub(crate) fn lock_beside(path: &Path) -> Result<File, StorageError> {
    let lock = lock_path_of(path);
    let io = |action: &'static str| {
        move |e: io::Error| StorageError::Io {
            action,
            path: path.to_owned(),
            kind: e.kind(),
            message: e.to_string(),
        }
    };
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock)
        .map_err(io("create the lock file of"))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(TryLockError::WouldBlock) => Err(StorageError::Locked {
            path: path.to_owned(),
            lock,
        }),
        Err(TryLockError::Error(e)) => Err(io("lock")(e)),
    }
}

/// Keeps the hard state in memory only.
///
/// A node restarted with a fresh `MemStorage` forgets its term and vote, so it can vote a second
/// time in a term it already voted in. Use it for tests, or where a restarted node rejoins
/// under a new id.
#[derive(Debug, Clone, Default)]
pub struct MemStorage {
    state: HardState,
}

impl MemStorage {
    pub fn new() -> Self {
        Self::default()
    }
}

impl Storage for MemStorage {
    fn load(&mut self) -> Result<HardState, StorageError> {
        Ok(self.state.clone())
    }

    fn save(&mut self, state: &HardState) -> Result<(), StorageError> {
        self.state = state.clone();
        Ok(())
    }

    fn blocks(&self) -> bool {
        false
    }
}

/// Keeps the hard state in one small file, replaced atomically: the new state is written to a
/// temporary file, synced, renamed over the old one, and the directory is synced.
///
/// The first `load` (or `save`) takes an exclusive lock on `<path>.lock`, held until the
/// storage is dropped: a second node on the same file, in this process or another, fails at
/// start with [`StorageError::Locked`] instead of voting with a state the first one is about
/// to replace. The lock also checks, at start, that the file's directory exists and is
/// writable. A clone does not share the lock.
#[derive(Debug)]
pub struct FileStorage {
    path: PathBuf,
    lock: Option<File>,
}

impl Clone for FileStorage {
    fn clone(&self) -> Self {
        FileStorage::new(&self.path)
    }
}

const MAGIC: &[u8; 8] = b"ALRAFTHS";
const FORMAT_VERSION: u8 = 1;

impl FileStorage {
    /// Uses the file at `path`; it need not exist yet, but its directory must.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        FileStorage {
            path: path.into(),
            lock: None,
        }
    }

    /// The lock file beside the state file.
    pub fn lock_path(&self) -> PathBuf {
        lock_path_of(&self.path)
    }

    fn lock(&mut self) -> Result<(), StorageError> {
        if self.lock.is_none() {
            self.lock = Some(lock_beside(&self.path)?);
        }
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn io_error(&self, action: &'static str) -> impl FnOnce(io::Error) -> StorageError + '_ {
        move |e| StorageError::Io {
            action,
            path: self.path.clone(),
            kind: e.kind(),
            message: e.to_string(),
        }
    }

    fn corrupt(&self, reason: impl Into<String>) -> StorageError {
        StorageError::Corrupt {
            path: self.path.clone(),
            reason: reason.into(),
        }
    }

    fn temp_path(&self) -> PathBuf {
        let mut name = self.path.file_name().unwrap_or_default().to_os_string();
        name.push(".tmp");
        self.path.with_file_name(name)
    }
}

impl Storage for FileStorage {
    fn load(&mut self) -> Result<HardState, StorageError> {
        self.lock()?;
        match fs::read(&self.path) {
            Ok(bytes) => decode_state(&bytes).map_err(|reason| self.corrupt(reason)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(HardState::default()),
            Err(e) => Err(self.io_error("read")(e)),
        }
    }

    fn save(&mut self, state: &HardState) -> Result<(), StorageError> {
        self.lock()?;
        let bytes = encode_state(state)?;
        let temp = self.temp_path();
        let mut file = File::create(&temp).map_err(self.io_error("create temporary file for"))?;
        file.write_all(&bytes).map_err(self.io_error("write"))?;
        file.sync_all().map_err(self.io_error("sync"))?;
        drop(file);
        fs::rename(&temp, &self.path).map_err(self.io_error("rename temporary file onto"))?;
        let dir = match self.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(self.io_error("sync the directory of"))
    }
}

/// Layout: magic "ALRAFTHS", format version, term (u64 BE), vote length (0 = no vote, else
/// 1 + id length), id bytes, CRC-32 of everything before it (u32 BE).
fn encode_state(state: &HardState) -> Result<Vec<u8>, StorageError> {
    let vote = state.voted_for.as_deref().unwrap_or("");
    if vote.len() > MAX_ID_LEN {
        return Err(StorageError::IdTooLong { len: vote.len() });
    }
    let mut out = Vec::with_capacity(24 + vote.len());
    out.extend_from_slice(MAGIC);
    out.push(FORMAT_VERSION);
    out.extend_from_slice(&state.term.to_be_bytes());
    let vote_field = state.voted_for.as_ref().map_or(0, |v| v.len() as u16 + 1);
    out.extend_from_slice(&vote_field.to_be_bytes());
    out.extend_from_slice(vote.as_bytes());
    out.extend_from_slice(&crc32fast::hash(&out).to_be_bytes());
    Ok(out)
}

fn decode_state(bytes: &[u8]) -> Result<HardState, String> {
    let body_len = bytes.len().checked_sub(4).ok_or("file is too short")?;
    let (body, crc) = bytes.split_at(body_len);
    if crc32fast::hash(body).to_be_bytes() != crc {
        return Err("checksum mismatch".into());
    }
    let rest = body
        .strip_prefix(MAGIC.as_slice())
        .ok_or("not an almost-raft state file")?;
    let (&version, rest) = rest.split_first().ok_or("file is too short")?;
    if version != FORMAT_VERSION {
        return Err(format!("unsupported format version {version}"));
    }
    if rest.len() < 10 {
        return Err("file is too short".into());
    }
    let (term, rest) = rest.split_at(8);
    let (vote_field, vote) = rest.split_at(2);
    let vote_field = u16::from_be_bytes([vote_field[0], vote_field[1]]);
    let voted_for = match vote_field {
        0 if vote.is_empty() => None,
        n if usize::from(n) == vote.len() + 1 && !vote.is_empty() => {
            Some(String::from_utf8(vote.to_vec()).map_err(|_| "vote is not valid UTF-8")?)
        }
        _ => return Err("vote length does not match the file".into()),
    };
    Ok(HardState {
        term: u64::from_be_bytes(term.try_into().expect("8 bytes")),
        voted_for,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(term: u64, vote: Option<&str>) -> HardState {
        HardState {
            term,
            voted_for: vote.map(str::to_owned),
        }
    }

    #[test]
    fn file_storage_round_trips_and_starts_fresh_without_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut storage = FileStorage::new(dir.path().join("state"));
        assert_eq!(storage.load().unwrap(), HardState::default());
        for s in [
            state(1, None),
            state(7, Some("node-b")),
            state(u64::MAX, Some(&"x".repeat(255))),
        ] {
            storage.save(&s).unwrap();
            assert_eq!(decode_state(&fs::read(storage.path()).unwrap()).unwrap(), s);
        }
        assert!(
            !storage.temp_path().exists(),
            "the temporary file is renamed away"
        );
    }

    #[test]
    fn every_corruption_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state");
        let good = encode_state(&state(3, Some("a"))).unwrap();
        let mut cases: Vec<Vec<u8>> =
            vec![vec![], b"garbage".to_vec(), good[..good.len() - 1].to_vec()];
        for i in 0..good.len() {
            let mut flipped = good.clone();
            flipped[i] ^= 0x40;
            cases.push(flipped);
        }
        for bytes in cases {
            fs::write(&path, &bytes).unwrap();
            let err = FileStorage::new(&path).load().unwrap_err();
            assert!(
                matches!(err, StorageError::Corrupt { .. }),
                "{bytes:?}: {err}"
            );
            assert!(
                err.to_string().contains(&path.display().to_string()),
                "{err}"
            );
        }
    }

    #[test]
    fn unreadable_file_is_an_io_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let err = FileStorage::new(dir.path()).load().unwrap_err(); // a directory, not a file
        assert!(matches!(err, StorageError::Io { .. }), "{err}");
        assert!(err.to_string().contains(&dir.path().display().to_string()));
        let err = FileStorage::new(dir.path().join("missing-dir/state"))
            .save(&state(1, None))
            .unwrap_err();
        assert!(matches!(err, StorageError::Io { .. }), "{err}");
    }

    #[test]
    fn a_second_storage_on_a_locked_file_is_refused_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state");
        let mut first = FileStorage::new(&path);
        first.load().unwrap();
        for mut second in [FileStorage::new(&path), first.clone()] {
            let err = second.load().unwrap_err();
            assert!(matches!(err, StorageError::Locked { .. }), "{err}");
            assert!(
                err.to_string().contains(&path.display().to_string()),
                "{err}"
            );
            assert!(second.save(&state(1, None)).is_err(), "nor may it save");
        }
        drop(first);
        FileStorage::new(&path).load().unwrap();
    }

    #[test]
    fn a_missing_directory_fails_at_load_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("no-such-dir/state");
        let err = FileStorage::new(&path).load().unwrap_err();
        assert!(matches!(err, StorageError::Io { .. }), "{err}");
        assert!(
            err.to_string().contains(&path.display().to_string()),
            "{err}"
        );
    }

    #[test]
    fn mem_storage_keeps_what_was_saved() {
        let mut storage = MemStorage::new();
        storage.save(&state(2, Some("b"))).unwrap();
        assert_eq!(storage.load().unwrap(), state(2, Some("b")));
    }
}
