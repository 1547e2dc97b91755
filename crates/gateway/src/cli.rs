//! The command line of `cargo run --example gateway`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::{AccessLog, DumpKind, GatewayBuilder, Source};

/// `--help`.
pub const USAGE: &str = "\
usage: gateway [OPTIONS] [PATH...]

Serves Istio Gateway, VirtualService, DestinationRule and ServiceEntry configuration.
Each PATH is a YAML/JSON file or a directory (read recursively); files are watched and the
whole configuration is swapped on change (an invalid change is refused, the old one keeps
serving). Without PATH, serves the built-in demo (see examples/gateway/README.md).

options:
  --namespace NS         namespace of this gateway workload (default istio-system)
  --label KEY=VALUE      a label of this gateway workload; repeatable
                         (default istio=ingressgateway)
  --workers N            worker threads, each a single-threaded runtime with its own
                         SO_REUSEPORT sockets (default: one per core); with 1, the
                         whole gateway runs on the main thread
  --check                validate the configuration, print diagnostics, exit
                         (status 1 on errors)
  --dump KIND            print the plan (listeners, routes, clusters or endpoints), exit
  --admin ADDR|off       admin listener (default 127.0.0.1:15000)
  --credentials DIR      credentials as mounted secrets: DIR/<credentialName>/tls.crt, tls.key,
                         ca.crt (Kubernetes Secrets in the configuration work too)
  --access-log stdout|off  access log in Envoy's default format (default stdout)
  --seed N               seed of the random draws (weights, faults, mirrors)
  --header-timeout SECS  time to send a request head before 408 (default 10)
  --idle-timeout SECS    keep-alive idle time before closing (default 3600)
  --drain-time SECS      on SIGTERM or SIGINT: /ready fails, listeners keep accepting and
                         responses say connection: close (HTTP/2: GOAWAY) for at most this
                         long, or until no connection is left; then exit 0 (default 5)
  --poll SECS            how often the configuration files are checked for changes (default 1)
  --keep-parsed on|off   keep each configuration file's parsed documents between loads, so a
                         change parses, validates and translates only the documents it
                         touched (default on; off parses everything on every change)
  --build-nice N         how much lower than the workers' the priority of the thread that
                         builds a changed configuration is, 0 to 19 (default 10: requests
                         first on a busy CPU; 0: the same priority; Linux only)
  --dns-refresh SECS|off how often DNS endpoints are looked up again (default 30)
  --path-normalization NONE|BASE|MERGE_SLASHES|DECODE_AND_MERGE_SLASHES
                         how request paths are normalized before routing, as Istio's mesh
                         pathNormalization (default BASE)
  --proxy-protocol       every connection starts with a PROXY protocol header (v1 or v2) from
                         a TCP load balancer: its client address is the client's, and a
                         connection without a valid header is closed
  --num-trusted-proxies N
                         trusted proxies in front that add to x-forwarded-for: the client
                         address is taken from it as Envoy's xff_num_trusted_hops does
                         (default 0: the connection's peer, whatever the header says)
  --max-connections N    while N connections are open, close new ones at once (default: none)
  --max-documents N      the most documents one configuration file may hold, counting a
                         `kind: List` and each of its items; a larger file is refused
                         (default 10000)
  -h, --help             this text
";

/// What the command line asks for.
#[derive(Debug)]
#[non_exhaustive]
pub struct Cli {
    /// How to run (the configuration is the paths; none means the demo).
    pub gateway: GatewayBuilder,
    /// `--check`.
    pub check: bool,
    /// `--dump`.
    pub dump: Option<DumpKind>,
    /// `--help`.
    pub help: bool,
}

impl Cli {
    /// Whether no path was given (the built-in demo).
    pub fn is_demo(&self) -> bool {
        !self.gateway.has_config()
    }
}

/// Parses the arguments (without the program name).
///
/// # Errors
/// A message naming the bad argument.
pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Cli, String> {
    let mut options = GatewayBuilder::default().drain_on_signals(true);
    let mut labels = BTreeMap::new();
    let mut check = false;
    let mut dump = None;
    let mut help = false;
    let mut args = args.into_iter();
    let secs = |flag: &str, v: String| -> Result<Duration, String> {
        v.parse::<f64>()
            .ok()
            .filter(|s| s.is_finite() && *s > 0.0)
            .map(Duration::from_secs_f64)
            .ok_or_else(|| format!("{flag}: expected a positive number of seconds, got {v:?}"))
    };
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(v.to_owned())),
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| -> Result<String, String> {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match flag.as_str() {
            "-h" | "--help" => help = true,
            "--check" => check = true,
            "--namespace" => options.identity.namespace = value("--namespace")?,
            "--label" => {
                let v = value("--label")?;
                let (k, val) = v
                    .split_once('=')
                    .ok_or_else(|| format!("--label: expected KEY=VALUE, got {v:?}"))?;
                labels.insert(k.to_owned(), val.to_owned());
            }
            "--workers" => {
                let v = value("--workers")?;
                options.workers =
                    v.parse::<usize>().ok().filter(|n| *n > 0).ok_or_else(|| {
                        format!("--workers: expected a positive number, got {v:?}")
                    })?;
            }
            "--dump" => dump = Some(value("--dump")?.parse()?),
            "--admin" => {
                let v = value("--admin")?;
                options.admin = if v == "off" {
                    None
                } else {
                    Some(
                        v.parse::<SocketAddr>()
                            .map_err(|e| format!("--admin {v:?}: {e}"))?,
                    )
                };
            }
            "--credentials" => options.credentials = Some(PathBuf::from(value("--credentials")?)),
            "--access-log" => {
                options.access_log = match value("--access-log")?.as_str() {
                    "stdout" => AccessLog::Stdout,
                    "off" => AccessLog::Off,
                    other => {
                        return Err(format!(
                            "--access-log: expected stdout or off, got {other:?}"
                        ));
                    }
                };
            }
            "--seed" => {
                let v = value("--seed")?;
                options.random_seed = Some(
                    v.parse()
                        .map_err(|_| format!("--seed: expected a number, got {v:?}"))?,
                );
            }
            "--header-timeout" => {
                options.limits.header_timeout =
                    secs("--header-timeout", value("--header-timeout")?)?;
            }
            "--idle-timeout" => {
                options.limits.idle_timeout = secs("--idle-timeout", value("--idle-timeout")?)?;
            }
            "--drain-time" => options.drain_time = secs("--drain-time", value("--drain-time")?)?,
            "--poll" => options.poll_interval = secs("--poll", value("--poll")?)?,
            "--keep-parsed" => {
                options.keep_parsed = match value("--keep-parsed")?.as_str() {
                    "on" => true,
                    "off" => false,
                    other => {
                        return Err(format!("--keep-parsed: expected on or off, got {other:?}"));
                    }
                };
            }
            "--build-nice" => {
                let v = value("--build-nice")?;
                options.build_niceness = v.parse().ok().filter(|n| *n <= 19).ok_or_else(|| {
                    format!("--build-nice: expected a number from 0 to 19, got {v:?}")
                })?;
            }
            "--dns-refresh" => {
                let v = value("--dns-refresh")?;
                options.dns_refresh = if v == "off" {
                    None
                } else {
                    Some(secs("--dns-refresh", v)?)
                };
            }
            "--path-normalization" => {
                options.path_normalization = value("--path-normalization")?
                    .parse()
                    .map_err(|e| format!("--path-normalization: {e}"))?;
            }
            "--proxy-protocol" => options.topology.proxy_protocol = true,
            "--num-trusted-proxies" => {
                let v = value("--num-trusted-proxies")?;
                options.topology.num_trusted_proxies = v
                    .parse()
                    .map_err(|_| format!("--num-trusted-proxies: expected a number, got {v:?}"))?;
            }
            "--max-connections" => {
                let v = value("--max-connections")?;
                options.limits.max_connections =
                    Some(v.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                        format!("--max-connections: expected a positive number, got {v:?}")
                    })?);
            }
            "--max-documents" => {
                let v = value("--max-documents")?;
                options.max_documents = v.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                    format!("--max-documents: expected a positive number, got {v:?}")
                })?;
            }
            f if f.starts_with('-') && f.len() > 1 => {
                return Err(format!("unknown option {f} (see --help)"));
            }
            _ => options.sources.push(Source::Path(PathBuf::from(arg))),
        }
    }
    if !labels.is_empty() {
        options.identity.labels = labels;
    }
    Ok(Cli {
        gateway: options,
        check,
        dump,
        help,
    })
}

/// A `tracing` subscriber that prints the gateway's events (`info` and above, from this
/// crate) to standard error, one message a line, as the command line shows them.
///
/// ```
/// let _ = tracing::subscriber::set_global_default(portcullis_gateway::cli::StderrLog);
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct StderrLog;

impl tracing::Subscriber for StderrLog {
    fn enabled(&self, metadata: &tracing::Metadata<'_>) -> bool {
        *metadata.level() <= tracing::Level::INFO
            && metadata.target().starts_with("portcullis_gateway")
    }

    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }

    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}

    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}

    fn event(&self, event: &tracing::Event<'_>) {
        let mut message = Message(String::new());
        event.record(&mut message);
        eprintln!("{}", message.0);
    }

    fn enter(&self, _: &tracing::span::Id) {}

    fn exit(&self, _: &tracing::span::Id) {}
}

/// An event's `message` field.
struct Message(String);

impl tracing::field::Visit for Message {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        use std::fmt::Write as _;
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn flags_and_paths() {
        let cli = parse(
            [
                "--namespace",
                "edge",
                "--label",
                "app=gw",
                "--label=tier=front",
                "--workers",
                "2",
                "--dump",
                "routes",
                "--admin",
                "off",
                "conf/",
            ]
            .map(String::from),
        )
        .unwrap();
        assert_eq!(cli.gateway.identity.namespace, "edge");
        assert_eq!(cli.gateway.identity.labels.len(), 2);
        assert_eq!(cli.gateway.workers, 2);
        assert_eq!(cli.dump, Some(DumpKind::Routes));
        assert!(cli.gateway.admin.is_none());
        assert_eq!(cli.gateway.sources, vec![Source::Path("conf/".into())]);
        assert!(parse(["--workers", "0"].map(String::from)).is_err());
        assert!(parse(["--bogus"].map(String::from)).is_err());
        assert!(parse(Vec::<String>::new()).unwrap().is_demo());
    }

    #[test]
    fn poll_and_dns_refresh() {
        let cli = parse(["--poll", "0.1", "--dns-refresh", "off"].map(String::from)).unwrap();
        assert_eq!(cli.gateway.poll_interval, Duration::from_millis(100));
        assert_eq!(cli.gateway.dns_refresh, None);
        let cli = parse(["--dns-refresh=5"].map(String::from)).unwrap();
        assert_eq!(cli.gateway.dns_refresh, Some(Duration::from_secs(5)));
        assert!(parse(["--poll", "0"].map(String::from)).is_err());
    }

    #[test]
    fn topology_and_connection_cap() {
        let default = parse(Vec::<String>::new()).unwrap();
        assert!(!default.gateway.topology.proxy_protocol);
        assert_eq!(default.gateway.topology.num_trusted_proxies, 0);
        assert_eq!(default.gateway.limits.max_connections, None);
        let cli = parse(
            [
                "--proxy-protocol",
                "--num-trusted-proxies",
                "2",
                "--max-connections=100",
            ]
            .map(String::from),
        )
        .unwrap();
        assert!(cli.gateway.topology.proxy_protocol);
        assert_eq!(cli.gateway.topology.num_trusted_proxies, 2);
        assert_eq!(cli.gateway.limits.max_connections, Some(100));
        assert!(parse(["--max-connections", "0"].map(String::from)).is_err());
        assert!(parse(["--num-trusted-proxies", "-1"].map(String::from)).is_err());
    }

    #[test]
    fn configuration_loading() {
        let default = parse(Vec::<String>::new()).unwrap();
        assert_eq!(
            default.gateway.max_documents,
            portcullis_model::DEFAULT_MAX_DOCUMENTS
        );
        let cli = parse(["--max-documents", "20000"].map(String::from)).unwrap();
        assert_eq!(cli.gateway.max_documents, 20_000);
        assert!(parse(["--max-documents", "0"].map(String::from)).is_err());
        assert!(default.gateway.keep_parsed);
        assert_eq!(default.gateway.build_niceness, 10);
        let cli = parse(["--build-nice", "0"].map(String::from)).unwrap();
        assert_eq!(cli.gateway.build_niceness, 0);
        assert!(parse(["--build-nice", "20"].map(String::from)).is_err());
        assert!(parse(["--build-nice", "-1"].map(String::from)).is_err());
        let cli = parse(["--keep-parsed", "off"].map(String::from)).unwrap();
        assert!(!cli.gateway.keep_parsed);
        assert!(
            parse(["--keep-parsed=on"].map(String::from))
                .unwrap()
                .gateway
                .keep_parsed
        );
        let err = parse(["--keep-parsed", "no"].map(String::from)).unwrap_err();
        assert!(err.contains("expected on or off"), "{err}");
    }

    #[test]
    fn path_normalization() {
        use portcullis_proxy_core::path::PathNormalization;
        let default = parse(Vec::<String>::new()).unwrap();
        assert_eq!(default.gateway.path_normalization, PathNormalization::Base);
        let cli =
            parse(["--path-normalization", "DECODE_AND_MERGE_SLASHES"].map(String::from)).unwrap();
        assert_eq!(
            cli.gateway.path_normalization,
            PathNormalization::DecodeAndMergeSlashes
        );
        let cli = parse(["--path-normalization=NONE"].map(String::from)).unwrap();
        assert_eq!(cli.gateway.path_normalization, PathNormalization::None);
        assert!(parse(["--path-normalization", "base"].map(String::from)).is_err());
    }
}
