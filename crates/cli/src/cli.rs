//! The argument grammar.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "knetsim",
    version,
    about = "Simulate Kubernetes IPv4/IPv6 dual-stack cluster networking from scenario files",
    max_term_width = 100
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// A directory whose files a scenario may name with `path:`, besides the scenario's own
    /// directory (repeatable). Paths are compared after resolving symbolic links.
    #[arg(long, global = true, value_name = "DIR")]
    pub allow_path: Vec<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Yaml,
    Json,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum TextOrJson {
    Text,
    Json,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum TableOrJson {
    Table,
    Json,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DiffOutput {
    Text,
    Json,
    /// GitHub-flavoured Markdown tables (a pull-request comment or a CI job summary).
    Markdown,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FamilyArg {
    #[value(name = "IPv4", alias = "ipv4", alias = "4")]
    IPv4,
    #[value(name = "IPv6", alias = "ipv6", alias = "6")]
    IPv6,
}

impl FamilyArg {
    pub fn family(self) -> knetsim_ipam::Family {
        match self {
            FamilyArg::IPv4 => knetsim_ipam::Family::IPv4,
            FamilyArg::IPv6 => knetsim_ipam::Family::IPv6,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PlanOutput {
    /// An aligned table for people.
    Table,
    Json,
    Csv,
    /// A chart: headroom per family against cluster size, or against time for growth runs.
    Svg,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum RulesFormat {
    /// `iptables-save` / `ip6tables-save` text (in nftables mode: only the egress rules other
    /// agents keep in iptables).
    IptablesSave,
    /// `nft list ruleset` text of kube-proxy's tables.
    Nft,
    /// Rule and chain counts per node and family.
    Counts,
}

/// A reachability matrix named on the command line of `diff` and `emulate`, with `reach`'s
/// selectors.
#[derive(Debug, Args)]
pub struct MatrixArgs {
    /// The matrix's sources, as `reach --from` takes them.
    #[arg(long, value_delimiter = ',', requires = "to")]
    pub reach: Vec<String>,
    /// The matrix's destinations, as `reach --to` takes them.
    #[arg(long, value_delimiter = ',', requires = "reach")]
    pub to: Vec<String>,
    /// The matrix's family (default: each destination's).
    #[arg(long, value_enum)]
    pub family: Option<FamilyArg>,
    /// The matrix's protocol.
    #[arg(long, default_value = "tcp")]
    pub proto: String,
    /// The matrix's port (default: a Service's own port, else 80).
    #[arg(long)]
    pub port: Option<u16>,
}

impl MatrixArgs {
    /// The matrix, when `--reach` names one.
    pub fn query(self) -> Option<knetsim_dataplane::ReachQuery> {
        (!self.reach.is_empty()).then(|| knetsim_dataplane::ReachQuery {
            from: self.reach,
            to: self.to,
            family: self.family.map(FamilyArg::family),
            proto: self.proto,
            port: self.port,
        })
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a scenario and print the resulting cluster state.
    Run {
        /// The scenario file.
        file: PathBuf,
        /// Output format.
        #[arg(short = 'o', long, value_enum, default_value_t = Output::Yaml)]
        output: Output,
        /// Print only components, network, capacity, object counts and events (for large
        /// clusters).
        #[arg(long)]
        summary: bool,
    },
    /// Validate scenarios (or manifest files) without running them.
    Check {
        /// Scenario files; a file whose first document has `apiVersion` and `kind` is read as
        /// a Kubernetes manifest instead.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Follow a packet hop by hop: routes, kube-proxy chains, NAT, masquerade, the reply.
    Trace {
        /// The scenario file.
        file: PathBuf,
        /// Where the packet starts: `ns/pod` (or `pod:ns/name`), `node:NAME`, `external`, or
        /// an address outside the cluster.
        #[arg(long)]
        from: String,
        /// Where it goes: an IP, `svc:ns/name:port` (port number or name), `ns/pod`, or
        /// `node:NAME`.
        #[arg(long)]
        to: String,
        /// The address family, when the endpoints have both.
        #[arg(long, value_enum)]
        family: Option<FamilyArg>,
        /// `tcp`, `udp` or `sctp`.
        #[arg(long, default_value = "tcp")]
        proto: String,
        /// Destination port (defaults to the Service port, or 80).
        #[arg(long)]
        port: Option<u16>,
        #[arg(short = 'o', long, value_enum, default_value_t = TextOrJson::Text)]
        output: TextOrJson,
    },
    /// A reachability matrix: every source against every destination (rows: sources,
    /// columns: destinations; cells delivered, dropped, rejected, `*` when masqueraded).
    Reach {
        /// The scenario file.
        file: PathBuf,
        /// Sources, comma-separated: as `trace --from` takes them, or `pods:NS` (every pod
        /// of a namespace), `pods:NS/KEY=VALUE` (those with a label), `pods:*`, `nodes:*`.
        #[arg(long, value_delimiter = ',', required = true)]
        from: Vec<String>,
        /// Destinations, comma-separated: as `trace --to` takes them, the source selectors,
        /// or `services:NS` (every port of the `--proto` of every Service of a namespace
        /// with a cluster IP), `services:NS/KEY=VALUE`, `services:*`.
        #[arg(long, value_delimiter = ',', required = true)]
        to: Vec<String>,
        /// The address family (default: each destination's).
        #[arg(long, value_enum)]
        family: Option<FamilyArg>,
        /// `tcp`, `udp` or `sctp`.
        #[arg(long, default_value = "tcp")]
        proto: String,
        /// Destination port for pods, nodes and addresses (default 80; a Service's own port
        /// for Services).
        #[arg(long)]
        port: Option<u16>,
        #[arg(short = 'o', long, value_enum, default_value_t = TableOrJson::Table)]
        output: TableOrJson,
    },
    /// Print the rules kube-proxy (and egress masquerade agents) write on a node.
    Rules {
        file: PathBuf,
        /// The node (default: the first in name order).
        #[arg(long)]
        node: Option<String>,
        /// Only this family (iptables-save format).
        #[arg(long, value_enum)]
        family: Option<FamilyArg>,
        #[arg(long, value_enum, default_value_t = RulesFormat::IptablesSave)]
        format: RulesFormat,
        /// Write every node's rule files (`NODE.v4.rules`, `NODE.v6.rules`, `NODE.nft`,
        /// `NODE.ipsets`) into this directory instead of printing, for loading into a kernel.
        #[arg(long)]
        write_dir: Option<PathBuf>,
    },
    /// Print a node's routing tables as `ip route show` would.
    Routes {
        file: PathBuf,
        /// The node (default: the first in name order).
        #[arg(long)]
        node: Option<String>,
        #[arg(long, value_enum)]
        family: Option<FamilyArg>,
    },
    /// Print the fabric (nodes, pods, bridges, underlay, internet, load balancers) as DOT.
    Graph { file: PathBuf },
    /// Build the cluster in Linux network namespaces from the rendered routes and rules, send
    /// real packets, and compare every verdict with the simulator's (Linux, root).
    Emulate {
        /// The scenario (not needed with --clean alone).
        #[arg(required_unless_present = "clean")]
        file: Option<PathBuf>,
        /// Leave the namespaces in place afterwards and print how to enter them.
        #[arg(long)]
        keep: bool,
        /// Remove the namespaces killed runs left behind (before running FILE, if given).
        #[arg(long)]
        clean: bool,
        #[arg(short, long, value_enum, default_value_t = TextOrJson::Text)]
        output: TextOrJson,
        /// Also probe every cell of a reachability matrix (`--reach FROM --to TO`).
        #[command(flatten)]
        matrix: MatrixArgs,
    },
    /// Capacity: what the CIDR and mask choices hold per family and version, under growth and
    /// churn, and across a sweep of alternatives.
    Plan {
        /// A scenario, or a file holding only a `cluster:` section.
        file: PathBuf,
        #[arg(short = 'o', long, value_enum, default_value_t = PlanOutput::Table)]
        output: PlanOutput,
        /// Target number of nodes (overrides `plan.target.nodes`).
        #[arg(long)]
        nodes: Option<u64>,
        /// Target pods per node (overrides `plan.target.podsPerNode`).
        #[arg(long)]
        pods_per_node: Option<u32>,
        /// Target number of Services (overrides `plan.target.services`).
        #[arg(long)]
        services: Option<u64>,
        /// Monte Carlo runs of the growth model (overrides `plan.growth.runs`).
        #[arg(long)]
        runs: Option<usize>,
        /// Days the growth model covers (overrides `plan.growth.days`).
        #[arg(long)]
        days: Option<u32>,
        /// Skip the growth model.
        #[arg(long)]
        no_growth: bool,
        /// Skip the sweep.
        #[arg(long)]
        no_sweep: bool,
    },
    /// Run scenarios' `expect:` blocks: one pass/fail line per scenario, then a total.
    Test {
        /// Scenario files or directories (searched recursively for *.yaml, skipping
        /// directories named `bad`, `failing` and `manifests`).
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Also write the results as JUnit XML to FILE (a suite per scenario, a case per
        /// expectation), for GitLab, Jenkins and GitHub test reports.
        #[arg(long, value_name = "FILE")]
        junit: Option<PathBuf>,
    },
    /// Snapshot scenarios' routing and allocation state and compare it with the stored
    /// snapshots (exit 1 when something changed); `--update` writes them.
    Snapshot {
        /// Scenario files or directories (found as `test` finds them).
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Write the snapshots (accepting every change) instead of comparing.
        #[arg(long)]
        update: bool,
        /// Keep the snapshots in this directory, as `NAME.snap` (default: beside each scenario,
        /// in `__knetsim__/NAME.snap`).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Record kube-proxy's rules line by line, not only their counts and digest.
        #[arg(long)]
        rules: bool,
    },
    /// The semantic difference between two scenarios' states: `diff A B`,
    /// `diff FILE --version 1.30 --version 1.35`, or `diff FILE --set component.flag=value`
    /// (exit 0 same, 1 different).
    Diff {
        /// The scenario as it is.
        before: PathBuf,
        /// The scenario as it would be (or give `--version` / `--set`).
        after: Option<PathBuf>,
        /// Kubernetes versions: one compares FILE with FILE on that version; two compare FILE
        /// on the first with FILE on the second.
        #[arg(long = "version", value_name = "VERSION")]
        versions: Vec<String>,
        /// A flag change, `component.flag=value` (repeatable), applied to FILE for the second
        /// side.
        #[arg(long = "set", value_name = "COMPONENT.FLAG=VALUE")]
        sets: Vec<String>,
        #[arg(short = 'o', long, value_enum, default_value_t = DiffOutput::Text)]
        output: DiffOutput,
        /// Compare kube-proxy's rules line by line.
        #[arg(long)]
        rules: bool,
        /// Also compare a reachability matrix (`--reach FROM --to TO`).
        #[command(flatten)]
        matrix: MatrixArgs,
    },
}
