//! [`Watcher`]: consumes a `GET /v1/watch` NDJSON stream and resumes it after a failure.
//!
//! The watcher remembers the last zxid it has fully seen. After a broken or silent connection it
//! registers again (on the next server) with that zxid, and the server replays what was missed
//! or says `resync_needed`; either way the caller never misses a change silently.

use bytes::{Buf, BytesMut};

use super::http::encode_path;
use super::stream::Stream;
use super::{Client, ClientError};
use crate::api::wire::{WatchLine, watch_kind_name};
use crate::watch::{WatchEvent, WatchKind};

/// What a watcher yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchNotice {
    /// A change, in zxid order.
    Event(WatchEvent),
    /// Changes may have been missed: re-read what is watched.
    ResyncNeeded,
}

/// A live watch. Dropping it ends the registration on the server.
pub struct Watcher {
    client: Client,
    path: String,
    kind: WatchKind,
    body: Option<Stream>,
    buf: BytesMut,
    /// Highest zxid up to which every event has been yielded.
    last_zxid: Option<u64>,
    /// The registration's zxid and how many replayed events must arrive before adopting it.
    pending: Option<(u64, usize)>,
    done: bool,
}

impl Watcher {
    pub(crate) async fn open(
        client: Client,
        path: String,
        kind: WatchKind,
        last_zxid: Option<u64>,
    ) -> Result<Watcher, ClientError> {
        let mut w = Watcher {
            client,
            path,
            kind,
            body: None,
            buf: BytesMut::new(),
            last_zxid,
            pending: None,
            done: false,
        };
        w.connect().await?;
        Ok(w)
    }

    /// The zxid up to which this watcher has delivered everything (what a resume starts from).
    pub fn last_zxid(&self) -> Option<u64> {
        self.last_zxid
    }

    fn one_shot(&self) -> bool {
        matches!(self.kind, WatchKind::Data | WatchKind::Children)
    }

    /// Registers (again) and waits for the acknowledgement.
    async fn connect(&mut self) -> Result<(), ClientError> {
        self.body = None;
        self.buf.clear();
        let mut uri = format!(
            "/v1/watch?path={}&kind={}",
            encode_path(&self.path),
            watch_kind_name(self.kind)
        );
        if let Some(z) = self.last_zxid {
            uri = format!("{uri}&last_zxid={z}");
        }
        self.body = Some(self.client.transport().open_stream(&uri).await?);
        match self.read_line().await? {
            Some(WatchLine::Registered { zxid, replayed }) => {
                if replayed == 0 {
                    self.adopt(zxid);
                } else {
                    self.pending = Some((zxid, replayed));
                }
                Ok(())
            }
            other => Err(ClientError::Protocol(format!(
                "watch stream did not start with a registration: {other:?}"
            ))),
        }
    }

    fn adopt(&mut self, zxid: u64) {
        self.last_zxid = Some(self.last_zxid.map_or(zxid, |z| z.max(zxid)));
    }

    /// The next line, `None` at a clean end of stream; errors on a broken or silent stream.
    async fn read_line(&mut self) -> Result<Option<WatchLine>, ClientError> {
        let idle = self.client.transport().config.watch_idle_timeout;
        loop {
            if let Some(at) = self.buf.iter().position(|&b| b == b'\n') {
                let raw = self.buf.split_to(at + 1);
                let raw = &raw[..at];
                if raw.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                return serde_json::from_slice(raw)
                    .map(Some)
                    .map_err(|e| ClientError::Protocol(format!("bad watch line: {e}")));
            }
            let Some(body) = self.body.as_mut() else {
                return Ok(None);
            };
            match tokio::time::timeout(idle, body.frame()).await {
                Err(_) => return Err(ClientError::Transport("watch stream silent".into())),
                Ok(None) => return Ok(None),
                Ok(Some(Err(e))) => return Err(ClientError::Transport(e.to_string())),
                Ok(Some(Ok(frame))) => {
                    if let Ok(mut data) = frame.into_data() {
                        while data.has_remaining() {
                            let chunk = data.chunk();
                            self.buf.extend_from_slice(chunk);
                            let n = chunk.len();
                            data.advance(n);
                        }
                    }
                }
            }
        }
    }

    /// The next notice; `Ok(None)` once a one-shot watch has fired. Reconnects and resumes by
    /// itself; an error means no server could take the registration back.
    pub async fn next(&mut self) -> Result<Option<WatchNotice>, ClientError> {
        loop {
            if self.done {
                return Ok(None);
            }
            let Ok(Some(line)) = self.read_line().await else {
                // Broken, silent or ended stream: resume where we are.
                self.connect().await?;
                continue;
            };
            match line {
                WatchLine::Heartbeat => {}
                WatchLine::Registered { .. } => {
                    return Err(ClientError::Protocol("second registration line".into()));
                }
                WatchLine::ResyncNeeded => {
                    if let Some((zxid, _)) = self.pending.take() {
                        self.adopt(zxid);
                    }
                    return Ok(Some(WatchNotice::ResyncNeeded));
                }
                WatchLine::Event { zxid, path, event } => {
                    self.adopt(zxid);
                    if let Some((ack, left)) = self.pending {
                        if left <= 1 {
                            self.pending = None;
                            self.adopt(ack);
                        } else {
                            self.pending = Some((ack, left - 1));
                        }
                    }
                    self.done = self.one_shot();
                    return Ok(Some(WatchNotice::Event(WatchEvent {
                        zxid,
                        path,
                        kind: event.into(),
                    })));
                }
            }
        }
    }
}
