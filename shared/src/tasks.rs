//! Tasks that live and die together: the services of `flick all`, the pipelines of a persister.
//!
//! The first task to end on its own (an error, a panic, or a return nobody asked for) cancels
//! the group's token; every other task sees it, finishes the unit of work in hand (a batch is
//! committed and acknowledged, never dropped half-way) and returns. The group is joined to the
//! last task: nothing is aborted, and the first failure is what the caller gets.

use std::future::Future;

use futures::FutureExt as _;
use tokio::task::JoinSet;

use crate::shutdown::CancellationToken;

/// A set of named tasks sharing one stop token.
#[derive(Debug)]
pub struct TaskGroup {
    tasks: JoinSet<(&'static str, Ended)>,
    stop: CancellationToken,
}

impl TaskGroup {
    /// Tasks stopped by `stop`, which the group also cancels when one of them ends first.
    pub fn new(stop: CancellationToken) -> Self {
        Self {
            tasks: JoinSet::new(),
            stop,
        }
    }

    /// Runs `task` as `name`; a panic in it becomes its error, named, like any other failure.
    pub fn spawn<F>(&mut self, name: &'static str, task: F)
    where
        F: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        self.tasks.spawn(async move {
            let ended = match std::panic::AssertUnwindSafe(task).catch_unwind().await {
                Ok(outcome) => Ended::Returned(outcome),
                Err(panic) => Ended::Panicked(message(&*panic).to_owned()),
            };
            (name, ended)
        });
    }

    /// Waits for every task. The first to fail, panic, or return before the token was
    /// cancelled cancels it; its error (or "stopped by itself") is returned once all are done.
    pub async fn join(mut self) -> anyhow::Result<()> {
        let mut failure: Option<anyhow::Error> = None;
        while let Some(joined) = self.tasks.join_next().await {
            let outcome = match joined {
                Ok((name, Ended::Returned(Ok(())))) if self.stop.is_cancelled() => {
                    tracing::debug!(task = name, "Task stopped");
                    continue;
                }
                Ok((name, Ended::Returned(Ok(())))) => anyhow::anyhow!("{name} stopped by itself"),
                Ok((name, Ended::Returned(Err(err)))) => err.context(format!("{name} failed")),
                Ok((name, Ended::Panicked(message))) => {
                    anyhow::anyhow!("{name} panicked: {message}")
                }
                // Panics are caught in the task: only an abort, which nothing here does.
                Err(err) => anyhow::anyhow!("a task ended: {err}"),
            };
            if !self.stop.is_cancelled() {
                tracing::error!(error = %crate::telemetry::one_line(&outcome), "Stopping the other tasks");
                self.stop.cancel();
            }
            failure.get_or_insert(outcome);
        }
        failure.map_or(Ok(()), Err)
    }
}

/// How a task ended: it returned, or it panicked (caught, so the group can name it).
#[derive(Debug)]
enum Ended {
    Returned(anyhow::Result<()>),
    Panicked(String),
}

/// The text a panic was raised with, when it was a string.
fn message(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(not a string)")
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    use super::*;

    /// A task that runs until stopped and then finishes a last unit of work.
    async fn worker(stop: CancellationToken, finished: Arc<AtomicBool>) -> anyhow::Result<()> {
        stop.cancelled().await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        finished.store(true, Ordering::SeqCst);
        Ok(())
    }

    #[tokio::test]
    async fn a_failure_stops_the_others_who_finish_their_work_and_it_is_returned() {
        let stop = CancellationToken::new();
        let finished = Arc::new(AtomicBool::new(false));
        let mut group = TaskGroup::new(stop.clone());
        group.spawn("worker", worker(stop.clone(), finished.clone()));
        group.spawn("failing", async { anyhow::bail!("database gone") });
        let err = group.join().await.expect_err("the failure");
        assert!(stop.is_cancelled());
        assert!(
            finished.load(Ordering::SeqCst),
            "the worker was not aborted"
        );
        assert_eq!(format!("{err:#}"), "failing failed: database gone");
    }

    #[tokio::test]
    async fn a_panic_stops_the_others_and_is_named() {
        let stop = CancellationToken::new();
        let finished = Arc::new(AtomicBool::new(false));
        let mut group = TaskGroup::new(stop.clone());
        group.spawn("worker", worker(stop.clone(), finished.clone()));
        group.spawn("bug", async { panic!("boom") });
        let err = group.join().await.expect_err("the panic");
        assert!(finished.load(Ordering::SeqCst));
        assert!(err.to_string().starts_with("bug panicked"), "{err}");
    }

    #[tokio::test]
    async fn a_task_returning_by_itself_stops_the_others() {
        let stop = CancellationToken::new();
        let finished = Arc::new(AtomicBool::new(false));
        let mut group = TaskGroup::new(stop.clone());
        group.spawn("worker", worker(stop.clone(), finished.clone()));
        group.spawn("quitter", async { Ok(()) });
        let err = group.join().await.expect_err("an unexpected return");
        assert!(finished.load(Ordering::SeqCst));
        assert_eq!(err.to_string(), "quitter stopped by itself");
    }

    #[tokio::test]
    async fn a_requested_stop_is_success_once_every_task_is_done() {
        let stop = CancellationToken::new();
        let finished = Arc::new(AtomicBool::new(false));
        let mut group = TaskGroup::new(stop.clone());
        group.spawn("worker", worker(stop.clone(), finished.clone()));
        group.spawn(
            "other",
            worker(stop.clone(), Arc::new(AtomicBool::new(false))),
        );
        stop.cancel();
        group.join().await.expect("a clean stop");
        assert!(finished.load(Ordering::SeqCst));
    }
}
