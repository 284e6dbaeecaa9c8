//! The sender: a task that drains the operator event outbox into the sink, oldest first, one
//! event at a time so the sink sees them in the order they were made. Each event gets up to
//! three tries (100 ms, then 200 ms apart, as upstream); when all fail the sender backs off
//! (1 s doubling to 60 s) and tries the same event again, so events wait in the store instead
//! of being lost. It sleeps while the outbox is empty and is woken by the commits that add to
//! it. Sent events are removed in batches.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::http_sink::HttpSink;
use crate::store::Store;

/// Events read from the outbox at a time.
const BATCH: usize = 256;
/// Tries per event before backing off, and the pauses between them.
const TRY_PAUSES: [Duration; 2] = [Duration::from_millis(100), Duration::from_millis(200)];
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// Handle to the running sender.
pub struct Sender {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Sender {
    pub fn start(store: Store, sink: HttpSink) -> Sender {
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(run(store, Arc::new(sink), stopped));
        Sender { stop, task }
    }

    /// Stops at once, abandoning a send in progress; unsent events stay in the outbox for the
    /// next start.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// Sends one event with its tries; `false` when every try failed.
async fn send_with_tries(sink: &HttpSink, body: &[u8]) -> bool {
    let mut pauses = TRY_PAUSES.iter();
    loop {
        match sink.send(body).await {
            Ok(()) => return true,
            Err(error) => match pauses.next() {
                Some(pause) => {
                    tracing::debug!(%error, "operator event send failed; trying again");
                    tokio::time::sleep(*pause).await;
                }
                None => {
                    tracing::warn!(%error, "operator event not accepted after 3 tries; it stays queued");
                    return false;
                }
            },
        }
    }
}

async fn run(store: Store, sink: Arc<HttpSink>, mut stopped: watch::Receiver<bool>) {
    let signal = store.outbox_signal();
    let mut backoff = FIRST_BACKOFF;
    loop {
        if *stopped.borrow() {
            return;
        }
        let woken = signal.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        let rows = match store.outbox_batch(BATCH) {
            Ok(rows) => rows,
            Err(error) => {
                tracing::error!(%error, "cannot read the operator event outbox");
                if pause(&mut stopped, backoff).await {
                    return;
                }
                continue;
            }
        };
        if rows.is_empty() {
            tokio::select! {
                _ = &mut woken => {}
                _ = stopped.changed() => return,
            }
            continue;
        }
        let mut sent = Vec::with_capacity(rows.len());
        let mut failed = false;
        let mut stopping = false;
        for row in rows {
            // A send in progress does not hold up shutdown: the event stays in the outbox and
            // is sent at the next start.
            let accepted = tokio::select! {
                accepted = send_with_tries(&sink, &row.body) => accepted,
                _ = stopped.changed() => {
                    stopping = true;
                    break;
                }
            };
            if accepted {
                sent.push(row.seq);
            } else {
                failed = true;
                break;
            }
        }
        if !sent.is_empty() {
            backoff = FIRST_BACKOFF;
            if let Err(error) = store.outbox_remove(sent).await {
                tracing::error!(%error, "cannot remove sent operator events; they will be sent again");
            }
        }
        if stopping {
            return;
        }
        if failed {
            if pause(&mut stopped, backoff).await {
                return;
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }
}

/// Waits `duration`; `true` when told to stop meanwhile.
async fn pause(stopped: &mut watch::Receiver<bool>, duration: Duration) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(duration) => false,
        _ = stopped.changed() => true,
    }
}
