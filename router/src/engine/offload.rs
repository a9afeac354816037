//! Running an engine's CPU-bound work on another tokio runtime.
//!
//! The front ends and the network engines live on a runtime with few worker
//! threads: a statement that only crosses a socket costs less CPU when its
//! tasks do not migrate between threads (see `benchmarks/RESULTS.md`, session
//! 8). DataFusion's planning and execution, by contrast, can keep every core
//! busy for seconds, and would then stall every client on that runtime. So the
//! embedded engine hands its work to a separate runtime, as DataFusion's own
//! `thread_pools` example recommends, and sends the result's batches back
//! through a bounded channel: the client's task waits on a channel, never on
//! DataFusion.

use std::future::Future;

use arrow::datatypes::SchemaRef;
use futures::StreamExt;
use tokio::runtime::Handle;
use tokio::sync::{mpsc, oneshot};
use tokio_util::task::AbortOnDropHandle;

use super::{BatchStream, QueryOutput};
use crate::{Error, Result};

/// Batches in flight between the runtime that computes them and the client's
/// task: enough to overlap the two, few enough to bound memory.
const BATCHES_IN_FLIGHT: usize = 2;

/// Runs `work` on `runtime` and returns its output. Dropping the returned
/// future (a cancelled statement) aborts the work.
pub(crate) async fn run_on<T, F>(runtime: &Handle, work: F) -> Result<T>
where
    T: Send + 'static,
    F: Future<Output = Result<T>> + Send + 'static,
{
    AbortOnDropHandle::new(runtime.spawn(work))
        .await
        .map_err(|e| Error::Internal(format!("the engine's task failed: {e}")))?
}

/// What the worker sends before any batch.
enum Head {
    /// Rows of this schema follow on the batch channel.
    Rows(SchemaRef),
    /// The whole output: a command's, or an error.
    Done(Result<QueryOutput>),
}

/// Runs `work`, which makes a statement's output, on `runtime`; its batches
/// are computed there, [`BATCHES_IN_FLIGHT`] ahead of the reader. Dropping
/// the returned stream aborts the work.
pub(crate) async fn output_on<F>(runtime: &Handle, work: F) -> Result<QueryOutput>
where
    F: Future<Output = Result<QueryOutput>> + Send + 'static,
{
    let (head_tx, head_rx) = oneshot::channel();
    let (batch_tx, batch_rx) = mpsc::channel(BATCHES_IN_FLIGHT);
    let task = AbortOnDropHandle::new(runtime.spawn(async move {
        let mut stream = match work.await {
            Ok(QueryOutput::Rows { schema, stream }) => {
                if head_tx.send(Head::Rows(schema)).is_err() {
                    return;
                }
                stream
            }
            done => {
                let _ = head_tx.send(Head::Done(done));
                return;
            }
        };
        while let Some(item) = stream.next().await {
            if batch_tx.send(item).await.is_err() {
                // The reader is gone: stop computing.
                return;
            }
        }
    }));
    match head_rx.await {
        Ok(Head::Done(output)) => output,
        Ok(Head::Rows(schema)) => Ok(QueryOutput::Rows {
            schema,
            stream: batches(batch_rx, task),
        }),
        // The sender was dropped unsent: the task panicked or was cancelled.
        Err(_) => Err(match task.await {
            Err(e) => Error::Internal(format!("the engine's task failed: {e}")),
            Ok(()) => Error::Internal("the engine's task ended without a result".to_owned()),
        }),
    }
}

/// The batches the worker sends, ending with an error if the worker died
/// before its stream ended: a result must never look complete when it is not.
fn batches(
    receiver: mpsc::Receiver<Result<arrow::array::RecordBatch>>,
    task: AbortOnDropHandle<()>,
) -> BatchStream {
    futures::stream::unfold((receiver, Some(task)), |(mut receiver, task)| async move {
        if let Some(item) = receiver.recv().await {
            return Some((item, (receiver, task)));
        }
        // The channel closed: the worker is done, normally or not.
        match task?.await {
            Ok(()) => None,
            Err(e) => Some((
                Err(Error::Internal(format!("the engine's task failed: {e}"))),
                (receiver, None),
            )),
        }
    })
    .boxed()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    use arrow::array::{Int32Array, RecordBatch};
    use arrow::datatypes::{DataType, Field, Schema};
    use futures::Stream;

    use super::*;

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![Field::new("n", DataType::Int32, false)]))
    }

    fn batch(value: i32) -> Result<RecordBatch> {
        RecordBatch::try_new(schema(), vec![Arc::new(Int32Array::from(vec![value]))])
            .map_err(|e| Error::Internal(e.to_string()))
    }

    /// Rows of [`schema`] made of `batches`, as an engine returns them.
    fn rows(
        batches: impl Stream<Item = Result<RecordBatch>> + Send + 'static,
    ) -> Result<QueryOutput> {
        Ok(QueryOutput::Rows {
            schema: schema(),
            stream: batches.boxed(),
        })
    }

    /// The batch stream of an output that must be rows.
    fn stream_of(output: Result<QueryOutput>) -> BatchStream {
        match output {
            Ok(QueryOutput::Rows { stream, .. }) => stream,
            Ok(other) => panic!("rows expected, got {other:?}"),
            Err(e) => panic!("rows expected, got {e}"),
        }
    }

    /// A second runtime, as the daemon's CPU runtime.
    fn worker_runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("offload-worker")
            .enable_all()
            .build()
            .expect("a runtime")
    }

    #[tokio::test(flavor = "current_thread")]
    async fn batches_computed_on_the_other_runtime_arrive_in_order() {
        let runtime = worker_runtime();
        let output = output_on(runtime.handle(), async {
            // Proves where the work runs: this runtime's worker thread.
            let thread = std::thread::current().name().map(str::to_owned);
            assert_eq!(thread.as_deref(), Some("offload-worker"));
            rows(futures::stream::iter((0..5).map(batch)))
        })
        .await;
        let values: Vec<i32> = stream_of(output)
            .map(|b| {
                b.expect("a batch")
                    .column(0)
                    .as_any()
                    .downcast_ref::<Int32Array>()
                    .expect("ints")
                    .value(0)
            })
            .collect()
            .await;
        assert_eq!(values, vec![0, 1, 2, 3, 4]);
        runtime.shutdown_background();
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_worker_that_dies_mid_stream_ends_the_result_with_an_error() {
        let runtime = worker_runtime();
        let output = output_on(runtime.handle(), async {
            rows(
                futures::stream::iter([batch(1)]).chain(futures::stream::once(async {
                    panic!("the engine broke");
                })),
            )
        })
        .await;
        let items: Vec<_> = stream_of(output).collect().await;
        assert_eq!(items.len(), 2, "one batch, then the error");
        assert!(items[0].is_ok());
        assert!(
            matches!(&items[1], Err(Error::Internal(m)) if m.contains("failed")),
            "{:?}",
            items[1].as_ref().err()
        );
        runtime.shutdown_background();
    }

    #[tokio::test(flavor = "current_thread")]
    async fn dropping_the_result_stops_the_work() {
        let runtime = worker_runtime();
        let stopped = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stopped);
        let output = output_on(runtime.handle(), async move {
            struct SetOnDrop(Arc<AtomicBool>);
            impl Drop for SetOnDrop {
                fn drop(&mut self) {
                    self.0.store(true, Ordering::SeqCst);
                }
            }
            let guard = SetOnDrop(flag);
            // An endless result, as a query that would run for hours.
            rows(futures::stream::repeat_with(move || {
                let _keep = &guard;
                batch(0)
            }))
        })
        .await;
        let mut stream = stream_of(output);
        assert!(stream.next().await.is_some());
        drop(stream);
        for _ in 0..100 {
            if stopped.load(Ordering::SeqCst) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(stopped.load(Ordering::SeqCst), "the work was not stopped");
        runtime.shutdown_background();
    }

    #[tokio::test(flavor = "current_thread")]
    async fn commands_and_errors_come_back_whole() {
        let runtime = worker_runtime();
        let output = output_on(runtime.handle(), async {
            Ok(QueryOutput::Command { rows: Some(3) })
        })
        .await;
        assert!(matches!(output, Ok(QueryOutput::Command { rows: Some(3) })));
        let error = output_on(runtime.handle(), async {
            Err(Error::Syntax("nope".to_owned()))
        })
        .await;
        assert!(matches!(error, Err(Error::Syntax(_))));
        let value = run_on(runtime.handle(), async { Ok(7) }).await;
        assert!(matches!(value, Ok(7)));
        runtime.shutdown_background();
    }
}
