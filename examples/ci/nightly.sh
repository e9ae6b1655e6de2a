#!/usr/bin/env bash
# leasehold's nightly job for any CI system: every config of the matrix, a few
# seeds each, one exit code, a JUnit report and the runs' folders to keep.
#
#   examples/ci/nightly.sh                       # the default matrix
#   CONFIGS="examples/redis.yaml examples/redis-fenced.yaml" TEST_COUNT=5 examples/ci/nightly.sh
#
# Settings (environment):
#   CONFIGS     configs (or folders of configs) to run; default: the fenced
#               examples of every lock system, which must stay valid
#   TEST_COUNT  runs of each config, each with its own seed (default 3)
#   SEED        the first run's seed (then SEED+1, …); random when unset
#   TIME_LIMIT  longest a run may last before it is stopped (default 5m)
#   OUT         where junit.xml and store/ go (default nightly)
#   LEASEHOLD   the binary; default: build target/release/leasehold
#
# Exit code, as `leasehold test-all` gives it: 0 every run valid, 1 some run
# found an anomaly, 2 some run proved nothing (unknown), 3 some run could not
# run (bad config, missing server); invalid beats failed beats unknown.
# Run it as root: nodes get network namespaces of their own, partitions need
# them. Install the lock servers first (docs/ci.md lists the packages).
set -uo pipefail
cd "$(dirname "$0")/../.."

CONFIGS="${CONFIGS:-examples/gc-pause-fenced.yaml examples/redis-fenced.yaml examples/etcd-fenced.yaml examples/postgres-fenced.yaml examples/zookeeper-fenced.yaml}"
TEST_COUNT="${TEST_COUNT:-3}"
TIME_LIMIT="${TIME_LIMIT:-5m}"
OUT="${OUT:-nightly}"

if [ -z "${LEASEHOLD:-}" ]; then
  cargo build --release --quiet || exit 3
  LEASEHOLD=target/release/leasehold
fi
mkdir -p "$OUT"
# Leftovers of a run a previous job's machine killed must not disturb this one.
"$LEASEHOLD" cleanup >/dev/null || exit 3

# shellcheck disable=SC2086 # CONFIGS is a list of paths.
seed=()
if [ -n "${SEED:-}" ]; then seed=(--seed "$SEED"); fi
"$LEASEHOLD" test-all --no-progress "${seed[@]}" \
  --test-count "$TEST_COUNT" --time-limit "$TIME_LIMIT" \
  --store "$OUT/store" --junit "$OUT/junit.xml" \
  $CONFIGS
code=$?
echo "nightly: exit $code; runs in $OUT/store, JUnit report $OUT/junit.xml"
exit "$code"
