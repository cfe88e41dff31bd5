#!/usr/bin/env bash
# Print the path of a Python >= 3.12 interpreter, or explain what to install and exit 1.
# Preference: $PYTHON, then 3.12 (the version the API notes were checked on), then newer ones;
# for each, the command on PATH first, then pyenv's installed copy (run directly: a pyenv shim
# refuses a version that is not selected).
set -u
ok() { "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' >/dev/null 2>&1; }
root="${PYENV_ROOT:-$HOME/.pyenv}"
candidates=()
[ -n "${PYTHON:-}" ] && candidates+=("$PYTHON")
for minor in 12 13 14 15; do
  p=$(command -v "python3.$minor" 2>/dev/null) && candidates+=("$p")
  for q in $(ls -d "$root"/versions/3."$minor".*/bin/python3 2>/dev/null | sort -rV); do candidates+=("$q"); done
  for q in /usr/local/bin/python3."$minor" /usr/bin/python3."$minor"; do [ -x "$q" ] && candidates+=("$q"); done
done
p=$(command -v python3 2>/dev/null) && candidates+=("$p")
for p in "${candidates[@]}"; do
  if ok "$p"; then
    # Resolve a shim to the real interpreter so the venv does not depend on pyenv's selection.
    "$p" -c 'import sys; print(sys.executable)'
    exit 0
  fi
done
echo "bayes_alliance needs Python >= 3.12, and none was found (looked at \$PYTHON, python3.12 ..." >&2
echo "python3.15 and python3 on PATH, and pyenv versions under $root/versions). Install one, e.g." >&2
echo "'pyenv install 3.12' or your system's python3.12 package, or set PYTHON=/path/to/python3.12." >&2
exit 1
