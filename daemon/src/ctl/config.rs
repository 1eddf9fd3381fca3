//! `vigilctl config`: shared-config fragments (see [`crate::shared_config`]), through the
//! daemon's `/v1/config` endpoints.
//!
//! Exit codes: 0 done; 78 the fragment was refused (each error on stderr as
//! `/vigil/config/NAME:LINE:COL: message`, nothing written); 75 another change won a race
//! (nothing written, retry); 66 the file cannot be read; 69/76/77 as for every command.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use clap::Subcommand;
use hyper::{Method, StatusCode};

use super::client::{Client, ClientError};
use super::{fail, print_stdout, render, to_json};
use crate::api::config::{
    ChangeResponse, ConfigErrorBody, ConfigList, HistoryResponse, PushRequest, RollbackRequest,
};
use crate::exit;
use crate::reload::unix_now;
use crate::shared_config::Fragment;
use crate::shared_config::tree::Change;

/// `vigilctl config …`.
#[derive(Debug, Clone, Subcommand)]
pub enum ConfigCommand {
    /// Validate a fragment (`[[virtual_server]]`, `[[track]]`) on the daemon against its config
    /// and the other fragments, then store it as a new version; every node applies it live.
    Push {
        /// The fragment's TOML file.
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// The fragment's name [default: the file name without its extension].
        #[arg(long)]
        name: Option<String>,
        /// Print the answer as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List the fragments and what this node runs, or print one fragment's TOML.
    Show {
        /// The fragment to print.
        name: Option<String>,
        /// Print JSON instead.
        #[arg(long)]
        json: bool,
    },
    /// Every version of a fragment: who changed it, when, and how.
    History {
        /// The fragment.
        name: String,
        /// Print JSON (with each version's text) instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Push the text of an earlier version again, as a new version.
    Rollback {
        /// The fragment.
        name: String,
        /// The version to restore (see `config history`).
        version: u64,
        /// Print the answer as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove a fragment from every node (its history stays).
    Rm {
        /// The fragment.
        name: String,
        /// Print the answer as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Runs one `config` command against `client`.
pub async fn run(client: &Client, command: &ConfigCommand) -> u8 {
    match command {
        ConfigCommand::Push { file, name, json } => {
            let (name, text) = match read_fragment(file, name.as_deref()) {
                Ok(read) => read,
                Err(code) => return code,
            };
            let body = PushRequest { text };
            let path = format!("/v1/config/{name}");
            change(
                client,
                Method::PUT,
                &path,
                Some(to_body(&body)),
                *json,
                "pushed",
            )
            .await
        }
        ConfigCommand::Rollback {
            name,
            version,
            json,
        } => {
            let body = RollbackRequest { version: *version };
            let path = format!("/v1/config/{name}/rollback");
            let verb = format!("rolled back to version {version} as");
            change(
                client,
                Method::POST,
                &path,
                Some(to_body(&body)),
                *json,
                &verb,
            )
            .await
        }
        ConfigCommand::Rm { name, json } => {
            let path = format!("/v1/config/{name}");
            change(client, Method::DELETE, &path, None, *json, "removed").await
        }
        ConfigCommand::Show { name: None, json } => {
            match get::<ConfigList>(client, "/v1/config").await {
                Ok(list) if *json => print_stdout(&to_json(&list)),
                Ok(list) => print_stdout(&list_table(&list, unix_now())),
                Err(code) => code,
            }
        }
        ConfigCommand::Show {
            name: Some(name),
            json,
        } => match get::<Fragment>(client, &format!("/v1/config/{name}")).await {
            Ok(fragment) if *json => print_stdout(&to_json(&fragment)),
            Ok(fragment) => print_stdout(&fragment.text),
            Err(code) => code,
        },
        ConfigCommand::History { name, json } => {
            match get::<HistoryResponse>(client, &format!("/v1/config/{name}/history")).await {
                Ok(history) if *json => print_stdout(&to_json(&history)),
                Ok(history) => print_stdout(&history_table(&history, unix_now())),
                Err(code) => code,
            }
        }
    }
}

/// The name (given, else the file stem) and text of a fragment file.
fn read_fragment(file: &Path, name: Option<&str>) -> Result<(String, String), u8> {
    let text = std::fs::read_to_string(file).map_err(|error| {
        eprintln!("vigilctl: cannot read {}: {error}", file.display());
        exit::NOINPUT
    })?;
    let stem = file.file_stem().and_then(|s| s.to_str());
    let Some(name) = name.or(stem) else {
        eprintln!(
            "vigilctl: cannot derive a fragment name from {}; give --name",
            file.display()
        );
        return Err(exit::USAGE);
    };
    let name = name.to_owned();
    Ok((name, text))
}

fn to_body<T: serde::Serialize>(value: &T) -> Vec<u8> {
    // Plain structs of strings and numbers always serialize.
    serde_json::to_vec(value).unwrap_or_default()
}

/// A push, rollback or removal: the new version, or why nothing was written.
async fn change(
    client: &Client,
    method: Method,
    path: &str,
    body: Option<Vec<u8>>,
    json: bool,
    verb: &str,
) -> u8 {
    let (status, answer) = match client.send(method, path, body).await {
        Ok(answer) => answer,
        Err(error) => return fail(&error),
    };
    match status {
        StatusCode::OK => match client.decode::<ChangeResponse>(&answer) {
            Ok(done) if json => print_stdout(&to_json(&done)),
            Ok(done) => print_stdout(&format!("{verb} {} version {}\n", done.name, done.version)),
            Err(error) => fail(&error),
        },
        StatusCode::UNPROCESSABLE_ENTITY | StatusCode::CONFLICT => {
            match serde_json::from_slice::<ConfigErrorBody>(&answer) {
                Ok(body) => {
                    for line in &body.errors {
                        eprintln!("{line}");
                    }
                    eprintln!("vigilctl: {}", body.message);
                    if status == StatusCode::CONFLICT {
                        exit::TEMPFAIL
                    } else {
                        exit::CONFIG
                    }
                }
                Err(_) => fail(&client.error(status, &answer)),
            }
        }
        _ => fail(&client.error(status, &answer)),
    }
}

async fn get<T: serde::de::DeserializeOwned>(client: &Client, path: &str) -> Result<T, u8> {
    let (status, body) = client
        .send(Method::GET, path, None)
        .await
        .map_err(|e| fail(&e))?;
    if status != StatusCode::OK {
        return Err(fail(&client.error(status, &body)));
    }
    client.decode(&body).map_err(|e: ClientError| fail(&e))
}

fn ago(now_unix_secs: u64, at_unix_ms: u64) -> String {
    let secs = now_unix_secs.saturating_sub(at_unix_ms / 1000);
    format!("{} ago", render::duration(secs))
}

/// `config show`: one line per fragment, then what this node runs.
pub fn list_table(list: &ConfigList, now_unix_secs: u64) -> String {
    let mut out = String::new();
    if list.fragments.is_empty() {
        out.push_str("no shared config fragments\n");
    } else {
        let _ = writeln!(out, "{:<24} {:>7}  {:<16} PUSHED", "NAME", "VERSION", "BY");
        for f in &list.fragments {
            let _ = writeln!(
                out,
                "{:<24} {:>7}  {:<16} {}",
                f.name,
                f.version,
                f.pushed_by,
                ago(now_unix_secs, f.pushed_at_unix_ms)
            );
        }
    }
    let applied: Vec<String> = list
        .node
        .applied
        .iter()
        .map(|f| format!("{}@{}", f.name, f.version))
        .collect();
    let applied = if applied.is_empty() {
        "none".to_owned()
    } else {
        applied.join(", ")
    };
    let _ = writeln!(out, "this node runs: {applied}");
    if let Some(rejected) = &list.node.rejected {
        let set: Vec<String> = rejected
            .fragments
            .iter()
            .map(|f| format!("{}@{}", f.name, f.version))
            .collect();
        let _ = writeln!(out, "this node refused: {}", set.join(", "));
        for error in &rejected.errors {
            let _ = writeln!(out, "  {error}");
        }
    }
    out
}

/// `config history NAME`: one line per version.
pub fn history_table(history: &HistoryResponse, now_unix_secs: u64) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{:>7}  {:<22} {:<16} WHEN", "VERSION", "CHANGE", "BY");
    for e in &history.entries {
        let change = match e.change {
            Change::Push => "push".to_owned(),
            Change::Rollback { from } => format!("rollback to {from}"),
            Change::Remove => "remove".to_owned(),
        };
        let _ = writeln!(
            out,
            "{:>7}  {:<22} {:<16} {}",
            e.version,
            change,
            e.node,
            ago(now_unix_secs, e.at_unix_ms)
        );
    }
    out
}
