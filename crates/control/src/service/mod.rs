//! kube-apiserver's Service REST logic: what happens to a Service between `kubectl apply` and
//! etcd — defaulting, dual-stack family selection, ClusterIP and NodePort allocation,
//! validation, update (upgrade to and downgrade from dual-stack), delete, and the repair pass
//! that re-occupies addresses after a restart.
//!
//! The module map:
//! - `spec`: [`Svc`](spec::Svc), the registry's view of a Service, with the v1 defaulting and
//!   the conversions from manifests and to the state document;
//! - `families`: `ipFamilyPolicy`/`ipFamilies` defaulting (`initIPFamilyFields`, and the
//!   1.20–1.22 `tryDefaultValidateServiceClusterIPFields`) and the update-time rewrites
//!   (`normalizeClusterIPs`, `patchAllocatedValues`, `dropTypeDependentFields`, ...);
//! - `validation`: `ValidateService`, `ValidateServiceUpdate` and the 1.16–1.19 `spec.ipFamily`
//!   checks;
//! - `nodeport`: the NodePort allocator and its per-request operation;
//! - `apply`: kubectl apply's three-way merge ([`apply_request`]);
//! - `field`: field errors and API status errors rendered as Kubernetes renders them;
//! - `ipstr`: IP strings parsed as Go parses them.
//!
//! Three generations of the REST code are modelled, keyed on the Kubernetes version:
//! - 1.16–1.19 ([`Era::Alpha`]): one family per Service, `spec.ipFamily`, settable only with the
//!   `IPv6DualStack` gate; validation runs before allocation; a bad user IP is reported on
//!   `spec.clusterIP` (`pkg/registry/core/service/storage/rest.go`, `strategy.go`,
//!   `pkg/apis/core/validation/conditional_validation.go`);
//! - 1.20–1.22 ([`Era::Legacy`]): `ipFamilies`/`ipFamilyPolicy`/`clusterIPs`, still in
//!   `rest.go` with validation first and the first wording of the dual-stack errors;
//! - 1.23 on ([`Era::Modern`]): the flattened REST in `storage.go`/`alloc.go`, where allocation
//!   (`BeginCreate`/`BeginUpdate`) runs before validation (`BeforeCreate`/`BeforeUpdate`),
//!   both before the etcd write that detects an existing name.

mod apply;
mod families;
pub(crate) mod field;
mod ipstr;
mod nodeport;
mod spec;
mod validation;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ipnet::IpNet;
use knetsim_ipam::Family;
use knetsim_model::{KubeVersion, Span, Spanned, objects};

use crate::state;

pub use apply::apply_request;
pub use field::ApiError;
pub use knetsim_ipam::service_ip::{AllocatorKind, ServiceIpAllocator, ServiceIpError};
pub use nodeport::{NodePortAllocator, PortError};

use families::ClusterFamilies;
use field::{BadValue, FieldError};
use nodeport::PortOp;
use spec::*;

/// How kube-apiserver was started, as far as Services are concerned.
#[derive(Clone, Debug)]
pub struct ServiceApiConfig {
    pub version: KubeVersion,
    /// kube-apiserver `--service-cluster-ip-range`, masked, primary first (1 or 2 entries).
    pub service_cidrs: Vec<IpNet>,
    /// The `IPv6DualStack` feature gate (the caller derives it from the version and flags).
    pub dual_stack: bool,
    pub allocator_kind: AllocatorKind,
    /// `ServiceIPStaticSubrange` (KEP-3070).
    pub static_subrange: bool,
    /// `--service-node-port-range`, both ends included (default 30000-32767).
    pub node_port_range: (u16, u16),
    /// `ServiceNodePortStaticSubrange` (KEP-3668: alpha 1.27, beta 1.28, GA 1.29).
    pub node_port_static_subrange: bool,
    pub seed: u64,
}

/// The generation of the Service REST code (see the module documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Era {
    /// 1.16–1.19.
    Alpha,
    /// 1.20–1.22.
    Legacy,
    /// 1.23 on.
    Modern,
}

/// Version-dependent behaviour, computed once from the version and the gates.
#[derive(Clone, Debug)]
pub struct Features {
    pub version: KubeVersion,
    pub era: Era,
    /// The 1.16–1.19 API (`spec.ipFamily`, no `clusterIPs`/`ipFamilies`/`ipFamilyPolicy`).
    pub alpha_api: bool,
    /// The `IPv6DualStack` gate.
    pub dual_stack: bool,
    /// ServiceInternalTrafficPolicy on (beta 1.22).
    pub internal_traffic_policy: bool,
    /// ServiceLBNodePortControl on (beta 1.22): `allocateLoadBalancerNodePorts`.
    pub lb_node_port_control: bool,
    /// `ExternallyAccessible` counts ClusterIP Services with external IPs and the
    /// "externally-accessible" wording (kubernetes/kubernetes#119150, v1.29.0-alpha.1).
    pub externally_accessible_external_ips: bool,
    /// `validateServiceExternalTrafficPolicy` (Required/NotSupported, "may only be set when
    /// `type` is 'NodePort' or 'LoadBalancer'") replaced the old free-text messages. The
    /// 1.27 boundary is a best estimate (the wording is confirmed on 1.28 by #119150).
    pub modern_etp_validation: bool,
    /// Before 1.23 the REST code itself ran `ValidateServiceExternalTrafficFieldsCombination`.
    pub rest_checks_traffic_combination: bool,
    /// `loadBalancerSourceRanges` validated entry by entry (newer wording, 1.29).
    pub per_entry_source_range_validation: bool,
    /// `patchAllocatedValues` on update (1.22 on).
    pub patch_allocated_values: bool,
    /// An unchanged PreferDualStack Service is not upgraded or downgraded on update (1.21 on).
    pub prefer_dual_stack_sticky: bool,
}

impl Features {
    pub fn new(version: KubeVersion, dual_stack: bool) -> Features {
        let era = if !version.at_least(20) {
            Era::Alpha
        } else if !version.at_least(23) {
            Era::Legacy
        } else {
            Era::Modern
        };
        Features {
            version,
            era,
            alpha_api: era == Era::Alpha,
            // The gate is GA and locked on from 1.23.
            dual_stack: dual_stack || era == Era::Modern,
            internal_traffic_policy: version.at_least(22),
            lb_node_port_control: version.at_least(22),
            externally_accessible_external_ips: version.at_least(29),
            modern_etp_validation: version.at_least(27),
            rest_checks_traffic_combination: era != Era::Modern,
            per_entry_source_range_validation: version.at_least(29),
            patch_allocated_values: version.at_least(22),
            prefer_dual_stack_sticky: version.at_least(21),
        }
    }
}

/// A finding of the repair pass ([`ServiceApi::restore_detailed`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RepairFinding {
    /// The Event reason kube-apiserver records on the Service (`ClusterIPOutOfRange`, ...).
    pub reason: &'static str,
    pub namespace: String,
    pub name: String,
    /// The Event message.
    pub event: String,
    /// The line kube-apiserver logs (`runtime.HandleError`).
    pub log: String,
}

/// IP allocations made for one request: undone if the request fails; the releases happen only
/// if it succeeds (`callbackTransaction` in `storage/alloc.go`).
#[derive(Debug, Default)]
struct IpTxn {
    allocated: Vec<(Family, IpAddr)>,
    to_release: Vec<(Family, String)>,
}

/// How a failed user-chosen IP is reported, by era.
#[derive(Clone, Copy)]
enum IpErrStyle {
    Alpha,
    Legacy,
    Modern,
}

/// kube-apiserver's Service storage: one IP allocator per configured family and the NodePort
/// allocator. The Services themselves live in the caller's state; this keeps only their
/// names, to answer `AlreadyExists`.
#[derive(Debug)]
pub struct ServiceApi {
    features: Features,
    cluster: ClusterFamilies,
    ip_allocs: BTreeMap<Family, ServiceIpAllocator>,
    node_ports: NodePortAllocator,
    existing: crate::fxhash::FxHashSet<(String, String)>,
    kubernetes: Option<state::Service>,
}

fn sp<T>(v: T) -> Spanned<T> {
    Spanned::new(v, Span::default())
}

impl ServiceApi {
    /// Builds the allocators. The flags are expected to have passed kube-apiserver's own
    /// validation (the caller reports those errors); the checks here only keep the allocators
    /// consistent.
    pub fn new(cfg: ServiceApiConfig) -> Result<ServiceApi, String> {
        let features = Features::new(cfg.version, cfg.dual_stack);
        let Some(primary) = cfg.service_cidrs.first() else {
            return Err("--service-cluster-ip-range must contain at least one valid cidr".into());
        };
        if cfg.service_cidrs.len() > 2 {
            return Err("--service-cluster-ip-range must not contain more than two entries".into());
        }
        if cfg.service_cidrs.len() == 2
            && Family::of_net(&cfg.service_cidrs[0]) == Family::of_net(&cfg.service_cidrs[1])
        {
            return Err("--service-cluster-ip-range[0] and --service-cluster-ip-range[1] must be of different IP family".into());
        }
        // Without the gate only the primary range is used.
        let cidrs: Vec<IpNet> = if features.dual_stack {
            cfg.service_cidrs.clone()
        } else {
            vec![*primary]
        };
        let mut ip_allocs = BTreeMap::new();
        let mut families = Vec::new();
        for cidr in &cidrs {
            let fam = Family::of_net(cidr);
            let rng = knetsim_ipam::rng::named(
                cfg.seed,
                &format!("kube-apiserver/service-ip/{}", fam.as_str()),
            );
            let alloc =
                ServiceIpAllocator::new(cidr.trunc(), cfg.allocator_kind, cfg.static_subrange, rng)
                    .map_err(|e| e.to_string())?;
            if alloc.size() == 0 {
                return Err(format!(
                    "the service cluster IP range {cidr} holds no usable address"
                ));
            }
            ip_allocs.insert(fam, alloc);
            families.push(fam);
        }
        let node_ports = NodePortAllocator::new(
            cfg.node_port_range.0,
            cfg.node_port_range.1,
            cfg.node_port_static_subrange,
            knetsim_ipam::rng::named(cfg.seed, "kube-apiserver/node-port"),
        )?;
        Ok(ServiceApi {
            features,
            cluster: ClusterFamilies { families },
            ip_allocs,
            node_ports,
            existing: Default::default(),
            kubernetes: None,
        })
    }

    pub fn features(&self) -> &Features {
        &self.features
    }

    /// The allocator of one family, for capacity reporting.
    pub fn allocator(&self, family: Family) -> Option<&ServiceIpAllocator> {
        self.ip_allocs.get(&family)
    }

    pub fn node_port_allocator(&self) -> &NodePortAllocator {
        &self.node_ports
    }

    /// The `default/kubernetes` Service kube-apiserver creates at start
    /// (`pkg/controlplane/controller/kubernetesservice`): the first IP of the primary range,
    /// port `https` 443 to the secure port 6443, labels `component=apiserver`,
    /// `provider=kubernetes`, no selector. It goes through the normal create path, so it gets
    /// `SingleStack` and the primary family. Calling this again returns the same object.
    ///
    /// # Panics
    /// Only if the primary range cannot hold its first address, which [`ServiceApi::new`]
    /// rules out, or if a user Service was already created as `default/kubernetes`.
    pub fn create_kubernetes_service(&mut self) -> state::Service {
        self.try_create_kubernetes_service()
            .expect("the first address of a non-empty primary service range is free at start")
    }

    /// [`ServiceApi::create_kubernetes_service`], reporting a failure instead of panicking.
    pub fn try_create_kubernetes_service(&mut self) -> Result<state::Service, ApiError> {
        if let Some(svc) = &self.kubernetes {
            return Ok(svc.clone());
        }
        let primary = self.cluster.primary();
        let ip = self
            .ip_allocs
            .get(&primary)
            .map(|a| a.first_usable())
            .ok_or_else(|| ApiError::internal("no primary service IP range"))?;
        let req = objects::Service {
            meta: objects::ObjectMeta {
                name: sp("kubernetes".to_string()),
                namespace: Some(sp("default".to_string())),
                labels: [
                    ("component".to_string(), "apiserver".to_string()),
                    ("provider".to_string(), "kubernetes".to_string()),
                ]
                .into_iter()
                .collect(),
                annotations: BTreeMap::new(),
            },
            spec: objects::ServiceSpec {
                type_: Some(sp(TYPE_CLUSTER_IP.to_string())),
                ports: vec![objects::ServicePort {
                    name: Some("https".to_string()),
                    protocol: Some("TCP".to_string()),
                    port: 443,
                    target_port: Some(objects::TargetPort::Number(6443)),
                    node_port: None,
                    span: Span::default(),
                }],
                cluster_ip: Some(sp(ip.to_string())),
                session_affinity: Some(sp("None".to_string())),
                ..Default::default()
            },
            legacy_ip_family: None,
            span: Span::default(),
        };
        let svc = self.create("default", &req)?;
        self.kubernetes = Some(svc.clone());
        Ok(svc)
    }

    /// `kubectl create` / the first `kubectl apply` of a Service.
    pub fn create(
        &mut self,
        namespace: &str,
        req: &objects::Service,
    ) -> Result<state::Service, ApiError> {
        let mut svc = Svc::from_request(req, namespace, &self.features);
        self.drop_disabled_fields(&mut svc, None);
        let mut txn = IpTxn::default();
        let mut op = PortOp::default();
        let result = match self.features.era {
            Era::Modern => self.create_modern(&mut svc, &mut txn, &mut op),
            Era::Legacy => self.create_legacy(&mut svc, &mut txn, &mut op),
            Era::Alpha => self.create_alpha(&mut svc, &mut txn, &mut op),
        }
        .and_then(|()| {
            // The etcd write: a Service of that name already exists.
            if self
                .existing
                .contains(&(svc.namespace.clone(), svc.name.clone()))
            {
                Err(ApiError::already_exists(&svc.name))
            } else {
                Ok(())
            }
        });
        match result {
            Ok(()) => {
                self.commit(txn, op);
                self.existing
                    .insert((svc.namespace.clone(), svc.name.clone()));
                Ok(svc.to_state())
            }
            Err(e) => {
                self.revert(txn, op);
                Err(e)
            }
        }
    }

    /// `kubectl apply` of a Service that exists: the request is the live object patched with
    /// kubectl's three-way merge ([`apply_request`]), then the update path runs.
    pub fn apply_update(
        &mut self,
        live: &state::Service,
        last_applied: Option<&objects::Service>,
        new: &objects::Service,
    ) -> Result<state::Service, ApiError> {
        let req = apply_request(live, last_applied, new);
        let namespace = live.metadata.namespace.clone().unwrap_or_default();
        let mut svc = Svc::from_request(&req, &namespace, &self.features);
        // The manifest model has no `healthCheckNodePort`, so the live value always stays.
        svc.health_check_node_port = live.spec.health_check_node_port.map(i64::from).unwrap_or(0);
        self.update(live, svc)
    }

    /// An update (PUT) of `live` with the already-decoded request `new`.
    fn update(&mut self, live: &state::Service, mut new: Svc) -> Result<state::Service, ApiError> {
        let mut old = Svc::from_state(live);
        if !self.features.alpha_api && self.features.dual_stack {
            // `defaultOnReadService`: objects stored before the dual-stack API are read with
            // clusterIPs and ipFamilies filled in.
            families::default_on_read(&mut old, &self.cluster);
        }
        new.name = old.name.clone();
        new.namespace = old.namespace.clone();
        // PrepareForUpdate: status is never changed by a spec update.
        new.load_balancer_ingress = old.load_balancer_ingress.clone();
        self.drop_disabled_fields(&mut new, Some(&old));
        let mut txn = IpTxn::default();
        let mut op = PortOp::default();
        let result = match self.features.era {
            Era::Modern => self.update_modern(&old, &mut new, &mut txn, &mut op),
            Era::Legacy => self.update_legacy(&old, &mut new, &mut txn, &mut op),
            Era::Alpha => self.update_alpha(&old, &mut new, &mut txn, &mut op),
        };
        match result {
            Ok(()) => {
                self.commit(txn, op);
                Ok(new.to_state())
            }
            Err(e) => {
                self.revert(txn, op);
                Err(e)
            }
        }
    }

    /// `kubectl delete`: releases the cluster IPs of families still configured
    /// (`releaseAllocatedResources`), the node ports and the health-check node port.
    pub fn delete(&mut self, live: &state::Service) {
        let mut svc = Svc::from_state(live);
        if !self.features.alpha_api && self.features.dual_stack {
            families::default_on_read(&mut svc, &self.cluster);
        }
        for (fam, ip) in cluster_ips_of(&svc) {
            // "Not releasing ClusterIP because related family is not enabled": a family
            // removed from the flags keeps nothing to release into.
            if let Some(a) = self.ip_allocs.get_mut(&fam) {
                a.release(ip);
            }
        }
        for np in svc.node_ports() {
            self.node_ports.release(np);
        }
        if svc.needs_health_check() && svc.health_check_node_port > 0 {
            self.node_ports.release(svc.health_check_node_port);
        }
        self.existing.remove(&(svc.namespace, svc.name));
    }

    /// The repair pass after kube-apiserver (re)starts with these flags
    /// (`ipallocator/controller/repair.go`, `portallocator/controller/repair.go`): re-occupies
    /// every Service's cluster IPs and node ports, and returns what kube-apiserver logs for
    /// those that no longer fit. Call it on a fresh [`ServiceApi`].
    pub fn restore(&mut self, existing: &[state::Service]) -> Vec<String> {
        self.restore_detailed(existing)
            .into_iter()
            .map(|f| f.log)
            .collect()
    }

    /// [`ServiceApi::restore`] with the Event reason and message of each finding.
    pub fn restore_detailed(&mut self, existing: &[state::Service]) -> Vec<RepairFinding> {
        let mut sorted: Vec<&state::Service> = existing.iter().collect();
        sorted.sort_by(|a, b| {
            (&a.metadata.namespace, &a.metadata.name)
                .cmp(&(&b.metadata.namespace, &b.metadata.name))
        });
        let mut findings = Vec::new();
        for s in &sorted {
            let svc = Svc::from_state(s);
            self.existing
                .insert((svc.namespace.clone(), svc.name.clone()));
            if s.metadata.namespace.as_deref() == Some("default") && svc.name == "kubernetes" {
                self.kubernetes = Some((*s).clone());
            }
            self.repair_ips(&svc, &mut findings);
        }
        for s in &sorted {
            self.repair_ports(&Svc::from_state(s), &mut findings);
        }
        findings
    }

    /// The read view of a stored Service on this server (`defaultOnRead`): after an upgrade
    /// from 1.16–1.19, Services gain `clusterIPs`, `ipFamilies` and `ipFamilyPolicy`.
    pub fn read(&self, stored: &state::Service) -> state::Service {
        if self.features.alpha_api || !self.features.dual_stack {
            return stored.clone();
        }
        let mut svc = Svc::from_state(stored);
        families::default_on_read(&mut svc, &self.cluster);
        svc.to_state()
    }

    // -----------------------------------------------------------------------------------
    // Transactions

    fn commit(&mut self, txn: IpTxn, op: PortOp) {
        for (fam, ip) in txn.to_release {
            if let (Some(a), Some(parsed)) =
                (self.ip_allocs.get_mut(&fam), ipstr::parse_ip_sloppy(&ip))
            {
                a.release(parsed);
            }
        }
        op.commit(&mut self.node_ports);
    }

    fn revert(&mut self, txn: IpTxn, op: PortOp) {
        for (fam, ip) in txn.allocated {
            if let Some(a) = self.ip_allocs.get_mut(&fam) {
                a.release(ip);
            }
        }
        op.revert(&mut self.node_ports);
    }

    /// `dropServiceDisabledFields`: fields of gates that are off (or of APIs that do not
    /// exist yet) are dropped unless the stored object already uses them.
    fn drop_disabled_fields(&self, svc: &mut Svc, old: Option<&Svc>) {
        let f = &self.features;
        if f.alpha_api {
            // Not fields of the 1.16–1.19 API.
            svc.cluster_ips.clear();
            svc.ip_families.clear();
            svc.ip_family_policy = None;
            if !f.dual_stack && old.is_none_or(|o| o.ip_family.is_none()) {
                svc.ip_family = None;
            }
        } else if !f.dual_stack {
            let in_use = old.is_some_and(|o| {
                o.ip_family_policy.is_some() || !o.ip_families.is_empty() || o.cluster_ips.len() > 1
            });
            if !in_use {
                svc.ip_families.clear();
                svc.ip_family_policy = None;
                svc.cluster_ips.truncate(1);
            }
        }
        if !f.internal_traffic_policy && old.is_none_or(|o| o.internal_traffic_policy.is_none()) {
            svc.internal_traffic_policy = None;
        }
        if !f.lb_node_port_control
            && old.is_none_or(|o| o.allocate_load_balancer_node_ports.is_none())
        {
            svc.allocate_load_balancer_node_ports = None;
        }
    }

    // -----------------------------------------------------------------------------------
    // Create, per era

    /// 1.23+: `beginCreate` (normalize, `allocateCreate`), then `BeforeCreate` (validation).
    fn create_modern(
        &mut self,
        svc: &mut Svc,
        txn: &mut IpTxn,
        op: &mut PortOp,
    ) -> Result<(), ApiError> {
        families::normalize_cluster_ips(svc, None);
        families::init_ip_family_fields(svc, None, &self.cluster)?;
        self.alloc_cluster_ips(svc, txn, IpErrStyle::Modern)?;
        self.init_node_ports(svc, op)?;
        if svc.needs_health_check() {
            self.alloc_health_check_node_port(svc, op)?;
        }
        let errs = validation::validate_service(svc, &self.features);
        if !errs.is_empty() {
            return Err(ApiError::invalid(&svc.name, &errs));
        }
        Ok(())
    }

    /// 1.20–1.22 (`rest.go Create`): validation first, then defaulting and allocation, then the
    /// generic store's create (which validates the now-complete object again).
    fn create_legacy(
        &mut self,
        svc: &mut Svc,
        txn: &mut IpTxn,
        op: &mut PortOp,
    ) -> Result<(), ApiError> {
        families::normalize_cluster_ips(svc, None);
        let errs = validation::validate_service(svc, &self.features);
        if !errs.is_empty() {
            return Err(ApiError::invalid(&svc.name, &errs));
        }
        if self.features.dual_stack {
            families::legacy_try_default(svc, None, &self.cluster, false)?;
        }
        self.alloc_cluster_ips(svc, txn, IpErrStyle::Legacy)?;
        self.init_node_ports(svc, op)?;
        if svc.needs_health_check() {
            self.alloc_health_check_node_port(svc, op)?;
        }
        let errs = validation::external_traffic_fields_combination(svc);
        if !errs.is_empty() {
            return Err(ApiError::invalid(&svc.name, &errs));
        }
        let errs = validation::validate_service(svc, &self.features);
        if !errs.is_empty() {
            return Err(ApiError::invalid(&svc.name, &errs));
        }
        Ok(())
    }

    /// 1.16–1.19 (`rest.go Create`): `spec.ipFamily` defaulting, validation, then one
    /// clusterIP from the family's range.
    fn create_alpha(
        &mut self,
        svc: &mut Svc,
        txn: &mut IpTxn,
        op: &mut PortOp,
    ) -> Result<(), ApiError> {
        if self.features.dual_stack && svc.ip_family.is_none() {
            svc.ip_family = Some(self.cluster.primary().as_str().to_string());
        }
        let mut errs = validation::validate_service(svc, &self.features);
        if self.features.dual_stack {
            errs.extend(validation::alpha_ip_family(
                svc,
                None,
                &self.cluster.families,
                &self.features,
            ));
        }
        if !errs.is_empty() {
            return Err(ApiError::invalid(&svc.name, &errs));
        }
        if svc.type_ != TYPE_EXTERNAL_NAME {
            self.init_cluster_ip_alpha(svc, txn)?;
        }
        self.init_node_ports(svc, op)?;
        if svc.needs_health_check() {
            self.alloc_health_check_node_port(svc, op)?;
        }
        let errs = validation::external_traffic_fields_combination(svc);
        if !errs.is_empty() {
            return Err(ApiError::invalid(&svc.name, &errs));
        }
        Ok(())
    }

    // -----------------------------------------------------------------------------------
    // Update, per era

    /// 1.23+: `beginUpdate` (`patchAllocatedValues`, normalize, `allocateUpdate`), then
    /// `BeforeUpdate` (`PrepareForUpdate`, `ValidateUpdate`).
    fn update_modern(
        &mut self,
        old: &Svc,
        new: &mut Svc,
        txn: &mut IpTxn,
        op: &mut PortOp,
    ) -> Result<(), ApiError> {
        families::patch_allocated_values(new, old);
        families::normalize_cluster_ips(new, Some(old));
        families::init_ip_family_fields(new, Some(old), &self.cluster)?;
        self.update_cluster_ips(old, new, txn, IpErrStyle::Modern, true)?;
        self.update_all_node_ports(old, new, op)?;
        // Case 1 and 2 of `updateHealthCheckNodePort`.
        match (old.needs_health_check(), new.needs_health_check()) {
            (false, true) => self.alloc_health_check_node_port(new, op)?,
            (true, false) => op.release_deferred(old.health_check_node_port),
            _ => {}
        }
        families::drop_type_dependent_fields(new, old);
        let errs = validation::validate_service_update(new, old, &self.features);
        if !errs.is_empty() {
            return Err(ApiError::invalid(&new.name, &errs));
        }
        Ok(())
    }

    /// 1.20–1.22 (`rest.go Update`).
    fn update_legacy(
        &mut self,
        old: &Svc,
        new: &mut Svc,
        txn: &mut IpTxn,
        op: &mut PortOp,
    ) -> Result<(), ApiError> {
        let f = self.features.clone();
        // BeforeUpdate: PrepareForUpdate, then ValidateUpdate.
        if f.patch_allocated_values {
            families::patch_allocated_values(new, old);
        }
        families::normalize_cluster_ips(new, Some(old));
        // Since 1.20 a type change wipes what the old type needed (node ports, health-check
        // port, ...) instead of failing validation; 1.16–1.19 did not.
        families::drop_type_dependent_fields(new, old);
        if f.dual_stack {
            families::trim_fields_for_dual_stack_downgrade(new, old);
        }
        let errs = validation::validate_service_update(new, old, &f);
        if !errs.is_empty() {
            return Err(ApiError::invalid(&new.name, &errs));
        }
        if f.dual_stack {
            families::legacy_try_default(
                new,
                Some(old),
                &self.cluster,
                f.prefer_dual_stack_sticky,
            )?;
        }
        self.update_cluster_ips(
            old,
            new,
            txn,
            IpErrStyle::Legacy,
            f.prefer_dual_stack_sticky,
        )?;
        self.update_all_node_ports(old, new, op)?;
        self.update_health_check_node_port_legacy(old, new, op)?;
        self.external_traffic_policy_update(old, new);
        let errs = validation::external_traffic_fields_combination(new);
        if !errs.is_empty() {
            return Err(ApiError::invalid(&new.name, &errs));
        }
        // The generic store's update validates the complete object again.
        let errs = validation::validate_service_update(new, old, &f);
        if !errs.is_empty() {
            return Err(ApiError::invalid(&new.name, &errs));
        }
        Ok(())
    }

    /// 1.16–1.19 (`rest.go Update`).
    fn update_alpha(
        &mut self,
        old: &Svc,
        new: &mut Svc,
        txn: &mut IpTxn,
        op: &mut PortOp,
    ) -> Result<(), ApiError> {
        let f = self.features.clone();
        // PrepareForUpdate: a missing family keeps the stored one.
        if f.dual_stack && new.ip_family.is_none() {
            new.ip_family = old
                .ip_family
                .clone()
                .or_else(|| Some(self.cluster.primary().as_str().to_string()));
        }
        let mut errs = validation::validate_service_update(new, old, &f);
        if f.dual_stack {
            errs.extend(validation::alpha_ip_family(
                new,
                Some(old),
                &self.cluster.families,
                &f,
            ));
        }
        if !errs.is_empty() {
            return Err(ApiError::invalid(&new.name, &errs));
        }
        if old.type_ == TYPE_EXTERNAL_NAME && new.type_ != TYPE_EXTERNAL_NAME {
            self.init_cluster_ip_alpha(new, txn)?;
        }
        if old.type_ != TYPE_EXTERNAL_NAME
            && new.type_ == TYPE_EXTERNAL_NAME
            && !old.cluster_ip.is_empty()
            && old.cluster_ip != CLUSTER_IP_NONE
            && let Some(fam) = ipstr::family_of(&old.cluster_ip)
        {
            txn.to_release.push((fam, old.cluster_ip.clone()));
        }
        self.update_all_node_ports(old, new, op)?;
        self.update_health_check_node_port_legacy(old, new, op)?;
        self.external_traffic_policy_update(old, new);
        let errs = validation::external_traffic_fields_combination(new);
        if !errs.is_empty() {
            return Err(ApiError::invalid(&new.name, &errs));
        }
        Ok(())
    }

    // -----------------------------------------------------------------------------------
    // Cluster IPs

    /// `allocIPs`: one IP per family, the given one or the next free one.
    fn alloc_ips(
        &mut self,
        svc: &Svc,
        to_alloc: &[(Family, String)],
        txn: &mut IpTxn,
        style: IpErrStyle,
    ) -> Result<Vec<(Family, String)>, ApiError> {
        let mut out = Vec::new();
        // Go iterates a map here, in random order; families are taken in order instead so
        // that the same input always reports the same error. IPs allocated before a later
        // failure are released (Kubernetes 1.23+ leaves them to the repair controller).
        for (fam, ip) in to_alloc {
            let Some(alloc) = self.ip_allocs.get_mut(fam) else {
                return Err(ApiError::internal(format!(
                    "failed to allocate a serviceIP: {fam} is not configured on this cluster"
                )));
            };
            if ip.is_empty() {
                match alloc.allocate_next() {
                    Ok(got) => {
                        txn.allocated.push((*fam, got));
                        out.push((*fam, got.to_string()));
                    }
                    Err(e) => {
                        return Err(ApiError::internal(format!(
                            "failed to allocate a serviceIP: {e}"
                        )));
                    }
                }
            } else {
                let Some(parsed) = ipstr::parse_ip_sloppy(ip) else {
                    return Err(ApiError::internal(format!(
                        "failed to parse service IP {}",
                        field::go_quote(ip)
                    )));
                };
                if let Err(e) = alloc.allocate(parsed) {
                    let err = match style {
                        IpErrStyle::Modern => FieldError::invalid(
                            "spec.clusterIPs",
                            strings_value(&svc.cluster_ips),
                            format!("failed to allocate IP {ip}: {e}"),
                        ),
                        IpErrStyle::Legacy => FieldError::invalid(
                            "spec.clusterIPs",
                            strings_value(&svc.cluster_ips),
                            format!("failed to allocated ip:{ip} with error:{e}"),
                        ),
                        // Before the dual-stack rewrite `ErrNotInRange` did not name the IP.
                        IpErrStyle::Alpha => FieldError::invalid(
                            "spec.clusterIP",
                            BadValue::Str(svc.cluster_ip.clone()),
                            e.legacy_text(),
                        ),
                    };
                    return Err(ApiError::invalid(&svc.name, &[err]));
                }
                txn.allocated.push((*fam, parsed));
                out.push((*fam, ip.clone()));
            }
        }
        Ok(out)
    }

    /// `allocClusterIPs`: every family of a Service that needs IPs.
    fn alloc_cluster_ips(
        &mut self,
        svc: &mut Svc,
        txn: &mut IpTxn,
        style: IpErrStyle,
    ) -> Result<(), ApiError> {
        if svc.type_ == TYPE_EXTERNAL_NAME {
            return Ok(());
        }
        if svc.cluster_ips.first().map(String::as_str) == Some(CLUSTER_IP_NONE) {
            return Ok(());
        }
        if !self.features.dual_stack {
            // `allocClusterIP`: the primary family, whatever the new fields say.
            let primary = self.cluster.primary();
            let got = self.alloc_ips(svc, &[(primary, svc.cluster_ip.clone())], txn, style)?;
            if let Some((_, ip)) = got.into_iter().next() {
                svc.cluster_ip = ip.clone();
                svc.cluster_ips = vec![ip];
            }
            return Ok(());
        }
        let mut to_alloc = Vec::new();
        for (i, fam) in svc.ip_families.clone().iter().enumerate() {
            if i >= svc.cluster_ips.len() {
                svc.cluster_ips.push(String::new());
            }
            if let Some(f) = Family::parse(fam) {
                to_alloc.push((f, svc.cluster_ips[i].clone()));
            }
        }
        let got = self.alloc_ips(svc, &to_alloc, txn, style)?;
        for (fam, ip) in got {
            if let Some(i) = svc.ip_families.iter().position(|f| f == fam.as_str()) {
                svc.cluster_ips[i] = ip.clone();
                if i == 0 {
                    svc.cluster_ip = ip;
                }
            }
        }
        Ok(())
    }

    /// `updateClusterIPs` (1.23+) / `handleClusterIPsForUpdatedService` (1.20–1.22):
    /// type changes to and from ExternalName, upgrades (allocate the secondary) and
    /// downgrades (release the secondary on commit).
    fn update_cluster_ips(
        &mut self,
        old: &Svc,
        new: &mut Svc,
        txn: &mut IpTxn,
        style: IpErrStyle,
        prefer_sticky: bool,
    ) -> Result<(), ApiError> {
        if prefer_sticky && families::is_matching_prefer_dual_stack(new, Some(old)) {
            return Ok(());
        }
        // A: from ExternalName: allocate everything.
        if old.type_ == TYPE_EXTERNAL_NAME && new.type_ != TYPE_EXTERNAL_NAME {
            return self.alloc_cluster_ips(new, txn, style);
        }
        let old_headless = old.cluster_ips.first().map(String::as_str) == Some(CLUSTER_IP_NONE);
        let modern = matches!(style, IpErrStyle::Modern);
        // The 1.23+ code bails out for headless Services before handling case B.
        if modern && old_headless {
            return Ok(());
        }
        // B: to ExternalName: release everything.
        if old.type_ != TYPE_EXTERNAL_NAME && new.type_ == TYPE_EXTERNAL_NAME {
            if !self.features.dual_stack {
                // Without the gate the old clusterIP is released into the primary range.
                if !old.cluster_ip.is_empty() {
                    txn.to_release
                        .push((self.cluster.primary(), old.cluster_ip.clone()));
                }
            } else {
                for (i, fam) in old.ip_families.iter().enumerate() {
                    if let (Some(f), Some(ip)) = (Family::parse(fam), old.cluster_ips.get(i)) {
                        txn.to_release.push((f, ip.clone()));
                    }
                }
            }
            return Ok(());
        }
        if old_headless || !self.features.dual_stack {
            return Ok(());
        }
        let upgraded = old.ip_families.len() == 1 && new.ip_families.len() == 2;
        let downgraded = old.ip_families.len() == 2 && new.ip_families.len() == 1;
        if upgraded {
            if new.cluster_ips.len() < 2 {
                new.cluster_ips.push(String::new());
            }
            if let Some(fam) = Family::parse(&new.ip_families[1]) {
                let got = self.alloc_ips(new, &[(fam, new.cluster_ips[1].clone())], txn, style)?;
                if let Some((_, ip)) = got.into_iter().next() {
                    new.cluster_ips[1] = ip;
                }
            }
        } else if downgraded
            && let (Some(fam), Some(ip)) =
                (Family::parse(&old.ip_families[1]), old.cluster_ips.get(1))
        {
            txn.to_release.push((fam, ip.clone()));
        }
        Ok(())
    }

    /// 1.16–1.19 `initClusterIP`: one IP from the range of `spec.ipFamily` (the primary range
    /// without the gate).
    fn init_cluster_ip_alpha(&mut self, svc: &mut Svc, txn: &mut IpTxn) -> Result<(), ApiError> {
        let fam = if self.features.dual_stack {
            svc.ip_family
                .as_deref()
                .and_then(Family::parse)
                .unwrap_or(self.cluster.primary())
        } else {
            self.cluster.primary()
        };
        if svc.cluster_ip == CLUSTER_IP_NONE {
            return Ok(());
        }
        let got = self.alloc_ips(
            svc,
            &[(fam, svc.cluster_ip.clone())],
            txn,
            IpErrStyle::Alpha,
        )?;
        if let Some((_, ip)) = got.into_iter().next() {
            svc.cluster_ip = ip;
        }
        Ok(())
    }

    // -----------------------------------------------------------------------------------
    // Node ports

    /// `shouldAllocateNodePorts`: LoadBalancers may opt out (ServiceLBNodePortControl).
    fn should_allocate_node_ports(&self, svc: &Svc) -> bool {
        match svc.type_.as_str() {
            TYPE_NODE_PORT => true,
            TYPE_LOAD_BALANCER => {
                !self.features.lb_node_port_control
                    || svc.allocate_load_balancer_node_ports.unwrap_or(true)
            }
            _ => false,
        }
    }

    /// `initNodePorts`: requested ports are reserved, the rest allocated; ports that share a
    /// port number (e.g. 53/TCP and 53/UDP) share one node port.
    fn init_node_ports(&mut self, svc: &mut Svc, op: &mut PortOp) -> Result<(), ApiError> {
        if !svc.needs_node_port() {
            return Ok(());
        }
        let should = self.should_allocate_node_ports(svc);
        let mut by_port: BTreeMap<i64, i64> = BTreeMap::new();
        for i in 0..svc.ports.len() {
            if svc.ports[i].node_port == 0 && !should {
                continue;
            }
            let port = svc.ports[i].port;
            let allocated = by_port.get(&port).copied().unwrap_or(0);
            if allocated == 0 {
                // Scans forward only: any earlier match would be in `by_port` already.
                let requested = svc
                    .ports
                    .iter()
                    .find(|p| p.port == port && p.node_port != 0)
                    .map(|p| p.node_port)
                    .unwrap_or(0);
                if requested != 0 {
                    op.allocate(&mut self.node_ports, requested)
                        .map_err(|e| node_port_invalid(svc, i, requested, &e))?;
                    svc.ports[i].node_port = requested;
                    by_port.insert(port, requested);
                } else {
                    let np = op.allocate_next(&mut self.node_ports).map_err(|e| {
                        ApiError::internal(format!("failed to allocate a nodePort: {e}"))
                    })?;
                    svc.ports[i].node_port = np;
                    by_port.insert(port, np);
                }
            } else if svc.ports[i].node_port != allocated {
                if svc.ports[i].node_port == 0 {
                    svc.ports[i].node_port = allocated;
                } else {
                    let np = svc.ports[i].node_port;
                    op.allocate(&mut self.node_ports, np)
                        .map_err(|e| node_port_invalid(svc, i, np, &e))?;
                }
            }
        }
        Ok(())
    }

    /// The node-port half of an update (`txnUpdateNodePorts`): release when the type no
    /// longer needs node ports, otherwise `updateNodePorts`.
    fn update_all_node_ports(
        &mut self,
        old: &Svc,
        new: &mut Svc,
        op: &mut PortOp,
    ) -> Result<(), ApiError> {
        if old.needs_node_port()
            && (new.type_ == TYPE_EXTERNAL_NAME || new.type_ == TYPE_CLUSTER_IP)
        {
            for np in old.node_ports() {
                op.release_deferred(np);
            }
        }
        if new.needs_node_port() {
            self.update_node_ports(old, new, op)?;
        }
        Ok(())
    }

    /// `updateNodePorts`: new values reserved, missing ones allocated, old ones no longer used
    /// released on commit.
    fn update_node_ports(
        &mut self,
        old: &Svc,
        new: &mut Svc,
        op: &mut PortOp,
    ) -> Result<(), ApiError> {
        let old_numbers = old.node_ports();
        let should = self.should_allocate_node_ports(new);
        let mut seen: Vec<(String, i64)> = Vec::new();
        let mut reserved: BTreeSet<i64> = BTreeSet::new();
        for i in 0..new.ports.len() {
            if new.ports[i].node_port == 0 && !should {
                continue;
            }
            let np = new.ports[i].node_port;
            if np != 0 {
                if !old_numbers.contains(&np) && !reserved.contains(&np) {
                    op.allocate(&mut self.node_ports, np)
                        .map_err(|e| node_port_invalid(new, i, np, &e))?;
                    reserved.insert(np);
                }
            } else {
                let got = op.allocate_next(&mut self.node_ports).map_err(|e| {
                    ApiError::internal(format!("failed to allocate a nodePort: {e}"))
                })?;
                new.ports[i].node_port = got;
            }
            let key = (new.ports[i].protocol.clone(), new.ports[i].node_port);
            if seen.contains(&key) {
                // A plain Go error, which the API server answers with an unknown reason.
                return Err(ApiError {
                    reason: "",
                    message: format!("duplicate nodePort: {{{} {}}}", key.0, key.1),
                });
            }
            seen.push(key);
        }
        let new_numbers = new.node_ports();
        for np in old_numbers {
            if !new_numbers.contains(&np) {
                op.release_deferred(np);
            }
        }
        Ok(())
    }

    /// `allocHealthCheckNodePort`: the requested port or the next free one; failures are
    /// internal errors.
    fn alloc_health_check_node_port(
        &mut self,
        svc: &mut Svc,
        op: &mut PortOp,
    ) -> Result<(), ApiError> {
        let hc = svc.health_check_node_port;
        if hc != 0 {
            op.allocate(&mut self.node_ports, hc).map_err(|e| {
                ApiError::internal(format!(
                    "failed to allocate requested HealthCheck NodePort {hc}: {e}"
                ))
            })?;
        } else {
            // Upstream formats the not-yet-assigned port variable, which is 0.
            let got = op.allocate_next(&mut self.node_ports).map_err(|e| {
                ApiError::internal(format!("failed to allocate a HealthCheck NodePort 0: {e}"))
            })?;
            svc.health_check_node_port = got;
        }
        Ok(())
    }

    /// `healthCheckNodePortUpdate` (1.16–1.22): the value may not change while the Service
    /// keeps needing it.
    fn update_health_check_node_port_legacy(
        &mut self,
        old: &Svc,
        new: &mut Svc,
        op: &mut PortOp,
    ) -> Result<(), ApiError> {
        match (old.needs_health_check(), new.needs_health_check()) {
            (false, true) => self.alloc_health_check_node_port(new, op),
            (true, false) => {
                op.release_deferred(old.health_check_node_port);
                new.health_check_node_port = 0;
                Ok(())
            }
            (true, true) if old.health_check_node_port != new.health_check_node_port => {
                Err(ApiError::invalid(
                    &new.name,
                    &[FieldError::invalid(
                        "spec.healthCheckNodePort",
                        BadValue::Int(new.health_check_node_port),
                        "cannot change healthCheckNodePort on loadBalancer service with externalTraffic=Local during update",
                    )],
                ))
            }
            _ => Ok(()),
        }
    }

    /// `externalTrafficPolicyUpdate` (1.16–1.22): a type that no longer needs the field loses
    /// it.
    fn external_traffic_policy_update(&self, old: &Svc, new: &mut Svc) {
        if old.needs_node_port() && !new.needs_node_port() {
            new.external_traffic_policy.clear();
        }
        if new.type_ != TYPE_LOAD_BALANCER {
            new.load_balancer_ingress.clear();
        }
    }

    // -----------------------------------------------------------------------------------
    // Repair

    fn repair_ips(&mut self, svc: &Svc, findings: &mut Vec<RepairFinding>) {
        let alpha = self.features.alpha_api;
        let ips: Vec<String> = if svc.type_ == TYPE_EXTERNAL_NAME {
            Vec::new()
        } else if !svc.cluster_ips.is_empty() {
            svc.cluster_ips.clone()
        } else if !svc.cluster_ip.is_empty() {
            vec![svc.cluster_ip.clone()]
        } else {
            Vec::new()
        };
        let primary = self.cluster.primary();
        for ip_s in ips {
            if ip_s == CLUSTER_IP_NONE {
                continue;
            }
            let mut push = |reason: &'static str, event: String, log: String| {
                findings.push(RepairFinding {
                    reason,
                    namespace: svc.namespace.clone(),
                    name: svc.name.clone(),
                    event,
                    log,
                });
            };
            let (name, ns) = (&svc.name, &svc.namespace);
            let Some(ip) = ipstr::parse_ip_sloppy(&ip_s) else {
                push(
                    "ClusterIPNotValid",
                    format!("Cluster IP {ip_s} is not a valid IP; please recreate service"),
                    format!(
                        "the cluster IP {ip_s} for service {name}/{ns} is not a valid IP; please recreate"
                    ),
                );
                continue;
            };
            let fam = Family::of_ip(&ip);
            let alloc_fam = if alpha && !self.ip_allocs.contains_key(&fam) {
                // The pre-1.20 repair picks the primary range for any IP the secondary one
                // does not cover.
                primary
            } else {
                fam
            };
            let primary_cidr = self.ip_allocs.get(&primary).map(|a| a.cidr());
            let Some(alloc) = self.ip_allocs.get_mut(&alloc_fam) else {
                push(
                    "ClusterIPNotValid",
                    format!(
                        "Cluster IP {ip}({fam}) is of ip family that is no longer configured on cluster; please recreate service"
                    ),
                    format!(
                        "the cluster IP {ip}({fam}) for service {name}/{ns} is of ip family that is no longer configured on cluster; please recreate"
                    ),
                );
                continue;
            };
            // The pre-1.20 repair names the primary range in its messages whichever range it
            // tried.
            let cidr = match primary_cidr {
                Some(p) if alpha => p,
                _ => alloc.cidr(),
            };
            match alloc.allocate(ip) {
                Ok(()) => {}
                Err(ServiceIpError::Allocated) => {
                    if alpha {
                        push(
                            "ClusterIPAlreadyAllocated",
                            format!(
                                "Cluster IP {ip} was assigned to multiple services; please recreate service"
                            ),
                            format!(
                                "the cluster IP {ip} for service {name}/{ns} was assigned to multiple services; please recreate"
                            ),
                        );
                    } else {
                        push(
                            "ClusterIPAlreadyAllocated",
                            format!(
                                "Cluster IP [{fam}]:{ip} was assigned to multiple services; please recreate service"
                            ),
                            format!(
                                "the cluster IP [{fam}]:{ip} for service {name}/{ns} was assigned to multiple services; please recreate"
                            ),
                        );
                    }
                }
                Err(ServiceIpError::NotInRange { .. }) => {
                    if alpha {
                        push(
                            "ClusterIPOutOfRange",
                            format!(
                                "Cluster IP {ip} is not within the service CIDR {cidr}; please recreate service"
                            ),
                            format!(
                                "the cluster IP {ip} for service {name}/{ns} is not within the service CIDR {cidr}; please recreate"
                            ),
                        );
                    } else {
                        push(
                            "ClusterIPOutOfRange",
                            format!(
                                "Cluster IP [{fam}]:{ip} is not within the service CIDR {cidr}; please recreate service"
                            ),
                            format!(
                                "the cluster IP [{fam}]:{ip} for service {name}/{ns} is not within the service CIDR {cidr}; please recreate"
                            ),
                        );
                    }
                }
                Err(
                    e @ (ServiceIpError::MismatchedNetwork
                    | ServiceIpError::NotReady
                    | ServiceIpError::PrefixTooShort { .. }),
                ) => {
                    push(
                        "UnknownError",
                        format!(
                            "Unable to allocate cluster IP [{fam}]:{ip} due to an unknown error"
                        ),
                        format!(
                            "unable to allocate cluster IP [{fam}]:{ip} for service {name}/{ns} due to an unknown error, exiting: {e}"
                        ),
                    );
                }
                Err(ServiceIpError::Full) => {
                    push(
                        "ServiceCIDRFull",
                        format!(
                            "Service CIDR {cidr} is full; you must widen the CIDR in order to create new services for Cluster IP [{fam}]:{ip}"
                        ),
                        format!(
                            "the service CIDR {cidr} is full; you must widen the CIDR in order to create new services for Cluster IP [{fam}]:{ip}"
                        ),
                    );
                }
            }
        }
    }

    fn repair_ports(&mut self, svc: &Svc, findings: &mut Vec<RepairFinding>) {
        // Node ports and the health-check node port; a port shared by two protocols of one
        // Service is one reservation.
        let mut ports: Vec<i64> = Vec::new();
        for np in svc.node_ports() {
            if !ports.contains(&np) {
                ports.push(np);
            }
        }
        if svc.health_check_node_port != 0 && !ports.contains(&svc.health_check_node_port) {
            ports.push(svc.health_check_node_port);
        }
        let range = self.node_ports.range_string();
        let (name, ns) = (&svc.name, &svc.namespace);
        for port in ports {
            let (reason, event, log) = match self.node_ports.allocate(port) {
                Ok(()) => continue,
                Err(PortError::Allocated) => (
                    "PortAlreadyAllocated",
                    format!(
                        "Port {port} was assigned to multiple services; please recreate service"
                    ),
                    format!(
                        "the node port {port} for service {name}/{ns} was assigned to multiple services; please recreate"
                    ),
                ),
                Err(PortError::NotInRange(_)) => (
                    "PortOutOfRange",
                    format!(
                        "Port {port} is not within the port range {range}; please recreate service"
                    ),
                    format!(
                        "the port {port} for service {name}/{ns} is not within the port range {range}; please recreate"
                    ),
                ),
                Err(PortError::Full) => (
                    "PortRangeFull",
                    format!(
                        "Port range {range} is full; you must widen the port range in order to create new services"
                    ),
                    format!(
                        "the port range {range} is full; you must widen the port range in order to create new services"
                    ),
                ),
            };
            findings.push(RepairFinding {
                reason,
                namespace: svc.namespace.clone(),
                name: svc.name.clone(),
                event,
                log,
            });
        }
    }
}

fn strings_value(v: &[String]) -> BadValue {
    if v.is_empty() {
        BadValue::Strings(None)
    } else {
        BadValue::Strings(Some(v.to_vec()))
    }
}

fn node_port_invalid(svc: &Svc, i: usize, port: i64, e: &PortError) -> ApiError {
    ApiError::invalid(
        &svc.name,
        &[FieldError::invalid(
            format!("spec.ports[{i}].nodePort"),
            BadValue::Int(port),
            e.to_string(),
        )],
    )
}

/// The cluster IPs a stored Service holds, by family (`releaseClusterIPs`): none for
/// ExternalName and headless Services.
fn cluster_ips_of(svc: &Svc) -> Vec<(Family, IpAddr)> {
    if svc.type_ == TYPE_EXTERNAL_NAME {
        return Vec::new();
    }
    let ips: Vec<&String> = if svc.cluster_ips.is_empty() {
        vec![&svc.cluster_ip]
    } else {
        svc.cluster_ips.iter().collect()
    };
    if ips.first().map(|s| s.as_str()) == Some(CLUSTER_IP_NONE) {
        return Vec::new();
    }
    ips.into_iter()
        .filter_map(|s| ipstr::parse_ip_sloppy(s))
        .map(|ip| (Family::of_ip(&ip), ip))
        .collect()
}
