//! The ledger service: one writer thread with group commit, a pool of reader connections,
//! the in-memory Merkle tree and signed checkpoints.

use crate::LedgerError;
use crate::record::{self, Hash, NewRecord, Record, check_new, seal};
use crate::store::{Backend, IdempotencyEntry, StoredCheckpoint, StoredRow, WriteTx};
use cellops_domain::{Clock, Timestamp};
use cellops_tlog::{Checkpoint, MerkleTree, NoteSigner, NoteVerifier};
use sha2::{Digest, Sha256};
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Requests waiting for the writer; a full queue makes callers wait (back-pressure).
pub const WRITER_QUEUE_REQUESTS_MAX: usize = 1024;
/// Requests committed together in one transaction (group commit).
pub const GROUP_COMMIT_REQUESTS_MAX: usize = 256;
/// Records committed together in one transaction.
pub const GROUP_COMMIT_RECORDS_MAX: usize = 4096;
/// Records one request may append.
pub const REQUEST_RECORDS_MAX: usize = 1000;
/// Rows read per query when loading or verifying.
pub const READ_PAGE_ROWS_MAX: usize = 10_000;
/// Reader connections kept open.
pub const READER_POOL_MAX: usize = 8;
/// Longest idempotency key, in bytes.
pub const IDEMPOTENCY_KEY_BYTES_MAX: usize = 200;
const _: () = assert!(REQUEST_RECORDS_MAX <= GROUP_COMMIT_RECORDS_MAX);

/// The event types and versions the ledger accepts; anything else is refused.
#[derive(Debug, Clone, Default)]
pub struct EventCatalog {
    known: BTreeSet<(String, u32)>,
}

impl EventCatalog {
    pub fn new() -> EventCatalog {
        EventCatalog::default()
    }

    pub fn with(mut self, event_type: &str, version: u32) -> EventCatalog {
        self.known.insert((event_type.to_string(), version));
        self
    }

    pub fn contains(&self, event_type: &str, version: u32) -> bool {
        self.known.contains(&(event_type.to_string(), version))
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, u32)> {
        self.known.iter().map(|(t, v)| (t.as_str(), *v))
    }
}

/// How the ledger behaves; every field has a production default.
#[derive(Debug, Clone)]
pub struct LedgerConfig {
    /// Checkpoint origin and signing key name, e.g. `cellops.local/ledger`. The first process
    /// to create a database fixes it there.
    pub origin: String,
    /// Sign a checkpoint after this many new records…
    pub checkpoint_every_records: u64,
    /// …or this many seconds after the last one, if any record arrived since.
    pub checkpoint_every_seconds: u64,
    pub catalog: EventCatalog,
}

impl LedgerConfig {
    pub fn new(catalog: EventCatalog) -> LedgerConfig {
        LedgerConfig {
            origin: "cellops.local/ledger".to_string(),
            checkpoint_every_records: 1000,
            checkpoint_every_seconds: 60,
            catalog,
        }
    }
}

/// One command's records, appended atomically: all or none.
#[derive(Debug, Clone)]
pub struct AppendRequest {
    pub records: Vec<NewRecord>,
    /// A client key: a retry with the same key returns the first result and appends nothing.
    pub idempotency_key: Option<String>,
}

/// What an append produced.
#[derive(Debug, Clone)]
pub struct AppendOutcome {
    pub records: Vec<Record>,
    /// True when the idempotency key had been used: these are the first attempt's records.
    pub replayed: bool,
    /// Seq range of a replay not yet read back (internal to the writer).
    range: Option<(u64, u64)>,
}

impl AppendOutcome {
    fn with_range(mut self, first: u64, last: u64) -> AppendOutcome {
        self.range = Some((first, last));
        self
    }
}

/// Proof that record `seq` is in the tree of `tree_size` records.
#[derive(Debug, Clone)]
pub struct InclusionProof {
    pub seq: u64,
    pub tree_size: u64,
    pub leaf_hash: Hash,
    pub path: Vec<Hash>,
    pub root: Hash,
}

/// Proof that the tree of `second` records extends the tree of `first` records.
#[derive(Debug, Clone)]
pub struct ConsistencyProof {
    pub first: u64,
    pub second: u64,
    pub first_root: Hash,
    pub second_root: Hash,
    pub path: Vec<Hash>,
}

enum Msg {
    Append(
        AppendRequest,
        oneshot::Sender<Result<AppendOutcome, LedgerError>>,
    ),
    Tick,
    Checkpoint(oneshot::Sender<Result<Option<StoredCheckpoint>, LedgerError>>),
}

struct Shared<B: Backend> {
    url: String,
    readers: Mutex<Vec<B>>,
    tree: RwLock<MerkleTree>,
    verifier: NoteVerifier,
}

/// The ledger. Cheap to clone; all clones share one writer.
pub struct Ledger<B: Backend> {
    shared: Arc<Shared<B>>,
    sender: mpsc::Sender<Msg>,
    config: Arc<LedgerConfig>,
}

impl<B: Backend> Clone for Ledger<B> {
    fn clone(&self) -> Self {
        Ledger {
            shared: self.shared.clone(),
            sender: self.sender.clone(),
            config: self.config.clone(),
        }
    }
}

impl<B: Backend> Ledger<B> {
    /// Opens the ledger at `url`, creating the database, the site signing key and the
    /// origin on first use, and loads the Merkle tree. Spawns the writer thread.
    pub fn open(
        url: &str,
        clock: Arc<dyn Clock>,
        mut config: LedgerConfig,
    ) -> Result<Ledger<B>, LedgerError> {
        if config.checkpoint_every_records == 0 {
            return Err(LedgerError::InvalidRecord {
                field: "checkpoint_every_records".into(),
                rule: "must be at least 1".into(),
            });
        }
        let mut backend = B::open(url)?;
        config.origin = backend.meta_init("origin", &config.origin)?;
        let generated =
            NoteSigner::generate(&config.origin, &mut rand::rngs::OsRng).map_err(|e| {
                LedgerError::Storage {
                    reason: format!("cannot create the site signing key: {e}"),
                }
            })?;
        let skey = backend.meta_init("site_signing_key", &generated.to_skey())?;
        let signer = NoteSigner::from_skey(&skey).map_err(|e| LedgerError::Corrupt {
            reason: format!("the stored site signing key is unusable: {e}"),
        })?;
        let mut tree = MerkleTree::new();
        load_tree(&mut backend, &mut tree)?;
        let shared = Arc::new(Shared {
            url: url.to_string(),
            readers: Mutex::new(Vec::new()),
            tree: RwLock::new(tree),
            verifier: signer.verifier(),
        });
        let last = backend.latest_checkpoint()?;
        let (sender, receiver) = mpsc::channel(WRITER_QUEUE_REQUESTS_MAX);
        let config = Arc::new(config);
        // With no checkpoint yet, the time rule counts from now (not from the epoch).
        let last_checkpoint_at = last.as_ref().map_or(clock.now(), |c| c.created_at);
        let writer = Writer {
            backend,
            shared: shared.clone(),
            signer,
            clock,
            config: config.clone(),
            last_checkpoint_size: last.as_ref().map_or(0, |c| c.size),
            last_checkpoint_at,
        };
        std::thread::Builder::new()
            .name("ledger-writer".into())
            .spawn(move || writer.run(receiver))
            .map_err(|e| LedgerError::Storage {
                reason: format!("cannot start the writer thread: {e}"),
            })?;
        let ticker = sender.clone();
        let tick_every = Duration::from_millis(250);
        std::thread::Builder::new()
            .name("ledger-ticker".into())
            .spawn(move || {
                // Ends when every Ledger handle (every sender but this one) is gone, so
                // that the writer then sees a closed channel and stops.
                loop {
                    std::thread::sleep(tick_every);
                    if ticker.strong_count() <= 1 || ticker.is_closed() {
                        break;
                    }
                    // A full queue already wakes the writer: a dropped tick is harmless.
                    let _ = ticker.try_send(Msg::Tick);
                }
            })
            .map_err(|e| LedgerError::Storage {
                reason: format!("cannot start the checkpoint timer: {e}"),
            })?;
        Ok(Ledger {
            shared,
            sender,
            config,
        })
    }

    pub fn config(&self) -> &LedgerConfig {
        &self.config
    }

    /// The public key that verifies this ledger's checkpoints, in note verifier-key format.
    pub fn verifier(&self) -> &NoteVerifier {
        &self.shared.verifier
    }

    /// Appends one request from async code; resolves once the records are durable.
    pub async fn append_async(&self, request: AppendRequest) -> Result<AppendOutcome, LedgerError> {
        let (reply, answer) = oneshot::channel();
        self.sender
            .send(Msg::Append(request, reply))
            .await
            .map_err(|_| LedgerError::Closed)?;
        answer.await.map_err(|_| LedgerError::Closed)?
    }

    /// Appends one request from blocking code (never from inside an async runtime).
    pub fn append(&self, request: AppendRequest) -> Result<AppendOutcome, LedgerError> {
        let (reply, answer) = oneshot::channel();
        self.sender
            .blocking_send(Msg::Append(request, reply))
            .map_err(|_| LedgerError::Closed)?;
        answer.blocking_recv().map_err(|_| LedgerError::Closed)?
    }

    /// Signs a checkpoint now if any record is not yet covered by one (blocking).
    pub fn checkpoint_now(&self) -> Result<Option<StoredCheckpoint>, LedgerError> {
        let (reply, answer) = oneshot::channel();
        self.sender
            .blocking_send(Msg::Checkpoint(reply))
            .map_err(|_| LedgerError::Closed)?;
        answer.blocking_recv().map_err(|_| LedgerError::Closed)?
    }

    /// Runs `f` with a reader connection from the pool (blocking).
    pub fn read<T>(
        &self,
        f: impl FnOnce(&mut B) -> Result<T, LedgerError>,
    ) -> Result<T, LedgerError> {
        let pooled = self.shared.readers.lock().expect("reader pool lock").pop();
        let mut backend = match pooled {
            Some(b) => b,
            None => B::connect(&self.shared.url)?,
        };
        let result = f(&mut backend);
        // A connection that failed may be broken: drop it rather than pool it.
        if result.is_ok() {
            let mut pool = self.shared.readers.lock().expect("reader pool lock");
            if pool.len() < READER_POOL_MAX {
                pool.push(backend);
            }
        }
        result
    }

    /// Brings the in-memory Merkle tree up to the database (other processes may append).
    pub fn catch_up(&self) -> Result<u64, LedgerError> {
        let known = self.shared.tree.read().expect("tree lock").len();
        let hashes = self.read(|b| b.hashes_after(known, READ_PAGE_ROWS_MAX * 100))?;
        let mut tree = self.shared.tree.write().expect("tree lock");
        push_from(&mut tree, known, &hashes);
        Ok(tree.len())
    }

    /// Number of records in the ledger as this process knows it.
    pub fn size(&self) -> u64 {
        self.shared.tree.read().expect("tree lock").len()
    }

    pub fn record(&self, seq: u64) -> Result<Record, LedgerError> {
        let found = self.read(|b| b.records(seq, 1))?;
        match found.into_iter().next() {
            Some(r) if r.seq == seq => Ok(r),
            _ => Err(LedgerError::NoSuchRecord {
                seq,
                size: self.size(),
            }),
        }
    }

    pub fn latest_checkpoint(&self) -> Result<Option<StoredCheckpoint>, LedgerError> {
        self.read(|b| b.latest_checkpoint())
    }

    /// Inclusion proof of record `seq` in the tree of `tree_size` records (default: the
    /// latest checkpoint's size, so the proof verifies against a signed root).
    pub fn inclusion_proof(
        &self,
        seq: u64,
        tree_size: Option<u64>,
    ) -> Result<InclusionProof, LedgerError> {
        self.catch_up()?;
        let tree_size = match tree_size {
            Some(s) => s,
            None => self.latest_checkpoint()?.map_or(self.size(), |c| c.size),
        };
        let tree = self.shared.tree.read().expect("tree lock");
        if tree_size == 0 || tree_size > tree.len() {
            return Err(LedgerError::BadProofRequest(format!(
                "tree_size {tree_size} is outside 1..={} (the records in the ledger)",
                tree.len()
            )));
        }
        if seq == 0 || seq > tree_size {
            return Err(LedgerError::BadProofRequest(format!(
                "seq {seq} is outside 1..={tree_size}: a record is proven in a tree that contains it"
            )));
        }
        let path = tree
            .inclusion_proof(seq - 1, tree_size)
            .map_err(|e| LedgerError::BadProofRequest(e.to_string()))?;
        Ok(InclusionProof {
            seq,
            tree_size,
            leaf_hash: tree.leaf(seq - 1).expect("leaf exists below tree_size"),
            root: tree
                .root_at(tree_size)
                .map_err(|e| LedgerError::BadProofRequest(e.to_string()))?,
            path,
        })
    }

    /// Consistency proof between the trees of `first` and `second` records.
    pub fn consistency_proof(
        &self,
        first: u64,
        second: u64,
    ) -> Result<ConsistencyProof, LedgerError> {
        self.catch_up()?;
        let tree = self.shared.tree.read().expect("tree lock");
        if first == 0 || first > second || second > tree.len() {
            return Err(LedgerError::BadProofRequest(format!(
                "need 1 ≤ first ≤ second ≤ {} (the records in the ledger); got first {first}, second {second}",
                tree.len()
            )));
        }
        let bad = |e: cellops_tlog::TlogError| LedgerError::BadProofRequest(e.to_string());
        Ok(ConsistencyProof {
            first,
            second,
            first_root: tree.root_at(first).map_err(bad)?,
            second_root: tree.root_at(second).map_err(bad)?,
            path: tree.consistency_proof(first, second).map_err(bad)?,
        })
    }
}

fn load_tree<B: Backend>(backend: &mut B, tree: &mut MerkleTree) -> Result<(), LedgerError> {
    loop {
        let known = tree.len();
        let hashes = backend.hashes_after(known, READ_PAGE_ROWS_MAX)?;
        if hashes.is_empty() {
            return Ok(());
        }
        push_from(tree, known, &hashes);
    }
}

/// Pushes the leaves for records `after+1 ..` unless the tree already has them (another
/// path of this process may have caught up first).
fn push_from(tree: &mut MerkleTree, after: u64, chain_hashes: &[Hash]) {
    for (i, hash) in chain_hashes.iter().enumerate() {
        let seq = after + 1 + i as u64;
        if seq == tree.len() + 1 {
            tree.push(cellops_tlog::leaf_hash(hash));
        }
    }
}

fn fingerprint(request: &AppendRequest) -> Hash {
    let mut h = Sha256::new();
    for r in &request.records {
        h.update(record::canonical_json(
            &serde_json::to_value(r).expect("NewRecord serializes"),
        ));
        h.update([0u8]);
    }
    h.finalize().into()
}

struct Writer<B: Backend> {
    backend: B,
    shared: Arc<Shared<B>>,
    signer: NoteSigner,
    clock: Arc<dyn Clock>,
    config: Arc<LedgerConfig>,
    last_checkpoint_size: u64,
    last_checkpoint_at: Timestamp,
}

type Reply = oneshot::Sender<Result<AppendOutcome, LedgerError>>;

impl<B: Backend> Writer<B> {
    fn run(mut self, mut receiver: mpsc::Receiver<Msg>) {
        while let Some(first) = receiver.blocking_recv() {
            let mut appends: Vec<(AppendRequest, Reply)> = Vec::new();
            let mut checkpoint_replies = Vec::new();
            let mut records = 0;
            let mut next = Some(first);
            while let Some(msg) = next.take() {
                match msg {
                    Msg::Append(request, reply) => {
                        records += request.records.len();
                        appends.push((request, reply));
                    }
                    Msg::Tick => {}
                    Msg::Checkpoint(reply) => checkpoint_replies.push(reply),
                }
                if appends.len() < GROUP_COMMIT_REQUESTS_MAX && records < GROUP_COMMIT_RECORDS_MAX {
                    next = receiver.try_recv().ok();
                }
            }
            if !appends.is_empty() {
                self.commit_group(appends);
            }
            let forced = !checkpoint_replies.is_empty();
            let result = self.maybe_checkpoint(forced);
            if let Err(e) = &result {
                tracing::error!(error = %e, "checkpoint failed");
            }
            for reply in checkpoint_replies {
                let _ = reply.send(result.clone());
            }
        }
    }

    /// Validates, seals and commits a group of requests in one transaction, then answers
    /// each. A request that fails validation is answered with its error and does not stop
    /// the others; a storage failure fails the whole group and records nothing.
    fn commit_group(&mut self, appends: Vec<(AppendRequest, Reply)>) {
        let now = self.clock.now();
        let catalog = &self.config.catalog;
        let shared = &self.shared;
        let result = self.backend.write(|tx| {
            let head = tx.head()?;
            let (head_seq, head_hash) =
                head.map_or((0, record::genesis_hash()), |h| (h.seq, h.hash));
            catch_up_in_tx(tx, shared, head_seq)?;
            let mut next_seq = head_seq + 1;
            let mut prev_hash = head_hash;
            let mut outcomes: Vec<Result<AppendOutcome, LedgerError>> = Vec::new();
            let mut keys_in_group: HashMap<String, (Hash, usize)> = HashMap::new();
            for (request, _) in &appends {
                let outcome = (|| {
                    // Only a keyed request needs its fingerprint (a retry must match it).
                    let print = match &request.idempotency_key {
                        Some(_) => fingerprint(request),
                        None => [0; 32],
                    };
                    if let Some(key) = &request.idempotency_key {
                        if let Some((other_print, index)) = keys_in_group.get(key) {
                            if *other_print != print {
                                return Err(LedgerError::IdempotencyConflict { key: key.clone() });
                            }
                            let mut earlier: AppendOutcome = outcomes[*index].clone()?;
                            earlier.replayed = true;
                            return Ok(earlier);
                        }
                        if let Some(entry) = tx.idempotency_get(key)? {
                            if entry.fingerprint != print {
                                return Err(LedgerError::IdempotencyConflict { key: key.clone() });
                            }
                            return Ok(AppendOutcome {
                                records: Vec::new(),
                                replayed: true,
                                range: None,
                            }
                            .with_range(entry.first_seq, entry.last_seq));
                        }
                    }
                    let payloads = check_request(request, catalog, next_seq)?;
                    let mut sealed = Vec::with_capacity(request.records.len());
                    let mut rows = Vec::with_capacity(request.records.len());
                    let mut seq = next_seq;
                    let mut prev = prev_hash;
                    for (new, payload) in request.records.iter().zip(payloads) {
                        let (r, entry) = seal(new, payload, seq, now, prev);
                        prev = r.hash;
                        seq += 1;
                        rows.push(StoredRow {
                            seq: r.seq,
                            stream: r.stream.clone(),
                            event_type: r.event_type.clone(),
                            site: r.site.clone(),
                            entry,
                            prev_hash: r.prev_hash,
                            hash: r.hash,
                        });
                        sealed.push(r);
                    }
                    tx.insert_rows(&rows)?;
                    if let Some(key) = &request.idempotency_key {
                        tx.idempotency_put(
                            key,
                            &IdempotencyEntry {
                                fingerprint: print,
                                first_seq: next_seq,
                                last_seq: seq - 1,
                            },
                        )?;
                    }
                    next_seq = seq;
                    prev_hash = prev;
                    Ok(AppendOutcome {
                        records: sealed,
                        replayed: false,
                        range: None,
                    })
                })();
                // A storage error inside the transaction aborts the whole group.
                if let Err(e) = &outcome
                    && !e.is_client_fault()
                {
                    return Err(e.clone());
                }
                if let (Some(key), Ok(_)) = (&request.idempotency_key, &outcome) {
                    let index = outcomes.len();
                    keys_in_group
                        .entry(key.clone())
                        .or_insert_with(|| (fingerprint(request), index));
                }
                outcomes.push(outcome);
            }
            Ok(outcomes)
        });
        match result {
            Ok(outcomes) => {
                {
                    let mut tree = self.shared.tree.write().expect("tree lock");
                    for outcome in outcomes.iter().flatten() {
                        if outcome.replayed {
                            continue;
                        }
                        for r in &outcome.records {
                            if r.seq == tree.len() + 1 {
                                tree.push(r.leaf_hash());
                            }
                        }
                    }
                }
                for ((_, reply), outcome) in appends.into_iter().zip(outcomes) {
                    let outcome = match outcome {
                        Ok(o) if o.replayed && o.records.is_empty() => self.fill_replay(o),
                        other => other,
                    };
                    let _ = reply.send(outcome);
                }
                if let Err(e) = self.maybe_checkpoint(false) {
                    tracing::error!(error = %e, "checkpoint failed");
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "append transaction failed; nothing was recorded");
                for (_, reply) in appends {
                    let _ = reply.send(Err(e.clone()));
                }
            }
        }
    }

    /// A replayed outcome carries the seq range only; read the records back.
    fn fill_replay(&mut self, outcome: AppendOutcome) -> Result<AppendOutcome, LedgerError> {
        let (first, last) = outcome.range.unwrap_or((1, 0));
        let count = (last + 1).saturating_sub(first) as usize;
        let records = self.backend.records(first, count)?;
        Ok(AppendOutcome {
            records,
            replayed: true,
            range: None,
        })
    }

    fn maybe_checkpoint(&mut self, forced: bool) -> Result<Option<StoredCheckpoint>, LedgerError> {
        let size = self.shared.tree.read().expect("tree lock").len();
        if size <= self.last_checkpoint_size {
            return Ok(None);
        }
        let now = self.clock.now();
        let due_by_count = size - self.last_checkpoint_size >= self.config.checkpoint_every_records;
        let every_us = i64::try_from(
            self.config
                .checkpoint_every_seconds
                .saturating_mul(1_000_000),
        )
        .unwrap_or(i64::MAX);
        let due_by_time = now.unix_us() - self.last_checkpoint_at.unix_us() >= every_us;
        if !(forced || due_by_count || due_by_time) {
            return Ok(None);
        }
        let root = self
            .shared
            .tree
            .read()
            .expect("tree lock")
            .root_at(size)
            .map_err(|e| LedgerError::Storage {
                reason: format!("merkle root: {e}"),
            })?;
        let checkpoint = Checkpoint {
            origin: self.config.origin.clone(),
            size,
            root,
            extensions: Vec::new(),
        };
        let note = cellops_tlog::sign_checkpoint(&self.signer, &checkpoint).map_err(|e| {
            LedgerError::Storage {
                reason: format!("signing the checkpoint: {e}"),
            }
        })?;
        let stored = StoredCheckpoint {
            size,
            root,
            note,
            created_at: now,
        };
        self.backend
            .write_relaxed(|tx| tx.insert_checkpoint(&stored))?;
        self.last_checkpoint_size = size;
        self.last_checkpoint_at = now;
        Ok(Some(stored))
    }
}

/// Pushes records other processes committed since this process last looked.
fn catch_up_in_tx<B: Backend>(
    tx: &mut dyn WriteTx,
    shared: &Shared<B>,
    head_seq: u64,
) -> Result<(), LedgerError> {
    let mut tree = shared.tree.write().expect("tree lock");
    if tree.len() > head_seq {
        return Err(LedgerError::Corrupt {
            reason: format!(
                "the database holds {head_seq} records but {} were seen before: records were removed",
                tree.len()
            ),
        });
    }
    while tree.len() < head_seq {
        let known = tree.len();
        let hashes = tx.hashes_after(known, READ_PAGE_ROWS_MAX)?;
        if hashes.is_empty() {
            break;
        }
        push_from(&mut tree, known, &hashes);
    }
    Ok(())
}

/// Checks a request; returns each record's canonical payload text.
fn check_request(
    request: &AppendRequest,
    catalog: &EventCatalog,
    next_seq: u64,
) -> Result<Vec<String>, LedgerError> {
    if request.records.is_empty() {
        return Err(LedgerError::InvalidRecord {
            field: "records".into(),
            rule: "a request appends at least one record".into(),
        });
    }
    if request.records.len() > REQUEST_RECORDS_MAX {
        return Err(LedgerError::InvalidRecord {
            field: "records".into(),
            rule: format!(
                "{} records in one request; the maximum is {REQUEST_RECORDS_MAX}",
                request.records.len()
            ),
        });
    }
    if let Some(key) = &request.idempotency_key
        && (key.is_empty() || key.len() > IDEMPOTENCY_KEY_BYTES_MAX)
    {
        return Err(LedgerError::InvalidRecord {
            field: "idempotency_key".into(),
            rule: format!("must be 1 to {IDEMPOTENCY_KEY_BYTES_MAX} bytes"),
        });
    }
    let mut payloads = Vec::with_capacity(request.records.len());
    for (i, r) in request.records.iter().enumerate() {
        if !catalog.contains(&r.event_type, r.event_version) {
            return Err(LedgerError::UnknownEventType {
                event_type: r.event_type.clone(),
                event_version: r.event_version,
            });
        }
        let payload = check_new(r, next_seq + i as u64).map_err(|e| match e {
            LedgerError::InvalidRecord { field, rule } if request.records.len() > 1 => {
                LedgerError::InvalidRecord {
                    field: format!("records[{i}].{field}"),
                    rule,
                }
            }
            other => other,
        })?;
        payloads.push(payload);
    }
    Ok(payloads)
}
