//! Compiles TOML text into a [`Config`]: parse with spans, walk every section collecting all
//! errors, then run the cross-section checks.

mod check;
mod cluster;
mod cross;
mod fragment;
mod keywords;
mod lvs;
mod track;
mod vip;
mod vrrp;

use std::net::SocketAddr;
use std::path::PathBuf;

use toml::de::DeTable;

use crate::error::ConfigError;
use crate::model::{Api, Config, DEFAULT_API_LISTEN, Global, LogFormat, Metrics};
use crate::walk::{Ctx, Table};

pub(crate) use cross::Refs;
pub(crate) use fragment::merge as merge_fragments;

/// Compiled config plus warnings, or every error.
pub(crate) type Compiled = Result<(Config, Vec<ConfigError>), Vec<ConfigError>>;

/// Parses and validates `src`; `file` names it in diagnostics.
pub(crate) fn compile(src: &str, file: &str) -> Compiled {
    let mut cx = Ctx::new(file, src);
    let Some(root) = parse(&mut cx, src) else {
        return Err(cx.into_diagnostics().0);
    };
    let config = compile_root(&mut cx, root.get_ref());
    let (errors, warnings) = cx.into_diagnostics();
    match config {
        Some(config) if errors.is_empty() => Ok((config, warnings)),
        _ => Err(errors),
    }
}

/// Parses `src` keeping spans; on a syntax error reports every one of them and returns `None`:
/// a tree recovered from broken syntax would only add misleading follow-on errors.
fn parse<'s>(cx: &mut Ctx<'_>, src: &'s str) -> Option<toml::Spanned<DeTable<'s>>> {
    let (root, syntax) = DeTable::parse_recoverable(src);
    if syntax.is_empty() {
        return Some(root);
    }
    for e in syntax {
        let span = e.span().unwrap_or(0..0);
        cx.error(
            &span,
            format!("TOML syntax error: {}", e.message().trim_end()),
        );
    }
    None
}

fn compile_root(cx: &mut Ctx<'_>, root: &DeTable<'_>) -> Option<Config> {
    let mut top = Table::new(root, 0..0, "the top level");
    let mut refs = Refs::default();

    let global = match top.table(cx, "global", "[global]") {
        Some(mut t) => global(cx, &mut t),
        None => global(cx, &mut Table::new(&DeTable::new(), 0..0, "[global]")),
    };
    let api = top.table(cx, "api", "[api]").map_or(
        Api {
            listen: DEFAULT_API_LISTEN,
            token_file: None,
        },
        |mut t| {
            let api = Api {
                listen: t.get(cx, "listen", DEFAULT_API_LISTEN),
                token_file: t.opt(cx, "token_file"),
            };
            if !api.listen.ip().is_loopback() && api.token_file.is_none() {
                cx.warn(
                    &t.value_span("listen"),
                    "the control API listens beyond loopback without `token_file`: anyone who can \
                     reach it can control this node",
                );
            }
            t.finish(cx);
            api
        },
    );
    let metrics =
        top.table(cx, "metrics", "[metrics]")
            .map_or(Metrics { listen: None }, |mut t| {
                let m = Metrics {
                    listen: t.opt::<SocketAddr>(cx, "listen"),
                };
                t.finish(cx);
                m
            });
    let cluster = top
        .table(cx, "cluster", "[cluster]")
        .and_then(|mut t| cluster::cluster(cx, &mut t, &global, &mut refs));

    // Whether `[cluster]` is written, even if invalid: its own errors are reported already, and
    // judging fencing as if it were absent would only add follow-on errors.
    let has_cluster = top.key_span("cluster").is_some();
    let mut vrrp_instances = Vec::new();
    for mut t in top.tables(cx, "vrrp_instance", "[[vrrp_instance]]") {
        if let Some(i) = vrrp::instance(cx, &mut t, has_cluster, &mut refs) {
            vrrp_instances.push(i);
        }
    }
    let sync_groups = top
        .tables(cx, "vrrp_sync_group", "[[vrrp_sync_group]]")
        .into_iter()
        .filter_map(|mut t| vrrp::sync_group(cx, &mut t, &mut refs))
        .collect();
    let track_scripts = top
        .tables(cx, "track_script", "[[track_script]]")
        .into_iter()
        .filter_map(|mut t| track::track_script(cx, &mut t, &mut refs))
        .collect();
    let virtual_servers = top
        .tables(cx, "virtual_server", "[[virtual_server]]")
        .into_iter()
        .filter_map(|mut t| lvs::virtual_server(cx, &mut t, &global.node_name, &mut refs))
        .collect();
    top.finish(cx);

    refs.check(cx);
    if let (Some(cluster), Some(at)) = (&cluster, &refs.fencing_session_timeout) {
        cluster::check_fencing(cx, cluster, &vrrp_instances, at);
    }
    if cx.has_errors() {
        return None;
    }
    Some(Config {
        global,
        api,
        metrics,
        vrrp_instances,
        sync_groups,
        track_scripts,
        virtual_servers,
        cluster,
    })
}

fn global(cx: &mut Ctx<'_>, t: &mut Table<'_, '_>) -> Global {
    let node_name = t
        .opt::<String>(cx, "node_name")
        .unwrap_or_else(default_node_name);
    if node_name.is_empty() {
        cx.error(&t.value_span("node_name"), "`node_name` must not be empty");
    }
    let g = Global {
        router_id: t.opt(cx, "router_id").unwrap_or_else(|| node_name.clone()),
        node_name,
        script_user: t.get(cx, "script_user", "nobody".to_owned()),
        script_group: t.opt(cx, "script_group"),
        log_format: t.get(cx, "log_format", LogFormat::Plain),
        state_dir: t.get(cx, "state_dir", PathBuf::from("/var/lib/vigil")),
        vrrp_rt_priority: match t.opt_int(cx, "vrrp_rt_priority", 0..=99) {
            None => Some(crate::DEFAULT_VRRP_RT_PRIORITY),
            Some(0) => None,
            Some(p) => u8::try_from(p).ok(),
        },
        vrrp_rlimit_rtime: t
            .opt_duration(
                cx,
                "vrrp_rlimit_rtime",
                std::time::Duration::from_millis(1)..=std::time::Duration::from_secs(10),
            )
            .unwrap_or(crate::DEFAULT_VRRP_RLIMIT_RTIME),
    };
    t.finish(cx);
    g
}

/// The host name (from `/proc/sys/kernel/hostname`, else `/etc/hostname`), or `"vigil"` when
/// neither is readable or both are empty. The default of `[global] node_name`.
pub fn default_node_name() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .map(|s| s.trim().to_owned())
        .find(|s| !s.is_empty())
        .unwrap_or_else(|| "vigil".to_owned())
}
