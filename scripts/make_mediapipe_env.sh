#!/usr/bin/env bash
# Create the separate Python environment the `mediapipe` pose and mask backends run their worker in.
#
# mediapipe 0.10.21 (the last release with the Holistic `solutions` API, its models
# inside the wheel) pins numpy<2 and protobuf<5, which conflict with the main
# environment, so it lives in its own virtual environment. The backend finds it at
# <repo>/.venv-mediapipe (the default DIR) or through $TOOLKIT_MEDIAPIPE_PYTHON.
#
# Usage: scripts/make_mediapipe_env.sh [DIR]      (PYTHON=python3.11 by default)
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="${1:-$repo/.venv-mediapipe}"
python="${PYTHON:-python3.11}"
version="0.10.21"

if ! command -v "$python" >/dev/null 2>&1; then
    echo "error: $python not found; mediapipe $version needs Python 3.9-3.12 (set PYTHON=...)" >&2
    exit 1
fi

if [ -x "$dir/bin/python" ] && "$dir/bin/python" -c "import mediapipe, sys; sys.exit(mediapipe.__version__ != '$version')" 2>/dev/null; then
    echo "mediapipe $version already installed in $dir"
else
    "$python" -m venv "$dir"
    "$dir/bin/python" -m pip install --quiet --upgrade pip
    "$dir/bin/python" -m pip install --quiet "mediapipe==$version"
fi

"$dir/bin/python" -c "import mediapipe, numpy; mediapipe.solutions.holistic.Holistic(model_complexity=1).close(); print('mediapipe', mediapipe.__version__, 'numpy', numpy.__version__)"
if [ "$dir" != "$repo/.venv-mediapipe" ]; then
    echo "export TOOLKIT_MEDIAPIPE_PYTHON=$dir/bin/python"
fi
