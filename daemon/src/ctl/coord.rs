//! `vigilctl` coordination commands: the znode tree (`get`, `set`, `create`, `ls`, `rm`,
//! `stat`, `watch`), cluster membership (`members`), and the recipes (`lock`, `elect`, in
//! [`super::lock`]). They talk to the coordination client API (`[cluster] client_listen`), not
//! to the control API.
//!
//! The address comes from `--coord` (repeatable or comma-separated; the client fails over
//! between them), else `[cluster] client_listen` of the config, else `127.0.0.1:7402`; the
//! token is the control API's (`--token-file`, else `[api] token_file`). Exit codes: 0 done, 1
//! the tree said no (no such node, exists, bad version, not empty), 69 no server could serve
//! (unreachable, no quorum, no leader), 75 a lock or leadership was lost, 77 not authorised.

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use clap::{Args, Subcommand};
use vigil_coord::api::wire::NodeJson;
use vigil_coord::api::{ClusterStatus, MembershipChange, Role};
use vigil_coord::client::{Client, ClientConfig, ClientError, CreateOptions, Session, WatchNotice};
use vigil_coord::tree::Stat;
use vigil_coord::watch::WatchKind;

use super::{Cli, Target, print_stdout, runtime, to_json, token_exit_code};
use crate::api::auth::ApiToken;
use crate::exit;

/// The client API port tried without `--coord` and without a readable config (the default of
/// `[cluster] client_listen`).
pub const DEFAULT_COORD_PORT: u16 = 7402;

/// Exit code when the tree refused the operation (`NoNode`, `NodeExists`, `BadVersion`, …).
pub const TREE_ERROR: u8 = 1;

/// The coordination subcommands (flattened into `vigilctl`'s).
#[derive(Debug, Clone, Subcommand)]
pub enum CoordCommand {
    /// Print a znode's data (linearizable unless --stale).
    Get {
        /// The znode, e.g. /app/config.
        path: String,
        /// Read this node's copy without a quorum round (may lag the leader).
        #[arg(long)]
        stale: bool,
        /// Print path, data (base64 and text), and stat as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Replace a znode's data.
    Set {
        /// The znode.
        path: String,
        /// The new data (UTF-8 text).
        data: String,
        /// Only if the node's version is N (compare-and-set).
        #[arg(long, value_name = "N")]
        version: Option<i32>,
        /// Print the new stat as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Create a znode and print its path (with the sequence suffix, if any).
    ///
    /// With --ephemeral the node lives as long as this command: it keeps its session open
    /// until SIGINT/SIGTERM, then closes it and the node goes.
    Create {
        /// The znode (its parent must exist).
        path: String,
        /// Its data (UTF-8 text).
        #[arg(default_value = "")]
        data: String,
        /// Delete the node when this command's session ends.
        #[arg(long, conflicts_with_all = ["ttl", "container"])]
        ephemeral: bool,
        /// Append a 10-digit sequence number to the name.
        #[arg(long)]
        sequential: bool,
        /// Remove the node once it has had no children and no change for this long, e.g. 30s.
        #[arg(long, value_name = "DURATION", value_parser = parse_duration, conflicts_with = "container")]
        ttl: Option<Duration>,
        /// Remove the node once its last child is gone.
        #[arg(long)]
        container: bool,
        /// The session's timeout.
        #[command(flatten)]
        session: SessionArgs,
        /// Print path and stat as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List a znode's children (-R: the whole subtree, one full path a line).
    Ls {
        /// The znode [default: /].
        #[arg(default_value = "/")]
        path: String,
        /// Walk the whole subtree.
        #[arg(short = 'R', long)]
        recursive: bool,
        /// Print a JSON array.
        #[arg(long)]
        json: bool,
    },
    /// Delete a znode (-R: with its whole subtree, atomically).
    Rm {
        /// The znode.
        path: String,
        /// Delete the subtree too.
        #[arg(short = 'R', long, conflicts_with = "version")]
        recursive: bool,
        /// Only if the node's version is N.
        #[arg(long, value_name = "N")]
        version: Option<i32>,
    },
    /// Print a znode's stat (exit 1 when it does not exist).
    Stat {
        /// The znode.
        path: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print every change of a znode (-R: of its subtree) until interrupted.
    Watch {
        /// The znode.
        path: String,
        /// Watch the whole subtree.
        #[arg(short = 'R', long)]
        recursive: bool,
        /// One JSON object a line.
        #[arg(long)]
        json: bool,
    },
    /// List the cluster's members, or change them.
    Members {
        /// What to change; lists the members without one.
        #[command(subcommand)]
        change: Option<MembersCommand>,
        /// Print the cluster status (after the change) as JSON.
        #[arg(long, global = true)]
        json: bool,
    },
    /// Run a command while holding a cluster-wide lock.
    ///
    /// Waits for the lock /locks/NAME, then runs CMD in its own process group with
    /// VIGIL_FENCING_TOKEN set to the lock's fencing token (strictly larger for every later
    /// holder). The lock is released when CMD exits, and vigilctl exits with CMD's status. If
    /// the session is lost (expired, or not confirmed by a server for 5/6 of its timeout, so
    /// before the servers can expire it) CMD's process group is SIGKILLed and vigilctl exits
    /// with 75. SIGINT/SIGTERM are passed on to CMD.
    Lock {
        /// The lock's name (one path component).
        name: String,
        /// The session's timeout.
        #[command(flatten)]
        session: SessionArgs,
        /// The command and its arguments.
        #[arg(last = true, required = true, value_name = "CMD")]
        command: Vec<String>,
    },
    /// Stand in an election and print every leadership change until interrupted.
    ///
    /// Campaigns in /elections/NAME with ID as data, and prints `leader ID token N` each
    /// time the leadership changes (`leader none` while there is none). Exits with 75 if its
    /// session is lost.
    Elect {
        /// The election's name (one path component).
        name: String,
        /// This candidate's identity [default: the host name].
        #[arg(long)]
        id: Option<String>,
        /// The session's timeout.
        #[command(flatten)]
        session: SessionArgs,
    },
}

/// `vigilctl members …`.
#[derive(Debug, Clone, Subcommand)]
pub enum MembersCommand {
    /// Add node ID (Raft address ADDR) as a learner; returns once it has caught up.
    Add {
        /// Its `[cluster] node_id`.
        id: u64,
        /// Its `[cluster] raft_listen`, as peers reach it.
        addr: SocketAddr,
    },
    /// Turn learner ID into a voter.
    Promote {
        /// The learner.
        id: u64,
    },
    /// Remove voter or learner ID.
    Remove {
        /// The member.
        id: u64,
    },
}

/// Session settings of the commands that hold one.
#[derive(Debug, Clone, Args)]
pub struct SessionArgs {
    /// Session timeout to ask for, e.g. 10s [default: `[cluster] session_timeout`, else 10s].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub session_timeout: Option<Duration>,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    vigil_conf::parse_duration(text).map_err(|e| e.to_string())
}

/// Where the coordination API is and how to talk to it.
pub(super) struct CoordTarget {
    servers: Vec<String>,
    token: Option<String>,
    session_timeout: Duration,
    timeout: Duration,
}

impl CoordTarget {
    fn client(&self) -> Result<Client, ClientError> {
        let mut config = ClientConfig::new(self.servers.clone());
        config.token.clone_from(&self.token);
        config.request_timeout = self.timeout;
        // One pass over the servers: each one already waits for a leader within its own
        // request timeout, so more passes would only multiply the wait of a minority.
        config.attempts = self.servers.len();
        Client::new(config)
    }

    fn session_ms(&self, args: &SessionArgs) -> u32 {
        crate::coord::config::millis(args.session_timeout.unwrap_or(self.session_timeout))
    }
}

/// Runs a coordination subcommand.
pub(super) fn run(cli: &Cli, command: &CoordCommand) -> u8 {
    let target = match resolve(cli) {
        Ok(target) => target,
        Err(code) => return code,
    };
    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    runtime.block_on(async {
        let client = match target.client() {
            Ok(client) => client,
            Err(e) => return fail(&target, &e),
        };
        let result = dispatch(&target, &client, command).await;
        result.unwrap_or_else(|e| fail(&target, &e))
    })
}

fn resolve(cli: &Cli) -> Result<CoordTarget, u8> {
    let base = Target::resolve(cli)?;
    let token = match base.token_file.as_deref().map(ApiToken::load).transpose() {
        Ok(token) => token,
        Err(error) => {
            eprintln!("vigilctl: {error}");
            return Err(token_exit_code(&error));
        }
    };
    let Ok(token) = token
        .map(|t| String::from_utf8(t.as_bytes().to_vec()))
        .transpose()
    else {
        eprintln!("vigilctl: the API token is not UTF-8 text");
        return Err(exit::CONFIG);
    };
    let servers: Vec<String> = if cli.coord.is_empty() {
        let addr = base.coord.map_or_else(
            || SocketAddr::from((Ipv4Addr::LOCALHOST, DEFAULT_COORD_PORT)),
            super::connectable,
        );
        vec![addr.to_string()]
    } else {
        cli.coord.iter().map(ToString::to_string).collect()
    };
    Ok(CoordTarget {
        servers,
        token,
        session_timeout: base.session_timeout.unwrap_or(Duration::from_secs(10)),
        timeout: Duration::from_secs(cli.timeout),
    })
}

async fn dispatch(
    target: &CoordTarget,
    client: &Client,
    command: &CoordCommand,
) -> Result<u8, ClientError> {
    match command {
        CoordCommand::Get { path, stale, json } => get(client, path, *stale, *json).await,
        CoordCommand::Set {
            path,
            data,
            version,
            json,
        } => {
            let session = short_session(client).await?;
            let result = session.set(path, data.as_bytes(), *version).await;
            let _ = session.close().await;
            let stat = result?;
            Ok(if *json {
                print_stdout(&to_json(&stat))
            } else {
                exit::OK
            })
        }
        CoordCommand::Create {
            path,
            data,
            ephemeral,
            sequential,
            ttl,
            container,
            session,
            json,
        } => {
            let options = CreateOptions {
                ephemeral: *ephemeral,
                sequential: *sequential,
                container: *container,
                ttl_ms: ttl.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            };
            create(target, client, path, data, options, session, *json).await
        }
        CoordCommand::Ls {
            path,
            recursive,
            json,
        } => ls(client, path, *recursive, *json).await,
        CoordCommand::Rm {
            path,
            recursive,
            version,
        } => {
            let session = short_session(client).await?;
            let result = if *recursive {
                session.delete_recursive(path).await
            } else {
                session.delete(path, *version).await
            };
            let _ = session.close().await;
            result.map(|()| exit::OK)
        }
        CoordCommand::Stat { path, json } => match client.stat(path).await? {
            Some(stat) if *json => Ok(print_stdout(&to_json(&stat))),
            Some(stat) => Ok(print_stdout(&stat_table(&stat))),
            None => {
                eprintln!("vigilctl: {path}: no such node");
                Ok(TREE_ERROR)
            }
        },
        CoordCommand::Watch {
            path,
            recursive,
            json,
        } => watch(client, path, *recursive, *json).await,
        CoordCommand::Members { change, json } => members(client, change.as_ref(), *json).await,
        CoordCommand::Lock {
            name,
            session,
            command,
        } => super::lock::lock(client, name, target.session_ms(session), command).await,
        CoordCommand::Elect { name, id, session } => {
            let id = id.clone().unwrap_or_else(host_name);
            super::lock::elect(client, name, &id, target.session_ms(session)).await
        }
    }
}

/// A session for one write: the shortest timeout the servers grant, so that a vigilctl killed
/// mid-write leaves nothing behind for long.
async fn short_session(client: &Client) -> Result<Session, ClientError> {
    client.session(1).await
}

async fn get(client: &Client, path: &str, stale: bool, json: bool) -> Result<u8, ClientError> {
    let consistency = if stale {
        vigil_coord::api::Consistency::Stale
    } else {
        vigil_coord::api::Consistency::Linearizable
    };
    let node = client.get_with(path, consistency).await?;
    if json {
        return Ok(print_stdout(&to_json(&NodeJson::new(
            path, &node.data, node.stat,
        ))));
    }
    let mut out = std::io::stdout().lock();
    let mut data = node.data;
    // Text gets its line ending; binary data is written as it is.
    if std::str::from_utf8(&data).is_ok() && !data.is_empty() && !data.ends_with(b"\n") {
        data.push(b'\n');
    }
    Ok(match out.write_all(&data).and_then(|()| out.flush()) {
        Ok(()) => exit::OK,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => exit::OK,
        Err(e) => {
            eprintln!("vigilctl: cannot write output: {e}");
            exit::OSERR
        }
    })
}

async fn create(
    target: &CoordTarget,
    client: &Client,
    path: &str,
    data: &str,
    options: CreateOptions,
    session_args: &SessionArgs,
    json: bool,
) -> Result<u8, ClientError> {
    let timeout_ms = if options.ephemeral {
        target.session_ms(session_args)
    } else {
        1
    };
    let mut interrupts = super::lock::Interrupts::listen();
    let session = client.session(timeout_ms).await?;
    let created = session.create(path, data.as_bytes(), options).await;
    let (created, stat) = match created {
        Ok(created) => created,
        Err(e) => {
            let _ = session.close().await;
            return Err(e);
        }
    };
    let code = if json {
        print_stdout(&to_json(
            &serde_json::json!({ "path": created, "stat": stat }),
        ))
    } else {
        print_stdout(&format!("{created}\n"))
    };
    if options.ephemeral {
        let mut state = session.state();
        tokio::select! {
            _ = interrupts.next() => {}
            () = super::lock::expired(&mut state) => {
                eprintln!("vigilctl: session expired; {created} is gone");
                return Ok(super::lock::LOST);
            }
        }
    }
    let _ = session.close().await;
    Ok(code)
}

async fn ls(client: &Client, path: &str, recursive: bool, json: bool) -> Result<u8, ClientError> {
    let names = if recursive {
        // Breadth-first, bounded by what the tree holds; each level is one read per node.
        let mut all = Vec::new();
        let mut queue = std::collections::VecDeque::from([path.to_owned()]);
        while let Some(dir) = queue.pop_front() {
            let (children, _) = client.children(&dir).await?;
            for child in children {
                let full = if dir == "/" {
                    format!("/{child}")
                } else {
                    format!("{dir}/{child}")
                };
                all.push(full.clone());
                queue.push_back(full);
            }
        }
        all.sort();
        all
    } else {
        client.children(path).await?.0
    };
    if json {
        return Ok(print_stdout(&to_json(&names)));
    }
    let mut text = String::new();
    for name in &names {
        text.push_str(name);
        text.push('\n');
    }
    Ok(print_stdout(&text))
}

async fn watch(
    client: &Client,
    path: &str,
    recursive: bool,
    json: bool,
) -> Result<u8, ClientError> {
    let kind = if recursive {
        WatchKind::PersistentRecursive
    } else {
        WatchKind::Persistent
    };
    let mut interrupts = super::lock::Interrupts::listen();
    let mut watcher = client.watch(path, kind).await?;
    // Registered: tell a script (or a test) that no later change can be missed.
    eprintln!("vigilctl: watching {path}");
    loop {
        let notice = tokio::select! {
            _ = interrupts.next() => return Ok(exit::OK),
            notice = watcher.next() => notice?,
        };
        let line = match notice {
            None => return Ok(exit::OK),
            Some(WatchNotice::Event(event)) if json => {
                let mut line = serde_json::to_string(&serde_json::json!({
                    "zxid": event.zxid,
                    "path": event.path,
                    "kind": event.kind,
                }))
                .unwrap_or_default();
                line.push('\n');
                line
            }
            Some(WatchNotice::Event(event)) => {
                format!("{} {:?} {}\n", event.zxid, event.kind, event.path)
            }
            Some(WatchNotice::ResyncNeeded) if json => "{\"resync_needed\":true}\n".to_owned(),
            Some(WatchNotice::ResyncNeeded) => {
                "resync-needed (events may have been missed)\n".to_owned()
            }
        };
        let code = print_stdout(&line);
        if code != exit::OK {
            return Ok(code);
        }
    }
}

async fn members(
    client: &Client,
    change: Option<&MembersCommand>,
    json: bool,
) -> Result<u8, ClientError> {
    let status = match change {
        None => client.cluster_status().await?,
        Some(change) => {
            let change = match *change {
                MembersCommand::Add { id, addr } => MembershipChange::AddLearner {
                    id,
                    addr: addr.to_string(),
                },
                MembersCommand::Promote { id } => MembershipChange::Promote { id },
                MembersCommand::Remove { id } => MembershipChange::Remove { id },
            };
            client.change_membership(&change).await?
        }
    };
    Ok(if json {
        print_stdout(&to_json(&status))
    } else {
        print_stdout(&members_table(&status))
    })
}

/// `vigilctl members` as a table, the answering node's view.
pub fn members_table(status: &ClusterStatus) -> String {
    use std::fmt::Write as _;
    let mut out = format!("{:<6}{:<24}{}\n", "ID", "ADDRESS", "ROLE");
    for m in &status.members {
        let role = match m.role {
            Role::Leader => "leader",
            Role::Follower => "follower",
            Role::Candidate => "candidate",
            Role::Learner => "learner",
        };
        let _ = writeln!(out, "{:<6}{:<24}{role}", m.id, m.addr);
    }
    let _ = writeln!(
        out,
        "\nanswered by node {}, term {}, applied {}",
        status.node_id, status.term, status.applied_index
    );
    out
}

fn stat_table(stat: &Stat) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let mut row = |key: &str, value: String| {
        let _ = writeln!(out, "{key:<16}{value}");
    };
    row("czxid", stat.czxid.to_string());
    row("mzxid", stat.mzxid.to_string());
    row("pzxid", stat.pzxid.to_string());
    row("ctime", stat.ctime.to_string());
    row("mtime", stat.mtime.to_string());
    row("version", stat.version.to_string());
    row("cversion", stat.cversion.to_string());
    row("ephemeral_owner", format!("{:#x}", stat.ephemeral_owner));
    row("data_length", stat.data_length.to_string());
    row("num_children", stat.num_children.to_string());
    out
}

fn host_name() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| format!("pid-{}", std::process::id()))
}

/// Prints what went wrong and returns the exit code.
fn fail(target: &CoordTarget, error: &ClientError) -> u8 {
    let servers = target.servers.join(", ");
    match error {
        ClientError::Api { status: 401, .. } => {
            eprintln!(
                "vigilctl: the coordination service at {servers} refused the request: not authorised (give the token file with --token-file or VIGIL_TOKEN_FILE)"
            );
            exit::NOPERM
        }
        ClientError::Transport(detail) if detail.contains("NotLeader") => {
            eprintln!(
                "vigilctl: {servers}: not the leader, and membership changes run on the leader: {detail} (give the leader's client address, or every member's, with --coord)"
            );
            exit::UNAVAILABLE
        }
        ClientError::Transport(detail) => {
            eprintln!(
                "vigilctl: the coordination service at {servers} cannot serve the request: {detail} (is vigild running with [cluster]? does the cluster have a quorum? set the address with --coord)"
            );
            exit::UNAVAILABLE
        }
        ClientError::Lost(detail) => {
            eprintln!("vigilctl: {detail}");
            super::lock::LOST
        }
        ClientError::Api { status, body } if error.tree_error().is_some() => {
            let path = body.path.as_deref().unwrap_or("");
            eprintln!(
                "vigilctl: {path}{}{} ({status})",
                if path.is_empty() { "" } else { ": " },
                body.error
            );
            TREE_ERROR
        }
        ClientError::Api { status, body } if *status >= 500 => {
            eprintln!(
                "vigilctl: the coordination service at {servers} answered {status} {}: {}",
                body.error, body.message
            );
            exit::UNAVAILABLE
        }
        ClientError::Api { status, body } => {
            eprintln!("vigilctl: {status} {}: {}", body.error, body.message);
            exit::USAGE
        }
        ClientError::Protocol(_) => {
            eprintln!("vigilctl: unexpected answer from {servers}: {error}");
            exit::PROTOCOL
        }
        ClientError::Invalid(detail) => {
            eprintln!("vigilctl: {detail}");
            exit::USAGE
        }
    }
}
