//! Calico IPAM: IP pools cut into blocks, blocks affine to hosts, borrowing, `strictAffinity`.
//!
//! Sources (`projectcalico/calico`): `libcalico-go/lib/ipam/ipam.go` (`autoAssign`,
//! `findOrClaimBlock`, release), `ipam_block.go` (per-block allocation order),
//! `ipam_block_reader_writer.go` (`findUsableBlock`, `randomBlockGenerator`),
//! `libcalico-go/lib/clientv3/ippool.go` (`validateAndSetDefaults`), `lib/errors/errors.go`
//! (`ErrorValidation` rendering), `cni-plugin/pkg/ipamplugin/ipam_plugin.go` (dual-stack
//! handling and the error the CNI returns), `node/pkg/lifecycle/startup/startup.go` (defaults).
//!
//! What is modelled, for one `AutoAssign` of one address of one family on behalf of a host:
//!
//! 1. The enabled pools of the family are used in datastore list order, which is name order.
//!    None → `cannot find a qualified ippool`.
//! 2. The host's affine blocks in those pools are tried in order; the first with a free address
//!    is used.
//! 3. Otherwise, if the host already owns `maxBlocksPerHost` blocks (0 means Calico's built-in
//!    default of 20 since libcalico-go#1368), the request fails with `cannot allocate new block
//!    due to per host block limit` — no borrowing happens in that case.
//! 4. Otherwise a block is claimed (`findUsableBlock`): for each pool, starting at a
//!    pseudo-random block index that depends only on the host name (Calico seeds Go's
//!    `math/rand` with the FNV-32 hash of the host name, so a host always starts at the same
//!    place), blocks are visited in order with wrap-around; the first block that does not exist
//!    yet is claimed. If every block of every pool exists, the first *empty* block affine to
//!    another host is reclaimed. Calico only reclaims blocks claimed over a minute ago; knetsim
//!    has no clock and treats every block as old enough.
//! 5. If no block can be claimed: with `strictAffinity` the request fails; otherwise the host
//!    *borrows* an address from any existing block (same host-seeded order), without taking the
//!    block's affinity.
//!
//! Inside a block, free addresses are a FIFO of ordinals: a new block hands out its addresses in
//! order from the network address (`.0` is a valid pod IP in Calico), and a released address goes
//! to the back of the queue. Releasing the last address of a block keeps the block and its
//! affinity (Calico releases affinity lazily); an empty block with *no* affinity is deleted.
//!
//! Not reproduced: Go's `math/rand` stream itself (we draw the start index from a ChaCha8 stream
//! seeded from the caller's seed and the host name, which keeps "same host, same start"), pool
//! node/namespace selectors, `allowedUses`, IP reservations, Windows reserved addresses, and the
//! lexical (rather than numeric) ordering of a host's affine blocks in the Kubernetes datastore.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::IpAddr;

use ipnet::IpNet;
use rand::RngExt;

use crate::family::{Family, ip_to_u128, net_size, u128_to_ip};
use crate::rng::{NamedRng, named};

/// `DEFAULT_IPV4_POOL_CIDR` of calico-node's startup (`CALICO_IPV4POOL_CIDR` default).
pub const DEFAULT_IPV4_POOL_CIDR: &str = "192.168.0.0/16";
/// `DEFAULT_IPV4_POOL_BLOCK_SIZE`; also the IPPool API default for IPv4.
pub const DEFAULT_IPV4_POOL_BLOCK_SIZE: u8 = 26;
/// `DEFAULT_IPV6_POOL_BLOCK_SIZE`; also the IPPool API default for IPv6.
pub const DEFAULT_IPV6_POOL_BLOCK_SIZE: u8 = 122;
/// Name calico-node gives the IPv4 pool it creates.
pub const DEFAULT_IPV4_POOL_NAME: &str = "default-ipv4-ippool";
/// Name calico-node gives the IPv6 pool it creates.
pub const DEFAULT_IPV6_POOL_NAME: &str = "default-ipv6-ippool";
/// `CALICO_IPV4POOL_NAT_OUTGOING` default for the pool calico-node creates.
pub const DEFAULT_IPV4_POOL_NAT_OUTGOING: bool = true;
/// `CALICO_IPV6POOL_NAT_OUTGOING` default for the pool calico-node creates.
pub const DEFAULT_IPV6_POOL_NAT_OUTGOING: bool = false;
/// What `maxBlocksPerHost: 0` (the IPAMConfig default) means in `autoAssign`.
pub const DEFAULT_MAX_BLOCKS_PER_HOST: u32 = 20;
/// `EmptyBlockMinReclaimAge`, in seconds (knetsim treats every block as older than this).
pub const EMPTY_BLOCK_MIN_RECLAIM_AGE_SECS: u64 = 60;
/// CNI IPAM `assign_ipv4` default ("Default to assigning an IPv4 address").
pub const CNI_ASSIGN_IPV4_DEFAULT: bool = true;
/// CNI IPAM `assign_ipv6` default ("Default to NOT assigning an IPv6 address").
pub const CNI_ASSIGN_IPV6_DEFAULT: bool = false;

/// `ErrNoQualifiedPool`.
const ERR_NO_QUALIFIED_POOL: &str = "cannot find a qualified ippool";
/// `ErrBlockLimit`.
const ERR_BLOCK_LIMIT: &str = "cannot allocate new block due to per host block limit";

/// A Calico `IPPool` (the fields IPAM uses).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct IpPool {
    pub name: String,
    pub cidr: IpNet,
    /// Block prefix length; 0 means the API default (26 for IPv4, 122 for IPv6).
    pub block_size: u8,
    pub nat_outgoing: bool,
    pub disabled: bool,
}

impl IpPool {
    pub fn family(&self) -> Family {
        Family::of_net(&self.cidr)
    }

    /// The block size after defaulting.
    pub fn effective_block_size(&self) -> u8 {
        match (self.block_size, self.family()) {
            (0, Family::IPv4) => DEFAULT_IPV4_POOL_BLOCK_SIZE,
            (0, Family::IPv6) => DEFAULT_IPV6_POOL_BLOCK_SIZE,
            (b, _) => b,
        }
    }

    /// Number of blocks in the pool (0 if the pool is smaller than one block).
    pub fn block_count(&self) -> u128 {
        let cidr = self.cidr.trunc();
        let bs = self.effective_block_size();
        if bs < cidr.prefix_len() || bs > cidr.max_prefix_len() {
            return 0;
        }
        1u128
            .checked_shl(u32::from(bs - cidr.prefix_len()))
            .unwrap_or(u128::MAX)
    }

    /// Addresses per block.
    pub fn block_addresses(&self) -> u128 {
        1u128 << (self.cidr.max_prefix_len() - self.effective_block_size())
    }
}

/// Address and block counts for one family, over the enabled pools of that family.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct CalicoUsage {
    pub pools: usize,
    pub blocks_total: u128,
    /// Blocks that exist and are affine to a host.
    pub blocks_affine: u128,
    /// Blocks that exist without affinity (their host was removed while others borrowed).
    pub blocks_unaffine: u128,
    pub ips_total: u128,
    pub ips_used: u128,
    /// Used addresses whose block is not affine to the host that holds them.
    pub ips_borrowed: u128,
}

type HostId = u32;
/// Blocks and addresses are keyed by family and integer value, so ordering is numeric.
type Key = (Family, u128);

#[derive(Clone, Debug)]
struct Block {
    cidr: IpNet,
    pool: usize,
    affinity: Option<HostId>,
    /// Free ordinals, in the order they will be handed out (`Unallocated`).
    free: VecDeque<u32>,
    /// Holder of each ordinal.
    owners: Vec<Option<HostId>>,
}

impl Block {
    fn is_empty(&self) -> bool {
        self.free.len() == self.owners.len()
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct PoolStats {
    blocks: u128,
    empty_blocks: u128,
    free_in_blocks: u128,
}

/// What `findUsableBlock` settled on.
enum Usable {
    New(usize, u128),
    Own(Key),
    Reclaim(Key),
}

/// What one `autoAssign` call produced.
enum Outcome {
    Assigned(IpAddr),
    /// `AutoAssign` returned no error but fewer addresses than asked (the messages of
    /// `IPAMAssignments.Msgs`).
    Partial(Vec<String>),
    /// `AutoAssign` returned an error.
    Failed(String),
}

/// Calico IPAM state for a cluster.
#[derive(Clone, Debug)]
pub struct CalicoIpam {
    pools: Vec<IpPool>,
    stats: Vec<PoolStats>,
    strict_affinity: bool,
    max_blocks_per_host: u32,
    seed: u64,
    small_block_rng: NamedRng,
    hosts: Vec<String>,
    host_ids: BTreeMap<String, HostId>,
    blocks: BTreeMap<Key, Block>,
    affine: BTreeMap<HostId, BTreeSet<Key>>,
    held: BTreeMap<HostId, BTreeSet<Key>>,
}

impl CalicoIpam {
    /// Validates the pools as `IPPools().Create` would, one after the other (so overlaps are
    /// reported on the later pool), and builds an IPAM with no blocks yet.
    /// `max_blocks_per_host` is IPAMConfig's `maxBlocksPerHost`: 0 means Calico's default of 20;
    /// pass `u32::MAX` for "no practical limit".
    pub fn new(
        pools: Vec<IpPool>,
        strict_affinity: bool,
        max_blocks_per_host: u32,
    ) -> Result<CalicoIpam, String> {
        let mut accepted: Vec<IpPool> = Vec::with_capacity(pools.len());
        for pool in pools {
            let pool = validate_pool(pool, &accepted)?;
            accepted.push(pool);
        }
        // The datastore lists pools by name; sort stably so equal names keep their order.
        accepted.sort_by(|a, b| a.name.cmp(&b.name));
        let stats = vec![PoolStats::default(); accepted.len()];
        Ok(CalicoIpam {
            pools: accepted,
            stats,
            strict_affinity,
            max_blocks_per_host,
            seed: 0,
            small_block_rng: named(0, "calico/small-blocks"),
            hosts: Vec::new(),
            host_ids: BTreeMap::new(),
            blocks: BTreeMap::new(),
            affine: BTreeMap::new(),
            held: BTreeMap::new(),
        })
    }

    /// Sets the seed of the block-start choice (see the module docs). Call before assigning.
    pub fn with_seed(mut self, seed: u64) -> CalicoIpam {
        self.seed = seed;
        self.small_block_rng = named(seed, "calico/small-blocks");
        self
    }

    pub fn pools(&self) -> &[IpPool] {
        &self.pools
    }

    pub fn strict_affinity(&self) -> bool {
        self.strict_affinity
    }

    /// The per-host block limit in effect (after defaulting 0 to 20).
    pub fn effective_max_blocks_per_host(&self) -> u32 {
        if self.max_blocks_per_host == 0 {
            DEFAULT_MAX_BLOCKS_PER_HOST
        } else {
            self.max_blocks_per_host
        }
    }

    /// `AutoAssign` of one address of `family` for `host`, returning the address or the error the
    /// Calico CNI plugin would report.
    pub fn assign(&mut self, host: &str, family: Family) -> Result<IpAddr, String> {
        let hid = self.intern(host);
        match self.auto_assign(hid, family) {
            Outcome::Assigned(ip) => Ok(ip),
            Outcome::Partial(msgs) => Err(partial_error(family, &msgs)),
            Outcome::Failed(err) => Err(err),
        }
    }

    /// What the Calico CNI plugin does for one pod: `AutoAssign` with `Num4`/`Num6`, then its
    /// clean-up. IPv4 is assigned first. If one family comes back short, the other family's
    /// address is released and the short family's error returned. If `AutoAssign` itself fails
    /// (e.g. the block limit, or no IPv6 pool), the plugin returns that error *without* releasing
    /// an IPv4 address already assigned: that address leaks, as upstream.
    pub fn assign_pod(
        &mut self,
        host: &str,
        ipv4: bool,
        ipv6: bool,
    ) -> Result<Vec<IpAddr>, String> {
        let hid = self.intern(host);
        let v4 = if ipv4 {
            match self.auto_assign(hid, Family::IPv4) {
                Outcome::Failed(err) => return Err(err),
                other => Some(other),
            }
        } else {
            None
        };
        let v6 = if ipv6 {
            match self.auto_assign(hid, Family::IPv6) {
                Outcome::Failed(err) => return Err(err),
                other => Some(other),
            }
        } else {
            None
        };
        let mut ips = Vec::new();
        let mut error = None;
        for (family, outcome) in [(Family::IPv4, &v4), (Family::IPv6, &v6)] {
            match outcome {
                Some(Outcome::Assigned(ip)) => ips.push(*ip),
                Some(Outcome::Partial(msgs)) if error.is_none() => {
                    error = Some(partial_error(family, msgs));
                }
                _ => {}
            }
        }
        match error {
            Some(err) => {
                for ip in ips {
                    self.release_ip(ip);
                }
                Err(err)
            }
            None => Ok(ips),
        }
    }

    /// `ReleaseIPs` of one address. Releasing an address that is not assigned is not an error in
    /// Calico (it is reported in an "unallocated" list), so this never fails today.
    pub fn release(&mut self, ip: IpAddr) -> Result<(), String> {
        self.release_ip(ip);
        Ok(())
    }

    /// A deleted node, as kube-controllers cleans it up: every address the host holds (in its
    /// own blocks or borrowed from others) is released, then its block affinities: empty blocks
    /// are deleted, blocks still holding other hosts' borrowed addresses lose their affinity.
    pub fn release_host(&mut self, host: &str) {
        let Some(&hid) = self.host_ids.get(host) else {
            return;
        };
        let held: Vec<Key> = self
            .held
            .get(&hid)
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default();
        for (family, v) in held {
            self.release_ip(u128_to_ip(family, v));
        }
        let affine: Vec<Key> = self
            .affine
            .remove(&hid)
            .map(|s| s.into_iter().collect())
            .unwrap_or_default();
        for key in affine {
            let empty = self.blocks.get(&key).is_some_and(Block::is_empty);
            if empty {
                self.delete_block(key);
            } else if let Some(b) = self.blocks.get_mut(&key) {
                b.affinity = None;
            }
        }
    }

    /// Blocks affine to `host`, sorted.
    pub fn blocks_of(&self, host: &str) -> Vec<IpNet> {
        let Some(hid) = self.host_ids.get(host) else {
            return Vec::new();
        };
        self.affine
            .get(hid)
            .map(|keys| keys.iter().map(|k| self.blocks[k].cidr).collect())
            .unwrap_or_default()
    }

    /// Every block that has an affinity, with its host, in block order (Calico's
    /// `BlockAffinity` resources).
    pub fn block_affinities(&self) -> Vec<(IpNet, &str)> {
        self.blocks
            .values()
            .filter_map(|b| Some((b.cidr, self.hosts[b.affinity? as usize].as_str())))
            .collect()
    }

    /// The host an address is assigned to.
    pub fn holder_of(&self, ip: IpAddr) -> Option<&str> {
        let (key, ordinal) = self.locate(ip)?;
        let owner = self.blocks.get(&key)?.owners[ordinal]?;
        Some(&self.hosts[owner as usize])
    }

    pub fn is_allocated(&self, ip: IpAddr) -> bool {
        self.holder_of(ip).is_some()
    }

    /// The pool (enabled or not) containing `ip`.
    pub fn pool_of(&self, ip: IpAddr) -> Option<&IpPool> {
        self.pools.iter().find(|p| p.cidr.contains(&ip))
    }

    /// Counts over the enabled pools of `family`.
    pub fn usage(&self, family: Family) -> CalicoUsage {
        let mut u = CalicoUsage::default();
        for (i, pool) in self.pools.iter().enumerate() {
            if pool.family() != family || pool.disabled {
                continue;
            }
            u.pools += 1;
            u.blocks_total += pool.block_count();
            u.ips_total += net_size(&pool.cidr.trunc());
            for b in self.blocks.values().filter(|b| b.pool == i) {
                if b.affinity.is_some() {
                    u.blocks_affine += 1;
                } else {
                    u.blocks_unaffine += 1;
                }
                for owner in b.owners.iter().flatten() {
                    u.ips_used += 1;
                    if b.affinity != Some(*owner) {
                        u.ips_borrowed += 1;
                    }
                }
            }
        }
        u
    }

    fn intern(&mut self, host: &str) -> HostId {
        if let Some(&id) = self.host_ids.get(host) {
            return id;
        }
        let id = self.hosts.len() as HostId;
        self.hosts.push(host.to_string());
        self.host_ids.insert(host.to_string(), id);
        id
    }

    /// `ipamClient.autoAssign` with `num = 1`.
    fn auto_assign(&mut self, hid: HostId, family: Family) -> Outcome {
        let enabled: Vec<usize> = (0..self.pools.len())
            .filter(|&i| self.pools[i].family() == family && !self.pools[i].disabled)
            .collect();
        if enabled.is_empty() {
            return Outcome::Failed(ERR_NO_QUALIFIED_POOL.to_string());
        }
        let affine: Vec<Key> = self
            .affine
            .get(&hid)
            .map(|keys| {
                keys.iter()
                    .filter(|k| k.0 == family && enabled.contains(&self.blocks[k].pool))
                    .copied()
                    .collect()
            })
            .unwrap_or_default();
        if let Some(key) = affine.iter().find(|k| !self.blocks[k].free.is_empty()) {
            return Outcome::Assigned(self.assign_from(*key, hid));
        }
        let owned = affine.len() as u64;
        if owned >= u64::from(self.effective_max_blocks_per_host()) {
            return Outcome::Failed(ERR_BLOCK_LIMIT.to_string());
        }
        let mut msgs = Vec::new();
        match self.find_usable_block(hid, &enabled) {
            Some(Usable::New(pool, network)) => {
                let key = self.create_block(pool, network, hid);
                return Outcome::Assigned(self.assign_from(key, hid));
            }
            Some(Usable::Own(key)) => return Outcome::Assigned(self.assign_from(key, hid)),
            Some(Usable::Reclaim(key)) => {
                let pool = self.blocks[&key].pool;
                self.delete_block(key);
                let key = self.create_block(pool, key.1, hid);
                return Outcome::Assigned(self.assign_from(key, hid));
            }
            None => {
                if self.strict_affinity {
                    msgs.push("No more free affine blocks and strict affinity enabled".to_string());
                }
            }
        }
        if !self.strict_affinity {
            let mut exhausted = Vec::new();
            for &p in &enabled {
                if let Some(key) = self.find_borrowable(hid, p) {
                    return Outcome::Assigned(self.assign_from(key, hid));
                }
                exhausted.push(self.pools[p].cidr.trunc().to_string());
            }
            // Go's %v of a []string.
            msgs.push(format!(
                "No IPs available in pools: [{}]",
                exhausted.join(" ")
            ));
        }
        Outcome::Partial(msgs)
    }

    /// The first block index `randomBlockGenerator` yields for `host` in pool `p`.
    fn start_index(&mut self, hid: HostId, p: usize) -> u128 {
        let n = self.pools[p].block_count();
        if n == 0 {
            return 0;
        }
        if self.pools[p].effective_block_size() == self.pools[p].cidr.max_prefix_len() {
            // Single-address blocks: Calico seeds from the clock here, i.e. a fresh start each time.
            return self.small_block_rng.random_range(0..n);
        }
        let mut rng = named(
            self.seed,
            &format!("calico/blocks/{}", self.hosts[hid as usize]),
        );
        rng.random_range(0..n)
    }

    fn block_network(&self, p: usize, index: u128) -> u128 {
        ip_to_u128(self.pools[p].cidr.trunc().network()) + index * self.pools[p].block_addresses()
    }

    /// Existing blocks of pool `p` in generator order from `start`: `[start, n)` then `[0, start)`.
    fn blocks_in_generator_order(
        &self,
        p: usize,
        start: u128,
    ) -> impl Iterator<Item = (u128, &Block)> + '_ {
        let family = self.pools[p].family();
        let n = self.pools[p].block_count();
        let first = self.block_network(p, 0);
        let at = self.block_network(p, start);
        let last = self.block_network(p, n - 1);
        let bs = self.pools[p].block_addresses();
        let upper = self.blocks.range((family, at)..=(family, last));
        let lower = self.blocks.range((family, first)..(family, at));
        upper
            .chain(lower)
            .map(move |((_, net), b)| ((net - first) / bs, b))
    }

    /// `findUsableBlock`.
    fn find_usable_block(&mut self, hid: HostId, enabled: &[usize]) -> Option<Usable> {
        let mut reclaimable: Option<Key> = None;
        for &p in enabled {
            let n = self.pools[p].block_count();
            if n == 0 {
                continue;
            }
            let stats = self.stats[p];
            if stats.blocks == n && stats.empty_blocks == 0 {
                // Every block exists and none can be reclaimed; nothing to find here.
                continue;
            }
            let start = self.start_index(hid, p);
            let family = self.pools[p].family();
            let mut expected = start;
            let mut wrapped = false;
            let mut found = None;
            for (index, block) in self.blocks_in_generator_order(p, start) {
                if !wrapped && index < start {
                    // Crossing from [start, n) into [0, start).
                    if expected < n {
                        found = Some(Usable::New(p, expected));
                        break;
                    }
                    wrapped = true;
                    expected = 0;
                }
                if index != expected {
                    found = Some(Usable::New(p, expected));
                    break;
                }
                let key = (family, self.block_network(p, index));
                if block.affinity == Some(hid) && !block.free.is_empty() {
                    found = Some(Usable::Own(key));
                    break;
                }
                if block.is_empty() && reclaimable.is_none() {
                    reclaimable = Some(key);
                }
                expected += 1;
            }
            if found.is_none() {
                let end = if wrapped { start } else { n };
                if expected < end {
                    found = Some(Usable::New(p, expected));
                } else if !wrapped && start > 0 {
                    // No existing block below start at all.
                    found = Some(Usable::New(p, 0));
                }
            }
            if let Some(Usable::New(p, index)) = found {
                return Some(Usable::New(p, self.block_network(p, index)));
            }
            if found.is_some() {
                return found;
            }
        }
        reclaimable.map(Usable::Reclaim)
    }

    /// The borrowing hunt of `autoAssign`: the first existing block of pool `p`, in generator
    /// order, with a free address.
    fn find_borrowable(&mut self, hid: HostId, p: usize) -> Option<Key> {
        if self.stats[p].free_in_blocks == 0 {
            return None;
        }
        let start = self.start_index(hid, p);
        let family = self.pools[p].family();
        self.blocks_in_generator_order(p, start)
            .find(|(_, b)| !b.free.is_empty())
            .map(|(index, _)| (family, self.block_network(p, index)))
    }

    fn create_block(&mut self, pool: usize, network: u128, hid: HostId) -> Key {
        let family = self.pools[pool].family();
        let size = self.pools[pool].block_addresses() as u32;
        let cidr = IpNet::new(
            u128_to_ip(family, network),
            self.pools[pool].effective_block_size(),
        )
        .expect("block size was validated against the family width");
        let key = (family, network);
        self.blocks.insert(
            key,
            Block {
                cidr,
                pool,
                affinity: Some(hid),
                free: (0..size).collect(),
                owners: vec![None; size as usize],
            },
        );
        let s = &mut self.stats[pool];
        s.blocks += 1;
        s.empty_blocks += 1;
        s.free_in_blocks += u128::from(size);
        self.affine.entry(hid).or_default().insert(key);
        key
    }

    fn delete_block(&mut self, key: Key) {
        if let Some(b) = self.blocks.remove(&key) {
            let s = &mut self.stats[b.pool];
            s.blocks -= 1;
            s.empty_blocks -= 1;
            s.free_in_blocks -= b.free.len() as u128;
            if let Some(owner) = b.affinity
                && let Some(set) = self.affine.get_mut(&owner)
            {
                set.remove(&key);
            }
        }
    }

    /// `allocationBlock.autoAssign` of one address.
    fn assign_from(&mut self, key: Key, hid: HostId) -> IpAddr {
        let b = self
            .blocks
            .get_mut(&key)
            .expect("assigning from an existing block");
        let was_empty = b.is_empty();
        let ordinal = b
            .free
            .pop_front()
            .expect("block chosen because it has a free address");
        b.owners[ordinal as usize] = Some(hid);
        let s = &mut self.stats[b.pool];
        s.free_in_blocks -= 1;
        if was_empty {
            s.empty_blocks -= 1;
        }
        let value = key.1 + u128::from(ordinal);
        self.held.entry(hid).or_default().insert((key.0, value));
        u128_to_ip(key.0, value)
    }

    /// The block key and ordinal of `ip`, if its block exists.
    fn locate(&self, ip: IpAddr) -> Option<(Key, usize)> {
        let family = Family::of_ip(&ip);
        let v = ip_to_u128(ip);
        let (key, b) = self.blocks.range(..=(family, v)).next_back()?;
        if key.0 != family || !b.cidr.contains(&ip) {
            return None;
        }
        Some((*key, (v - key.1) as usize))
    }

    /// `releaseIPsFromBlock` of one address.
    fn release_ip(&mut self, ip: IpAddr) {
        let Some((key, ordinal)) = self.locate(ip) else {
            return;
        };
        let b = self.blocks.get_mut(&key).expect("located block exists");
        let Some(owner) = b.owners[ordinal].take() else {
            return;
        };
        b.free.push_back(ordinal as u32);
        let now_empty = b.is_empty();
        let unaffine = b.affinity.is_none();
        let s = &mut self.stats[b.pool];
        s.free_in_blocks += 1;
        if now_empty {
            s.empty_blocks += 1;
        }
        if let Some(set) = self.held.get_mut(&owner) {
            set.remove(&(key.0, ip_to_u128(ip)));
        }
        if now_empty && unaffine {
            self.delete_block(key);
        }
    }
}

/// `IPAMAssignments.PartialFulfillmentError` for one requested address, wrapped as the CNI
/// plugin returns it.
fn partial_error(family: Family, msgs: &[String]) -> String {
    let v = match family {
        Family::IPv4 => 4,
        Family::IPv6 => 6,
    };
    let mut s = format!(
        "failed to request IPv{v} addresses: Assigned 0 out of 1 requested IPv{v} addresses"
    );
    for m in msgs {
        s.push_str("; ");
        s.push_str(m);
    }
    s
}

/// One failed field of `ErrorValidation`.
struct Field {
    name: &'static str,
    value: String,
    reason: String,
}

/// `ipPools.validateAndSetDefaults` for a create, rendered like `ErrorValidation.Error()`.
fn validate_pool(mut pool: IpPool, existing: &[IpPool]) -> Result<IpPool, String> {
    let cidr = pool.cidr.trunc();
    let family = pool.family();
    pool.block_size = pool.effective_block_size();
    let mut errs = Vec::new();
    let (lo, hi) = match family {
        Family::IPv4 => (20, 32),
        Family::IPv6 => (116, 128),
    };
    if pool.block_size < lo || pool.block_size > hi {
        errs.push(Field {
            name: "IPPool.Spec.BlockSize",
            value: pool.block_size.to_string(),
            reason: format!("{family} block size must be between {lo} and {hi}"),
        });
    }
    if !pool.disabled && cidr.prefix_len() > pool.block_size {
        errs.push(Field {
            name: "IPPool.Spec.CIDR",
            value: cidr.to_string(),
            reason: "IP pool size is too small for use with Calico IPAM. It must be equal to or greater than the block size.".to_string(),
        });
    }
    for other in existing {
        if crate::cidrset::overlaps(&other.cidr.trunc(), &cidr) {
            errs.push(Field {
                name: "IPPool.Spec.CIDR",
                value: cidr.to_string(),
                reason: format!(
                    "IPPool({}) CIDR overlaps with IPPool({}) CIDR {}",
                    pool.name,
                    other.name,
                    other.cidr.trunc()
                ),
            });
        }
    }
    if cidr.addr() != pool.cidr.addr() {
        errs.push(Field {
            name: "IPPool.Spec.CIDR",
            value: cidr.to_string(),
            reason: "IPPool CIDR is not strictly masked".to_string(),
        });
    }
    let (link_local, text): (IpNet, &str) = match family {
        Family::IPv4 => (
            "169.254.0.0/16".parse().expect("literal"),
            "IPPool CIDR overlaps with IPv4 Link Local range 169.254.0.0/16",
        ),
        Family::IPv6 => (
            "fe80::/10".parse().expect("literal"),
            "IPPool CIDR overlaps with IPv6 Link Local range fe80::/10",
        ),
    };
    if crate::cidrset::overlaps(&link_local, &cidr) {
        errs.push(Field {
            name: "IPPool.Spec.CIDR",
            value: cidr.to_string(),
            reason: text.to_string(),
        });
    }
    let render = |f: &Field| format!("{} = '{}' ({})", f.name, f.value, f.reason);
    match errs.len() {
        0 => {
            pool.cidr = cidr;
            Ok(pool)
        }
        1 => Err(format!("error with field {}", render(&errs[0]))),
        _ => {
            let mut s = "error with the following fields:\n".to_string();
            for f in &errs {
                s.push_str(&format!("-  {}\n", render(f)));
            }
            Err(s)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn pool(name: &str, cidr: &str, block_size: u8) -> IpPool {
        IpPool {
            name: name.to_string(),
            cidr: net(cidr),
            block_size,
            nat_outgoing: false,
            disabled: false,
        }
    }

    /// `clientv3/ippool.go validateAndSetDefaults`: (pools, error).
    #[test]
    fn pool_validation() {
        let table: Vec<(Vec<IpPool>, Option<&str>)> = vec![
            (vec![pool("p", "10.0.0.0/16", 0)], None),
            (vec![pool("p", "fd00::/48", 0)], None),
            (
                vec![pool("p", "10.0.0.0/16", 33)],
                Some(
                    "error with field IPPool.Spec.BlockSize = '33' (IPv4 block size must be between 20 and 32)",
                ),
            ),
            (
                vec![pool("p", "fd00::/48", 64)],
                Some(
                    "error with field IPPool.Spec.BlockSize = '64' (IPv6 block size must be between 116 and 128)",
                ),
            ),
            (
                vec![pool("p", "10.200.0.0/28", 0)],
                Some(
                    "error with field IPPool.Spec.CIDR = '10.200.0.0/28' (IP pool size is too small for use with Calico IPAM. It must be equal to or greater than the block size.)",
                ),
            ),
            (
                vec![pool("a", "10.0.0.0/16", 0), pool("b", "10.0.128.0/17", 0)],
                Some(
                    "error with field IPPool.Spec.CIDR = '10.0.128.0/17' (IPPool(b) CIDR overlaps with IPPool(a) CIDR 10.0.0.0/16)",
                ),
            ),
            (
                vec![pool("p", "10.0.0.5/16", 0)],
                Some(
                    "error with field IPPool.Spec.CIDR = '10.0.0.0/16' (IPPool CIDR is not strictly masked)",
                ),
            ),
            (
                vec![pool("p", "169.254.0.0/16", 0)],
                Some(
                    "error with field IPPool.Spec.CIDR = '169.254.0.0/16' (IPPool CIDR overlaps with IPv4 Link Local range 169.254.0.0/16)",
                ),
            ),
            (
                vec![pool("p", "169.254.1.0/28", 20)],
                Some(
                    "error with the following fields:\n-  IPPool.Spec.CIDR = '169.254.1.0/28' (IP pool size is too small for use with Calico IPAM. It must be equal to or greater than the block size.)\n-  IPPool.Spec.CIDR = '169.254.1.0/28' (IPPool CIDR overlaps with IPv4 Link Local range 169.254.0.0/16)\n",
                ),
            ),
        ];
        for (pools, want) in table {
            let got = CalicoIpam::new(pools.clone(), false, 0).err();
            assert_eq!(got.as_deref(), want, "{pools:?}");
        }
    }

    #[test]
    fn defaults_and_block_counts() {
        let p = pool(DEFAULT_IPV4_POOL_NAME, DEFAULT_IPV4_POOL_CIDR, 0);
        assert_eq!(p.effective_block_size(), 26);
        assert_eq!(p.block_count(), 1024);
        assert_eq!(p.block_addresses(), 64);
        let p6 = pool(DEFAULT_IPV6_POOL_NAME, "fd00:1234:5678::/48", 0);
        assert_eq!(p6.effective_block_size(), 122);
        assert_eq!(p6.block_count(), 1 << 74);
        let ipam = CalicoIpam::new(vec![p, p6], false, 0).unwrap();
        assert_eq!(ipam.effective_max_blocks_per_host(), 20);
        let u = ipam.usage(Family::IPv4);
        assert_eq!((u.pools, u.blocks_total, u.ips_total), (1, 1024, 65536));
    }

    /// A host claims one block and fills it in ordinal order from the network address, then
    /// claims the next block; a second host gets its own block.
    #[test]
    fn block_claims_and_affinity() {
        let mut ipam = CalicoIpam::new(vec![pool("p", "10.0.0.0/24", 26)], false, 0).unwrap();
        let first = ipam.assign("n1", Family::IPv4).unwrap();
        let blocks = ipam.blocks_of("n1");
        assert_eq!(blocks.len(), 1);
        assert_eq!(
            first,
            blocks[0].network(),
            "ordinal 0 (.0) is handed out first"
        );
        for i in 1..64u128 {
            let got = ipam.assign("n1", Family::IPv4).unwrap();
            assert_eq!(ip_to_u128(got), ip_to_u128(first) + i);
        }
        ipam.assign("n1", Family::IPv4).unwrap();
        assert_eq!(ipam.blocks_of("n1").len(), 2);
        ipam.assign("n2", Family::IPv4).unwrap();
        let n2 = ipam.blocks_of("n2");
        assert_eq!(n2.len(), 1);
        assert!(!ipam.blocks_of("n1").contains(&n2[0]));
        let u = ipam.usage(Family::IPv4);
        assert_eq!((u.blocks_affine, u.ips_used, u.ips_borrowed), (3, 66, 0));
        // The same host starts at the same block index every time (host-seeded start).
        let mut again = CalicoIpam::new(vec![pool("p", "10.0.0.0/24", 26)], false, 0).unwrap();
        again.assign("n1", Family::IPv4).unwrap();
        assert_eq!(again.blocks_of("n1"), vec![blocks[0]]);
    }

    /// Released addresses go to the back of the block's free queue; an emptied block stays
    /// affine (lazy release).
    #[test]
    fn release_order_and_lazy_affinity() {
        let mut ipam = CalicoIpam::new(vec![pool("p", "10.0.0.0/26", 26)], false, 0).unwrap();
        let a = ipam.assign("n1", Family::IPv4).unwrap();
        let b = ipam.assign("n1", Family::IPv4).unwrap();
        assert_eq!((a, b), (ip("10.0.0.0"), ip("10.0.0.1")));
        ipam.release(a).unwrap();
        assert_eq!(ipam.assign("n1", Family::IPv4).unwrap(), ip("10.0.0.2"));
        ipam.release(b).unwrap();
        ipam.release(ip("10.0.0.2")).unwrap();
        ipam.release(ip("10.0.0.2")).unwrap();
        assert_eq!(ipam.usage(Family::IPv4).ips_used, 0);
        assert_eq!(ipam.blocks_of("n1"), vec![net("10.0.0.0/26")]);
        assert_eq!(ipam.assign("n1", Family::IPv4).unwrap(), ip("10.0.0.3"));
    }

    /// With the pool's blocks all claimed: strictAffinity off → borrow from another host's
    /// block; on → fail with Calico's message.
    #[test]
    fn borrowing_versus_strict_affinity() {
        // (strict, expected result for n2)
        let table: [(bool, Result<&str, &str>); 2] = [
            (false, Ok("10.0.0.1")),
            (
                true,
                Err(
                    "failed to request IPv4 addresses: Assigned 0 out of 1 requested IPv4 addresses; No more free affine blocks and strict affinity enabled",
                ),
            ),
        ];
        for (strict, want) in table {
            let mut ipam = CalicoIpam::new(vec![pool("p", "10.0.0.0/30", 30)], strict, 0).unwrap();
            assert_eq!(ipam.assign("n1", Family::IPv4).unwrap(), ip("10.0.0.0"));
            let got = ipam.assign("n2", Family::IPv4);
            assert_eq!(
                got.as_ref().map(|i| i.to_string()).map_err(|e| e.as_str()),
                want.map(str::to_string)
            );
            if !strict {
                let u = ipam.usage(Family::IPv4);
                assert_eq!((u.ips_used, u.ips_borrowed), (2, 1));
                assert_eq!(ipam.blocks_of("n2"), Vec::<IpNet>::new());
                assert_eq!(ipam.holder_of(ip("10.0.0.1")), Some("n2"));
            }
        }
        // Everything used: the borrowing hunt reports the exhausted pools.
        let mut ipam = CalicoIpam::new(
            vec![pool("a", "10.0.0.0/31", 31), pool("b", "10.1.0.0/31", 31)],
            false,
            0,
        )
        .unwrap();
        for _ in 0..4 {
            ipam.assign("n1", Family::IPv4).unwrap();
        }
        assert_eq!(
            ipam.assign("n2", Family::IPv4).unwrap_err(),
            "failed to request IPv4 addresses: Assigned 0 out of 1 requested IPv4 addresses; No IPs available in pools: [10.0.0.0/31 10.1.0.0/31]"
        );
    }

    #[test]
    fn max_blocks_per_host() {
        // (configured limit, blocks a single host can claim in a pool of 8 blocks)
        let table = [(1u32, 1usize), (3, 3), (0, 8), (u32::MAX, 8)];
        for (limit, blocks) in table {
            let mut ipam =
                CalicoIpam::new(vec![pool("p", "10.0.0.0/27", 30)], false, limit).unwrap();
            let mut err = None;
            for _ in 0..32 {
                if let Err(e) = ipam.assign("n1", Family::IPv4) {
                    err = Some(e);
                    break;
                }
            }
            assert_eq!(ipam.blocks_of("n1").len(), blocks, "limit {limit}");
            if blocks < 8 {
                assert_eq!(
                    err.as_deref(),
                    Some("cannot allocate new block due to per host block limit")
                );
            }
        }
        // The default limit of 20 bites in a bigger pool.
        let mut ipam = CalicoIpam::new(vec![pool("p", "10.0.0.0/16", 30)], false, 0).unwrap();
        for _ in 0..80 {
            ipam.assign("n1", Family::IPv4).unwrap();
        }
        assert_eq!(
            ipam.assign("n1", Family::IPv4).unwrap_err(),
            "cannot allocate new block due to per host block limit"
        );
    }

    /// Node deletion frees its addresses and its blocks; a block still holding a borrowed
    /// address loses its affinity and disappears when that address is released. Empty blocks of
    /// other hosts are reclaimed once every block of the pool exists.
    #[test]
    fn release_host_and_reclaim() {
        let mut ipam = CalicoIpam::new(vec![pool("p", "10.0.0.0/30", 31)], false, 0).unwrap();
        let a = ipam.assign("n1", Family::IPv4).unwrap();
        let b = ipam.assign("n2", Family::IPv4).unwrap();
        // Both /31 blocks are claimed; n3 borrows the second address of one of them.
        let borrowed = ipam.assign("n3", Family::IPv4).unwrap();
        assert_eq!(ipam.holder_of(borrowed), Some("n3"));
        let (lender, lender_ip, other, other_ip) = if ipam.blocks_of("n1")[0].contains(&borrowed) {
            ("n1", a, "n2", b)
        } else {
            ("n2", b, "n1", a)
        };
        ipam.release_host(lender);
        assert!(!ipam.is_allocated(lender_ip));
        assert!(ipam.is_allocated(borrowed));
        assert_eq!(ipam.blocks_of(lender), Vec::<IpNet>::new());
        assert_eq!(ipam.usage(Family::IPv4).blocks_unaffine, 1);
        ipam.release(borrowed).unwrap();
        assert_eq!(ipam.usage(Family::IPv4).blocks_unaffine, 0);
        assert_eq!(ipam.usage(Family::IPv4).blocks_affine, 1);

        // The other host empties its block, which stays affine; a newcomer takes the free block,
        // the next one reclaims the empty block.
        ipam.release(other_ip).unwrap();
        assert_eq!(ipam.blocks_of(other).len(), 1);
        ipam.assign("n4", Family::IPv4).unwrap();
        assert_eq!(ipam.blocks_of(other).len(), 1);
        ipam.assign("n5", Family::IPv4).unwrap();
        assert_eq!(
            ipam.blocks_of(other),
            Vec::<IpNet>::new(),
            "the empty block was reclaimed"
        );
        assert_eq!(ipam.blocks_of("n5").len(), 1);
        assert_eq!(ipam.usage(Family::IPv4).blocks_affine, 2);
    }

    /// The CNI plugin's dual-stack clean-up.
    #[test]
    fn assign_pod_dual_stack() {
        let pools = vec![pool("v4", "10.0.0.0/30", 30), pool("v6", "fd00::/126", 126)];
        let mut ipam = CalicoIpam::new(pools, true, 0).unwrap();
        let ips = ipam.assign_pod("n1", true, true).unwrap();
        assert_eq!(ips, vec![ip("10.0.0.0"), ip("fd00::")]);
        // n2 cannot claim a block in either family (strict): no addresses stay assigned.
        let err = ipam.assign_pod("n2", true, true).unwrap_err();
        assert!(
            err.starts_with("failed to request IPv4 addresses: "),
            "{err}"
        );
        assert_eq!(ipam.usage(Family::IPv4).ips_used, 1);
        assert_eq!(ipam.usage(Family::IPv6).ips_used, 1);

        // No IPv6 pool: AutoAssign fails hard after IPv4 succeeded, and the IPv4 address leaks.
        let mut ipam = CalicoIpam::new(vec![pool("v4", "10.0.0.0/24", 26)], false, 0).unwrap();
        assert_eq!(
            ipam.assign_pod("n1", true, true).unwrap_err(),
            "cannot find a qualified ippool"
        );
        assert_eq!(ipam.usage(Family::IPv4).ips_used, 1);
        assert_eq!(
            ipam.assign_pod("n1", CNI_ASSIGN_IPV4_DEFAULT, CNI_ASSIGN_IPV6_DEFAULT)
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn disabled_pools_are_skipped_and_seed_changes_start() {
        let mut disabled = pool("a-disabled", "10.1.0.0/16", 26);
        disabled.disabled = true;
        let mut ipam =
            CalicoIpam::new(vec![pool("b", "10.2.0.0/16", 26), disabled], false, 0).unwrap();
        let got = ipam.assign("n1", Family::IPv4).unwrap();
        assert_eq!(ipam.pool_of(got).unwrap().name, "b");
        assert_eq!(ipam.pool_of(ip("10.1.0.1")).unwrap().name, "a-disabled");
        assert_eq!(ipam.usage(Family::IPv4).pools, 1);

        let starts: BTreeSet<IpNet> = (0..8u64)
            .map(|seed| {
                let mut ipam = CalicoIpam::new(vec![pool("p", "10.0.0.0/16", 26)], false, 0)
                    .unwrap()
                    .with_seed(seed);
                ipam.assign("n1", Family::IPv4).unwrap();
                ipam.blocks_of("n1")[0]
            })
            .collect();
        assert!(starts.len() > 1);
    }

    #[test]
    fn many_hosts_in_a_big_ipv6_pool() {
        let mut ipam = CalicoIpam::new(vec![pool("v6", "fd00:1::/48", 0)], false, 0).unwrap();
        for n in 0..5000 {
            ipam.assign(&format!("node-{n}"), Family::IPv6).unwrap();
        }
        let u = ipam.usage(Family::IPv6);
        assert_eq!((u.blocks_affine, u.ips_used), (5000, 5000));
    }
}
