//! Config → state machine: a `vigil_conf::VrrpInstance` becomes a [`vigil_vrrp::config::InstanceConfig`].
//!
//! The conf crate has already checked ranges, families and references; what is left is the unit
//! change (durations → centiseconds), naming the tracked objects, and reading the start-up status
//! of the ones whose status can be known without waiting (files).

use std::net::IpAddr;
use std::path::Path;

use vigil_conf as conf;
use vigil_vrrp::config::{GarpConfig, InstanceConfig, MAX_TRACK_WEIGHT, TrackConfig};
use vigil_vrrp::instance::Input;
use vigil_vrrp::packet::{Auth, ChecksumMode, Version};

/// Why a configured instance cannot be turned into a state-machine config.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConvertError {
    /// The advert interval does not fit the wire field (conf should have refused it).
    #[error(
        "instance {name}: advert interval {interval:?} is not a whole number of centiseconds up to 40.95s"
    )]
    Interval {
        /// The instance.
        name: String,
        /// The configured interval.
        interval: std::time::Duration,
    },
    /// A VRRPv2 password longer than the 8-octet field.
    #[error("instance {name}: the VRRPv2 password is longer than 8 bytes")]
    Password {
        /// The instance.
        name: String,
    },
    /// A tracked script the config does not define.
    #[error("instance {name}: track script {script} is not defined")]
    UnknownScript {
        /// The instance.
        name: String,
        /// The missing script.
        script: String,
    },
    /// The state machine refused the result.
    #[error(transparent)]
    Protocol(#[from] vigil_vrrp::config::ConfigError),
}

/// Whether `instance`'s VIPs are fenced: `fencing = "quorum"`, except for an address owner,
/// whose VIPs are its own addresses and never move.
pub fn is_fenced(instance: &conf::VrrpInstance) -> bool {
    instance.fencing == conf::Fencing::Quorum && !instance.address_owner
}

/// The key of a tracked interface in [`Input::Track`].
pub fn interface_key(name: &str) -> String {
    format!("interface:{name}")
}

/// The key of a tracked script.
pub fn script_key(name: &str) -> String {
    format!("script:{name}")
}

/// The key of a tracked file.
pub fn file_key(path: &Path) -> String {
    format!("file:{}", path.display())
}

/// The key of a tracked health-check group.
pub fn group_key(name: &str) -> String {
    format!("group:{name}")
}

/// The checksum convention of VRRPv3 over IPv4 that `mode` names.
pub fn checksum_mode(mode: conf::V3Checksum) -> ChecksumMode {
    match mode {
        conf::V3Checksum::WithPseudoHeader => ChecksumMode::WithPseudoHeader,
        conf::V3Checksum::WithoutPseudoHeader => ChecksumMode::WithoutPseudoHeader,
        conf::V3Checksum::AcceptBoth => ChecksumMode::AcceptEither,
    }
}

/// Builds the state-machine config of `instance`, whose adverts leave from `primary` (the
/// socket's source address). Tracked files are read now so that a node starting in maintenance
/// never advertises its full priority first; `read_file` is injected for tests.
pub fn instance_config(
    instance: &conf::VrrpInstance,
    config: &conf::Config,
    primary: IpAddr,
    read_file: impl Fn(&Path) -> Option<i64>,
) -> Result<InstanceConfig, ConvertError> {
    let name = instance.name.clone();
    let version = match instance.version {
        conf::VrrpVersion::V2 => Version::V2,
        conf::VrrpVersion::V3 => Version::V3,
    };
    let centis = instance.advert_interval.as_millis() / 10;
    let advert_interval_cs = u16::try_from(centis)
        .ok()
        .filter(|cs| *cs > 0 && u128::from(*cs) * 10 == instance.advert_interval.as_millis())
        .ok_or_else(|| ConvertError::Interval {
            name: name.clone(),
            interval: instance.advert_interval,
        })?;
    let auth = match &instance.auth {
        None => Auth::None,
        Some(conf::Auth::SimplePassword(password)) => Auth::simple_text(password.as_bytes())
            .ok_or_else(|| ConvertError::Password { name: name.clone() })?,
    };
    let garp = garp_config(&instance.garp);
    let mut tracks = Vec::new();
    for iface in &instance.track.interfaces {
        // Up until the link monitor says otherwise: it reports the real state right at start.
        tracks.push(TrackConfig {
            name: interface_key(&iface.name),
            weight: iface.weight,
            up: true,
        });
    }
    for script in &instance.track.scripts {
        let defined =
            config
                .track_script(&script.name)
                .ok_or_else(|| ConvertError::UnknownScript {
                    name: name.clone(),
                    script: script.name.clone(),
                })?;
        // keepalived assumes a script up until its first failures prove otherwise.
        tracks.push(TrackConfig {
            name: script_key(&script.name),
            weight: script.weight.unwrap_or(defined.weight),
            up: true,
        });
    }
    for file in &instance.track.files {
        let (weight, up) = file_status(file.weight, read_file(&file.path).unwrap_or(0));
        tracks.push(TrackConfig {
            name: file_key(&file.path),
            weight,
            up,
        });
    }
    for group in &instance.track.groups {
        tracks.push(TrackConfig {
            name: group_key(&group.name),
            weight: group.weight.unwrap_or(0),
            up: true,
        });
    }
    if is_fenced(instance) {
        // Down (a fault) until the fencing task holds a valid lease: a node cut off from the
        // quorum must not be master, or its peer would stay backup while nobody holds the VIPs.
        tracks.push(TrackConfig {
            name: crate::fence::QUORUM_TRACK.to_owned(),
            weight: 0,
            up: false,
        });
    }
    let config = InstanceConfig {
        name,
        vrid: instance.vrid,
        version,
        priority: instance.priority,
        advert_interval_cs,
        primary_address: primary,
        addresses: instance.vips.iter().map(|v| v.addr).collect(),
        preempt: instance.preempt,
        preempt_delay: instance.preempt_delay,
        accept_mode: instance.accept_mode,
        auth,
        garp,
        tracks,
    };
    config.validate()?;
    Ok(config)
}

/// The state machine's announcement settings for the configured ones.
pub fn garp_config(garp: &conf::Garp) -> GarpConfig {
    GarpConfig {
        repeat: garp.count,
        delay: garp.delay,
        refresh: garp.refresh,
        refresh_repeat: garp.refresh_count,
    }
}

/// A tracked file's (weight, up) for the integer `n` it holds, with `configured` the file's
/// weight: 0 means any non-zero `n` is a fault; otherwise the priority moves by `n × weight`
/// (clamped to ±254), expressed as a positive weight that is up or a negative one that is down.
pub fn file_status(configured: i32, n: i64) -> (i32, bool) {
    if configured == 0 {
        return (0, n == 0);
    }
    let delta = n
        .saturating_mul(i64::from(configured))
        .clamp(-i64::from(MAX_TRACK_WEIGHT), i64::from(MAX_TRACK_WEIGHT));
    // In range after the clamp.
    let delta = i32::try_from(delta).unwrap_or(0);
    (delta, delta >= 0)
}

/// The inputs that move a tracked file to `(weight, up)`, ordered so that no intermediate step
/// is a spurious fault (weight 0 while down).
pub fn file_inputs(key: &str, (weight, up): (i32, bool)) -> [Input; 2] {
    let set_weight = Input::TrackWeight {
        name: key.to_owned(),
        weight,
    };
    let set_up = Input::Track {
        name: key.to_owned(),
        up,
    };
    if weight == 0 {
        [set_up, set_weight]
    } else {
        [set_weight, set_up]
    }
}

/// Parses a tracked file's contents: an integer, surrounding white space allowed; anything else
/// (or an empty file) is `None`, which callers treat as 0 like keepalived.
pub fn parse_file_value(text: &str) -> Option<i64> {
    text.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const CONFIG: &str = r#"
[[vrrp_instance]]
name = "vi_1"
interface = "vnet0"
vrid = 51
priority = 150
advert_interval = "50ms"
vips = ["10.0.0.100/24", "10.0.0.101"]
preempt_delay = "2s"
fencing = "off"
v3_checksum = "accept-both"
garp_count = 3
garp_delay = "0s"
track_interfaces = ["vnet0", { name = "vnet1", weight = -20 }]
track_scripts = ["chk", { name = "chk2", weight = 10 }]
track_files = [{ path = "/run/maint", weight = -5 }]

[[vrrp_instance]]
name = "vi_2"
interface = "vnet0"
vrid = 52
version = 2
advert_interval = "1s"
auth_pass = "secret"
vips = ["10.0.0.102"]
fencing = "off"

[[track_script]]
name = "chk"
command = ["/bin/true"]
weight = -30

[[track_script]]
name = "chk2"
command = ["/bin/true"]
"#;

    fn load() -> conf::Config {
        match conf::load_str(CONFIG, "test.toml") {
            Ok(config) => config,
            Err(e) => panic!("test config invalid: {e}"),
        }
    }

    fn primary() -> IpAddr {
        IpAddr::from([10, 0, 0, 1])
    }

    #[test]
    fn a_v3_instance_converts_with_its_tracks_and_units() {
        let config = load();
        let instance = &config.vrrp_instances[0];
        let got =
            instance_config(instance, &config, primary(), |_| Some(3)).expect("valid instance");
        assert_eq!(got.vrid, 51);
        assert_eq!(got.version, Version::V3);
        assert_eq!(got.priority, 150);
        assert_eq!(got.advert_interval_cs, 5);
        assert_eq!(got.primary_address, primary());
        assert_eq!(
            got.addresses,
            vec![IpAddr::from([10, 0, 0, 100]), IpAddr::from([10, 0, 0, 101])]
        );
        assert!(got.preempt);
        assert_eq!(got.preempt_delay, Duration::from_secs(2));
        assert_eq!(got.garp.repeat, 3);
        assert_eq!(got.garp.delay, None);
        let tracks: Vec<(&str, i32, bool)> = got
            .tracks
            .iter()
            .map(|t| (t.name.as_str(), t.weight, t.up))
            .collect();
        assert_eq!(
            tracks,
            [
                ("interface:vnet0", 0, true),
                ("interface:vnet1", -20, true),
                // The script's own weight, then the instance's override.
                ("script:chk", -30, true),
                ("script:chk2", 10, true),
                // 3 × -5, read at start: down with weight -15.
                ("file:/run/maint", -15, false),
            ]
        );
        assert_eq!(
            checksum_mode(instance.v3_checksum),
            ChecksumMode::AcceptEither
        );
    }

    #[test]
    fn a_v2_instance_carries_its_password_and_whole_seconds() {
        let config = load();
        let got = instance_config(&config.vrrp_instances[1], &config, primary(), |_| None)
            .expect("valid instance");
        assert_eq!(got.version, Version::V2);
        assert_eq!(got.advert_interval_cs, 100);
        assert_eq!(got.auth, Auth::simple_text(b"secret").expect("fits"));
    }

    #[test]
    fn a_fenced_instance_starts_with_its_quorum_track_down_unless_it_owns_the_addresses() {
        let config = load();
        let mut instance = config.vrrp_instances[1].clone();
        instance.fencing = conf::Fencing::Quorum;
        let quorum = |instance: &conf::VrrpInstance| {
            instance_config(instance, &config, primary(), |_| None)
                .expect("valid instance")
                .tracks
                .iter()
                .find(|t| t.name == crate::fence::QUORUM_TRACK)
                .map(|t| (t.weight, t.up))
        };
        // Weight 0, down: a fault until the fencing task holds a lease.
        assert_eq!(quorum(&instance), Some((0, false)));
        assert!(is_fenced(&instance));
        instance.address_owner = true;
        instance.priority = 255;
        assert_eq!(quorum(&instance), None);
        assert!(!is_fenced(&instance));
        assert_eq!(quorum(&config.vrrp_instances[1]), None);
    }

    #[test]
    fn an_unknown_track_script_is_refused() {
        let mut config = load();
        config.track_scripts.clear();
        let err = instance_config(&config.vrrp_instances[0], &config, primary(), |_| None);
        assert!(
            matches!(err, Err(ConvertError::UnknownScript { ref script, .. }) if script == "chk"),
            "{err:?}"
        );
    }

    #[test]
    fn tracked_file_values_scale_and_clamp() {
        assert_eq!(file_status(-5, 0), (0, true));
        assert_eq!(file_status(-5, 3), (-15, false));
        assert_eq!(file_status(10, 2), (20, true));
        assert_eq!(file_status(-100, 1000), (-254, false));
        // Weight 0: any non-zero value is a fault.
        assert_eq!(file_status(0, 0), (0, true));
        assert_eq!(file_status(0, 7), (0, false));
        assert_eq!(parse_file_value(" 42\n"), Some(42));
        assert_eq!(parse_file_value("x"), None);
    }

    #[test]
    fn file_inputs_never_pass_through_a_spurious_fault() {
        let key = "file:/f";
        let [first, second] = file_inputs(key, (0, true));
        assert_eq!(
            first,
            Input::Track {
                name: key.into(),
                up: true
            }
        );
        assert_eq!(
            second,
            Input::TrackWeight {
                name: key.into(),
                weight: 0
            }
        );
        let [first, second] = file_inputs(key, (-15, false));
        assert_eq!(
            first,
            Input::TrackWeight {
                name: key.into(),
                weight: -15
            }
        );
        assert_eq!(
            second,
            Input::Track {
                name: key.into(),
                up: false
            }
        );
    }
}
