//! The `cluster {}` block that joins NATS servers into one JetStream cluster: how FLick grows
//! past one NATS server (streams with 3 replicas, every service given every node's URL), with
//! nothing of FLick's own in between.
//!
//! One function writes it for both of its users: `flick init` (compose's `cluster` profile,
//! three containers running the same file) and the test kit (three processes on loopback).

/// The port routes use inside a container (NATS's conventional cluster port).
pub const ROUTE_PORT: u16 = 6222;

/// The JetStream cluster's name. Every node must carry the same one.
pub const CLUSTER_NAME: &str = "flick";

/// Where one node listens for routes, whom it dials, and with which certificate.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// `host:port` the node accepts routes on.
    pub listen: String,
    /// `host:port` of every node's route listener, this node's included: each node then knows
    /// the full size of the cluster from the start, so no two nodes elect a meta leader between
    /// themselves before the third is there (NATS skips the route to itself).
    pub routes: Vec<String>,
    /// Certificate, key and CA of mutual TLS between routes; `None` only for tests without TLS.
    /// A route that is not verified is a way into every account, so a real hub always has it.
    pub tls: Option<RouteTls>,
}

/// The files of mutual TLS on the route port, as the server sees them.
#[derive(Debug, Clone)]
pub struct RouteTls {
    pub cert: String,
    pub key: String,
    pub ca: String,
}

/// The `cluster {}` block of one node.
pub fn cluster_block(options: &ClusterOptions) -> String {
    let routes: String = options
        .routes
        .iter()
        .map(|route| format!("    \"nats-route://{route}\"\n"))
        .collect();
    let tls = match &options.tls {
        Some(tls) => format!(
            "  # Routes authenticate both ways with certificates of the hub's CA: a server without\n\
             \x20 # one cannot join the cluster (and read every account's traffic).\n\
             \x20 tls {{\n    cert_file: \"{}\"\n    key_file: \"{}\"\n    ca_file: \"{}\"\n    \
             verify: true\n    timeout: 5\n  }}\n",
            tls.cert, tls.key, tls.ca
        ),
        None => String::new(),
    };
    format!(
        "cluster {{\n\
         \x20 name: {CLUSTER_NAME}\n\
         \x20 listen: \"{listen}\"\n\
         \x20 routes: [\n{routes}  ]\n\
         \x20 # Clients are given every node's URL (nats.url). Advertising what the nodes learn of\n\
         \x20 # each other would hand clients addresses (a container's IP) that the TLS\n\
         \x20 # certificate does not name.\n\
         \x20 no_advertise: true\n\
         {tls}}}\n",
        listen = options.listen,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_node_is_a_route_and_tls_is_mutual() {
        let block = cluster_block(&ClusterOptions {
            listen: "0.0.0.0:6222".into(),
            routes: vec!["nats:6222".into(), "nats-2:6222".into()],
            tls: Some(RouteTls {
                cert: "/flick/tls/server.pem".into(),
                key: "/flick/tls/server.key".into(),
                ca: "/flick/tls/ca.pem".into(),
            }),
        });
        assert!(block.contains("name: flick\n"), "{block}");
        assert!(block.contains("listen: \"0.0.0.0:6222\""), "{block}");
        assert!(
            block.contains("\"nats-route://nats:6222\"\n    \"nats-route://nats-2:6222\""),
            "{block}"
        );
        assert!(
            block.contains("ca_file: \"/flick/tls/ca.pem\"\n    verify: true"),
            "{block}"
        );
        let plain = cluster_block(&ClusterOptions {
            listen: "127.0.0.1:1".into(),
            routes: vec![],
            tls: None,
        });
        assert!(!plain.contains("tls {"), "{plain}");
    }
}
