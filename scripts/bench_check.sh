#!/usr/bin/env bash
# How long `kpibot check` takes with the planner proving what every query reads: the
# example reports, then 1,000 generated report specs (copies of the examples under new
# ids, half of them reading through a view-free table function, all covered by the
# example policies). Uses the release binary; builds it (and the demo mart) if missing.
#
#     bash scripts/bench_check.sh            # 1,000 specs
#     SPECS=5000 bash scripts/bench_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/kpibot-target}"
SPECS="${SPECS:-1000}"
PROFILE="${PROFILE:-release}"

if [ "$PROFILE" = release ]; then
    cargo build --release --quiet
else
    cargo build --quiet
fi
BIN="$CARGO_TARGET_DIR/$PROFILE/kpibot"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# The demo mart, built once, so `check` finds a DuckDB file to plan against.
(cd "$work" && mkdir -p reports && cp "$OLDPWD"/reports/*.toml reports/ \
    && "$BIN" demo --out "$work/out" >/dev/null)

seconds() { # runs `kpibot check` in $1, prints the wall time in seconds
    local TIMEFORMAT=%R
    { time (cd "$work" && "$BIN" check "$1" >/dev/null); } 2>&1
}

echo "examples ($(ls reports/*.toml | wc -l) files): $(seconds "$work/reports") s"

mkdir -p "$work/many"
cp reports/policies.toml reports/metrics.toml "$work/many/"
i=0
while [ "$i" -lt "$SPECS" ]; do
    for source in reports/daily_active_users.toml reports/signups_by_channel.toml; do
        [ "$i" -lt "$SPECS" ] || break
        if [ $((i % 2)) -eq 1 ]; then
            sed "s/FROM mart\.daily_signups/FROM query_table('mart.daily_signups')/" "$source" \
                > "$work/many/r$i.toml"
        else
            cp "$source" "$work/many/r$i.toml"
        fi
        i=$((i + 1))
    done
done
echo "$SPECS generated specs: $(seconds "$work/many") s"
