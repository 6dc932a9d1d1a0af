//! The load tool's worker threads: one current-thread tokio runtime per OS
//! thread, with producer and consumer tasks dealt out round-robin.
//!
//! Why not one multi-thread runtime: a task woken by its socket then runs on
//! the thread that polled the socket, with no work-stealing hand-off and no
//! cross-thread unpark (a futex call) per wake-up. At a few messages per
//! wake-up, as when a broker delivers slowly, that hand-off was a large share
//! of this tool's CPU per message.

use std::future::Future;

use tokio::runtime::Handle;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Running worker threads. Dropping it stops them (without waiting): their
/// runtimes drop every task still running.
pub(super) struct Workers {
    handles: Vec<Handle>,
    /// One sender per thread; dropping it ends that thread's `block_on`,
    /// and the thread then drops its runtime and exits.
    stops: Vec<oneshot::Sender<()>>,
    next: usize,
}

impl Workers {
    /// Starts `n` (at least one) worker threads.
    pub(super) fn start(n: usize) -> std::io::Result<Workers> {
        let mut w = Workers { handles: Vec::new(), stops: Vec::new(), next: 0 };
        for i in 0..n.max(1) {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            let (stop, stopped) = oneshot::channel::<()>();
            w.handles.push(runtime.handle().clone());
            w.stops.push(stop);
            std::thread::Builder::new().name(format!("perf-worker-{i}")).spawn(move || {
                let _ = runtime.block_on(stopped);
            })?;
        }
        Ok(w)
    }

    /// Runs `task` on the next worker thread.
    pub(super) fn spawn<F>(&mut self, task: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let handle = &self.handles[self.next % self.handles.len()];
        self.next += 1;
        handle.spawn(task)
    }
}
