#!/usr/bin/env bash
# Runs, on this machine, the steps of the CI jobs in docs/ci.md, in order, as a GitHub Actions
# runner would (GITHUB_ACTIONS=true, a job summary file), and prints what each step prints.
# docs/ci.md quotes its output.
#
#   bash docs/ci-local.sh [BASE_REF]      # BASE_REF: what `diff` compares with (default HEAD~1)
#
# The `snapshot` and `diff` steps run when the binary has those subcommands.
set -u
cd "$(dirname "$0")/.."
base_ref=${1:-HEAD~1}
work=$(mktemp -d)
trap 'git worktree remove --force "$work/base" >/dev/null 2>&1; rm -rf "$work"' EXIT
export GITHUB_ACTIONS=true
export GITHUB_STEP_SUMMARY="$work/summary.md"

step() { printf '\n### %s\n$ %s\n' "$1" "$2"; }

step "Build knetsim" "cargo build --release --locked -p knetsim"
cargo build --release --locked -p knetsim 2>&1 | tail -n 1 || exit 2
export PATH="$PWD/target/release:$PATH"

step "Expectations" "knetsim test scenarios/ --junit knetsim-junit.xml"
knetsim test scenarios/ --junit "$work/knetsim-junit.xml"
echo "exit status $?"
echo "--- knetsim-junit.xml (first lines)"
head -n 8 "$work/knetsim-junit.xml"

step "A failing scenario, as the job shows it" \
    "knetsim test scenarios/failing/ --junit knetsim-junit.xml"
knetsim test scenarios/failing/ --junit "$work/failing-junit.xml"
echo "exit status $?"
echo "--- knetsim-junit.xml"
cat "$work/failing-junit.xml"

step "An invalid scenario, as the job shows it" "knetsim test scenarios/bad/07-unknown-flag-typo.yaml"
knetsim test scenarios/bad/07-unknown-flag-typo.yaml 2>&1
echo "exit status $?"

if knetsim snapshot --help >/dev/null 2>&1; then
    step "Snapshots" "knetsim snapshot scenarios/"
    knetsim snapshot scenarios/
    echo "exit status $?"
else
    printf '\n### Snapshots\n(skipped: this knetsim has no `snapshot` subcommand yet)\n'
fi

if knetsim diff --help >/dev/null 2>&1; then
    step "What this change does to the network" \
        "knetsim diff BASE/FILE FILE -o markdown >> \$GITHUB_STEP_SUMMARY"
    git worktree add --detach "$work/base" "$base_ref" >/dev/null 2>&1 || exit 2
    git diff --name-only "$base_ref" -- 'scenarios/*.yaml' ':!scenarios/bad/*' ':!scenarios/failing/*' |
        while read -r f; do
            [ -f "$work/base/$f" ] && [ -f "$f" ] || continue
            knetsim diff "$work/base/$f" "$f" -o markdown >>"$GITHUB_STEP_SUMMARY"
            echo "$f: exit status $?"
        done
    echo "--- job summary"
    cat "$GITHUB_STEP_SUMMARY" 2>/dev/null
else
    printf '\n### What this change does to the network\n(skipped: this knetsim has no `diff` subcommand yet)\n'
fi
