# bench/lib.sh: what the bench scripts share (sourced, not run).

# median: the median of the numbers on stdin (separated by spaces or newlines)
median() { tr ' ' '\n' | grep . | sort -g | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
# md LINE...: appends the lines to $BENCH_MD when it is set (bench/report's Markdown)
md() { [ -n "${BENCH_MD:-}" ] && printf '%s\n' "$@" >>"$BENCH_MD"; return 0; }
