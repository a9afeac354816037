//! Connections of the pass-through clients ([`super::pg_wire`],
//! [`super::mysql_wire`]), kept idle between statements.
//!
//! Both protocols need the same few things of a pool: take an idle
//! connection that is still open, else open one under a limit within the
//! connect timeout, and take it back when its statement ends. What a
//! connection is and how it opens stays each protocol's.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Why [`IdlePool::get`] gave no connection.
#[derive(Debug)]
pub(crate) enum PoolError<E> {
    /// Opening a connection failed.
    Connect(E),
    /// None was free or opened within the connect timeout, or the pool is
    /// closed; the message says which.
    Unavailable(String),
}

/// Idle connections of one kind; at most `max_connections` open at once
/// (each holds a permit of `open` and frees it when dropped).
#[derive(Debug)]
pub(crate) struct IdlePool<C> {
    idle: Mutex<Vec<C>>,
    open: Arc<Semaphore>,
    connect_timeout: Duration,
}

impl<C> IdlePool<C> {
    pub(crate) fn new(max_connections: usize, connect_timeout: Duration) -> Self {
        IdlePool {
            idle: Mutex::new(Vec::new()),
            open: Arc::new(Semaphore::new(max_connections.max(1))),
            connect_timeout,
        }
    }

    /// An idle connection that `usable` accepts (it may also bring the
    /// connection up to date), or a new one from `connect`, given its
    /// permit, within the connect timeout. A connection `usable` refuses is
    /// dropped, permit and all.
    pub(crate) async fn get<E, F>(
        &self,
        mut usable: impl FnMut(&mut C) -> bool,
        connect: impl FnOnce(OwnedSemaphorePermit) -> F,
    ) -> Result<C, PoolError<E>>
    where
        F: Future<Output = Result<C, E>>,
    {
        let deadline = tokio::time::Instant::now() + self.connect_timeout;
        loop {
            let idle = self.idle.lock().ok().and_then(|mut idle| idle.pop());
            if let Some(mut conn) = idle {
                if usable(&mut conn) {
                    return Ok(conn);
                }
                continue;
            }
            // A permit frees when a connection closes; one going back idle
            // wakes nobody, so a waiter looks again every few milliseconds.
            let wait = Duration::from_millis(5);
            match tokio::time::timeout(wait, Arc::clone(&self.open).acquire_owned()).await {
                Ok(Ok(permit)) => {
                    return match tokio::time::timeout_at(deadline, connect(permit)).await {
                        Ok(result) => result.map_err(PoolError::Connect),
                        Err(_) => Err(PoolError::Unavailable(format!(
                            "no connection within {:?}",
                            self.connect_timeout
                        ))),
                    };
                }
                Ok(Err(_)) => return Err(PoolError::Unavailable("the pool is closed".to_owned())),
                Err(_) if tokio::time::Instant::now() >= deadline => {
                    return Err(PoolError::Unavailable(format!(
                        "no free connection within {:?}",
                        self.connect_timeout
                    )));
                }
                Err(_) => {}
            }
        }
    }

    /// Takes back a connection whose statement ended.
    pub(crate) fn put(&self, conn: C) {
        if let Ok(mut idle) = self.idle.lock() {
            idle.push(conn);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_connection_comes_back_and_a_refused_one_is_replaced() {
        let pool: IdlePool<u32> = IdlePool::new(2, Duration::from_secs(1));
        let first = pool
            .get(|_| true, |_permit| async { Ok::<_, ()>(1) })
            .await
            .ok();
        assert_eq!(first, Some(1));
        pool.put(1);
        // The idle one is taken before a new one is opened.
        let again = pool.get(|_| true, |_| async { Ok::<_, ()>(2) }).await.ok();
        assert_eq!(again, Some(1));
        pool.put(1);
        // Refused (closed while idle): a new one is opened in its place.
        let fresh = pool.get(|_| false, |_| async { Ok::<_, ()>(3) }).await.ok();
        assert_eq!(fresh, Some(3));
    }

    #[tokio::test]
    async fn a_full_pool_waits_until_the_timeout() {
        let pool: IdlePool<OwnedSemaphorePermit> = IdlePool::new(1, Duration::from_millis(50));
        let held = pool
            .get(|_| true, |permit| async { Ok::<_, ()>(permit) })
            .await;
        assert!(held.is_ok());
        let waited = pool
            .get(|_| true, |permit| async { Ok::<_, ()>(permit) })
            .await;
        assert!(
            matches!(&waited, Err(PoolError::Unavailable(m)) if m.contains("no free connection")),
            "{waited:?}"
        );
        // The permit frees with the connection that held it.
        drop(held);
        let next = pool
            .get(|_| true, |permit| async { Ok::<_, ()>(permit) })
            .await;
        assert!(next.is_ok());
    }
}
