//! The deployment files agree with the code, so that `docker compose up` does not fail on a
//! setting nobody reads or a value nobody accepts:
//!
//! - every variable compose.yaml interpolates is in .env.example, and every one there is used;
//! - each FLick container gets only names its own service reads (an alias, or a `FLICK_` name
//!   of one of its configuration sections: a service ignores sections it does not have, so a
//!   name meant for another service would be silently lost);
//! - each service's real binary, started with exactly its container's environment (values from
//!   .env.example) and `check-config`, accepts it: every key exists (sections refuse unknown
//!   keys) and every value is valid;
//! - the nats container passes nats.conf every password it needs, each service logs in as its
//!   own nats.conf user with that user's password, and each health check probes the address its
//!   service listens on, with the binary its image holds.
//!
//! compose.yaml is read as text, not with a YAML library: `environment:` blocks must be maps
//! with one `KEY: value` per line, which this test enforces.

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
    /// Sections read only in part, which accept keys they do not know: the gateway reads the
    /// alerter's default thresholds and nothing else of `[alerter]`.
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
            "alerter",
        ],
        lenient: &["alerter"],
        listener: Some("FLICK_GATEWAY__PORT"),
    },
];

/// The infrastructure containers, which get no FLick settings.
const OTHER_SERVICES: &[&str] = &["nats", "timescaledb"];

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

/// The items of an inline list such as `["CMD", "flick-gateway", "healthcheck"]`.
fn flow_list(text: &str) -> Vec<String> {
    let inner = text
        .strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
        .unwrap_or_else(|| panic!("compose.yaml: write the health check as [\"CMD\", …]: {text}"));
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
    variables: BTreeMap<String, String>,
}

fn files() -> Files {
    let compose_text = read("compose.yaml");
    Files {
        services: parse_compose(&compose_text),
        compose_text,
        variables: parse_env_file(&read(".env.example")),
    }
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

    /// A service's environment with the values compose would give it from .env.example.
    fn environment(&self, service: &str) -> Vec<(String, String)> {
        self.service(service)
            .environment
            .iter()
            .map(|(name, value)| (name.clone(), interpolate(value, &self.variables)))
            .collect()
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
fn env_example_holds_placeholders_not_secrets() {
    let files = files();
    for (name, value) in &files.variables {
        if ["PASSWORD", "SECRET", "KEY"]
            .iter()
            .any(|s| name.contains(s))
        {
            assert!(
                value.to_ascii_lowercase().contains("change"),
                ".env.example: {name} must be an obvious placeholder (containing `change`), \
                 never a real secret"
            );
        }
    }
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

/// `user: name` followed by `password: $VARIABLE`, for every user of nats.conf.
fn nats_conf_passwords() -> BTreeMap<String, String> {
    let mut passwords = BTreeMap::new();
    let mut user = None;
    for line in read("nats.conf").lines().map(str::trim) {
        if let Some(name) = line.strip_prefix("user:") {
            user = Some(name.trim().to_owned());
        } else if let Some(variable) = line.strip_prefix("password:") {
            let variable = variable.trim().strip_prefix('$').unwrap_or_else(|| {
                panic!("nats.conf: passwords come from the environment ({line})")
            });
            let user = user.take().expect("nats.conf: a password before its user");
            passwords.insert(user, variable.to_owned());
        }
    }
    assert!(!passwords.is_empty(), "nats.conf has no users");
    passwords
}

#[test]
fn nats_gets_every_password_and_each_service_logs_in_as_its_own_user() {
    let files = files();
    let passwords = nats_conf_passwords();
    let nats = files.service("nats");
    let passed: BTreeSet<&str> = nats
        .environment
        .iter()
        .map(|(name, value)| {
            assert!(
                name.starts_with("FLICK_NATS_") && name.ends_with("_PASSWORD"),
                "nats: {name} is not one of nats.conf's password variables"
            );
            assert!(
                references(value).iter().any(|r| &r.name == name),
                "nats: {name} must pass ${{{name}}} from .env, not {value:?}"
            );
            name.as_str()
        })
        .collect();
    let needed: BTreeSet<&str> = passwords.values().map(String::as_str).collect();
    assert_eq!(
        passed, needed,
        "the nats container must pass exactly the password variables nats.conf reads (it \
         refuses to start without one)"
    );

    for service in FLICK_SERVICES {
        let environment = &files.service(service.name).environment;
        let get = |key: &str| {
            environment
                .iter()
                .find(|(name, _)| name == key)
                .map(|(_, value)| value.as_str())
                .unwrap_or_else(|| panic!("{}: {key} is not set", service.name))
        };
        let user = get("FLICK_NATS__USER");
        let variable = passwords
            .get(user)
            .unwrap_or_else(|| panic!("{}: nats.conf has no user {user}", service.name));
        let given: Vec<String> = references(get("FLICK_NATS__PASSWORD"))
            .into_iter()
            .map(|r| r.name)
            .collect();
        assert_eq!(
            given,
            std::slice::from_ref(variable),
            "{} logs in as {user}, whose password nats.conf reads from ${variable}",
            service.name
        );
    }
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
