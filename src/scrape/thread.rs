//! The scraper's own thread: a single-threaded runtime that runs the scrape cycles apart from
//! the API server's runtime.
//!
//! Why a thread of its own: on the server's work-stealing runtime every scrape a cycle spawns
//! wakes an idle worker to steal it (a futex wake and a context switch per node, ~10% of the
//! scrape CPU at 5,000 nodes), and the decode and store work of a burst of responses competes
//! with API requests on the same workers. On one thread the scrapes of a slot
//! ([`super::schedule`]) run back to back with no cross-thread wake, their connections and
//! buffers stay in one core's caches, and the API's workers only serve. One thread has room to
//! spare: a node costs ~0.1–0.2 ms of CPU per cycle, so 5,000 nodes take ~1 s of a 15 s period.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::oneshot;

use super::Scraper;

/// The running scraper thread. Dropping it ends the scrape loop; scrapes in flight are
/// cancelled with the thread's runtime, and the thread exits.
#[derive(Debug)]
pub struct ScrapeThread {
    /// Never sent on: its drop is the signal.
    _stop: oneshot::Sender<()>,
}

impl ScrapeThread {
    /// Starts a thread that waits for `scrape_from`, then runs `scraper`'s cycles until the
    /// returned handle is dropped.
    pub fn start(
        scraper: Arc<Scraper>,
        scrape_from: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<ScrapeThread> {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let (stop, stopped) = oneshot::channel::<()>();
        std::thread::Builder::new().name("scraper".to_owned()).spawn(move || {
            runtime.block_on(async move {
                tokio::select! {
                    () = async {
                        scrape_from.await;
                        scraper.run().await;
                    } => {}
                    _ = stopped => {}
                }
            });
        })?;
        Ok(ScrapeThread { _stop: stop })
    }
}
