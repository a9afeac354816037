//! Graceful shutdown: one root token cancelled on SIGINT or SIGTERM, and a
//! drain tracker that lets running statements finish within
//! `server.shutdown_timeout`.
//!
//! Listeners stop accepting as soon as the token is cancelled; the daemon then
//! waits for [`Drain::wait_idle`] before it exits, so a statement that had
//! started gets to send its last row.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Counts statements in flight and refuses new ones once closed.
#[derive(Debug, Clone, Default)]
pub struct Drain {
    inner: Arc<DrainInner>,
}

#[derive(Debug, Default)]
struct DrainInner {
    running: AtomicUsize,
    closed: AtomicBool,
    idle: Notify,
}

/// Held while a statement runs; dropping it marks the statement finished.
#[derive(Debug)]
pub struct DrainGuard {
    inner: Arc<DrainInner>,
}

impl Drain {
    /// Registers a statement, or returns `None` when shutdown has begun.
    pub fn enter(&self) -> Option<DrainGuard> {
        if self.inner.closed.load(Ordering::Acquire) {
            return None;
        }
        self.inner.running.fetch_add(1, Ordering::AcqRel);
        Some(DrainGuard {
            inner: Arc::clone(&self.inner),
        })
    }

    /// How many statements are running.
    pub fn running(&self) -> usize {
        self.inner.running.load(Ordering::Acquire)
    }

    /// Refuses new statements from now on.
    pub fn close(&self) {
        self.inner.closed.store(true, Ordering::Release);
    }

    /// Waits until no statement runs, or `timeout` passes; returns how many
    /// were still running.
    pub async fn wait_idle(&self, timeout: Duration) -> usize {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.inner.idle.notified();
            tokio::pin!(notified);
            // Register interest before reading the count so that a guard
            // dropped in between still wakes us.
            notified.as_mut().enable();
            let running = self.running();
            if running == 0 {
                return 0;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.running();
            }
        }
    }
}

impl Drop for DrainGuard {
    fn drop(&mut self) {
        if self.inner.running.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.inner.idle.notify_waiters();
        }
    }
}

/// Cancels `token` on the first SIGINT or SIGTERM.
pub async fn cancel_on_signal(token: CancellationToken) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            tracing::error!("cannot install signal handlers; stop the daemon with SIGKILL");
            return;
        };
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM received, draining"),
            _ = int.recv() => tracing::info!("SIGINT received, draining"),
            _ = token.cancelled() => return,
        }
    }
    #[cfg(not(unix))]
    {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => tracing::info!("interrupt received, draining"),
            _ = token.cancelled() => return,
        }
    }
    token.cancel();
}

/// Cancels `token` when standard input reaches end of file (the parent
/// process closed it or died).
pub async fn cancel_on_stdin_eof(token: CancellationToken) {
    use tokio::io::AsyncReadExt;
    let mut stdin = tokio::io::stdin();
    let mut buf = [0u8; 256];
    loop {
        tokio::select! {
            _ = token.cancelled() => return,
            read = stdin.read(&mut buf) => match read {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            },
        }
    }
    tracing::info!("standard input closed, draining");
    token.cancel();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn wait_idle_returns_when_the_last_statement_finishes() {
        let drain = Drain::default();
        let guard = drain.enter().expect("open");
        let waiter = tokio::spawn({
            let drain = drain.clone();
            async move { drain.wait_idle(Duration::from_secs(10)).await }
        });
        drop(guard);
        assert_eq!(waiter.await.expect("joins"), 0);
    }

    #[tokio::test]
    async fn closed_drain_refuses_new_statements_and_times_out_on_old_ones() {
        let drain = Drain::default();
        let _guard = drain.enter().expect("open");
        drain.close();
        assert!(drain.enter().is_none());
        assert_eq!(drain.wait_idle(Duration::from_millis(20)).await, 1);
    }
}
