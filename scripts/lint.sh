#!/usr/bin/env bash
# The linters CI runs before the tests: ruff (pyflakes, pycodestyle errors, import order, bugbear,
# pyupgrade) and mypy (strict on repman/watcher, repman/routing and repman/api), both configured in
# pyproject.toml. Both always run, so one CI log shows every finding; each ends with one summary line.
# Exit status: 0 when both pass, 1 otherwise.
# REPMAN_VENV names the virtualenv as for scripts/setup.sh (default .venv); REPMAN_PYTHON overrides it.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${REPMAN_PYTHON:-${REPMAN_VENV:-.venv}/bin/python}
if [ ! -x "$PY" ]; then
  echo "lint: no Python at $PY: run scripts/setup.sh first (or set REPMAN_PYTHON)" >&2
  exit 2
fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
failed=0

# ruff: one line per finding, then "ruff: ok" or the count, files and the most frequent rules.
if "$PY" -m ruff check --output-format concise --no-cache . >"$out/ruff" 2>&1; then
  echo "ruff: ok, no finding"
else
  failed=1
  grep -v -e '^Found [0-9]* error' -e 'fixable with' "$out/ruff"
  # A finding line is "path:line:col: CODE message"; anything else is ruff failing to run.
  awk -F': ' '/^[^ ]+:[0-9]+:[0-9]+: [A-Z]+[0-9]+ / { split($2, w, " "); rule[w[1]]++; split($1, p, ":"); file[p[1]] = 1; n++ }
    END {
      if (n == 0) { print "ruff: FAILED to run (see above)"; exit }
      for (f in file) nf++
      top = ""
      for (k = 0; k < 5; k++) { best = ""; for (r in rule) if (best == "" || rule[r] > rule[best]) best = r
        if (best == "") break; top = top (top == "" ? "" : ", ") best " " rule[best]; delete rule[best] }
      printf "ruff: FAILED, %d findings in %d files (most: %s); `ruff check --fix .` fixes the [*] ones\n", n, nf, top
    }' "$out/ruff"
fi

# mypy: its own summary line, plus how many errors sit in the strict packages.
if "$PY" -m mypy --no-pretty --no-error-summary >"$out/mypy" 2>&1; then
  echo "mypy: ok, no error (strict: repman/watcher, repman/routing, repman/api)"
else
  failed=1
  cat "$out/mypy"
  total=$(grep -c ': error: ' "$out/mypy")
  strict=$(grep -cE '^repman/(watcher|routing|api)/[^:]*:[0-9]+: error: ' "$out/mypy")
  files=$(grep ': error: ' "$out/mypy" | cut -d: -f1 | sort -u | wc -l)
  if [ "$total" -eq 0 ]; then
    echo "mypy: FAILED to run (see above)"
  else
    echo "mypy: FAILED, $total errors in $files files ($strict in the strict packages watcher/routing/api)"
  fi
fi
exit "$failed"
