//! [`Barrier`]: wait until `parties` participants have entered `/barriers/NAME`.

use super::{check_name, expired, lost};
use crate::client::{ClientError, CreateOptions, Session};
use crate::watch::WatchKind;

/// An entry barrier. Each participant's node is ephemeral, so a crashed participant stops
/// counting once its session expires.
#[derive(Clone)]
pub struct Barrier {
    session: Session,
    dir: String,
    parties: usize,
}

impl Barrier {
    /// The barrier `/barriers/{name}` for `parties` participants.
    pub fn new(session: Session, name: &str, parties: usize) -> Result<Barrier, ClientError> {
        check_name(name)?;
        Ok(Barrier {
            session,
            dir: format!("/barriers/{name}"),
            parties,
        })
    }

    /// Enters and waits until `parties` participants are in. Returns this participant's node,
    /// which [`crate::client::Session::delete`] removes when leaving.
    pub async fn enter(&self) -> Result<String, ClientError> {
        self.session.ensure_path(&self.dir).await?;
        let (me, _) = self
            .session
            .create(
                &format!("{}/p-", self.dir),
                &[],
                CreateOptions::EPHEMERAL_SEQUENTIAL,
            )
            .await?;
        let client = self.session.client();
        let mut state = self.session.state();
        loop {
            // One-shot children watch, registered before the count it guards.
            let mut watcher = client.watch(&self.dir, WatchKind::Children).await?;
            let (children, _) = client.children(&self.dir).await?;
            if children.len() >= self.parties {
                return Ok(me);
            }
            tokio::select! {
                notice = watcher.next() => { notice?; }
                () = expired(&mut state) => return Err(lost(&me)),
            }
        }
    }
}
