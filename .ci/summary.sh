#!/usr/bin/env bash
# Runs one pipeline step and writes its result to the GitHub job summary: a heading with the verdict and exit code,
# the step's results (stdout) in a code block, and on failure the end of its log (stderr). Both streams still
# reach the job log live. Without GITHUB_STEP_SUMMARY (a local run) the section goes to stderr.
#
#   .ci/summary.sh [--ok CODES] [--tail N] TITLE -- COMMAND [ARG...]
#   .ci/summary.sh --ok 0,3 "plan prod" -- .venv/bin/deployctl plan prod --detailed-exitcode
#
# --ok: comma-separated exit codes that count as success (default 0); the step exits 0 for them, else with the
# command's code. --tail: at most N lines of stdout in the summary (default 300).
set -uo pipefail
ok=0
tail_lines=300
title=
while [ $# -gt 0 ]; do
  case "$1" in
    --ok) ok=$2; shift 2 ;;
    --tail) tail_lines=$2; shift 2 ;;
    --) shift; break ;;
    *) title=$1; shift ;;
  esac
done
if [ -z "$title" ] || [ $# -eq 0 ]; then
  echo "usage: $0 [--ok CODES] [--tail N] TITLE -- COMMAND [ARG...]" >&2
  exit 2
fi
out=$(mktemp)
err=$(mktemp)
trap 'rm -f "$out" "$err"' EXIT
# stderr goes through a tee of its own on fd 4; closing fd 4 ends it, and waiting for its pid means it has written
# everything (a bare `wait` does not reliably wait for a process substitution: the summary lost the log's end)
exec 4> >(tee "$err" >&2)
tee_pid=$!
"$@" 2>&4 | tee "$out"
code=${PIPESTATUS[0]}
exec 4>&-
wait "$tee_pid"
verdict=failed
case ",$ok," in *",$code,"*) verdict=ok ;; esac
summary=${GITHUB_STEP_SUMMARY:-/dev/stderr}
{
  echo "### $title: $verdict (exit $code)"
  if [ -s "$out" ]; then
    echo '```'
    tail -n "$tail_lines" "$out"
    echo '```'
  fi
  if [ "$verdict" = failed ] && [ -s "$err" ]; then
    echo '<details><summary>end of the log</summary>'
    echo
    echo '```'
    tail -n 40 "$err"
    echo '```'
    echo '</details>'
  fi
  echo
} >> "$summary"
[ "$verdict" = ok ] && exit 0
exit "$code"
