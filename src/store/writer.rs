//! The single writer: a dedicated thread that drains a channel of pending write jobs, applies
//! as many as are waiting inside one redb write transaction, commits it durably (one fsync for
//! the whole group), runs the jobs' after-commit hooks in commit order, and only then answers
//! each caller. A caller that got an answer knows its write is on disk.

use std::sync::Arc;

use redb::{Database, Durability, WriteTransaction};
use tokio::sync::{mpsc, oneshot};

use super::StoreError;

/// How many pending jobs one transaction may absorb.
const MAX_BATCH: usize = 4096;
/// Capacity of the job channel; senders wait (back-pressure) when it is full.
pub const CHANNEL_CAPACITY: usize = 16_384;

type Hook = Box<dyn FnOnce() + Send>;

/// What a write job sees: the open transaction, and a place to register work that must run
/// only once the transaction is durable (in-memory index updates, waking the dispatcher).
pub struct WriteCtx<'t> {
    pub txn: &'t WriteTransaction,
    hooks: Vec<Hook>,
}

impl WriteCtx<'_> {
    pub fn after_commit(&mut self, hook: impl FnOnce() + Send + 'static) {
        self.hooks.push(Box::new(hook));
    }
}

/// A unit of work for the writer. `apply` must either fail before writing anything the caller
/// would not want committed, or succeed: domain refusals are returned inside `R`, not as errors.
pub trait Job: Send {
    fn apply(&mut self, ctx: &mut WriteCtx<'_>) -> Result<(), StoreError>;
    fn finish(self: Box<Self>, outcome: Result<(), String>);
}

struct ClosureJob<F, R> {
    work: Option<F>,
    output: Option<R>,
    reply: oneshot::Sender<Result<R, StoreError>>,
}

impl<F, R> Job for ClosureJob<F, R>
where
    F: FnOnce(&mut WriteCtx<'_>) -> Result<R, StoreError> + Send,
    R: Send,
{
    fn apply(&mut self, ctx: &mut WriteCtx<'_>) -> Result<(), StoreError> {
        if let Some(work) = self.work.take() {
            self.output = Some(work(ctx)?);
        }
        Ok(())
    }

    fn finish(self: Box<Self>, outcome: Result<(), String>) {
        let answer = match (outcome, self.output) {
            (Ok(()), Some(output)) => Ok(output),
            (Ok(()), None) => Err(StoreError::WriterStopped),
            (Err(reason), _) => Err(StoreError::BatchFailed(reason)),
        };
        // The caller may have gone away (client disconnected); the write still happened.
        let _ = self.reply.send(answer);
    }
}

/// The sending side, cloned into every handler.
#[derive(Clone)]
pub struct WriterHandle {
    sender: mpsc::Sender<Box<dyn Job>>,
}

impl WriterHandle {
    /// Runs `work` inside the next group commit and returns its output once durable.
    pub async fn write<F, R>(&self, work: F) -> Result<R, StoreError>
    where
        F: FnOnce(&mut WriteCtx<'_>) -> Result<R, StoreError> + Send + 'static,
        R: Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job = Box::new(ClosureJob {
            work: Some(work),
            output: None,
            reply,
        });
        self.sender
            .send(job)
            .await
            .map_err(|_| StoreError::WriterStopped)?;
        answer.await.map_err(|_| StoreError::WriterStopped)?
    }
}

/// Starts the writer thread. It stops when every `WriterHandle` is dropped.
pub fn spawn(db: Arc<Database>) -> (WriterHandle, std::thread::JoinHandle<()>) {
    let (sender, receiver) = mpsc::channel(CHANNEL_CAPACITY);
    let thread = std::thread::Builder::new()
        .name("outpost-writer".into())
        .spawn(move || run(db, receiver))
        .unwrap_or_else(|e| panic!("cannot start the writer thread: {e}"));
    (WriterHandle { sender }, thread)
}

fn commit_batch(db: &Database, batch: &mut [Box<dyn Job>]) -> Result<Vec<Hook>, StoreError> {
    let mut txn = db.begin_write()?;
    txn.set_durability(Durability::Immediate)?;
    let mut ctx = WriteCtx {
        txn: &txn,
        hooks: Vec::new(),
    };
    for job in batch.iter_mut() {
        job.apply(&mut ctx)?;
    }
    let hooks = std::mem::take(&mut ctx.hooks);
    drop(ctx);
    txn.commit()?;
    Ok(hooks)
}

fn drain(receiver: &mut mpsc::Receiver<Box<dyn Job>>, batch: &mut Vec<Box<dyn Job>>) {
    while batch.len() < MAX_BATCH {
        match receiver.try_recv() {
            Ok(job) => batch.push(job),
            Err(_) => break,
        }
    }
}

fn run(db: Arc<Database>, mut receiver: mpsc::Receiver<Box<dyn Job>>) {
    while let Some(first) = receiver.blocking_recv() {
        let mut batch = vec![first];
        drain(&mut receiver, &mut batch);
        match commit_batch(&db, &mut batch) {
            Ok(hooks) => {
                for hook in hooks {
                    hook();
                }
                for job in batch {
                    job.finish(Ok(()));
                }
            }
            Err(error) => {
                tracing::error!(%error, jobs = batch.len(), "write batch failed; nothing in it was committed");
                let reason = error.to_string();
                for job in batch {
                    job.finish(Err(reason.clone()));
                }
            }
        }
    }
}
