# Shared by scripts/run and scripts/test: a venv in .venv with the package installed,
# and Debian packages installed when missing (root only, one apt-get update per run).
PYTHON=${PYTHON:-python3}
apt_updated=no

say() { echo "$(basename "$0"): $*" >&2; }
is_root() { [ "$(id -u)" -eq 0 ]; }
deb_installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
apt_install() {  # apt_install PKG...: install with apt-get (one update per run), root only
  if ! is_root || ! command -v apt-get >/dev/null; then
    say "cannot install $* (not root or no apt-get); tests needing them skip or fail"
    return 0
  fi
  if [ "$apt_updated" = no ]; then
    say "apt-get update"
    apt-get update -qq </dev/null || say "apt-get update failed; trying the install anyway"
    apt_updated=yes
  fi
  say "installing $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" \
    </dev/null >/dev/null || say "apt-get install $* failed; tests needing them skip or fail"
}

make_venv() {
  if [ -x .venv/bin/python ] && .venv/bin/python -c 'import sys' 2>/dev/null; then
    return 0
  fi
  rm -rf .venv
  if ! "$PYTHON" -c 'import ensurepip, venv' 2>/dev/null; then
    apt_install python3-venv
  fi
  say "creating .venv with $PYTHON"
  "$PYTHON" -m venv .venv
}

install_package() {  # install_package SPEC: pip install -e SPEC again only when pyproject.toml changed
  local stamp
  stamp=".venv/.installed-$(echo "$1" | tr -c 'a-z' _)-$(sha256sum pyproject.toml | cut -c1-16)"
  if [ -e "$stamp" ]; then return 0; fi
  say "pip install -e '$1'"
  .venv/bin/python -m pip install -q --disable-pip-version-check -e "$1"
  rm -f .venv/.installed-*
  touch "$stamp"
}

