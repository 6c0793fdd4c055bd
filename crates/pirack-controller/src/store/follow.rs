//! Other controllers' writes, followed. On PostgreSQL every committed change
//! of a slot, new event and new operation is told on channel `pirack` (the
//! triggers of schema step 13), naming the writer's connection; [`run`] keeps
//! this store's mirror and its event stream in step with the others' and wakes
//! the operation queue, so the API on any controller shows every shelf live.
//! SQLite has one controller, so nothing to follow there.

use super::{Backend, Store, StoreError, events::Page};
use sqlx::postgres::PgListener;
use std::time::Duration;
use tokio::sync::Notify;

/// Follows the other controllers' writes for as long as it runs: `queued` is
/// woken by each new operation. Missed notices (the connection lost) are made
/// up by reloading every slot.
pub async fn run(store: Store, queued: std::sync::Arc<Notify>) {
    if store.backend != Backend::Postgres {
        return std::future::pending().await;
    }
    loop {
        match listen(&store).await {
            Ok(mut listener) => {
                catch_up(&store, &queued).await;
                loop {
                    match listener.try_recv().await {
                        Ok(Some(n)) => {
                            if let Err(e) = store.told(n.payload(), &queued).await {
                                tracing::warn!("following another controller's write: {e}");
                            }
                        }
                        // Lost, and listening again from the next call.
                        Ok(None) => catch_up(&store, &queued).await,
                        Err(e) => {
                            tracing::warn!("the store's notices: {e}");
                            break;
                        }
                    }
                }
            }
            Err(e) => tracing::warn!("cannot listen to the store's notices: {e}"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn listen(store: &Store) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect(&store.url).await?;
    listener.listen("pirack").await?;
    Ok(listener)
}

/// What the notices missed: every slot read again, the queue looked at.
async fn catch_up(store: &Store, queued: &Notify) {
    if let Err(e) = store.reload_slots().await {
        tracing::warn!("reloading the slots: {e}");
    }
    queued.notify_one();
}

/// What a notice says: `KIND ORIGIN WHAT`.
#[derive(Debug, PartialEq, Eq)]
enum Notice<'a> {
    Slot(&'a str),
    Event(i64),
    Operation,
}

fn parse<'a>(payload: &'a str, mine: &str) -> Option<Notice<'a>> {
    let mut parts = payload.splitn(3, ' ');
    let (kind, origin, what) = (parts.next()?, parts.next()?, parts.next()?);
    if origin == mine {
        return None;
    }
    match kind {
        "s" => Some(Notice::Slot(what)),
        "e" => what.parse().ok().map(Notice::Event),
        "o" => Some(Notice::Operation),
        _ => None,
    }
}

impl Store {
    async fn told(&self, payload: &str, queued: &Notify) -> Result<(), StoreError> {
        match parse(payload, &self.origin) {
            Some(Notice::Slot(key)) => self.refresh_slot(key).await?,
            Some(Notice::Event(id)) => {
                let found = self.events_of(Page::After(id - 1), 1, None, None).await?;
                if let Some(e) = found.into_iter().find(|e| e.id == id) {
                    self.mirror.publish(e);
                }
            }
            Some(Notice::Operation) => queued.notify_one(),
            None => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notices_of_others_are_read_and_its_own_skipped() {
        assert_eq!(
            parse("s pirack-a 0042", "pirack-b"),
            Some(Notice::Slot("0042"))
        );
        assert_eq!(parse("e pirack-a 17", "pirack-b"), Some(Notice::Event(17)));
        assert_eq!(parse("o pirack-a x1", "pirack-b"), Some(Notice::Operation));
        assert_eq!(parse("s pirack-b 0042", "pirack-b"), None, "its own");
        for junk in ["", "s", "s a", "e pirack-a x", "z pirack-a 1"] {
            assert_eq!(parse(junk, "pirack-b"), None, "{junk:?}");
        }
    }
}
