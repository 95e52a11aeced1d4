#!/usr/bin/env bash
# Drift detection on live traffic, measured: `edgelm serve --monitor` records a window of
# requests on the known-good model, `edgelm monitor baseline --from-db` turns it into a baseline,
# then further windows of the same traffic mix (other sampling seeds) are served by the
# UNCHANGED model (every alarm is a false alarm) and by DAMAGED copies (`edgelm monitor perturb`;
# every missed alarm is a miss), each checked with `edgelm monitor report`. Also the cost of
# --monitor: mean request latency in PAIRS alternating windows with and without it. Prints
# markdown (docs/monitor.md). Release build expected at build/.
#
#   bench/monitor/serve-drift.sh [MODEL] [REQUESTS] [RUNS] [DAMAGED_RUNS]
#   defaults: ../shared/models/conf-llama-spm-f16.gguf, 100 requests per window, 10 unchanged
#   windows, 3 per damaged copy; PAIRS=3; ONLY_LATENCY=1 skips the drift windows
set -euo pipefail
cd "$(dirname "$0")/../.."
EDGELM=${EDGELM:-build/tools/edgelm/edgelm}
MODEL=${1:-../shared/models/conf-llama-spm-f16.gguf}
REQUESTS=${2:-100}
RUNS=${3:-10}
DAMAGED_RUNS=${4:-3}
THREADS=${THREADS:-2}
[ -x "$EDGELM" ] || { echo "no $EDGELM (build the Release edgelm_cli first)" >&2; exit 1; }
[ -f "$MODEL" ] || { echo "no model $MODEL" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# One window: serve MODEL (with --monitor DB unless DB is "-"), send REQUESTS chat requests of
# a fixed mix with sampling seeds from SEED, stop; prints the mean request latency in ms.
window() {
  local model=$1 db=$2 seed=$3
  python3 - "$EDGELM" "$model" "$db" "$seed" "$REQUESTS" "$THREADS" "$work" <<'PY'
import json, os, signal, subprocess, sys, time, urllib.request
edgelm, model, db, seed, n, threads, work = sys.argv[1:8]
seed, n = int(seed), int(n)
log = open(os.path.join(work, "serve.log"), "w+")
args = [edgelm, "serve", "-m", model, "--port", "0", "-c", "512", "-t", threads]
if db != "-":
    args += ["--monitor", db]
p = subprocess.Popen(args, stderr=log, stdout=subprocess.DEVNULL)
port = None
for _ in range(600):
    log.seek(0)
    text = log.read()
    if "listening on http://" in text:
        port = int(text.split("listening on http://")[1].split(":")[1].split()[0])
        break
    if p.poll() is not None:
        sys.exit("serve exited: " + text)
    time.sleep(0.1)
topics = ["the weather", "a short story", "the capital of France", "how to cook rice",
          "the history of Rome", "a poem about the sea", "prime numbers", "the solar system",
          "a letter to a friend", "the rules of chess", "a recipe for bread", "machine learning",
          "the ocean tides", "a mountain village", "the train timetable", "a birthday party"]
total = 0.0
for i in range(n):
    body = {"model": os.path.basename(model)[:-5],
            "messages": [{"role": "user", "content": "Tell me about %s." % topics[i % len(topics)]}],
            "max_tokens": 8 + (i * 7) % 17, "temperature": 0.8, "seed": seed + i}
    req = urllib.request.Request("http://127.0.0.1:%d/v1/chat/completions" % port,
                                 data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    t0 = time.time()
    with urllib.request.urlopen(req, timeout=120) as r:
        assert r.status == 200
        r.read()
    total += time.time() - t0
p.send_signal(signal.SIGTERM)
p.wait(timeout=60)
print("%.2f" % (1000 * total / n))
PY
}

# report DB BASELINE -> "alarm features" or "-"
report() {
  local out rc=0
  out=$("$EDGELM" monitor report --db "$1" --baseline "$2" --json) || rc=$?
  [ "$rc" = 0 ] || [ "$rc" = 3 ] || { echo "report failed ($rc)" >&2; exit 1; }
  python3 -c 'import json,sys; j=json.loads(sys.argv[1]); print(",".join(sorted({a["feature"] for a in j["alerts"]})) or "-")' "$out"
}

window "$MODEL" "$work/base.db" 1 >/dev/null
"$EDGELM" monitor baseline --from-db "$work/base.db" -o "$work/baseline.json" 2>&1 | tail -1 >&2
with_ms=() without_ms=()
for _ in $(seq 1 "${PAIRS:-3}"); do
  with_ms+=("$(window "$MODEL" "$work/lat.db" 1)")
  without_ms+=("$(window "$MODEL" - 1)")
done
stats() { python3 -c 'import statistics as s,sys; v=[float(x) for x in sys.argv[1:]]; print("%.1f ± %.1f ms (windows: %s)" % (s.mean(v), s.stdev(v) if len(v) > 1 else 0, ", ".join(sys.argv[1:])))' "$@"; }

declare -A DAMAGE=(
  [noise-0.50-output]="--tensor output.weight --noise 0.5"
  [noise-0.20-ffn_down]="--tensor ffn_down --noise 0.2"
)
for name in "${!DAMAGE[@]}"; do
  # shellcheck disable=SC2086
  "$EDGELM" monitor perturb -m "$MODEL" -o "$work/$name.gguf" ${DAMAGE[$name]} --seed 7 2>/dev/null
done

echo "model: $MODEL, $REQUESTS requests per window, mixed lengths (max_tokens 8-24), temperature 0.8"
echo "mean request latency, ${PAIRS:-3} alternating windows of the same requests:"
echo "  with --monitor:    $(stats "${with_ms[@]}")"
echo "  without --monitor: $(stats "${without_ms[@]}")"
[ "${ONLY_LATENCY:-0}" = 1 ] && exit 0
echo
echo "| served model | windows | windows with an alarm | features alarmed (windows) |"
echo "|---|---:|---:|---|"
row() {
  local name=$1 model=$2 runs=$3 alarms=0 feats=""
  for r in $(seq 1 "$runs"); do
    window "$model" "$work/w-$name-$r.db" $((1000 * r + 1)) >/dev/null
    f=$(report "$work/w-$name-$r.db" "$work/baseline.json")
    if [ "$f" != "-" ]; then alarms=$((alarms + 1)); feats="$feats $f"; fi
  done
  local summary
  summary=$(echo "$feats" | tr ' ,' '\n\n' | sed '/^$/d' | sort | uniq -c | awk '{printf "%s%s %s", sep, $2, $1; sep=", "}')
  echo "| $name | $runs | $alarms | ${summary:--} |"
}
row unchanged "$MODEL" "$RUNS"
for name in noise-0.50-output noise-0.20-ffn_down; do
  row "$name" "$work/$name.gguf" "$DAMAGED_RUNS"
done
