//! [`Inline`]: a stream whose items come from a future polled by the stream
//! itself, in the consumer's task.
//!
//! mysql_async's result borrows its connection, so a statement's rows must be
//! read by a future that owns the connection. Spawning that future costs a
//! task, a cross-thread wake-up and a channel hop per statement; polling it
//! from `poll_next` keeps the whole statement on the client's task, the way
//! the PostgreSQL pass-through drives its socket. The price: the server's
//! reading no longer overlaps the client's encoding on a second core, which
//! matters only for results of many batches.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use futures::Stream;

/// The producer's side: where it sends items. A send waits until the
/// consumer has taken the previous item (one item in flight).
///
/// A slot, not a channel: producer and consumer run in one task, and the
/// producer is polled only by the consumer's `poll_next`, right after it took
/// an item, so a send that finds the slot full needs no waker. (A channel
/// cost an allocation and its bookkeeping per statement.)
pub(crate) struct Yield<T> {
    slot: Arc<Mutex<Option<T>>>,
}

/// The consumer is gone: the item was not delivered.
#[derive(Debug)]
pub(crate) struct Closed;

impl<T> Yield<T> {
    /// Hands `item` to the consumer once the previous one was taken.
    ///
    /// # Errors
    ///
    /// [`Closed`] when the stream was dropped (its producer then never runs
    /// again, so this is seen only by a producer that outlives it).
    pub(crate) async fn send(&self, item: T) -> Result<(), Closed> {
        let mut item = Some(item);
        std::future::poll_fn(|_| {
            if Arc::strong_count(&self.slot) == 1 {
                return Poll::Ready(Err(Closed));
            }
            let mut slot = self.slot.lock().unwrap_or_else(PoisonError::into_inner);
            if slot.is_some() {
                // Taken by the consumer, which polls the producer again.
                return Poll::Pending;
            }
            *slot = item.take();
            Poll::Ready(Ok(()))
        })
        .await
    }
}

/// A stream of the items a producer future sends, driven by polling the
/// stream; dropping the stream drops the producer mid-way.
pub(crate) struct Inline<T> {
    producer: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
    slot: Arc<Mutex<Option<T>>>,
}

impl<T> Inline<T> {
    /// Builds the stream from a function making the producer.
    pub(crate) fn new<F, Fut>(make: F) -> Self
    where
        F: FnOnce(Yield<T>) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let slot = Arc::new(Mutex::new(None));
        Inline {
            producer: Some(Box::pin(make(Yield {
                slot: Arc::clone(&slot),
            }))),
            slot,
        }
    }

    fn take(&self) -> Option<T> {
        self.slot
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }
}

impl<T> Stream for Inline<T> {
    type Item = T;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let this = self.get_mut();
        loop {
            if let Some(item) = this.take() {
                return Poll::Ready(Some(item));
            }
            let Some(producer) = this.producer.as_mut() else {
                return Poll::Ready(None);
            };
            match producer.as_mut().poll(cx) {
                // Finished: whatever it sent last is taken on the next turn.
                Poll::Ready(()) => this.producer = None,
                // Waiting on the server (which registered this task's waker)
                // or on the consumer to take an item (there is one now).
                Poll::Pending => {
                    return match this.take() {
                        Some(item) => Poll::Ready(Some(item)),
                        None => Poll::Pending,
                    };
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    #[tokio::test]
    async fn items_arrive_in_order_and_the_producer_runs_in_the_consumers_task() {
        let outer = tokio::task::try_id();
        let stream = Inline::new(
            move |tx: Yield<(u32, Option<tokio::task::Id>)>| async move {
                for i in 0..5 {
                    // A real wait between items, as a server's reply is.
                    tokio::task::yield_now().await;
                    if tx.send((i, tokio::task::try_id())).await.is_err() {
                        return;
                    }
                }
            },
        );
        let items: Vec<_> = stream.collect().await;
        assert_eq!(
            items.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
            [0, 1, 2, 3, 4]
        );
        assert!(items.iter().all(|(_, task)| *task == outer));
    }

    #[tokio::test]
    async fn dropping_the_stream_drops_the_producer() {
        let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
        let mut stream = Inline::new(move |tx: Yield<u32>| async move {
            let _done = done_tx;
            for i in 0.. {
                if tx.send(i).await.is_err() {
                    return;
                }
            }
        });
        assert_eq!(stream.next().await, Some(0));
        drop(stream);
        // The sender half of `done` went with the producer.
        assert!(done_rx.await.is_err());
    }
}
