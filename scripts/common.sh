# Shared by scripts/*.sh: package installation and the build. Sourced, not run.
# Every step is idempotent: a second call installs nothing and rebuilds only
# what changed (ninja + ccache).

AMLRUN_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# ccache keys on paths relative to the checkout, so another clone of the
# same sources (a worktree, CI's fresh clone) reuses this one's objects
# instead of compiling LibTorch-heavy files again. The debug info of a
# reused object names the clone that compiled it; nothing reads it.
export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$AMLRUN_ROOT}"
export CCACHE_NOHASHDIR="${CCACHE_NOHASHDIR:-1}"

# Debian packages the build, the tests and the demo need.
AMLRUN_PACKAGES=(
  cmake g++ ninja-build ccache pkg-config
  libcli11-dev libyaml-cpp-dev libfmt-dev catch2 nlohmann-json3-dev
  libcurl4-openssl-dev libsqlite3-dev libssl-dev sqlite3
  libopenmpi-dev openmpi-bin
  libtorch-dev libjpeg62-turbo-dev libpng-dev
  python3-torch python3-torchvision dataset-fashion-mnist
  libonnx-dev python3-onnx python3-opencv libopencv-dnn-dev
  python3-venv python3-pip python3-setuptools python3-wheel
  rsync hyperfine iproute2 iptables procps util-linux
  clang-format clang-tidy
  libcpp-httplib-dev
  slurm-wlm munge
  openssh-server openssh-client tcsh
  chromium fonts-dejavu-core
)

log() { printf '==> %s\n' "$*" >&2; }

# Installs what is missing, with one apt-get update only when needed.
ensure_packages() {
  local missing=()
  local package
  for package in "$@"; do
    if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
      missing+=("$package")
    fi
  done
  if [ ${#missing[@]} -eq 0 ]; then
    return 0
  fi
  if [ "$(id -u)" -ne 0 ]; then
    log "missing packages: ${missing[*]} (run as root, or install them with apt-get)"
    return 1
  fi
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# One build at a time on this machine: the build is CPU-bound and two at once
# only make both slower (and can run out of memory compiling LibTorch code).
with_build_lock() {
  (
    flock 9
    "$@"
  ) 9>/tmp/amlrun-build.lock
}

# build DIR [cmake options...]: configure once, then build incrementally.
build() {
  local dir="$1"
  shift
  # Configure when the folder is new or was configured with other options
  # (a build folder made with -DAMLRUN_WORKER=OFF must not stay that way).
  local wanted="$*"
  if [ ! -f "$dir/build.ninja" ] || [ "$(cat "$dir/.amlrun-configure-args" 2>/dev/null)" != "$wanted" ]; then
    log "configuring $dir"
    with_build_lock cmake -S "$AMLRUN_ROOT" -B "$dir" -G Ninja "$@" >/dev/null
    printf '%s' "$wanted" >"$dir/.amlrun-configure-args"
  fi
  log "building $dir"
  with_build_lock cmake --build "$dir" -j "$(nproc)"
}

# ensure_python_venv DIR PACKAGE...: a venv under DIR holding PACKAGE... from
# PyPI, made once and reused (a ".complete" marker names what it holds, so a
# half-made venv or one made for other packages is made again). Tests and
# benchmarks use it for real clients (never system Python).
ensure_python_venv() {
  local dir="$1"
  shift
  local wanted="$*"
  if [ -x "$dir/bin/python" ] && [ "$(cat "$dir/.complete" 2>/dev/null)" = "$wanted" ]; then
    return 0
  fi
  log "making the venv $dir ($wanted)"
  rm -rf "$dir"
  /usr/bin/python3 -m venv "$dir"
  "$dir/bin/python" -m pip install -q --disable-pip-version-check "$@"
  printf '%s' "$wanted" >"$dir/.complete"
}

# The MLflow client the tracking tests drive (mlflow-skinny is the client
# alone; scikit-learn for the autolog test). Kept under ~/.cache so every
# worktree and build folder shares one. pandas: mlflow.sklearn imports it
# and mlflow-skinny does not bring it.
AMLRUN_TRACKING_VENV="${AMLRUN_TRACKING_VENV:-$HOME/.cache/amlrun/venv-mlflow-skinny}"
ensure_tracking_venv() {
  ensure_python_venv "$AMLRUN_TRACKING_VENV" mlflow-skinny scikit-learn pandas
}
# The full MLflow (its tracking server) for the side-by-side benchmark.
AMLRUN_MLFLOW_SERVER_VENV="${AMLRUN_MLFLOW_SERVER_VENV:-$HOME/.cache/amlrun/venv-mlflow}"
# Optuna, the baseline of the sweep search-quality benchmark.
AMLRUN_OPTUNA_VENV="${AMLRUN_OPTUNA_VENV:-$HOME/.cache/amlrun/venv-optuna}"
ensure_optuna_venv() {
  ensure_python_venv "$AMLRUN_OPTUNA_VENV" optuna
}

ensure_mlflow_server_venv() {
  ensure_python_venv "$AMLRUN_MLFLOW_SERVER_VENV" mlflow
}
