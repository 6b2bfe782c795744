//! `flick init --dir DIR`: generates, once, every secret a hub needs (NATS operator, accounts
//! and service identities, TLS, the gateway's keys, PostgreSQL's password) and the files that
//! point NATS and the services at them. Running it again keeps everything and fills in what is
//! missing; see `flick_shared::natsauth::layout` for the files.

use std::path::PathBuf;
use std::process::ExitCode;

use flick_shared::natsauth::layout::{InitOptions, init};

#[derive(Debug, clap::Args)]
pub struct Options {
    /// Where to write (created if missing).
    #[arg(long)]
    dir: PathBuf,
    /// Where NATS and the services see DIR, when it is mounted elsewhere (a container's
    /// volume); DIR itself by default.
    #[arg(long)]
    seen_as: Option<PathBuf>,
    /// The subject prefix the identities are made for.
    #[arg(long, default_value = flick_shared::subjects::DEFAULT_PREFIX)]
    prefix: String,
    /// Host names and addresses NATS's TLS certificate is valid for (how hosts reach the
    /// hub); repeat it. `localhost` and `127.0.0.1` are always included.
    #[arg(long = "tls-name")]
    tls_names: Vec<String>,
    /// The NATS-based account resolver's directory, as the NATS server sees it (writable by it).
    #[arg(long)]
    resolver_dir: Option<String>,
    /// How the services reach NATS (flick.toml's nats.url).
    #[arg(long, default_value = "tls://localhost:4222")]
    nats_url: String,
    /// NATS URLs given to enrolled hosts; repeat it. Default: tls://<first --tls-name>:4222.
    #[arg(long = "public-nats-url")]
    public_nats_urls: Vec<String>,
    /// A node of a NATS cluster, by the name the nodes reach each other by; repeat it for
    /// every node (compose's cluster profile: nats, nats-2, nats-3). Writes
    /// nats/nats-cluster.conf, which every node runs, and NATS's certificate names each node.
    #[arg(long = "cluster-node")]
    cluster_nodes: Vec<String>,
    /// flick.toml's database.url; `{password}` stands for the generated PostgreSQL password.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/flick")]
    database_url: String,
}

#[expect(
    clippy::print_stdout,
    reason = "what was written is the command's output"
)]
pub fn main(options: Options) -> ExitCode {
    let seen_as = options.seen_as.clone().unwrap_or_else(|| {
        std::path::absolute(&options.dir).unwrap_or_else(|_| options.dir.clone())
    });
    let mut tls_names = options.tls_names.clone();
    for name in ["localhost", "127.0.0.1"] {
        if !tls_names.iter().any(|n| n == name) {
            tls_names.push(name.to_owned());
        }
    }
    let public_nats_urls = if options.public_nats_urls.is_empty() {
        vec![format!("tls://{}:4222", tls_names[0])]
    } else {
        options.public_nats_urls.clone()
    };
    let init_options = InitOptions {
        dir: options.dir.clone(),
        resolver_dir: options
            .resolver_dir
            .clone()
            .unwrap_or_else(|| seen_as.join("nats/jwt").display().to_string()),
        seen_as,
        prefix: options.prefix.clone(),
        tls_names,
        nats_url: options.nats_url.clone(),
        public_nats_urls,
        cluster_nodes: options.cluster_nodes.clone(),
        database_url: options.database_url.clone(),
    };
    match init(&init_options) {
        Ok(report) => {
            for path in &report.written {
                println!("wrote {}", path.display());
            }
            println!(
                "flick init: {} files written, {} kept in {}",
                report.written.len(),
                report.kept.len(),
                options.dir.display()
            );
            println!(
                "next: nats-server -c {}/nats/nats-server.conf -sd <store>; FLICK_CONFIG={}/flick.toml flick all",
                options.dir.display(),
                options.dir.display()
            );
            if !options.cluster_nodes.is_empty() {
                println!(
                    "cluster: on each of {}, nats-server -c {}/nats/nats-cluster.conf --server_name <node> -sd <store>",
                    options.cluster_nodes.join(", "),
                    options.dir.display()
                );
            }
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("flick init: cannot write {}: {err}", options.dir.display());
            ExitCode::FAILURE
        }
    }
}
