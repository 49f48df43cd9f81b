#!/bin/sh
# Create (or reuse) a virtual environment and install anigraph into it: the one install step that
# `make run`, `make test` and the Dockerfile share.
#
#   scripts/install-venv.sh VENV PIP_ARGS...
#   scripts/install-venv.sh .venv -e .            # make run: the runtime only
#   scripts/install-venv.sh .venv -e '.[dev]'     # make test: with the test and lint tools
#   scripts/install-venv.sh /opt/anigraph .       # Dockerfile: a regular (non-editable) install
set -eu
if [ "$#" -lt 2 ]; then
    echo "usage: $0 VENV PIP_ARGS..." >&2
    exit 2
fi
venv=$1
shift
python=${PYTHON:-python3}
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
"$venv/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip
"$venv/bin/python" -m pip install -q --disable-pip-version-check "$@"
