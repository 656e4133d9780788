#!/usr/bin/env bash
# Loads knetsim's rendered rules into a real kernel, in check mode, inside a fresh network
# namespace (never the host's):
#   *.ipsets     -> ipset restore          (Calico's sets, which the iptables rules refer to)
#   *.v4.rules   -> iptables-restore --test
#   *.v6.rules   -> ip6tables-restore --test
#   *.nft        -> nft -c -f
# Fails on the first error. Usage: kernel-load.sh DIR
# The files come from `cargo test -p knetsim-dataplane kernel_rule_files`, which writes them
# to target/kernel-load/.
set -euo pipefail

dir=${1:?usage: kernel-load.sh DIR}
dir=$(cd "$dir" && pwd)

if [ "${KNETSIM_IN_NETNS:-}" != "1" ]; then
  # Re-run this script in a new network namespace; nothing below touches the host's tables.
  exec unshare --net -- env KNETSIM_IN_NETNS=1 bash "$0" "$dir"
fi

for tool in iptables-restore ip6tables-restore nft ipset; do
  command -v "$tool" >/dev/null || { echo "kernel-load: $tool not found (apt-get install iptables nftables ipset)" >&2; exit 2; }
done

shopt -s nullglob
n=0
for f in "$dir"/*.ipsets; do
  ipset restore -exist < "$f"
  echo "ok   ipset restore        $(basename "$f")"
done
for f in "$dir"/*.v4.rules; do
  iptables-restore --test < "$f"
  echo "ok   iptables-restore     $(basename "$f")"; n=$((n+1))
done
for f in "$dir"/*.v6.rules; do
  ip6tables-restore --test < "$f"
  echo "ok   ip6tables-restore    $(basename "$f")"; n=$((n+1))
done
for f in "$dir"/*.nft; do
  nft -c -f "$f"
  echo "ok   nft -c -f            $(basename "$f")"; n=$((n+1))
done
if [ "$n" -eq 0 ]; then
  echo "kernel-load: no rule files in $dir" >&2
  exit 1
fi
echo "$n passed, 0 failed"
