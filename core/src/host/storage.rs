//! One durable file for every group of a host: an append-only log of batches, one fsync per
//! batch however many groups it covers, compacted into a fresh file when it grows.
//!
//! ```text
//! record   = length u32, crc32 u32 (of the payload), payload
//! payload  = 1, incarnation u64                        the host started again
//!          | 2, count u32, count x (group, term u64, vote)   terms and votes
//! group    = length u8, UTF-8;  vote = length u8 (0: none), UTF-8
//! ```
//! A record cut short at the end of the file (a crash during its write, never acknowledged)
//! is dropped when the file is opened; any other defect is [`StorageError::Corrupt`]: the host
//! refuses to start rather than forget a vote.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use super::GroupId;
use crate::id::MAX_ID_LEN;
use crate::storage::{HardState, StorageError};

/// What a host's storage holds when it opens.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostState {
    /// The incarnation of this start: one more than the last start's.
    pub incarnation: u64,
    pub groups: HashMap<GroupId, HardState>,
}

/// Where a host keeps its groups' terms and votes. `save` returns once the batch is durable.
pub trait HostStorage: Send {
    /// Opens the storage for a new start of the host: what was saved, with the incarnation
    /// of this start (durable before it returns).
    fn open(&mut self) -> Result<HostState, StorageError>;
    /// Saves a batch of groups' states durably, all or none.
    fn save(&mut self, batch: &[(GroupId, HardState)]) -> Result<(), StorageError>;
}

/// Keeps the states in memory (tests, or hosts that may forget their votes: see
/// `MemStorage`).
#[derive(Debug, Default, Clone)]
pub struct MemHostStorage {
    state: HostState,
}

impl HostStorage for MemHostStorage {
    fn open(&mut self) -> Result<HostState, StorageError> {
        self.state.incarnation += 1;
        Ok(self.state.clone())
    }
    fn save(&mut self, batch: &[(GroupId, HardState)]) -> Result<(), StorageError> {
        for (group, state) in batch {
            self.state.groups.insert(group.clone(), state.clone());
        }
        Ok(())
    }
}

/// The host's state file, locked against a second host on it (like `FileStorage`).
#[derive(Debug)]
pub struct FileHostStorage {
    path: PathBuf,
    file: Option<File>,
    lock: Option<File>,
    /// Bytes in the file, and what the live states would take: compaction is due when the
    /// file is much larger.
    len: u64,
    live: HashMap<GroupId, HardState>,
    /// What the live states take in a compacted file, kept up to date as they change.
    live_size: u64,
    incarnation: u64,
}

const INCARNATION: u8 = 1;
const BATCH: u8 = 2;

impl FileHostStorage {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        FileHostStorage {
            path: path.into(),
            file: None,
            lock: None,
            len: 0,
            live: HashMap::new(),
            live_size: 0,
            incarnation: 0,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn io(&self, action: &'static str) -> impl FnOnce(io::Error) -> StorageError + '_ {
        move |e| StorageError::Io {
            action,
            path: self.path.clone(),
            kind: e.kind(),
            message: e.to_string(),
        }
    }

    /// Appends one record and syncs it.
    fn append(&mut self, payload: &[u8]) -> Result<(), StorageError> {
        let mut record = Vec::with_capacity(8 + payload.len());
        record.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        record.extend_from_slice(&crc32fast::hash(payload).to_be_bytes());
        record.extend_from_slice(payload);
        let path = self.path.clone();
        let file = self.file.as_mut().ok_or_else(|| StorageError::Failed {
            reason: format!("state file {} is not open", path.display()),
        })?;
        let result = file.write_all(&record).and_then(|()| file.sync_data());
        result.map_err(self.io("append to"))?;
        self.len += record.len() as u64;
        Ok(())
    }

    /// Rewrites the file with only the live states, atomically (temporary file, rename).
    fn compact(&mut self) -> Result<(), StorageError> {
        let mut temp = self.path.clone().into_os_string();
        temp.push(".tmp");
        let temp = PathBuf::from(temp);
        let mut bytes = Vec::new();
        for payload in [
            incarnation_payload(self.incarnation),
            batch_payload(self.live.iter())?,
        ] {
            bytes.extend_from_slice(&(payload.len() as u32).to_be_bytes());
            bytes.extend_from_slice(&crc32fast::hash(&payload).to_be_bytes());
            bytes.extend_from_slice(&payload);
        }
        let mut file = File::create(&temp).map_err(self.io("create a temporary file beside"))?;
        file.write_all(&bytes)
            .and_then(|()| file.sync_all())
            .map_err(self.io("write a temporary file beside"))?;
        fs::rename(&temp, &self.path).map_err(self.io("rename a temporary file onto"))?;
        sync_dir(&self.path).map_err(self.io("sync the directory of"))?;
        let file = OpenOptions::new()
            .append(true)
            .open(&self.path)
            .map_err(self.io("open"))?;
        self.file = Some(file);
        self.len = bytes.len() as u64;
        Ok(())
    }

    fn entry_size(group: &str, state: &HardState) -> u64 {
        (11 + group.len() + state.voted_for.as_ref().map_or(0, String::len)) as u64
    }
}

impl HostStorage for FileHostStorage {
    fn open(&mut self) -> Result<HostState, StorageError> {
        if self.lock.is_none() {
            self.lock = Some(crate::storage::lock_beside(&self.path)?);
        }
        let mut bytes = Vec::new();
        match File::open(&self.path) {
            Ok(mut file) => {
                file.read_to_end(&mut bytes).map_err(self.io("read"))?;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(self.io("open")(e)),
        }
        let (incarnation, live) = replay(&bytes).map_err(|reason| StorageError::Corrupt {
            path: self.path.clone(),
            reason,
        })?;
        self.live_size = live.iter().map(|(g, s)| Self::entry_size(g, s)).sum();
        self.live = live;
        self.incarnation = incarnation + 1;
        // Start from a compact file: it also drops a torn tail and makes the new
        // incarnation durable before the host speaks with it.
        self.compact()?;
        Ok(HostState {
            incarnation: self.incarnation,
            groups: self.live.clone(),
        })
    }

    fn save(&mut self, batch: &[(GroupId, HardState)]) -> Result<(), StorageError> {
        if batch.is_empty() {
            return Ok(());
        }
        let payload = batch_payload(batch.iter().map(|(g, s)| (g, s)))?;
        self.append(&payload)?;
        for (group, state) in batch {
            self.live_size += Self::entry_size(group, state);
            if let Some(old) = self.live.insert(group.clone(), state.clone()) {
                self.live_size -= Self::entry_size(group, &old);
            }
        }
        if self.len > 4 * self.live_size + 64 * 1024 {
            self.compact()?;
        }
        Ok(())
    }
}

fn sync_dir(path: &Path) -> io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    File::open(dir)?.sync_all()
}

fn incarnation_payload(incarnation: u64) -> Vec<u8> {
    let mut p = vec![INCARNATION];
    p.extend_from_slice(&incarnation.to_be_bytes());
    p
}

fn batch_payload<'a>(
    states: impl Iterator<Item = (&'a GroupId, &'a HardState)>,
) -> Result<Vec<u8>, StorageError> {
    let mut p = vec![BATCH, 0, 0, 0, 0];
    let mut count: u32 = 0;
    for (group, state) in states {
        let vote = state.voted_for.as_deref().unwrap_or("");
        for len in [group.len(), vote.len()] {
            if len > MAX_ID_LEN {
                return Err(StorageError::IdTooLong { len });
            }
        }
        p.push(group.len() as u8);
        p.extend_from_slice(group.as_bytes());
        p.extend_from_slice(&state.term.to_be_bytes());
        p.push(vote.len() as u8);
        p.extend_from_slice(vote.as_bytes());
        count += 1;
    }
    p[1..5].copy_from_slice(&count.to_be_bytes());
    Ok(p)
}

/// Reads every record: the last incarnation and each group's last state.
fn replay(mut bytes: &[u8]) -> Result<(u64, HashMap<GroupId, HardState>), String> {
    let (mut incarnation, mut live) = (0, HashMap::new());
    let mut offset = 0usize;
    while !bytes.is_empty() {
        if bytes.len() < 8 {
            break; // a header cut short: the last write never completed
        }
        let len = u32::from_be_bytes(bytes[0..4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_be_bytes(bytes[4..8].try_into().expect("4 bytes"));
        if bytes.len() < 8 + len {
            break; // a record cut short at the end
        }
        let payload = &bytes[8..8 + len];
        if crc32fast::hash(payload) != crc {
            return Err(format!("the record at byte {offset} fails its checksum"));
        }
        let at = |what: String| format!("the record at byte {offset}: {what}");
        let mut r = Cursor(payload);
        match r.u8().map_err(at)? {
            INCARNATION => incarnation = r.u64().map_err(at)?,
            BATCH => {
                let count = r.u32().map_err(at)?;
                for _ in 0..count {
                    let group = r.string().map_err(at)?;
                    if group.is_empty() {
                        return Err(at("an empty group id".into()));
                    }
                    let term = r.u64().map_err(at)?;
                    let vote = r.string().map_err(at)?;
                    let voted_for = (!vote.is_empty()).then_some(vote);
                    live.insert(group, HardState { term, voted_for });
                }
            }
            kind => return Err(at(format!("unknown record kind {kind}"))),
        }
        if !r.0.is_empty() {
            return Err(at(format!("{} bytes after its end", r.0.len())));
        }
        offset += 8 + len;
        bytes = &bytes[8 + len..];
    }
    Ok((incarnation, live))
}

struct Cursor<'a>(&'a [u8]);

impl Cursor<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        if self.0.len() < n {
            return Err("cut short".into());
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_be_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }
    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_be_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }
    fn string(&mut self) -> Result<String, String> {
        let len = usize::from(self.u8()?);
        let raw = self.take(len)?;
        String::from_utf8(raw.to_vec()).map_err(|_| "an id that is not UTF-8".into())
    }
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
    fn keeps_each_groups_last_state_and_counts_incarnations() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("host.state");
        let mut s = FileHostStorage::new(&path);
        let opened = s.open().unwrap();
        assert_eq!(opened.incarnation, 1);
        assert!(opened.groups.is_empty());
        s.save(&[
            ("a".into(), state(1, Some("h1"))),
            ("b".into(), state(2, None)),
        ])
        .unwrap();
        s.save(&[("a".into(), state(3, None))]).unwrap();
        drop(s);
        let mut s = FileHostStorage::new(&path);
        let opened = s.open().unwrap();
        assert_eq!(opened.incarnation, 2);
        assert_eq!(opened.groups["a"], state(3, None));
        assert_eq!(opened.groups["b"], state(2, None));
    }

    #[test]
    fn compacts_a_growing_file_without_losing_a_state() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("host.state");
        let mut s = FileHostStorage::new(&path);
        s.open().unwrap();
        for term in 1..=5000u64 {
            s.save(&[("g".into(), state(term, Some("h2")))]).unwrap();
        }
        assert!(fs::metadata(&path).unwrap().len() < 128 * 1024, "compacted");
        drop(s);
        let opened = FileHostStorage::new(&path).open().unwrap();
        assert_eq!(opened.groups["g"], state(5000, Some("h2")));
    }

    #[test]
    fn a_torn_last_record_is_dropped_and_any_other_defect_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("host.state");
        let mut s = FileHostStorage::new(&path);
        s.open().unwrap();
        s.save(&[("a".into(), state(7, Some("h1")))]).unwrap();
        drop(s);
        let good = fs::read(&path).unwrap();
        // A write that never completed: any prefix of a new record.
        let mut torn = good.clone();
        torn.extend_from_slice(&[0, 0, 0, 40, 1, 2]);
        fs::write(&path, &torn).unwrap();
        let opened = FileHostStorage::new(&path).open().unwrap();
        assert_eq!(opened.groups["a"], state(7, Some("h1")));
        // A flipped bit inside a complete record.
        let mut flipped = fs::read(&path).unwrap();
        let last = flipped.len() - 3;
        flipped[last] ^= 1;
        fs::write(&path, &flipped).unwrap();
        let err = FileHostStorage::new(&path).open().unwrap_err();
        assert!(matches!(err, StorageError::Corrupt { .. }), "{err}");
        assert!(err.to_string().contains("host.state"), "{err}");
    }

    #[test]
    fn a_second_host_on_the_same_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("host.state");
        let mut first = FileHostStorage::new(&path);
        first.open().unwrap();
        let err = FileHostStorage::new(&path).open().unwrap_err();
        assert!(matches!(err, StorageError::Locked { .. }), "{err}");
        drop(first);
        FileHostStorage::new(&path).open().unwrap();
    }
}
