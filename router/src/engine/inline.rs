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
use std::task::{Context, Poll};

use futures::Stream;
use tokio::sync::mpsc;

/// The producer's side: where it sends items. A send waits until the
/// consumer has taken the previous item (one item in flight).
pub(crate) type Yield<T> = mpsc::Sender<T>;

/// A stream of the items a producer future sends, driven by polling the
/// stream; dropping the stream drops the producer mid-way.
pub(crate) struct Inline<T> {
    producer: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
    items: mpsc::Receiver<T>,
}

impl<T> Inline<T> {
    /// Builds the stream from a function making the producer.
    pub(crate) fn new<F, Fut>(make: F) -> Self
    where
        F: FnOnce(Yield<T>) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let (tx, items) = mpsc::channel(1);
        Inline {
            producer: Some(Box::pin(make(tx))),
            items,
        }
    }
}

impl<T> Stream for Inline<T> {
    type Item = T;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let this = self.get_mut();
        loop {
            if let Ok(item) = this.items.try_recv() {
                return Poll::Ready(Some(item));
            }
            let Some(producer) = this.producer.as_mut() else {
                return Poll::Ready(None);
            };
            match producer.as_mut().poll(cx) {
                // Finished: whatever it sent last is taken on the next turn.
                Poll::Ready(()) => this.producer = None,
                // Waiting on the server or on room to send: the producer
                // registered this task's waker for either.
                Poll::Pending => {
                    return match this.items.try_recv() {
                        Ok(item) => Poll::Ready(Some(item)),
                        Err(_) => Poll::Pending,
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
