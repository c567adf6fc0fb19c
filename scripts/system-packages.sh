#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages that `make` needs and a fresh machine lacks:
#   venv  python3-venv (Debian's python3 cannot create a virtual environment without it)
#   data  dataset-fashion-mnist (Fashion-MNIST from the distribution, no network needed),
#         unless Fashion-MNIST or a built replica is already there
# As root directly, else through sudo when it asks for no password; otherwise it stops
# with one line naming the command to run.
set -euo pipefail
python=${PYTHON:-python3}
data_dir=${LIB_DATA_DIR:-data}
needed=()
for need in "$@"; do
  case $need in
    venv) "$python" -c 'import ensurepip, venv' 2>/dev/null || needed+=(python3-venv) ;;
    data) [ -n "${FASHION_MNIST_DIR:-}" ] || [ -n "${ASSIGNMENT_DATA:-}" ] || [ -d "$data_dir/fashion-mnist" ] \
            || [ -d /usr/share/datasets/fashion-mnist ] || [ -f "$data_dir/replica_manifest.json" ] \
            || needed+=(dataset-fashion-mnist) ;;
    *) echo "error: $0: unknown need '$need' (venv or data)" >&2; exit 2 ;;
  esac
done
[ ${#needed[@]} -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null; then
  echo "error: missing ${needed[*]} and this is no Debian/Ubuntu machine: install the equivalent" \
       "(for the data: set FASHION_MNIST_DIR to a folder with the four Fashion-MNIST .gz files)" >&2
  exit 1
fi
install="apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ${needed[*]}"
if [ "$(id -u)" -eq 0 ]; then
  as_root=()
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
  as_root=(sudo)
else
  echo "error: missing Debian packages; install them with: sudo apt-get install ${needed[*]}" >&2
  exit 1
fi
echo "installing Debian packages: ${needed[*]}"
log=$(mktemp)
if ! "${as_root[@]}" sh -c "$install" >"$log" 2>&1; then
  tail -n 5 "$log" >&2
  echo "error: could not install ${needed[*]} (apt-get's last lines above)" >&2
  rm -f "$log"
  exit 1
fi
rm -f "$log"
