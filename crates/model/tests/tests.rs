//! Integration tests of the reader: the bad-input corpus (`scenarios/bad/`, snapshotted into
//! `snapshots/bad/`), good scenarios read into the expected model, flag merging, scale, and
//! property tests of CIDR parsing (`cidr_props`).
//!
//! One test binary for the crate (one link step).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use knetsim_model::flags::{Component, FlagValue};
use knetsim_model::objects::{Object, TargetPort, WorkloadKind};
use knetsim_model::scenario::{CniConfig, Expectation, Step};
use knetsim_model::{FileLoader, KubeVersion, Loaded, Scenario, Severity, load_scenario_str};

mod cidr_props;

/// The workspace root: tests name files relative to it, as a user running `knetsim` there would.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Reads files relative to the workspace root, so that messages show `scenarios/bad/…`.
struct RootLoader;

impl FileLoader for RootLoader {
    fn load(&self, path: &Path) -> Result<String, String> {
        std::fs::read_to_string(root().join(path)).map_err(|e| e.to_string())
    }

    fn load_bytes(&self, path: &Path) -> Result<Vec<u8>, knetsim_model::LoadError> {
        knetsim_model::source::read_capped(&root().join(path))
    }
}

/// Files held in memory, for scenarios written inside a test.
struct MemLoader(BTreeMap<&'static str, &'static str>);

impl FileLoader for MemLoader {
    fn load(&self, path: &Path) -> Result<String, String> {
        let key = path.to_string_lossy();
        self.0
            .get(key.as_ref())
            .map(|s| s.to_string())
            .ok_or_else(|| "No such file or directory (os error 2)".to_string())
    }
}

fn load(text: &str) -> Loaded<Scenario> {
    load_scenario_str("test.yaml", text, &MemLoader(BTreeMap::new()))
}

fn load_ok(text: &str) -> Scenario {
    let l = load(text);
    assert!(!l.has_errors(), "unexpected errors:\n{}", l.render());
    l.value.expect("no errors, so a value")
}

mod bad_corpus {
    use super::*;

    /// Every file in `scenarios/bad/` gives diagnostics with a place, and never a scenario
    /// and an error together. Whether each is refused, and its rendered diagnostics, are
    /// checked through `knetsim check` (crates/cli/tests/hardening.rs): some problems are
    /// found by the validation the CLI adds for the sections other crates own.
    #[test]
    fn every_bad_scenario_is_reported_with_its_place() {
        let dir = root().join("scenarios/bad");
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .expect("scenarios/bad exists")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
            .collect();
        files.sort();
        assert!(files.len() >= 45, "the corpus has {} files", files.len());
        for file in files {
            let rel = PathBuf::from("scenarios/bad").join(file.file_name().expect("a file"));
            let loaded = knetsim_model::load_scenario(&rel, &RootLoader);
            let errors = loaded
                .diagnostics
                .iter()
                .filter(|d| d.severity == Severity::Error)
                .count();
            assert!(
                errors == 0 || loaded.value.is_none(),
                "{}: errors and a scenario",
                rel.display()
            );
            for d in &loaded.diagnostics {
                assert!(
                    d.span.is_some(),
                    "{}: every diagnostic has a place: {}",
                    rel.display(),
                    d.message
                );
            }
        }
    }
}

mod good {
    use super::*;

    const FULL: &str = r#"
name: dual-stack upgrade
kubernetesVersion: 1.30
seed: 7
cluster:
  kube-apiserver:
    service-cluster-ip-range: 10.96.0.0/12,fd00:10:96::/112
    args:
      - kube-apiserver
      - --advertise-address=192.168.0.10
      - --allow-privileged=true
      - --service-node-port-range=30000-32767
      - --etcd-servers=https://127.0.0.1:2379
  kube-controller-manager:
    allocate-node-cidrs: true
    cluster-cidr: 10.244.0.0/16,fd00:10:244::/56
    node-cidr-mask-size-ipv6: 64
    feature-gates: {IPv6DualStack: true}
    args: ["--node-cidr-mask-size-ipv4", "24", "--controllers=*,bootstrapsigner"]
  kube-proxy:
    mode: nftables
    masquerade-all: "true"
    cluster-cidr: [10.244.0.0/16, "fd00:10:244::/56"]
  kubelet:
    max-pods: 110
  cni:
    plugin: calico
    calico:
      ipam: {type: calico-ipam, assign_ipv4: "true", assign_ipv6: true}
      env:
        FELIX_IPV6SUPPORT: "true"
        CALICO_IPV4POOL_BLOCK_SIZE: 26
      ipPools:
        - {name: v6, cidr: "fd00:10:244::/56", blockSize: 122, natOutgoing: true}
      ipamConfig: {strictAffinity: true, maxBlocksPerHost: 4}
  ip-masq-agent:
    args: ["--enable-ipv6", "--masq-chain=MY-MASQ"]
    config:
      nonMasqueradeCIDRs: [10.0.0.0/8]
      masqLinkLocal: true
  sysctl:
    net.ipv4.conf.all.forwarding: 1
nodes:
  - name: cp-1
    node-ip: 192.168.0.10,fd00::10
    labels: {role: control-plane}
    podCIDRs: [10.244.0.0/24]
    kubelet: {max-pods: 50}
  - count: 3
    prefix: worker-
    node-ip-pools: [192.168.1.0/24, "fd00:1::/64"]
    labels: {role: worker}
manifests:
  - apiVersion: v1
    kind: Service
    metadata: {name: web, namespace: shop, labels: {app: web}}
    spec:
      ipFamilyPolicy: PreferDualStack
      ipFamilies: [IPv6, IPv4]
      selector: {app: web}
      ports:
        - {name: http, port: 80, targetPort: http, protocol: TCP}
        - {port: 443, targetPort: 8443, nodePort: 30443}
  - apiVersion: apps/v1
    kind: Deployment
    metadata: {name: web, namespace: shop}
    spec:
      replicas: 3
      selector: {matchLabels: {app: web}}
      template:
        metadata: {labels: {app: web}}
        spec:
          containers:
            - name: web
              image: nginx
              ports: [{containerPort: 8080, name: http}]
              resources: {limits: {cpu: "1"}}
  - apiVersion: v1
    kind: ConfigMap
    metadata: {name: settings}
    data: {a: b}
steps:
  - name: grow
    addNodes:
      - {name: worker-9, node-ip: 192.168.1.99}
  - scale: {kind: Deployment, name: web, namespace: shop, replicas: 5}
  - removeNodes: [worker-1]
  - delete: [{kind: Service, name: web, namespace: shop}]
  - configure:
      kube-proxy: {mode: iptables}
expect:
  - component: kube-controller-manager
    started: true
  - object: {kind: Node, name: worker-1}
    fields:
      spec.podCIDRs: [10.244.1.0/24, "fd00:10:244:1::/64"]
  - event: {reason: CIDRNotAvailable, object: Node/worker-9}
  - count: {kind: Pod, equals: 5}
  - trace: {from: pod/web, to: 10.96.0.10}
fabric:
  underlay: flat
"#;

    #[test]
    fn a_full_scenario_reads_into_the_model() {
        let s = load_ok(FULL);
        assert_eq!(s.name, "dual-stack upgrade");
        assert_eq!(s.version, KubeVersion::new(30));
        assert_eq!(s.seed, 7);

        let api = s
            .cluster
            .flags(Component::KubeApiserver)
            .expect("apiserver flags");
        assert_eq!(
            api.cidrs("service-cluster-ip-range")
                .map(|c| c.iter().map(|n| n.to_string()).collect::<Vec<_>>()),
            Some(vec![
                "10.96.0.0/12".to_string(),
                "fd00:10:96::/112".to_string()
            ])
        );
        assert_eq!(api.str("advertise-address"), Some("192.168.0.10"));
        assert_eq!(api.bool("allow-privileged"), Some(true));
        assert_eq!(
            api.get("service-node-port-range").map(|f| f.value.clone()),
            Some(FlagValue::PortRange(30000, 32767))
        );
        assert_eq!(
            api.str_list("etcd-servers"),
            Some(&["https://127.0.0.1:2379".to_string()][..])
        );

        let kcm = s
            .cluster
            .flags(Component::KubeControllerManager)
            .expect("kcm flags");
        assert_eq!(kcm.bool("allocate-node-cidrs"), Some(true));
        assert_eq!(kcm.int("node-cidr-mask-size-ipv6"), Some(64));
        assert_eq!(kcm.int("node-cidr-mask-size-ipv4"), Some(24));
        assert_eq!(
            kcm.gates().and_then(|g| g.get("IPv6DualStack")),
            Some(&true)
        );
        assert_eq!(
            kcm.str_list("controllers"),
            Some(&["*".to_string(), "bootstrapsigner".to_string()][..])
        );

        let proxy = s.cluster.flags(Component::KubeProxy).expect("proxy flags");
        assert_eq!(proxy.str("mode"), Some("nftables"));
        assert_eq!(proxy.bool("masquerade-all"), Some(true));
        assert_eq!(proxy.cidrs("cluster-cidr").map(<[_]>::len), Some(2));
        assert_eq!(
            proxy.get("cluster-cidr").map(|f| f.raw.as_str()),
            Some("10.244.0.0/16,fd00:10:244::/56")
        );

        let CniConfig::Calico(calico) = &s.cluster.cni else {
            panic!("calico expected, got {:?}", s.cluster.cni);
        };
        assert_eq!(
            calico.assign_ipv4.as_deref().map(String::as_str),
            Some("true")
        );
        assert_eq!(
            calico.assign_ipv6.as_deref().map(String::as_str),
            Some("true")
        );
        assert_eq!(
            calico
                .env
                .get("CALICO_IPV4POOL_BLOCK_SIZE")
                .map(|v| v.value.as_str()),
            Some("26")
        );
        assert_eq!(calico.ip_pools.len(), 1);
        assert_eq!(
            calico.ip_pools[0].cidr.value.to_string(),
            "fd00:10:244::/56"
        );
        assert_eq!(
            calico.ip_pools[0].block_size.as_ref().map(|b| b.value),
            Some(122)
        );
        assert!(calico.ip_pools[0].nat_outgoing);
        assert!(calico.strict_affinity);
        assert_eq!(calico.max_blocks_per_host, Some(4));

        let masq = s.cluster.ip_masq_agent.as_ref().expect("ip-masq-agent");
        assert!(masq.enable_ipv6);
        assert_eq!(masq.masq_chain.as_deref(), Some("MY-MASQ"));
        assert!(masq.masq_link_local);
        assert_eq!(
            masq.non_masquerade_cidrs
                .as_ref()
                .map(|v| v.iter().map(|c| c.value.clone()).collect::<Vec<_>>()),
            Some(vec!["10.0.0.0/8".to_string()])
        );
        assert_eq!(
            s.cluster
                .sysctl
                .get("net.ipv4.conf.all.forwarding")
                .map(|v| v.value.as_str()),
            Some("1")
        );

        let names: Vec<&str> = s.nodes.iter().map(|n| n.name.value.as_str()).collect();
        assert_eq!(names, ["cp-1", "worker-1", "worker-2", "worker-3"]);
        assert_eq!(
            s.nodes[0].node_ip.as_deref().map(String::as_str),
            Some("192.168.0.10,fd00::10")
        );
        assert_eq!(s.nodes[0].kubelet.int("max-pods"), Some(50));
        assert_eq!(s.nodes[0].pod_cidrs[0].value, "10.244.0.0/24");
        assert_eq!(
            s.nodes[3].node_ip.as_deref().map(String::as_str),
            Some("192.168.1.3,fd00:1::3")
        );
        assert_eq!(
            s.nodes[3].labels.get("role").map(String::as_str),
            Some("worker")
        );

        assert_eq!(s.manifests.len(), 3);
        let Object::Service(svc) = &s.manifests[0] else {
            panic!("a Service first")
        };
        assert_eq!(svc.meta.name.value, "web");
        assert_eq!(
            svc.meta.namespace.as_deref().map(String::as_str),
            Some("shop")
        );
        assert_eq!(
            svc.spec.ip_family_policy.as_deref().map(String::as_str),
            Some("PreferDualStack")
        );
        let fams: Vec<&str> = svc
            .spec
            .ip_families
            .iter()
            .flatten()
            .map(|f| f.value.as_str())
            .collect();
        assert_eq!(fams, ["IPv6", "IPv4"]);
        assert_eq!(
            svc.spec.ports[0].target_port,
            Some(TargetPort::Name("http".into()))
        );
        assert_eq!(
            svc.spec.ports[1].target_port,
            Some(TargetPort::Number(8443))
        );
        assert_eq!(svc.spec.ports[1].node_port, Some(30443));
        let Object::Workload(dep) = &s.manifests[1] else {
            panic!("a Deployment second")
        };
        assert_eq!(dep.kind, WorkloadKind::Deployment);
        assert_eq!(dep.replicas.as_ref().map(|r| r.value), Some(3));
        assert_eq!(dep.selector.get("app").map(String::as_str), Some("web"));
        assert_eq!(dep.template.containers[0].ports[0].container_port, 8080);
        assert!(matches!(&s.manifests[2], Object::Other { kind, .. } if kind == "ConfigMap"));

        assert_eq!(s.steps.len(), 5);
        assert!(matches!(&s.steps[0].value, Step::AddNodes(n) if n[0].name.value == "worker-9"));
        assert!(matches!(&s.steps[1].value, Step::Scale { replicas, .. } if replicas.value == 5));
        assert!(matches!(&s.steps[2].value, Step::RemoveNodes(n) if n[0].value == "worker-1"));
        assert!(matches!(&s.steps[3].value, Step::Delete(r) if r[0].value.kind == "Service"));
        assert!(matches!(&s.steps[4].value, Step::Configure(c)
            if c.flags(Component::KubeProxy).and_then(|f| f.str("mode")) == Some("iptables")));

        assert_eq!(s.expect.len(), 5);
        assert!(matches!(
            &s.expect[0].value,
            Expectation::Component {
                component: Component::KubeControllerManager,
                started: Some(true),
                ..
            }
        ));
        let Expectation::Object { fields, .. } = &s.expect[1].value else {
            panic!("object")
        };
        assert_eq!(fields[0].0.value, "spec.podCIDRs");
        assert_eq!(
            fields[0].1.to_json(),
            serde_json::json!(["10.244.1.0/24", "fd00:10:244:1::/64"])
        );
        assert!(matches!(
            &s.expect[3].value,
            Expectation::Count { equals: 5, .. }
        ));
        assert!(matches!(&s.expect[4].value, Expectation::Dataplane(_)));
        assert!(s.fabric.is_some());
        assert!(s.plan.is_none());
    }

    #[test]
    fn the_configmap_is_accepted_with_a_warning_only() {
        let l = load(FULL);
        let messages: Vec<&str> = l.diagnostics.iter().map(|d| d.message.as_str()).collect();
        assert_eq!(
            messages,
            ["kind ConfigMap is not modelled by knetsim; ignored"]
        );
    }

    #[test]
    fn defaults_apply_when_keys_are_left_out() {
        let s = load_ok("name: minimal\n");
        assert_eq!(s.version, KubeVersion::NEWEST);
        assert_eq!(s.seed, 0);
        assert_eq!(s.cluster.cni, CniConfig::HostLocal);
        assert!(
            s.nodes.is_empty()
                && s.manifests.is_empty()
                && s.steps.is_empty()
                && s.expect.is_empty()
        );
    }

    #[test]
    fn versions_are_read_as_written() {
        for (text, minor) in [
            ("1.30", 30),
            ("\"v1.16\"", 16),
            ("1.37.1", 37),
            ("'1.33'", 33),
        ] {
            let s = load_ok(&format!("name: v\nkubernetesVersion: {text}\n"));
            assert_eq!(s.version, KubeVersion::new(minor), "{text}");
        }
    }

    #[test]
    fn manifests_by_path_resolve_against_the_scenario_directory() {
        let files = MemLoader(BTreeMap::from([(
            "dir/m/objs.yaml",
            "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\n---\napiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Pod, metadata: {name: p}, spec: {containers: [{name: c}]}}\n- {apiVersion: v1, kind: Node, metadata: {name: n1}, spec: {podCIDRs: [10.0.0.0/24]}, status: {addresses: [{type: InternalIP, address: 10.1.0.1}, {type: Hostname, address: n1}]}}\n",
        )]));
        let l = load_scenario_str(
            "dir/s.yaml",
            "name: x\nmanifests:\n  - path: ./m/objs.yaml\n",
            &files,
        );
        assert!(!l.has_errors(), "{}", l.render());
        let s = l.value.expect("loads");
        let kinds: Vec<&str> = s.manifests.iter().map(Object::kind).collect();
        assert_eq!(kinds, ["Namespace", "Pod", "Node"]);
        let Object::Node(n) = &s.manifests[2] else {
            panic!("node")
        };
        assert_eq!(n.pod_cidrs[0].value, "10.0.0.0/24");
        assert_eq!(
            n.internal_ips
                .iter()
                .map(|i| i.value.as_str())
                .collect::<Vec<_>>(),
            ["10.1.0.1"]
        );
        let names: Vec<&str> = l.sources.files().map(|(_, f)| f.name.as_str()).collect();
        assert_eq!(names, ["dir/s.yaml", "dir/m/objs.yaml"]);
    }

    #[test]
    fn anchors_aliases_and_merge_keys_expand() {
        let s = load_ok(
            "name: a\nnodes:\n  - &n {name: n1, labels: &l {zone: a}}\n  - <<: *n\n    name: n2\n  - {name: n3, labels: *l}\n",
        );
        let zones: Vec<(&str, Option<&str>)> = s
            .nodes
            .iter()
            .map(|n| {
                (
                    n.name.value.as_str(),
                    n.labels.get("zone").map(String::as_str),
                )
            })
            .collect();
        assert_eq!(
            zones,
            [("n1", Some("a")), ("n2", Some("a")), ("n3", Some("a"))]
        );
    }
}

mod flags {
    use super::*;

    fn kcm(yaml: &str) -> Loaded<Scenario> {
        load(&format!(
            "name: f\ncluster:\n  kube-controller-manager:\n{yaml}"
        ))
    }

    #[test]
    fn map_keys_and_pasted_args_merge() {
        let l = kcm(
            "    cluster-cidr: 10.244.0.0/16\n    args:\n      - /usr/local/bin/kube-controller-manager\n      - --allocate-node-cidrs\n      - --node_cidr_mask_size=25\n      - --leader-elect=true\n      - --v=2\n      - -v=4\n",
        );
        // `-v=4` after `--v=2` sets the same flag twice.
        let messages: Vec<&str> = l.diagnostics.iter().map(|d| d.message.as_str()).collect();
        assert_eq!(messages, ["flag --v is set twice"]);
        let l = kcm(
            "    cluster-cidr: 10.244.0.0/16\n    args:\n      - kube-controller-manager\n      - --allocate-node-cidrs\n      - --node_cidr_mask_size=25\n      - --cloud-provider\n      - external\n",
        );
        assert!(!l.has_errors(), "{}", l.render());
        let s = l.value.expect("loads");
        let f = s
            .cluster
            .flags(Component::KubeControllerManager)
            .expect("kcm");
        let names: Vec<&str> = f.flags.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            [
                "allocate-node-cidrs",
                "cloud-provider",
                "cluster-cidr",
                "node-cidr-mask-size"
            ]
        );
        assert_eq!(f.bool("allocate-node-cidrs"), Some(true));
        assert_eq!(f.int("node-cidr-mask-size"), Some(25));
        assert_eq!(f.str("cloud-provider"), Some("external"));
    }

    #[test]
    fn misaligned_cidrs_warn_and_keep_the_network() {
        let l = kcm("    cluster-cidr: 10.128.0.1/12,fc00::8:0:0/94\n");
        assert!(!l.has_errors(), "{}", l.render());
        let warnings: Vec<&str> = l.diagnostics.iter().map(|d| d.message.as_str()).collect();
        assert_eq!(
            warnings,
            ["`10.128.0.1/12` has host bits set; Kubernetes will use the network 10.128.0.0/12"]
        );
        // The warning points at the entry, not the whole value.
        let span = l.diagnostics[0].span.expect("a place");
        assert_eq!((span.line, span.col, span.end - span.start), (4, 19, 13));
        let s = l.value.expect("loads");
        let f = s
            .cluster
            .flags(Component::KubeControllerManager)
            .expect("kcm");
        assert_eq!(
            f.cidrs("cluster-cidr")
                .map(|c| c.iter().map(|n| n.to_string()).collect::<Vec<_>>()),
            Some(vec![
                "10.128.0.0/12".to_string(),
                "fc00::8:0:0/94".to_string()
            ])
        );
        assert_eq!(
            f.get("cluster-cidr").map(|x| x.raw.as_str()),
            Some("10.128.0.1/12,fc00::8:0:0/94")
        );
    }

    #[test]
    fn cidr_flag_values_are_checked_entry_by_entry() {
        // (value, messages)
        let cases: &[(&str, &[&str])] = &[
            ("10.244.0.0/16", &[]),
            ("\"\"", &[]),
            ("010.244.0.0/16", &[]),
            ("10.0.0.0/33", &["invalid CIDR address: 10.0.0.0/33"]),
            ("fd00::/129", &["invalid CIDR address: fd00::/129"]),
            ("10.0.0.0/8,,fd00::/48", &["invalid CIDR address: "]),
            (
                "10.0.0.0/8, fd00::/48",
                &["invalid CIDR address:  fd00::/48"],
            ),
            (
                "\"::ffff:10.0.0.0/104\"",
                &["`::ffff:10.0.0.0/104` is an IPv4-mapped IPv6 CIDR"],
            ),
            (
                "nonsense,10.1.0.0",
                &[
                    "invalid CIDR address: nonsense",
                    "invalid CIDR address: 10.1.0.0",
                ],
            ),
        ];
        for (value, want) in cases {
            let l = kcm(&format!("    cluster-cidr: {value}\n"));
            let got: Vec<&str> = l.diagnostics.iter().map(|d| d.message.as_str()).collect();
            assert_eq!(&got, want, "{value}");
        }
    }

    #[test]
    fn typed_values_convert_from_yaml_scalars() {
        let l = load(
            "name: t\ncluster:\n  kube-proxy:\n    masquerade-all: \"True\"\n    iptables-masquerade-bit: \"14\"\n    hostname-override: 1234\n    nodeport-addresses: \"\"\n    feature-gates: \"A=true, B=false,\"\n",
        );
        assert!(!l.has_errors(), "{}", l.render());
        let s = l.value.expect("loads");
        let p = s.cluster.flags(Component::KubeProxy).expect("proxy");
        assert_eq!(p.bool("masquerade-all"), Some(true));
        assert_eq!(p.int("iptables-masquerade-bit"), Some(14));
        assert_eq!(p.str("hostname-override"), Some("1234"));
        assert_eq!(p.str_list("nodeport-addresses"), Some(&[][..]));
        let gates: Vec<(&str, bool)> = p
            .gates()
            .expect("gates")
            .iter()
            .map(|(k, v)| (k.as_str(), *v))
            .collect();
        assert_eq!(gates, [("A", true), ("B", false)]);
    }

    #[test]
    fn every_component_schema_is_exposed() {
        for c in Component::ALL {
            let schema = knetsim_model::flags::schema(c);
            assert!(schema.len() > 10, "{} has {} flags", c.name(), schema.len());
            assert!(
                schema
                    .iter()
                    .all(|f| !f.name.is_empty() && !f.name.starts_with('-'))
            );
        }
    }
}

mod scale {
    use super::*;

    /// A 5,000-node generated pool and a 10,000-Service manifest read into the model; the
    /// expansion is linear (no per-node scans of earlier nodes beyond a hash lookup).
    #[test]
    fn large_pools_and_manifests_load() {
        let mut text = String::from(
            "name: big\nnodes:\n  - count: 5000\n    prefix: node-\n    node-ip-pools: [10.0.0.0/16, \"fd00::/64\"]\nmanifests:\n",
        );
        for i in 0..10_000 {
            text.push_str(&format!(
                "  - {{apiVersion: v1, kind: Service, metadata: {{name: svc-{i}, namespace: ns-{}}}, spec: {{selector: {{app: a{i}}}, ports: [{{port: 80, targetPort: 8080}}]}}}}\n",
                i % 100
            ));
        }
        let s = load_ok(&text);
        assert_eq!(s.nodes.len(), 5000);
        assert_eq!(s.nodes[4999].name.value, "node-5000");
        assert_eq!(
            s.nodes[4999].node_ip.as_deref().map(String::as_str),
            Some("10.0.19.136,fd00::1388")
        );
        assert_eq!(s.manifests.len(), 10_000);
    }
}

mod manifests {
    use super::*;

    #[test]
    fn a_bare_manifest_file_loads_like_kubectl_apply_reads_it() {
        let l = knetsim_model::load_manifests(
            Path::new("scenarios/bad/manifests/mixed.yaml"),
            &RootLoader,
        );
        assert!(!l.has_errors(), "{}", l.render());
        let objects = l.value.expect("loads");
        let kinds: Vec<&str> = objects.iter().map(Object::kind).collect();
        assert_eq!(kinds, ["ConfigMap", "NetworkPolicy", "IPPool", "Namespace"]);
        assert_eq!(l.diagnostics.len(), 3, "one warning per unmodelled kind");
    }

    #[test]
    fn a_broken_manifest_file_is_an_error_in_that_file() {
        let l = knetsim_model::load_manifests(
            Path::new("scenarios/bad/manifests/broken.yaml"),
            &RootLoader,
        );
        assert!(l.value.is_none());
        let d = &l.diagnostics[0];
        let span = d.span.expect("a place");
        assert_eq!(
            l.sources.get(span.file).name,
            "scenarios/bad/manifests/broken.yaml"
        );
        assert_eq!((span.line, span.col), (8, 23));
    }

    #[test]
    fn a_missing_top_level_file_is_an_error_without_a_place() {
        let l = knetsim_model::load_manifests(
            Path::new("scenarios/bad/manifests/nope.yaml"),
            &RootLoader,
        );
        assert!(l.value.is_none());
        assert_eq!(
            l.diagnostics[0].message,
            "cannot read `scenarios/bad/manifests/nope.yaml`: No such file or directory (os error 2)"
        );
    }
}

mod robustness {
    use super::*;

    /// Odd inputs: each must load or fail with diagnostics, never panic, and every diagnostic
    /// must render.
    #[test]
    fn odd_inputs_give_diagnostics_not_panics() {
        let inputs = [
            "",
            "---",
            "---\n---\n",
            "[",
            "{a: [}",
            "\t",
            "name: x\na: *nope\n",
            "? [a, b]\n: c\n",
            "name: x\ncluster:\n  ? [a]\n  : b\n",
            "name: x\ncluster:\n  kube-proxy:\n    ? {a: b}\n    : c\n",
            "name: !!binary aGVsbG8=\n",
            "name: !!str 123\n",
            "name: x\nnodes: [~, 1, [a]]\n",
            "name: x\nmanifests: [~, 1, [a], {}]\n",
            "name: x\nsteps: [~, 1, {}, {name: only}]\n",
            "name: x\nexpect: [~, 1, {}]\n",
            "name: ünïcödé\nseed: x\nkubernetesVersion: \"1.3ö\"\n",
            "name: x\ncluster:\n  kubelet: {node-ip: \"10.0.0.1\", max-pods: 99999999999}\n",
            "name: x\ncluster:\n  kube-apiserver: {args: \"--v=2\"}\n",
            "name: x\ncluster:\n  kube-apiserver: {args: [--, foo]}\n",
            "name: x\ncluster:\n  kube-apiserver: {args: [-x, -, '--', \"\"]}\n",
            "name: x\ncluster:\n  kube-controller-manager: {cluster-cidr: {a: b}}\n",
            "name: x\nnodes: [{count: 18446744073709551615, prefix: n, node-ip-pools: [\"::/0\"]}]\n",
            "name: x\nnodes: [{count: 2, prefix: n, start: 18446744073709551615}]\n",
            "name: x\nseed: -1\n",
            "name: x\nseed: 99999999999999999999999999999999999999999\n",
            "name: x\nmanifests:\n  - {apiVersion: 1, kind: [a]}\n",
            "name: x\nmanifests:\n  - {apiVersion: v1, kind: List, items: [{apiVersion: v1, kind: List, items: []}]}\n",
        ];
        for input in inputs {
            let l = load(input);
            let _ = l.render();
            if l.value.is_none() {
                assert!(l.has_errors(), "no value without an error for {input:?}");
            }
        }
    }

    /// A long flow list takes memory per value; the YAML budget (shared by a scenario's
    /// files, `limits::MAX_YAML_NODES` of them) stops the parse at the cap with a located
    /// error (a 32 MB list of 16 million values once took 150 times its size). Shown here with
    /// a small budget; the mechanism is the same.
    #[test]
    fn a_flow_list_over_the_yaml_budget_stops_at_the_cap() {
        let mut text = String::from("name: x\nfabric: {external: {hosts: [");
        for _ in 0..2000 {
            text.push_str("1,");
        }
        text.push_str("1]}}\n");
        let mut budget = 1000;
        let (_, diags) =
            knetsim_model::yaml::parse_stream_within(knetsim_model::FileId(0), &text, &mut budget);
        let cap = knetsim_model::limits::MAX_YAML_NODES;
        let msg = format!("the scenario's files hold more than {cap} YAML values");
        assert_eq!(diags.len(), 1, "{diags:?}");
        assert_eq!(diags[0].message, msg);
        let span = diags[0].span.expect("located");
        // Nine nodes before the list (the maps, keys and `x`), then 991 of its values.
        assert_eq!((span.line, span.col), (2, 29 + 2 * 991));
        assert_eq!(budget, 0);
    }

    /// Generated objects are counted against the object cap before any is made.
    #[test]
    fn generate_over_the_object_cap_is_refused_before_expanding() {
        let l = load(
            "name: x\nmanifests:\n  - generate: {count: 10, object: {apiVersion: v1, kind: Namespace, metadata: {name: \"a{i}\"}}}\n  - generate: {count: 999991, object: {apiVersion: v1, kind: Namespace, metadata: {name: \"b{i}\"}}}\n",
        );
        assert!(l.value.is_none());
        let d = &l.diagnostics[0];
        assert!(
            d.message.contains("more than knetsim's cap of 1000000"),
            "{}",
            d.message
        );
        assert_eq!(d.span.expect("located").line, 4);
    }
}
