//! One writer of the NFS exports. Every root change asks it to export; it takes
//! the requests one batch at a time, coalescing what queued while it worked into
//! one write and one reload (so many builds finishing together cost one reload,
//! and no export can land inside another's unexport-then-export window for
//! NFS-Ganesha), and answers each request with the outcome.

use crate::roots::exports::{self, ExportError};
use pirack_core::inventory::Site;
use pirack_core::plan::Plan;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// A request: export every root; `swapped` names a slot whose root was just
/// exchanged in place.
struct Job {
    swapped: Option<String>,
    done: oneshot::Sender<Result<(), Arc<ExportError>>>,
}

/// Where export requests go.
#[derive(Clone)]
pub struct Exporter {
    jobs: mpsc::UnboundedSender<Job>,
}

/// The exporter's queue, served by [`serve`].
pub struct Queue(mpsc::UnboundedReceiver<Job>);

#[derive(Debug, thiserror::Error)]
pub enum ExporterError {
    #[error(transparent)]
    Export(Arc<ExportError>),
    #[error("the exporter is not running (the controller is stopping)")]
    Stopped,
}

impl Exporter {
    pub fn new() -> (Exporter, Queue) {
        let (jobs, rx) = mpsc::unbounded_channel();
        (Exporter { jobs }, Queue(rx))
    }

    /// Exports every root (after `swapped`'s exchange) and waits for the outcome.
    pub async fn export(&self, swapped: Option<&str>) -> Result<(), ExporterError> {
        let (done, outcome) = oneshot::channel();
        let job = Job {
            swapped: swapped.map(str::to_string),
            done,
        };
        self.jobs.send(job).map_err(|_| ExporterError::Stopped)?;
        outcome
            .await
            .map_err(|_| ExporterError::Stopped)?
            .map_err(ExporterError::Export)
    }
}

/// Serves the queue until every [`Exporter`] is gone: each batch is the requests
/// waiting when the previous one ended, done in one write (and, after swaps, the
/// one unexport-then-export ganesha needs) on a blocking thread.
pub async fn serve(mut queue: Queue, site: Site, plan: Plan) {
    while let Some(first) = queue.0.recv().await {
        let mut batch = vec![first];
        while let Ok(more) = queue.0.try_recv() {
            batch.push(more);
        }
        let swapped: Vec<String> = batch.iter().filter_map(|j| j.swapped.clone()).collect();
        let (site2, plan2) = (site.clone(), plan.clone());
        let outcome = tokio::task::spawn_blocking(move || {
            let swapped: Vec<_> = plan2
                .slots
                .iter()
                .filter(|s| swapped.contains(&s.key.to_string()))
                .collect();
            exports::apply_after_swap(&site2, &plan2, &swapped).map(drop)
        })
        .await
        .unwrap_or_else(|e| Err(ExportError::Panicked(e.to_string())))
        .map_err(Arc::new);
        if let Err(e) = &outcome {
            tracing::error!("exports: {e}");
        }
        for job in batch {
            let _ = job.done.send(outcome.clone());
        }
    }
}
