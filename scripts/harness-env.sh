# Sourced by scripts/bench and scripts/test: makes sure the harness environment exists and sets $BENCH_PY.
# The environment lives in the user cache, outside the clone, keyed by the hash of pyproject.toml, the Python
# version and the extras ($BENCH_EXTRAS, default "test"; "test,ray" adds Ray for --executor ray), so every clone
# reuses it and a changed dependency list builds a new one. The clone's own source is put
# first on PYTHONPATH, so the code that runs is always this clone's.
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${BENCH_PYTHON:-python3}"
cache="${BENCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/bench}"
extras="${BENCH_EXTRAS:-test}"
key="$({ "$python" -c 'import sys; print(sys.version_info[:2])'; cat "$repo/pyproject.toml"; echo "$extras"; } \
    | sha256sum | cut -c1-12)"
venv="$cache/harness-$key"
if [ ! -f "$venv/.bench-ready" ]; then
    echo "bench: building the harness environment in $venv (once)" >&2
    rm -rf "$venv"
    mkdir -p "$cache"
    "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --no-input "$repo[$extras]" >&2
    touch "$venv/.bench-ready"
fi
export PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}"
BENCH_PY="$venv/bin/python"
