//! The deployment files agree with the code, so that `docker compose up` does not fail on a
//! setting nobody reads or a value nobody accepts:
//!
//! - every variable compose.yaml interpolates is in .env.example, every one there is used, and
//!   none of them is a secret (the `init` service generates them all);
//! - each FLick container gets only names its own service reads (an alias, or a `FLICK_` name
//!   of one of its configuration sections: a service ignores sections it does not have, so a
//!   name meant for another service would be silently lost);
//! - the `init` service's own command (the real `flick init`, into a directory standing for
//!   the secrets volume) generates what the containers read, and each service's real binary,
//!   started with exactly its container's environment and `check-config`, accepts it: every key
//!   exists (sections refuse unknown keys) and every value is valid;
//! - NATS started with the nats container's command runs the generated configuration, each
//!   service connects to it as its own identity over TLS (the certificate names the host it
//!   dials), the database is created with the password the services use, and each health check
//!   probes the address its service listens on, with the binary its image holds;
//! - the `cluster` profile (with the settings .env.example documents for it) adds two NATS
//!   nodes; the three nodes, started with their containers' commands and the generated
//!   `nats-cluster.conf`, form one JetStream cluster with mutual TLS on the routes, every
//!   back-end service is given the three nodes and the persister's streams get a replica on each;
//! - the proxy's Caddyfile is the repository's, Caddy itself accepts it with the proxy's
//!   environment and the generated CA, and the gateway is reachable only through it.
//!
//! compose.yaml is read as text, not with a YAML library: `environment:` blocks must be maps
//! with one `KEY: value` per line and a `command:` one inline list, which this test enforces.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use flick_shared::config::{CONFIG_FILE_ENV, ENV_ALIASES, ENV_PREFIX, ENV_SPLIT};

/// A FLick container of compose.yaml and what its service reads.
struct FlickService {
    /// The compose service, and the Dockerfile target it is built from.
    name: &'static str,
    binary: &'static str,
    /// The sections of the service's `Config` struct.
    sections: &'static [&'static str],
    /// Sections read only in part, which accept keys they do not know (none today: the gateway
    /// no longer reads `[alerter]`, it shows the defaults the alerter recorded).
    lenient: &'static [&'static str],
    /// The variable holding the address the health check probes (`host:port`, or a port).
    listener: Option<&'static str>,
}

const FLICK_SERVICES: &[FlickService] = &[
    FlickService {
        name: "collector",
        binary: "flick-collector",
        sections: &["nats", "streams", "log", "collector"],
        lenient: &[],
        listener: None,
    },
    FlickService {
        name: "persister",
        binary: "flick-persister",
        sections: &[
            "nats",
            "streams",
            "database",
            "log",
            "persister",
            "retention",
        ],
        lenient: &[],
        listener: Some("FLICK_PERSISTER__OPS_LISTEN"),
    },
    FlickService {
        name: "alerter",
        binary: "flick-alerter",
        sections: &[
            "nats",
            "streams",
            "database",
            "log",
            "encryption",
            "alerter",
            "notify",
        ],
        lenient: &[],
        listener: Some("FLICK_ALERTER__OPS_LISTEN"),
    },
    FlickService {
        name: "gateway",
        binary: "flick-gateway",
        sections: &[
            "nats",
            "streams",
            "database",
            "log",
            "encryption",
            "gateway",
            "notify",
            "enrollment",
        ],
        lenient: &[],
        listener: Some("FLICK_GATEWAY__OPS_LISTEN"),
    },
];

/// The containers that get no FLick settings: the one-shot generator and the infrastructure.
const OTHER_SERVICES: &[&str] = &["init", "nats", "nats-2", "nats-3", "timescaledb", "proxy"];

/// The NATS nodes of the `cluster` profile: `nats` (in every profile) and the two it adds.
const CLUSTER_NODES: [&str; 3] = ["nats", "nats-2", "nats-3"];

/// Where the containers mount the secrets volume `init` writes.
const SECRETS_MOUNT: &str = "/flick";
/// The NATS account resolver's directory, in the nats container's data volume.
const RESOLVER_DIR: &str = "/data/jwt";

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(name: &str) -> String {
    let path = repository().join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("read {}: {err}", path.display()))
}

// --- compose.yaml as text ----------------------------------------------------------------------

/// A line of compose.yaml without its comment: number, indentation, content.
#[derive(Debug, Clone)]
struct Line {
    number: usize,
    indent: usize,
    text: String,
}

/// The text before a YAML comment (a `#` at the start or after a space, outside quotes).
fn strip_comment(line: &str) -> &str {
    let (mut single, mut double, mut previous) = (false, false, ' ');
    for (at, c) in line.char_indices() {
        match c {
            '\'' if !double => single = !single,
            '"' if !single => double = !double,
            '#' if !single && !double && previous.is_whitespace() => return &line[..at],
            _ => {}
        }
        previous = c;
    }
    line
}

fn lines(text: &str) -> Vec<Line> {
    text.lines()
        .enumerate()
        .filter_map(|(at, raw)| {
            let content = strip_comment(raw).trim_end();
            let trimmed = content.trim_start();
            (!trimmed.is_empty()).then(|| Line {
                number: at + 1,
                indent: content.len() - trimmed.len(),
                text: trimmed.to_owned(),
            })
        })
        .collect()
}

/// The entries of a block: each line at the block's first indentation, with the lines nested
/// under it.
fn entries(block: &[Line]) -> Vec<(&Line, &[Line])> {
    let Some(first) = block.first() else {
        return Vec::new();
    };
    let starts: Vec<usize> = (0..block.len())
        .filter(|&i| block[i].indent == first.indent)
        .collect();
    starts
        .iter()
        .enumerate()
        .map(|(n, &start)| {
            let end = starts.get(n + 1).copied().unwrap_or(block.len());
            (&block[start], &block[start + 1..end])
        })
        .collect()
}

/// `key: value` split at the first `: ` (or a trailing `:`), the value unquoted.
fn key_value(line: &Line) -> Option<(&str, String)> {
    let (key, value) = match line.text.split_once(": ") {
        Some((key, value)) => (key, value.trim()),
        None => (line.text.strip_suffix(':')?, ""),
    };
    Some((key, unquote(value)))
}

fn unquote(value: &str) -> String {
    for quote in ['"', '\''] {
        if let Some(inner) = value
            .strip_prefix(quote)
            .and_then(|rest| rest.strip_suffix(quote))
        {
            return inner.to_owned();
        }
    }
    value.to_owned()
}

/// The block nested under `key:` among `block`'s entries, with the value on the key's own line.
fn child<'a>(block: &'a [Line], key: &str) -> Option<(String, &'a [Line])> {
    entries(block).into_iter().find_map(|(line, nested)| {
        let (name, value) = key_value(line)?;
        (name == key).then_some((value, nested))
    })
}

/// One service of compose.yaml, as far as this test needs it.
#[derive(Debug)]
struct ComposeService {
    name: String,
    /// `environment:`, in file order, values as written (not interpolated).
    environment: Vec<(String, String)>,
    /// The health check's `test: [...]` items.
    healthcheck: Vec<String>,
    /// `command: [...]`, as written.
    command: Vec<String>,
    /// `volumes:`, each `source:target[:mode]` as written.
    volumes: Vec<String>,
    /// `ports:`, each as written.
    ports: Vec<String>,
    /// `profiles: [...]`: empty for a service of every `docker compose up`.
    profiles: Vec<String>,
    build_target: Option<String>,
}

fn parse_compose(text: &str) -> Vec<ComposeService> {
    let all = lines(text);
    let top = entries(&all);
    let (_, services) = top
        .iter()
        .find(|(line, _)| line.text == "services:")
        .expect("compose.yaml has a top-level `services:`");
    entries(services)
        .into_iter()
        .map(|(header, body)| {
            let name = header
                .text
                .strip_suffix(':')
                .unwrap_or_else(|| panic!("line {}: a service name", header.number))
                .to_owned();
            ComposeService {
                environment: environment(&name, body),
                healthcheck: child(body, "healthcheck")
                    .and_then(|(_, check)| child(check, "test"))
                    .map(|(test, _)| flow_list(&test))
                    .unwrap_or_default(),
                command: child(body, "command")
                    .map(|(command, _)| flow_list(&command))
                    .unwrap_or_default(),
                volumes: list_items(body, "volumes"),
                ports: list_items(body, "ports"),
                profiles: child(body, "profiles")
                    .map(|(profiles, _)| flow_list(&profiles))
                    .unwrap_or_default(),
                build_target: child(body, "build")
                    .and_then(|(_, build)| child(build, "target"))
                    .map(|(target, _)| target),
                name,
            }
        })
        .collect()
}

/// An `environment:` block, which must be a map with one `KEY: value` per line: the form this
/// test can read without a YAML parser, and the clearest to review.
fn environment(service: &str, body: &[Line]) -> Vec<(String, String)> {
    let Some((inline, block)) = child(body, "environment") else {
        return Vec::new();
    };
    assert!(
        inline.is_empty(),
        "compose.yaml: the environment of {service} must be a block map, one `KEY: value` per \
         line (found `environment: {inline}`)"
    );
    entries(block)
        .into_iter()
        .map(|(line, nested)| {
            let form = || {
                format!(
                    "compose.yaml line {}: the environment of {service} must be a map with one \
                     `KEY: value` per line (found `{}`)",
                    line.number, line.text
                )
            };
            assert!(
                nested.is_empty() && !line.text.starts_with('-'),
                "{}",
                form()
            );
            let (key, value) = key_value(line).unwrap_or_else(|| panic!("{}", form()));
            assert!(
                !key.is_empty()
                    && key
                        .chars()
                        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'),
                "{}: names are upper case",
                form()
            );
            assert!(
                !value.is_empty() && !value.starts_with(['|', '>', '[', '{']),
                "{}: give every variable a one-line value (an empty one would be taken from the \
                 shell that runs compose)",
                form()
            );
            (key.to_owned(), value)
        })
        .collect()
}

/// The `- item` lines under `key:`, unquoted.
fn list_items(body: &[Line], key: &str) -> Vec<String> {
    child(body, key)
        .map(|(_, items)| {
            items
                .iter()
                .filter_map(|line| line.text.strip_prefix("- "))
                .map(unquote)
                .collect()
        })
        .unwrap_or_default()
}

/// The items of an inline list such as `["CMD", "flick-gateway", "healthcheck"]`.
fn flow_list(text: &str) -> Vec<String> {
    let inner = text
        .strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
        .unwrap_or_else(|| panic!("compose.yaml: write it as one inline list [\"…\", …]: {text}"));
    inner.split(',').map(|item| unquote(item.trim())).collect()
}

// --- interpolation, as compose does it ---------------------------------------------------------

/// A `${NAME}`, `${NAME:-default}`, `${NAME:?message}` … or `$NAME` in compose.yaml.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Reference {
    name: String,
    kind: Kind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Plain,
    /// `:-`, or `-` (`unset_only`): the default when the variable is unset (or empty).
    Default {
        value: String,
        unset_only: bool,
    },
    /// `:?` or `?`: compose refuses to start without the variable.
    Required,
}

/// A piece of an interpolated string: literal text or a reference.
#[derive(Debug)]
enum Piece {
    Text(String),
    Variable(Reference),
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

fn pieces(text: &str) -> Vec<Piece> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push(Piece::Text(rest[..at].to_owned()));
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push(Piece::Text("$".to_owned()));
            rest = tail;
        } else if let Some(braced) = after.strip_prefix('{') {
            let end = braced
                .find('}')
                .unwrap_or_else(|| panic!("unclosed ${{ in {text:?}"));
            let inner = &braced[..end];
            let name_end = inner.find(|c| !is_name_char(c)).unwrap_or(inner.len());
            let (name, modifier) = inner.split_at(name_end);
            let kind = if modifier.is_empty() {
                Kind::Plain
            } else if let Some(value) = modifier.strip_prefix(":-") {
                Kind::Default {
                    value: value.to_owned(),
                    unset_only: false,
                }
            } else if let Some(value) = modifier.strip_prefix('-') {
                Kind::Default {
                    value: value.to_owned(),
                    unset_only: true,
                }
            } else if modifier.starts_with(":?") || modifier.starts_with('?') {
                Kind::Required
            } else {
                panic!("compose.yaml: unsupported interpolation ${{{inner}}}")
            };
            assert!(!name.is_empty(), "compose.yaml: empty name in ${{{inner}}}");
            out.push(Piece::Variable(Reference {
                name: name.to_owned(),
                kind,
            }));
            rest = &braced[end + 1..];
        } else if after.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
            let end = after.find(|c| !is_name_char(c)).unwrap_or(after.len());
            out.push(Piece::Variable(Reference {
                name: after[..end].to_owned(),
                kind: Kind::Plain,
            }));
            rest = &after[end..];
        } else {
            out.push(Piece::Text("$".to_owned()));
            rest = after;
        }
    }
    out.push(Piece::Text(rest.to_owned()));
    out
}

fn references(text: &str) -> Vec<Reference> {
    pieces(text)
        .into_iter()
        .filter_map(|piece| match piece {
            Piece::Variable(reference) => Some(reference),
            Piece::Text(_) => None,
        })
        .collect()
}

/// `text` with its variables replaced by their values in `variables` (.env.example).
fn interpolate(text: &str, variables: &BTreeMap<String, String>) -> String {
    pieces(text)
        .into_iter()
        .map(|piece| match piece {
            Piece::Text(text) => text,
            Piece::Variable(Reference { name, kind }) => {
                let value = variables.get(&name);
                match kind {
                    Kind::Default {
                        value: default,
                        unset_only,
                    } => match value {
                        Some(value) if unset_only || !value.is_empty() => value.clone(),
                        _ => default,
                    },
                    Kind::Plain | Kind::Required => value
                        .filter(|value| !value.is_empty())
                        .unwrap_or_else(|| panic!(".env.example gives ${name} no value"))
                        .clone(),
                }
            }
        })
        .collect()
}

/// `.env.example`: `NAME=value` lines, values bare (docker-compose 1.x keeps quotes that
/// Compose 2 strips, so a quoted value would differ between the two).
fn parse_env_file(text: &str) -> BTreeMap<String, String> {
    let mut variables = BTreeMap::new();
    for (at, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, value) = line
            .split_once('=')
            .unwrap_or_else(|| panic!(".env.example line {}: not NAME=value", at + 1));
        assert!(
            !name.is_empty() && name.chars().all(is_name_char),
            ".env.example line {}: bad name {name:?}",
            at + 1
        );
        assert!(
            !value.starts_with(['"', '\'']) && !value.contains(char::is_whitespace),
            ".env.example line {}: write the value of {name} bare, without quotes or spaces",
            at + 1
        );
        let previous = variables.insert(name.to_owned(), value.to_owned());
        assert!(previous.is_none(), ".env.example: {name} is set twice");
    }
    variables
}

// --- the checks --------------------------------------------------------------------------------

struct Files {
    compose_text: String,
    services: Vec<ComposeService>,
    /// .env.example (what a user's optional .env overrides).
    variables: BTreeMap<String, String>,
    /// What the `init` service's command wrote, into a directory standing for the secrets volume.
    hub: tempfile::TempDir,
}

/// Whether a variable of .env.example would hold a secret.
fn is_secret(name: &str) -> bool {
    ["PASSWORD", "SECRET", "KEY", "TOKEN"]
        .iter()
        .any(|s| name.contains(s))
}

fn files() -> Files {
    let compose_text = read("compose.yaml");
    let variables = parse_env_file(&read(".env.example"));
    let mut files = Files {
        services: parse_compose(&compose_text),
        compose_text,
        variables,
        hub: tempfile::tempdir().expect("a directory for the secrets volume"),
    };
    files.run_init();
    files
}

impl Files {
    fn service(&self, name: &str) -> &ComposeService {
        self.services
            .iter()
            .find(|service| service.name == name)
            .unwrap_or_else(|| panic!("compose.yaml has no service {name}"))
    }

    /// Every reference in compose.yaml outside comments.
    fn references(&self) -> Vec<Reference> {
        lines(&self.compose_text)
            .iter()
            .flat_map(|line| references(&line.text))
            .collect()
    }

    /// A path inside a container, as this test's stand-ins hold it: the secrets volume is the
    /// hub directory, the resolver's directory a folder in it.
    fn on_this_machine(&self, value: &str) -> String {
        let hub = self.hub.path().display().to_string();
        if let Some(rest) = value.strip_prefix(SECRETS_MOUNT) {
            format!("{hub}{rest}")
        } else if let Some(rest) = value.strip_prefix(RESOLVER_DIR) {
            format!("{hub}/resolver{rest}")
        } else {
            value.to_owned()
        }
    }

    /// A service's command, interpolated from .env.example, its paths on this machine.
    fn command(&self, service: &str) -> Vec<String> {
        self.service(service)
            .command
            .iter()
            .map(|item| self.on_this_machine(&interpolate(item, &self.variables)))
            .collect()
    }

    /// The `init` service's command with the real `flick`: what `docker compose up` generates.
    fn run_init(&mut self) {
        let init = self.service("init");
        assert_eq!(
            init.build_target.as_deref(),
            Some("flick"),
            "init runs `flick init` from the all-in-one image"
        );
        assert!(
            init.volumes
                .iter()
                .any(|v| v == &format!("flick-secrets:{SECRETS_MOUNT}")),
            "init writes into the secrets volume at {SECRETS_MOUNT}, read-write: {:?}",
            init.volumes
        );
        let command = self.command("init");
        assert_eq!(command.first().map(String::as_str), Some("init"));
        let output = Command::new(common::binary("flick"))
            .args(&command)
            .output()
            .expect("run flick init");
        assert!(
            output.status.success(),
            "the init service's command: {}",
            describe(&output)
        );
        let again = Command::new(common::binary("flick"))
            .args(&command)
            .output()
            .expect("run flick init");
        assert!(
            again.status.success()
                && String::from_utf8_lossy(&again.stdout).contains(" 0 files written"),
            "a second `up` runs init again, which keeps everything: {}",
            describe(&again)
        );
    }

    /// A service's environment with the values compose would give it (from .env.example), its
    /// paths on this machine.
    fn environment(&self, service: &str) -> Vec<(String, String)> {
        self.service(service)
            .environment
            .iter()
            .map(|(name, value)| {
                let value = interpolate(value, &self.variables);
                (name.clone(), self.on_this_machine(&value))
            })
            .collect()
    }

    /// The hosts a service's NATS URLs name (`NATS_URL`, `FLICK_NATS__URL` or flick.toml's,
    /// comma-separated), each one checked to be NATS over TLS.
    fn nats_hosts(&self, service: &str) -> Vec<String> {
        let environment = self.environment(service);
        let get = |key: &str| {
            environment
                .iter()
                .find(|(name, _)| name == key)
                .map(|(_, value)| value.clone())
        };
        let urls = get("NATS_URL")
            .or_else(|| get("FLICK_NATS__URL"))
            .unwrap_or_else(|| self.flick_toml("nats", "url"));
        urls.split(',')
            .map(|url| {
                url.trim()
                    .strip_prefix("tls://")
                    .and_then(|rest| rest.rsplit_once(':'))
                    .map(|(host, _)| host.to_owned())
                    .unwrap_or_else(|| panic!("{service}: NATS over TLS (found {urls})"))
            })
            .collect()
    }

    /// The settings the cluster profile takes, as .env.example documents them (its commented
    /// `#   NAME=value` lines), over .env.example's own values.
    fn for_the_cluster_profile(&mut self) -> BTreeMap<String, String> {
        let documented: BTreeMap<String, String> = read(".env.example")
            .lines()
            .filter_map(|line| line.strip_prefix("#   ")?.split_once('='))
            .filter(|(name, _)| self.variables.contains_key(*name))
            .map(|(name, value)| (name.to_owned(), value.to_owned()))
            .collect();
        assert!(
            !documented.is_empty(),
            ".env.example documents the cluster profile's values as `#   NAME=value` lines"
        );
        self.variables.extend(documented.clone());
        documented
    }

    /// `[section]`'s `key = "value"` of the generated flick.toml.
    fn flick_toml(&self, section: &str, key: &str) -> String {
        let text = std::fs::read_to_string(self.hub.path().join("flick.toml")).expect("flick.toml");
        let mut current = String::new();
        for line in text.lines().map(str::trim) {
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                current = name.to_owned();
            } else if let Some((name, value)) = line.split_once(" = ")
                && current == section
                && name == key
            {
                return unquote(value);
            }
        }
        panic!("flick.toml has no {section}.{key}")
    }
}

#[test]
fn compose_has_the_stack_and_nothing_that_stops_scaling() {
    let files = files();
    let names: BTreeSet<&str> = files.services.iter().map(|s| s.name.as_str()).collect();
    let expected: BTreeSet<&str> = FLICK_SERVICES
        .iter()
        .map(|s| s.name)
        .chain(OTHER_SERVICES.iter().copied())
        .collect();
    assert_eq!(
        names, expected,
        "compose.yaml's services (a new FLick container needs a row in FLICK_SERVICES)"
    );
    let code: Vec<Line> = lines(&files.compose_text);
    assert!(
        code.iter()
            .all(|line| !line.text.starts_with("container_name:")),
        "a fixed container_name stops `docker compose up --scale`"
    );
}

#[test]
fn every_variable_compose_uses_is_in_env_example_and_every_one_there_is_used() {
    let files = files();
    let used: BTreeSet<String> = files.references().into_iter().map(|r| r.name).collect();
    for reference in files.references() {
        let documented = files.variables.contains_key(&reference.name);
        match reference.kind {
            Kind::Default { .. } => assert!(
                documented,
                "compose.yaml uses ${{{}}}: add it to .env.example with its default, so every \
                 knob of the stack is listed there",
                reference.name
            ),
            Kind::Plain | Kind::Required => assert!(
                documented,
                "compose.yaml needs ${{{}}}, which .env.example does not define",
                reference.name
            ),
        }
    }
    let unused: Vec<&String> = files
        .variables
        .keys()
        .filter(|name| !used.contains(*name))
        .collect();
    assert!(
        unused.is_empty(),
        ".env.example defines variables compose.yaml never uses: {unused:?}"
    );
}

#[test]
fn env_example_holds_no_secrets() {
    let files = files();
    let secrets: Vec<&String> = files
        .variables
        .keys()
        .filter(|name| is_secret(name))
        .collect();
    assert!(
        secrets.is_empty(),
        ".env.example is optional overrides; `init` generates every secret: {secrets:?}"
    );
}

/// Which section a variable sets, if it is a name the services read at all.
fn section_of(name: &str) -> Option<String> {
    if let Some((_, target)) = ENV_ALIASES.iter().find(|(alias, _)| *alias == name) {
        return target.split('.').next().map(str::to_owned);
    }
    let rest = name.strip_prefix(ENV_PREFIX)?;
    let (section, key) = rest.split_once(ENV_SPLIT)?;
    (!section.is_empty() && !key.is_empty()).then(|| section.to_ascii_lowercase())
}

#[test]
fn each_container_gets_only_settings_of_its_own_service() {
    let files = files();
    for service in FLICK_SERVICES {
        for (name, _) in &files.service(service.name).environment {
            if name == CONFIG_FILE_ENV {
                continue;
            }
            let section = section_of(name).unwrap_or_else(|| {
                panic!(
                    "{}: {name} is neither an alias ({:?}) nor FLICK_<SECTION>__<KEY>",
                    service.name,
                    ENV_ALIASES
                        .iter()
                        .map(|(alias, _)| alias)
                        .collect::<Vec<_>>()
                )
            });
            assert!(
                service.sections.contains(&section.as_str()),
                "{}: {name} sets [{section}], which {} does not have (its sections: {:?}); the \
                 service would ignore it",
                service.name,
                service.binary,
                service.sections
            );
        }
    }
}

fn check_config(binary: &Path, environment: &[(String, String)]) -> Output {
    Command::new(binary)
        .arg("check-config")
        .env_clear()
        .envs(environment.iter().map(|(name, value)| (name, value)))
        .output()
        .unwrap_or_else(|err| panic!("run {}: {err}", binary.display()))
}

fn describe(output: &Output) -> String {
    format!(
        "exit {:?}, stdout {:?}, stderr {:?}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).trim(),
        String::from_utf8_lossy(&output.stderr).trim()
    )
}

#[test]
fn each_service_accepts_exactly_its_containers_environment() {
    let files = files();
    for service in FLICK_SERVICES {
        let binary = common::binary(service.binary);
        let environment = files.environment(service.name);
        let output = check_config(&binary, &environment);
        assert!(
            output.status.success()
                && String::from_utf8_lossy(&output.stdout)
                    .contains(&format!("{}: configuration ok", service.binary)),
            "{} check-config with the environment compose.yaml gives the {} container: {} \
             (a binary older than `check-config` answers with its usage: `cargo build --bins`)",
            service.binary,
            service.name,
            describe(&output)
        );
    }
}

/// The section table above is the services' own: probing each section with a key nobody has
/// fails exactly where the service has that section (it refuses unknown keys), and is ignored
/// elsewhere.
#[test]
fn the_section_table_matches_the_services() {
    let files = files();
    let every_section: BTreeSet<&str> = FLICK_SERVICES
        .iter()
        .flat_map(|service| service.sections.iter().copied())
        .collect();
    for service in FLICK_SERVICES {
        let binary = common::binary(service.binary);
        let base = check_config(&binary, &files.environment(service.name));
        assert!(
            base.status.success(),
            "{}: the container's environment itself is refused (see \
             each_service_accepts_exactly_its_containers_environment): {}",
            service.name,
            describe(&base)
        );
        for section in &every_section {
            if service.lenient.contains(section) {
                continue;
            }
            let mut environment = files.environment(service.name);
            let probe = format!(
                "{ENV_PREFIX}{}{ENV_SPLIT}NO_SUCH_SETTING",
                section.to_ascii_uppercase()
            );
            environment.push((probe.clone(), "1".to_owned()));
            let output = check_config(&binary, &environment);
            if service.sections.contains(section) {
                assert!(
                    output.status.code() == Some(2)
                        && String::from_utf8_lossy(&output.stderr).contains("no_such_setting"),
                    "{} should refuse {probe} (it has [{section}]): {}",
                    service.binary,
                    describe(&output)
                );
            } else {
                assert!(
                    output.status.success(),
                    "{} refuses {probe}, so it has [{section}]: add it to its sections: {}",
                    service.binary,
                    describe(&output)
                );
            }
        }
    }
}

/// The value after `flag` in a command.
fn flag<'a>(command: &'a [String], flag: &str) -> Option<&'a str> {
    let at = command.iter().position(|item| item == flag)?;
    command.get(at + 1).map(String::as_str)
}

/// A container reading the generated files mounts the secrets volume there, read-only.
fn assert_mounts_secrets(service: &ComposeService) {
    assert!(
        service
            .volumes
            .iter()
            .any(|v| v == &format!("flick-secrets:{SECRETS_MOUNT}:ro")),
        "{}: mount the secrets volume read-only (flick-secrets:{SECRETS_MOUNT}:ro): {:?}",
        service.name,
        service.volumes
    );
}

/// Kills the nats-server it holds when dropped.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts nats-server with the command of the container `service`, with this machine's
/// stand-ins for the container's store and ports: `store`, the client port `port`, no
/// monitoring port, and `extra` arguments.
fn start_nats(
    service: &str,
    mut command: Vec<String>,
    store: &Path,
    port: u16,
    extra: &[String],
) -> Killed {
    for (name, value) in [("-sd", store.display().to_string()), ("-m", "0".to_owned())] {
        let at = command
            .iter()
            .position(|item| item == name)
            .unwrap_or_else(|| panic!("{service}: {name}"));
        command[at + 1] = value;
    }
    command.extend(["-p".to_owned(), port.to_string()]);
    command.extend(extra.iter().cloned());
    Killed(
        Command::new(std::env::var("NATS_SERVER_BIN").unwrap_or_else(|_| "nats-server".into()))
            .args(&command)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start nats-server"),
    )
}

#[test]
fn nats_runs_the_generated_configuration_and_each_service_connects_as_its_own_identity() {
    let files = files();
    let nats = files.service("nats");
    assert_mounts_secrets(nats);
    let command = files.command("nats");
    let config = flag(&command, "-c").expect("nats: -c <the generated nats-server.conf>");
    assert_eq!(
        config,
        files.on_this_machine(&format!("{SECRETS_MOUNT}/nats/nats-server.conf")),
        "nats runs the configuration init generated"
    );
    assert!(
        flag(&files.command("init"), "--resolver-dir")
            .is_some_and(|dir| dir.starts_with(&files.on_this_machine(RESOLVER_DIR))),
        "the account resolver's directory is in the nats container's data volume"
    );
    let store = tempfile::tempdir().expect("a store");
    let port = flick_shared::testkit::free_port();
    std::fs::create_dir_all(files.on_this_machine(RESOLVER_DIR)).expect("resolver dir");
    let _server = start_nats("nats", command, store.path(), port, &[]);

    let names = std::fs::read_to_string(files.hub.path().join("tls/server.names"))
        .expect("the names NATS's certificate carries");
    let ca = files.hub.path().join("tls/ca.pem");
    let creds_dir = files.on_this_machine(&files.flick_toml("nats", "creds_dir"));
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    runtime.block_on(async {
        let connect = |creds: Option<PathBuf>| {
            let ca = ca.clone();
            async move {
                let options = match creds {
                    Some(creds) => async_nats::ConnectOptions::with_credentials_file(creds)
                        .await
                        .expect("read the creds"),
                    None => async_nats::ConnectOptions::new(),
                };
                let client = options
                    .add_root_certificates(ca)
                    .require_tls(true)
                    .connect(format!("tls://127.0.0.1:{port}"))
                    .await?;
                client.flush().await.map_err(|err| {
                    async_nats::ConnectError::with_source(async_nats::ConnectErrorKind::Io, err)
                })?;
                Ok::<_, async_nats::ConnectError>(client)
            }
        };
        // The server is up once a service connects; give it a few seconds to start.
        let mut first = Err(None);
        for _ in 0..50 {
            let creds = PathBuf::from(&creds_dir).join("persister.creds");
            match connect(Some(creds)).await {
                Ok(client) => {
                    first = Ok(client);
                    break;
                }
                Err(err) => first = Err(Some(err)),
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        first.unwrap_or_else(|err| panic!("the persister connects: {err:?}"));
        assert!(
            connect(None).await.is_err(),
            "a client without credentials is refused"
        );

        for service in FLICK_SERVICES {
            let compose = files.service(service.name);
            assert_mounts_secrets(compose);
            let environment = files.environment(service.name);
            let get = |key: &str| {
                environment
                    .iter()
                    .find(|(name, _)| name == key)
                    .map(|(_, value)| value.clone())
            };
            assert_eq!(
                get(CONFIG_FILE_ENV),
                Some(files.on_this_machine(&format!("{SECRETS_MOUNT}/flick.toml"))),
                "{}: reads the generated flick.toml",
                service.name
            );
            for forbidden in [
                "FLICK_NATS__USER",
                "FLICK_NATS__PASSWORD",
                "FLICK_NATS__CREDS",
            ] {
                assert!(
                    get(forbidden).is_none(),
                    "{}: connects as its own role's identity, not {forbidden}",
                    service.name
                );
            }
            for host in files.nats_hosts(service.name) {
                assert!(
                    names.lines().any(|name| name == host),
                    "{}: dials {host}, which NATS's certificate must name ({names:?})",
                    service.name
                );
            }
            let creds = PathBuf::from(&creds_dir).join(format!("{}.creds", service.name));
            connect(Some(creds))
                .await
                .unwrap_or_else(|err| panic!("{} connects as itself: {err}", service.name));
        }
    });
}

#[test]
fn the_cluster_profile_runs_three_nats_nodes_that_form_one_jetstream_cluster() {
    let mut files = files();
    let documented = files.for_the_cluster_profile();
    for service in FLICK_SERVICES {
        let output = check_config(
            &common::binary(service.binary),
            &files.environment(service.name),
        );
        assert!(
            output.status.success(),
            "{} check-config with the cluster profile's settings: {}",
            service.binary,
            describe(&output)
        );
    }
    assert!(
        files.service("nats").profiles.is_empty(),
        "nats runs in every profile (the default `up` is one node)"
    );
    for node in &CLUSTER_NODES[1..] {
        assert_eq!(
            files.service(node).profiles,
            ["cluster"],
            "{node}: only in the cluster profile"
        );
        assert_mounts_secrets(files.service(node));
    }
    // Every node runs the cluster configuration init generated, under its own name and with
    // its own data volume (store and account resolver); the file routes to the three nodes.
    let config = files.on_this_machine(&format!("{SECRETS_MOUNT}/nats/nats-cluster.conf"));
    let text = std::fs::read_to_string(&config).expect("init writes nats/nats-cluster.conf");
    let routes: Vec<&str> = text
        .lines()
        .filter_map(|line| {
            line.trim()
                .strip_prefix("\"nats-route://")?
                .strip_suffix('"')
        })
        .collect();
    assert_eq!(
        routes,
        CLUSTER_NODES.map(|node| format!("{node}:6222")),
        "nats-cluster.conf routes to every node of the profile"
    );
    let mut volumes = BTreeSet::new();
    for node in CLUSTER_NODES {
        let command = files.command(node);
        assert_eq!(
            flag(&command, "-c"),
            Some(config.as_str()),
            "{node}: runs nats-cluster.conf with the cluster profile's settings ({documented:?})"
        );
        assert_eq!(
            flag(&command, "--server_name"),
            Some(node),
            "{node}: its name"
        );
        let data = files
            .service(node)
            .volumes
            .iter()
            .find(|volume| volume.ends_with(":/data"))
            .unwrap_or_else(|| panic!("{node}: a data volume at /data"))
            .clone();
        assert!(volumes.insert(data), "{node}: a data volume of its own");
    }

    // The three nodes from their compose commands; this machine's stand-ins for the network's
    // names: a client and a route port each on loopback (`--cluster`, `--routes` replace the
    // file's listen address and routes).
    let ports = CLUSTER_NODES.map(|_| flick_shared::testkit::free_port());
    let route_ports = CLUSTER_NODES.map(|_| flick_shared::testkit::free_port());
    let local_routes = route_ports
        .iter()
        .map(|port| format!("nats-route://127.0.0.1:{port}"))
        .collect::<Vec<_>>()
        .join(",");
    std::fs::create_dir_all(files.on_this_machine(RESOLVER_DIR)).expect("resolver dir");
    let stores: Vec<tempfile::TempDir> = CLUSTER_NODES
        .iter()
        .map(|_| tempfile::tempdir().expect("a store"))
        .collect();
    let _servers: Vec<Killed> = CLUSTER_NODES
        .iter()
        .enumerate()
        .map(|(i, node)| {
            let extra = [
                "--cluster".to_owned(),
                format!("nats://127.0.0.1:{}", route_ports[i]),
                "--routes".to_owned(),
                local_routes.clone(),
            ];
            start_nats(
                node,
                files.command(node),
                stores[i].path(),
                ports[i],
                &extra,
            )
        })
        .collect();

    // Each back-end service is given every node; connected with its own identity through that
    // list, the persister creates the streams with the replicas its container is given.
    let ca = files.hub.path().join("tls/ca.pem");
    let creds_dir = PathBuf::from(files.on_this_machine(&files.flick_toml("nats", "creds_dir")));
    let prefix = files.flick_toml("nats", "prefix");
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    runtime.block_on(async {
        for service in FLICK_SERVICES.iter().filter(|s| s.name != "collector") {
            let hosts = files.nats_hosts(service.name);
            assert_eq!(hosts, CLUSTER_NODES, "{}: given every node", service.name);
            let url = hosts
                .iter()
                .map(|host| {
                    let at = CLUSTER_NODES.iter().position(|node| node == host);
                    format!("tls://127.0.0.1:{}", ports[at.expect("a node")])
                })
                .collect::<Vec<_>>()
                .join(",");
            let settings = flick_shared::config::NatsSettings {
                url,
                prefix: prefix.clone(),
                creds: Some(creds_dir.join(format!("{}.creds", service.name))),
                ca: Some(ca.clone()),
                ..Default::default()
            };
            let client = flick_shared::testkit::eventually(
                &format!("{} connected to the cluster", service.name),
                std::time::Duration::from_secs(30),
                || async {
                    flick_shared::nats::connect(&settings, service.name)
                        .await
                        .ok()
                },
            )
            .await;
            if service.name != "persister" {
                continue;
            }
            let replicas: usize = files
                .environment(service.name)
                .iter()
                .find(|(name, _)| name == "FLICK_STREAMS__REPLICAS")
                .and_then(|(_, value)| value.parse().ok())
                .expect("persister: FLICK_STREAMS__REPLICAS");
            assert_eq!(replicas, 3, "the cluster profile's streams have 3 replicas");
            let limits = flick_shared::config::StreamSettings {
                replicas,
                ..flick_shared::testkit::stream_settings()
            };
            let subjects = flick_shared::Subjects::new(prefix.clone()).expect("the prefix");
            let js = async_nats::jetstream::new(client);
            let kinds = flick_shared::subjects::StreamKind::ALL;
            flick_shared::testkit::eventually(
                "the streams created on the cluster (a meta leader and 3 peers)",
                std::time::Duration::from_secs(60),
                || async {
                    flick_shared::streams::ensure_streams(&js, &subjects, &limits, &kinds)
                        .await
                        .ok()
                },
            )
            .await;
            let name = subjects.stream_name(flick_shared::subjects::StreamKind::Metrics);
            let mut stream = js.get_stream(&name).await.expect("the metrics stream");
            let cluster = stream
                .info()
                .await
                .expect("its info")
                .cluster
                .clone()
                .expect("clustered");
            let mut peers: Vec<String> = cluster.replicas.iter().map(|r| r.name.clone()).collect();
            peers.extend(cluster.leader.clone());
            peers.sort();
            assert_eq!(peers, CLUSTER_NODES, "a replica on every node: {cluster:?}");
        }
    });
}

#[test]
fn the_database_is_created_with_the_password_the_services_use() {
    let files = files();
    let database = files.service("timescaledb");
    assert_mounts_secrets(database);
    let environment = files.environment("timescaledb");
    let file = environment
        .iter()
        .find(|(name, _)| name == "POSTGRES_PASSWORD_FILE")
        .map(|(_, value)| value.clone())
        .expect("timescaledb: POSTGRES_PASSWORD_FILE");
    let password = std::fs::read_to_string(&file).expect("the password file");
    let url = files.flick_toml("database", "url");
    assert!(
        url.contains(&format!("flick:{}@timescaledb:5432/flick", password.trim())),
        "the services' database.url carries the password the database is created with: {url}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&file).expect("stat").permissions().mode();
        assert_eq!(
            mode & 0o004,
            0o004,
            "the database image reads it as its own user, not as the flick user that wrote it"
        );
    }
}

#[test]
fn the_proxy_is_the_one_front_door_and_caddy_accepts_its_configuration() {
    let files = files();
    let proxy = files.service("proxy");
    assert_mounts_secrets(proxy);
    assert!(
        proxy
            .volumes
            .iter()
            .any(|v| v == "./Caddyfile:/etc/caddy/Caddyfile:ro"),
        "proxy: the repository's Caddyfile: {:?}",
        proxy.volumes
    );
    // Fixed host ports, one each: an engine hands out a range round-robin, so the address would
    // move after `down`/`up`.
    let published: Vec<String> = proxy
        .ports
        .iter()
        .map(|port| interpolate(port, &files.variables))
        .collect();
    assert_eq!(
        published,
        ["0.0.0.0:8080:8080", "0.0.0.0:8443:8443"],
        "the dashboard on 8080 (HTTP) and 8443 (HTTPS) by default"
    );
    for service in FLICK_SERVICES {
        assert!(
            files.service(service.name).ports.is_empty(),
            "{}: reached through the proxy (or NATS), never published itself",
            service.name
        );
    }
    let gateway = files.environment("gateway");
    let get = |key: &str| {
        gateway
            .iter()
            .find(|(name, _)| name == key)
            .map(|(_, value)| value.as_str())
    };
    assert_eq!(
        (
            get("FLICK_GATEWAY__TRUST_FORWARDED_FOR"),
            get("FLICK_GATEWAY__TRUSTED_PROXIES")
        ),
        (Some("true"), Some("1")),
        "behind one proxy, the client is the right-most X-Forwarded-For entry"
    );

    // Caddy (Debian's caddy) validates the file with the proxy's environment; the CA paths
    // point at the generated volume.
    let mut command = Command::new("caddy");
    command
        .args(["validate", "--adapter", "caddyfile", "--config"])
        .arg(repository().join("Caddyfile"))
        .env("FLICK_SECRETS", files.hub.path());
    for (name, value) in files.environment("proxy") {
        command.env(name, value);
    }
    let output = command
        .output()
        .expect("caddy (apt-get install caddy) validates the Caddyfile");
    assert!(
        output.status.success(),
        "caddy validate: {}",
        describe(&output)
    );
}

/// The `FROM … AS <stage>` names of the Dockerfile, each with its `ENTRYPOINT` line.
fn dockerfile_stages() -> BTreeMap<String, String> {
    let mut stages = BTreeMap::new();
    let mut current = None;
    for line in read("Dockerfile").lines().map(str::trim) {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            [from, _, as_, name]
                if from.eq_ignore_ascii_case("FROM") && as_.eq_ignore_ascii_case("AS") =>
            {
                current = Some((*name).to_owned());
                stages.insert((*name).to_owned(), String::new());
            }
            [entrypoint, ..] if entrypoint.eq_ignore_ascii_case("ENTRYPOINT") => {
                if let Some(stage) = &current {
                    stages.insert(stage.clone(), line.to_owned());
                }
            }
            _ => {}
        }
    }
    stages
}

#[test]
fn each_image_and_health_check_fits_its_service() {
    let files = files();
    let stages = dockerfile_stages();
    for service in FLICK_SERVICES {
        let compose = files.service(service.name);
        assert_eq!(
            compose.build_target.as_deref(),
            Some(service.name),
            "{}: build the Dockerfile target of the same name",
            service.name
        );
        let entrypoint = stages
            .get(service.name)
            .unwrap_or_else(|| panic!("the Dockerfile has no stage {}", service.name));
        assert!(
            entrypoint.contains(&format!("\"{}\"", service.binary)),
            "Dockerfile stage {}: ENTRYPOINT should run {} (found {entrypoint:?})",
            service.name,
            service.binary
        );

        let check = &compose.healthcheck;
        assert!(
            check.len() >= 3
                && check[0] == "CMD"
                && check[1] == service.binary
                && check[2] == "healthcheck",
            "{}: the health check runs `{} healthcheck …` (found {check:?})",
            service.name,
            service.binary
        );
        let environment = files.environment(service.name);
        let get = |key: &str| {
            environment
                .iter()
                .find(|(name, _)| name == key)
                .map(|(_, value)| value.clone())
        };
        match service.listener {
            None => assert!(
                get("FLICK_COLLECTOR__HEARTBEAT_PATH").is_some(),
                "{}: `healthcheck` reads the file FLICK_COLLECTOR__HEARTBEAT_PATH names",
                service.name
            ),
            Some(listener) => {
                let address =
                    get(listener).unwrap_or_else(|| panic!("{}: set {listener}", service.name));
                let (host, port) = match address.rsplit_once(':') {
                    Some((host, port)) => (host.to_owned(), port.to_owned()),
                    None => (get("FLICK_GATEWAY__HOST").unwrap_or_default(), address),
                };
                assert!(
                    host == "0.0.0.0" || host == "[::]",
                    "{}: listen on all interfaces inside the container (found {host:?}), or \
                     nothing outside it reaches the service",
                    service.name
                );
                let url = check.get(3).map(String::as_str).unwrap_or_default();
                assert_eq!(
                    url,
                    format!("http://127.0.0.1:{port}/readyz"),
                    "{}: the health check asks the port the service listens on",
                    service.name
                );
            }
        }
    }
}

#[test]
fn the_parser_reads_what_compose_reads() {
    let mut variables = BTreeMap::new();
    variables.insert("A".to_owned(), "x".to_owned());
    variables.insert("EMPTY".to_owned(), String::new());
    assert_eq!(
        interpolate("p://u:${A}@h/$A-$$", &variables),
        "p://u:x@h/x-$"
    );
    assert_eq!(
        interpolate("${B:-8080-8089}:8080", &variables),
        "8080-8089:8080"
    );
    assert_eq!(interpolate("${EMPTY:-d}|${EMPTY-d}", &variables), "d|");
    assert_eq!(interpolate("${A:?set it in .env}", &variables), "x");
    assert_eq!(
        references("${A:?m} ${B:-1} ${C}"),
        [
            Reference {
                name: "A".into(),
                kind: Kind::Required
            },
            Reference {
                name: "B".into(),
                kind: Kind::Default {
                    value: "1".into(),
                    unset_only: false
                }
            },
            Reference {
                name: "C".into(),
                kind: Kind::Plain
            },
        ]
    );

    let compose = "services:\n  a:\n    # a comment\n    environment:\n      X: \"1\" # why\n      Y: ${A}\n    healthcheck:\n      test: [\"CMD\", \"b\"]\n  c:\n    image: d\nvolumes:\n  v:\n";
    let services = parse_compose(compose);
    assert_eq!(services.len(), 2);
    assert_eq!(
        services[0].environment,
        [("X".into(), "1".into()), ("Y".into(), "${A}".into())]
    );
    assert_eq!(services[0].healthcheck, ["CMD", "b"]);
    assert!(services[1].environment.is_empty());

    let list_form = "services:\n  a:\n    environment:\n      - X=1\n";
    let refused = std::panic::catch_unwind(|| parse_compose(list_form));
    assert!(refused.is_err(), "the list form of environment is refused");
}
