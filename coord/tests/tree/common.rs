//! A harness that plays the Raft log: consecutive indexes, a settable leader clock.

use vigil_coord::{
    Command, CreateMode, Error, Op, OpResult, Request, Response, SessionId, Stat, StateMachine,
    WatchEvent,
};

pub(crate) struct Harness {
    pub(crate) sm: StateMachine,
    /// Index of the last applied entry.
    pub(crate) index: u64,
    /// Leader time stamped into the next entry.
    pub(crate) time: u64,
    next_request: u64,
}

impl Harness {
    pub(crate) fn new() -> Harness {
        Harness {
            sm: StateMachine::new(),
            index: 0,
            time: 1_000_000,
            next_request: 0,
        }
    }

    pub(crate) fn apply(&mut self, cmd: Command) -> Response {
        self.index += 1;
        self.sm.apply(self.index, self.time, cmd)
    }

    pub(crate) fn session(&mut self) -> SessionId {
        match self.apply(Command::CreateSession { timeout_ms: 10_000 }) {
            Response::SessionCreated { session, .. } => session,
            other => panic!("session not created: {other:?}"),
        }
    }

    pub(crate) fn write(&mut self, session: SessionId, request: Request) -> Response {
        self.next_request += 1;
        self.apply(Command::Write {
            session,
            request_id: self.next_request,
            request,
        })
    }

    pub(crate) fn op(&mut self, session: SessionId, op: Op) -> Result<OpResult, Error> {
        match self.write(session, Request::Single(op)) {
            Response::Op(r) => Ok(r),
            Response::Error(e) => Err(e),
            other => panic!("unexpected response {other:?}"),
        }
    }

    pub(crate) fn create(
        &mut self,
        session: SessionId,
        path: &str,
        mode: CreateMode,
        sequential: bool,
    ) -> Result<String, Error> {
        match self.op(session, create(path, b"", mode, sequential))? {
            OpResult::Created { path, .. } => Ok(path),
            other => panic!("unexpected result {other:?}"),
        }
    }

    pub(crate) fn mkdir(&mut self, session: SessionId, path: &str) {
        self.create(session, path, CreateMode::Persistent, false)
            .expect("create persistent node");
    }

    pub(crate) fn set(
        &mut self,
        session: SessionId,
        path: &str,
        data: &[u8],
        version: Option<i32>,
    ) -> Result<Stat, Error> {
        match self.op(session, set(path, data, version))? {
            OpResult::DataSet { stat } => Ok(stat),
            other => panic!("unexpected result {other:?}"),
        }
    }

    pub(crate) fn delete(
        &mut self,
        session: SessionId,
        path: &str,
        version: Option<i32>,
    ) -> Result<(), Error> {
        self.op(session, delete(path, version)).map(|_| ())
    }

    pub(crate) fn stat(&self, path: &str) -> Stat {
        self.sm
            .tree()
            .exists(path)
            .expect("valid path")
            .unwrap_or_else(|| panic!("{path} missing"))
    }

    pub(crate) fn events(&mut self) -> Vec<WatchEvent> {
        self.sm.drain_events()
    }
}

pub(crate) fn create(path: &str, data: &[u8], mode: CreateMode, sequential: bool) -> Op {
    Op::Create {
        path: path.to_owned(),
        data: data.to_vec(),
        mode,
        sequential,
    }
}

pub(crate) fn delete(path: &str, version: Option<i32>) -> Op {
    Op::Delete {
        path: path.to_owned(),
        version,
    }
}

pub(crate) fn set(path: &str, data: &[u8], version: Option<i32>) -> Op {
    Op::SetData {
        path: path.to_owned(),
        data: data.to_vec(),
        version,
    }
}

pub(crate) fn check(path: &str, version: Option<i32>) -> Op {
    Op::Check {
        path: path.to_owned(),
        version,
    }
}
