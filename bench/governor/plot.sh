#!/usr/bin/env bash
# Simulates 30 minutes under each policy in bench/governor/policies and plots temperature,
# decode speed, device tokens and requests sent to the cloud over time (gnuplot).
#
#   bench/governor/plot.sh [path/to/edgelm]    # default: build/tools/edgelm/edgelm, then
#                                              # build-test/tools/edgelm/edgelm
# Writes bench/governor/results/<policy>.csv and .md (the per-minute tables) and
# docs/governor-sim.png.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
bin="${1:-}"
if [[ -z "$bin" ]]; then
  for c in "$root/build/tools/edgelm/edgelm" "$root/build-test/tools/edgelm/edgelm"; do
    if [[ -x "$c" ]]; then bin="$c"; break; fi
  done
fi
[[ -x "$bin" ]] || { echo "plot.sh: no edgelm binary (give its path)" >&2; exit 1; }
command -v gnuplot >/dev/null || { echo "plot.sh: gnuplot is not installed" >&2; exit 1; }

policies=(none plugged-only max-temp token-budget throttle-detect)
out="$here/results"
mkdir -p "$out"
for p in "${policies[@]}"; do
  EDGELM_LOG=warn "$bin" governor simulate --config "$here/policies/$p.json" --minutes 30 \
    --csv "$out/$p.csv" > "$out/$p.md"
done

gnuplot <<GP
set terminal pngcairo size 1400,1500 font "DejaVu Sans,12" noenhanced
set output "$root/docs/governor-sim.png"
set datafile separator ","
set key outside right top vertical
set grid
set xrange [0:30]
set multiplot layout 4,1 title "edgelm governor: simulated 30 minutes (4 requests/min x 200 tokens; device 20 t/s at full clock, throttles above 50 C)"
files = "none plugged-only max-temp token-budget throttle-detect"
colors = "#1f77b4 #d62728 #ff7f0e #2ca02c #9467bd"
set ylabel "temperature (C)"
plot for [i=1:5] "$out/".word(files,i).".csv" using 1:2 with lines lw 2 lc rgb word(colors,i) title word(files,i), \
     45 with lines dt 2 lc rgb "#888888" title "max-temp limit"
set ylabel "decode speed at the\\ncurrent clock (t/s)"
set yrange [0:22]
plot for [i=1:5] "$out/".word(files,i).".csv" using 1:3 with lines lw 2 lc rgb word(colors,i) title word(files,i)
set ylabel "device tokens (cumulative, x1000)"
set yrange [0:*]
plot for [i=1:5] "$out/".word(files,i).".csv" using 1:(\$11/1000) with lines lw 2 lc rgb word(colors,i) title word(files,i)
set yrange [*:*]
set ylabel "requests to cloud (cumulative)"
set xlabel "minute (plugged-only: charger out at 10, back at 20)"
plot for [i=1:5] "$out/".word(files,i).".csv" using 1:10 with lines lw 2 lc rgb word(colors,i) title word(files,i)
unset multiplot
GP
echo "wrote $root/docs/governor-sim.png and $out/*.csv, *.md"
