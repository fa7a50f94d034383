//! Portable export bundle: every record, every checkpoint and the public key, as JSON lines,
//! verifiable offline without a database (`cellops ledger verify --bundle FILE`).
//!
//! Line 1 is the header; then one `{"checkpoint": …}` line per checkpoint; then one
//! `{"record": …}` line per record in seq order. See docs/ledger-format.md.

use crate::LedgerError;
use crate::ledger::READ_PAGE_ROWS_MAX;
use crate::record::{Hash, Record};
use crate::store::{Backend, RowRef, StoredCheckpoint};
use crate::verify::{PageHashes, Verifier, VerifyReport};
use cellops_domain::Timestamp;
use cellops_tlog::NoteVerifier;
use serde::{Deserialize, Serialize};
use std::io::{BufRead, Write};

pub const BUNDLE_FORMAT: &str = "cellops-ledger-bundle";
pub const BUNDLE_VERSION: u32 = 1;

#[derive(Debug, Serialize, Deserialize)]
pub struct BundleHeader {
    pub format: String,
    pub version: u32,
    pub origin: String,
    /// Verifier keys (note vkey format) of the site that signed the checkpoints.
    pub public_keys: Vec<String>,
    pub records: u64,
    pub checkpoints: u64,
}

#[derive(Debug, Serialize, Deserialize)]
struct CheckpointLine {
    size: u64,
    root: String,
    note: String,
    created_at: Timestamp,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Line {
    Checkpoint(CheckpointLine),
    Record(Box<Record>),
}

/// Every stored checkpoint, ascending, read page by page.
fn all_checkpoints<B: Backend>(backend: &mut B) -> Result<Vec<StoredCheckpoint>, LedgerError> {
    let mut checkpoints = Vec::new();
    loop {
        let after = checkpoints.last().map_or(0, |c: &StoredCheckpoint| c.size);
        let page = backend.checkpoints(after, READ_PAGE_ROWS_MAX)?;
        if page.is_empty() {
            break;
        }
        checkpoints.extend(page);
    }
    Ok(checkpoints)
}

/// Writes the whole ledger read through `backend` to `out`. Returns the header written.
pub fn export<B: Backend>(
    backend: &mut B,
    origin: &str,
    verifier: &NoteVerifier,
    out: &mut impl Write,
) -> Result<BundleHeader, LedgerError> {
    let io = |e: std::io::Error| LedgerError::Storage {
        reason: format!("writing the bundle: {e}"),
    };
    let checkpoints = all_checkpoints(backend)?;
    let records = backend.head()?.map_or(0, |h| h.seq);
    let header = BundleHeader {
        format: BUNDLE_FORMAT.to_string(),
        version: BUNDLE_VERSION,
        origin: origin.to_string(),
        public_keys: vec![verifier.to_vkey()],
        records,
        checkpoints: checkpoints.len() as u64,
    };
    serde_json::to_writer(&mut *out, &header).map_err(|e| io(e.into()))?;
    out.write_all(b"\n").map_err(io)?;
    for c in checkpoints {
        let line = Line::Checkpoint(CheckpointLine {
            size: c.size,
            root: hex::encode(c.root),
            note: c.note,
            created_at: c.created_at,
        });
        serde_json::to_writer(&mut *out, &line).map_err(|e| io(e.into()))?;
        out.write_all(b"\n").map_err(io)?;
    }
    let mut next = 1;
    loop {
        let page = backend.records(next, READ_PAGE_ROWS_MAX)?;
        let Some(last) = page.last() else { break };
        next = last.seq + 1;
        for r in page {
            serde_json::to_writer(&mut *out, &Line::Record(Box::new(r)))
                .map_err(|e| io(e.into()))?;
            out.write_all(b"\n").map_err(io)?;
        }
    }
    out.flush().map_err(io)?;
    Ok(header)
}

/// Verifies a bundle offline. `trusted` pins the key; without it the bundle's own key is
/// used (which proves integrity against that key, not who holds it: say so to the user).
pub fn verify_bundle(
    input: impl BufRead,
    trusted: Option<&NoteVerifier>,
) -> Result<(BundleHeader, VerifyReport), LedgerError> {
    let bad = |line: usize, reason: String| LedgerError::Corrupt {
        reason: format!("bundle line {line}: {reason}"),
    };
    let mut lines = input.lines().enumerate();
    let (_, first) = lines
        .next()
        .ok_or_else(|| bad(1, "the bundle is empty".into()))?;
    let first = first.map_err(|e| bad(1, e.to_string()))?;
    let header: BundleHeader =
        serde_json::from_str(&first).map_err(|e| bad(1, format!("not a bundle header: {e}")))?;
    if header.format != BUNDLE_FORMAT || header.version != BUNDLE_VERSION {
        return Err(bad(
            1,
            format!(
                "format {:?} version {} is not {BUNDLE_FORMAT} version {BUNDLE_VERSION}",
                header.format, header.version
            ),
        ));
    }
    let key = match trusted {
        Some(k) => k.clone(),
        None => {
            let vkey = header
                .public_keys
                .first()
                .ok_or_else(|| bad(1, "the header names no public key".into()))?;
            NoteVerifier::from_vkey(vkey).map_err(|e| bad(1, format!("public key: {e}")))?
        }
    };
    // Checkpoints come first; records stream through the verifier.
    let mut checkpoints = Vec::new();
    let mut verifier: Option<Verifier> = None;
    for (index, line) in lines {
        let number = index + 1;
        let line = line.map_err(|e| bad(number, e.to_string()))?;
        if line.is_empty() {
            continue;
        }
        let parsed: Line =
            serde_json::from_str(&line).map_err(|e| bad(number, format!("unreadable: {e}")))?;
        match parsed {
            Line::Checkpoint(c) => {
                if verifier.is_some() {
                    return Err(bad(number, "checkpoints must come before records".into()));
                }
                let root = hex::decode(&c.root)
                    .ok()
                    .and_then(|b| <[u8; 32]>::try_from(b).ok())
                    .ok_or_else(|| bad(number, "checkpoint root is not 64 hex digits".into()))?;
                checkpoints.push(StoredCheckpoint {
                    size: c.size,
                    root,
                    note: c.note,
                    created_at: c.created_at,
                });
            }
            Line::Record(r) => {
                let v = verifier.get_or_insert_with(|| {
                    Verifier::new(key.clone(), std::mem::take(&mut checkpoints))
                });
                v.feed(&r);
            }
        }
    }
    let verifier = verifier.unwrap_or_else(|| Verifier::new(key, checkpoints));
    let mut report = verifier.finish();
    // The header promises a count; a bundle cut short after its last checkpoint must not pass.
    if report.problem.is_none() && report.records_checked < header.records {
        report.problem = Some(crate::verify::Finding {
            damage: crate::verify::Damage::Truncated,
            seq: report.records_checked + 1,
            detail: format!(
                "the bundle header announces {} records but only {} are present",
                header.records, report.records_checked
            ),
        });
    }
    Ok((header, report))
}

/// Rows per page of parallel verification: a power of two, so that a page of a gap-free
/// log is one complete subtree of the Merkle tree, hashed where the page is hashed; small
/// enough that reading, hashing and checking overlap even on a log of a few thousand rows.
const VERIFY_PAGE_ROWS: usize = 1024;
const _: () = assert!(VERIFY_PAGE_ROWS.is_power_of_two() && VERIFY_PAGE_ROWS <= READ_PAGE_ROWS_MAX);

/// Rows copied out of the database for the hashing threads: one buffer holds the text of
/// every row (no allocation per row), and pages and their hashes are reused.
#[derive(Default)]
struct RowPage {
    /// Position of the page in reading order.
    number: u64,
    text: Vec<u8>,
    rows: Vec<PageRow>,
    hashes: PageHashes,
}

struct PageRow {
    seq: u64,
    prev_hash: Hash,
    hash: Hash,
    /// Ends of stream, event_type, site and entry in `text` (each starts where the last ends).
    ends: [usize; 4],
}

impl RowPage {
    fn clear(&mut self) {
        self.text.clear();
        self.rows.clear();
    }

    fn push(&mut self, row: RowRef<'_>) {
        let mut ends = [0; 4];
        for (end, column) in ends
            .iter_mut()
            .zip([row.stream, row.event_type, row.site, row.entry])
        {
            self.text.extend_from_slice(column);
            *end = self.text.len();
        }
        self.rows.push(PageRow {
            seq: row.seq,
            prev_hash: *row.prev_hash,
            hash: *row.hash,
            ends,
        });
    }

    fn row_refs(&self) -> impl Iterator<Item = RowRef<'_>> {
        let starts = std::iter::once(0).chain(self.rows.iter().map(|r| r.ends[3]));
        self.rows.iter().zip(starts).map(|(r, start)| {
            let [stream, event_type, site, entry] = r.ends;
            RowRef {
                seq: r.seq,
                stream: &self.text[start..stream],
                event_type: &self.text[stream..event_type],
                site: &self.text[event_type..site],
                entry: &self.text[site..entry],
                prev_hash: &r.prev_hash,
                hash: &r.hash,
            }
        })
    }

    fn hash(&mut self) {
        let mut hashes = std::mem::take(&mut self.hashes);
        hashes.compute(self.row_refs());
        self.hashes = hashes;
    }

    fn feed(&mut self, verifier: &mut Verifier) {
        let mut hashes = std::mem::take(&mut self.hashes);
        verifier.feed_hashed_page(&mut hashes, self.row_refs());
        self.hashes = hashes;
    }
}

/// Verifies the ledger in a database, page by page, on every core: one thread reads rows,
/// hashing threads (one per core) compute each page's entry digests, chain hashes, leaf
/// hashes and complete subtrees, and this thread checks the pages in order (chain links,
/// index columns, signatures, tree, checkpoints) exactly as
/// [`verify_store_single_thread`] does on one thread, with the same first problem.
pub fn verify_store<B: Backend>(
    backend: &mut B,
    trusted: &NoteVerifier,
) -> Result<VerifyReport, LedgerError> {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex, mpsc};
    let checkpoints = all_checkpoints(backend)?;
    let mut verifier = Verifier::new(trusted.clone(), checkpoints);
    let hashers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let (to_hash, read) = mpsc::sync_channel::<RowPage>(hashers + 1);
        // Shared by the hashing threads; once they have all stopped, the reader's next send
        // fails and it stops too.
        let read = Arc::new(Mutex::new(read));
        let (to_check, hashed) = mpsc::channel::<RowPage>();
        let (recycle, recycled) = mpsc::channel::<RowPage>();
        let stop = &stop;
        let reader = scope.spawn(move || -> Result<(), LedgerError> {
            let mut next = 1;
            for number in 0.. {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let mut page = recycled.try_recv().unwrap_or_default();
                page.clear();
                page.number = number;
                backend.scan_rows(next, VERIFY_PAGE_ROWS, &mut |row| page.push(row))?;
                let Some(last) = page.rows.last() else { break };
                next = last.seq + 1;
                if to_hash.send(page).is_err() {
                    break; // The checker stopped at a problem.
                }
            }
            Ok(())
        });
        for _ in 0..hashers {
            let (read, to_check) = (Arc::clone(&read), to_check.clone());
            scope.spawn(move || {
                loop {
                    // The lock is held only while waiting for the next page.
                    let next = read.lock().map(|r| r.recv());
                    let Ok(Ok(mut page)) = next else { return };
                    page.hash();
                    if to_check.send(page).is_err() {
                        return;
                    }
                }
            });
        }
        drop((read, to_check));
        // Pages arrive hashed in any order; they are checked in reading order.
        let mut waiting = std::collections::BTreeMap::new();
        let mut expected = 0;
        'pages: for page in hashed {
            waiting.insert(page.number, page);
            while let Some(mut page) = waiting.remove(&expected) {
                page.feed(&mut verifier);
                expected += 1;
                if verifier.failed() {
                    break 'pages;
                }
                let _ = recycle.send(page);
            }
        }
        stop.store(true, Ordering::Relaxed);
        drop(waiting);
        reader.join().expect("the reader thread does not panic")
    })?;
    Ok(verifier.finish())
}

/// [`verify_store`] on the calling thread only: rows are checked straight from the
/// database's buffers as they are read.
pub fn verify_store_single_thread<B: Backend>(
    backend: &mut B,
    trusted: &NoteVerifier,
) -> Result<VerifyReport, LedgerError> {
    let checkpoints = all_checkpoints(backend)?;
    let mut verifier = Verifier::new(trusted.clone(), checkpoints);
    let mut next = 1;
    while !verifier.failed() {
        let mut last = None;
        backend.scan_rows(next, READ_PAGE_ROWS_MAX, &mut |row| {
            last = Some(row.seq);
            verifier.feed_row_ref(row);
        })?;
        let Some(last) = last else { break };
        next = last + 1;
    }
    Ok(verifier.finish())
}
