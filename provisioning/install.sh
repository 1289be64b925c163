#!/usr/bin/env bash
# Install the hafen door agent on a fresh Raspberry Pi OS (Bookworm) or Debian 12 machine.
# Idempotent: every step checks first and changes only what differs, so running it again after
# a failure, or to upgrade, is safe. `install.sh --help` says how to run it.
set -euo pipefail

# Where the shipped unit expects things (systemd/hafen-edge.service): the venv, the config in
# /etc/hafen (ConfigurationDirectory=), the store in /var/lib/hafen (StateDirectory=).
readonly VENV=/opt/hafen/venv
readonly CONFIG_DIR=/etc/hafen
readonly STATE_DIR=/var/lib/hafen
readonly UNIT=hafen-edge.service
readonly UDEV_RULE=/etc/udev/rules.d/60-hafen-nfc.rules
readonly BLACKLIST=/etc/modprobe.d/hafen-nfc-blacklist.conf
readonly COMMAND_LINK=/usr/local/bin/hafen
# Files it writes are meant for others to read (the venv for the agent): a technician's umask
# of 077 would leave the venv unreadable to the hafen user.
umask 022
# The Python it runs is the venv's and the system's alone: not modules from the directory it is
# started in, nor a PYTHONPATH of the technician's shell.
unset PYTHONPATH PYTHONHOME PYTHONSTARTUP PYTHONUSERBASE

usage() {
    cat <<'EOF'
Usage: install.sh [OPTIONS]

Installs the hafen door agent: a system user "hafen", /etc/hafen and /var/lib/hafen, the Debian
packages it needs, a venv in /opt/hafen/venv with hafen[edge], the NFC reader's udev rule and
kernel-driver blacklist, and the systemd unit hafen-edge.service (enabled; started once
/etc/hafen/edge.toml exists). Run it as root; running it again changes only what differs.

Options:
  --from PATH         install hafen from a wheel file or a source directory (offline, or a
                      build of your own) instead of the package index; a wheel installed
                      already is skipped, a directory is built and installed on every run
  --version VERSION   install this version of hafen from the package index
  --with-build-tools  also install python3-dev and gcc, for a dependency that has no wheel
                      for this machine and must be compiled
  --root DIR          install into DIR as if it were / (for tests and image builds): no apt,
                      no udevadm, no daemon-reload or start; users are added to DIR/etc/passwd
                      and DIR/etc/group, which must exist. Also $HAFEN_INSTALL_ROOT.
  --dry-run           print what would be done, change nothing
  -h, --help          show this help

The package index is pip's: set PIP_INDEX_URL or PIP_FIND_LINKS to use another.
EOF
}

say() { printf '\n==> %s\n' "$*"; }
note() { printf '    %s\n' "$*"; }
warn() { printf 'warning: %s\n' "$*" >&2; }
die() {
    printf 'install.sh: %s\n' "$*" >&2
    exit 1
}

ROOT=${HAFEN_INSTALL_ROOT:-}
FROM=""
VERSION=""
DRY_RUN=0
BUILD_TOOLS=0
while [ $# -gt 0 ]; do
    case "$1" in
        --from) [ $# -ge 2 ] || die "--from needs a path"; FROM=$2; shift 2 ;;
        --version) [ $# -ge 2 ] || die "--version needs a version"; VERSION=$2; shift 2 ;;
        --root) [ $# -ge 2 ] || die "--root needs a directory"; ROOT=$2; shift 2 ;;
        --with-build-tools) BUILD_TOOLS=1; shift ;;
        --dry-run) DRY_RUN=1; shift ;;
        -h | --help) usage; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
done

if [ "$(id -u)" -ne 0 ] && [ "$DRY_RUN" -eq 0 ]; then
    die "must be run as root (sudo bash install.sh ...): it adds a system user, sets owners and \
writes under /etc, /opt and /var/lib. --dry-run shows what it would do, without root."
fi
if [ -n "$ROOT" ]; then
    [ -d "$ROOT" ] || die "--root $ROOT is not a directory"
    ROOT=$(cd "$ROOT" && pwd -P)
    [ "$ROOT" != / ] || ROOT=""
fi
if [ -n "$ROOT" ]; then
    for file in passwd group shadow gshadow; do
        [ -f "$ROOT/etc/$file" ] || die "--root needs $ROOT/etc/$file (a copy of a system's, or \
empty) to add the hafen user to"
    done
fi
if [ -n "$FROM" ]; then
    [ -z "$VERSION" ] || die "--version picks from the package index; a --from wheel or source \
has its own version"
    [ -e "$FROM" ] || die "--from $FROM does not exist"
    FROM=$(realpath "$FROM")
fi

cd /

# Every path the script touches, under the root it installs into.
at() { printf '%s%s' "$ROOT" "$1"; }
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# Run a command, or under --dry-run only say it.
run() {
    if [ "$DRY_RUN" -eq 1 ]; then
        note "would run: $*"
    else
        note "+ $*"
        "$@"
    fi
}

# The passwd or group line of NAME: the root's files under --root, else the system's (NSS).
passwd_entry() {
    if [ -n "$ROOT" ]; then grep -m1 "^$1:" "$ROOT/etc/passwd" || true; else getent passwd "$1" || true; fi
}
group_entry() {
    if [ -n "$ROOT" ]; then grep -m1 "^$1:" "$ROOT/etc/group" || true; else getent group "$1" || true; fi
}
# useradd and usermod write the root's files under --root (their --prefix), never the system's.
ACCOUNT_TOOL_ARGS=()
[ -z "$ROOT" ] || ACCOUNT_TOOL_ARGS=(--prefix "$ROOT")

# Give PATH the mode and owner (numeric uid and gid, which mean the same under any root).
ensure_attrs() {
    local path=$1 mode=$2 uid=$3 gid=$4 current
    current=$(stat -c '%a %u %g' "$path")
    if [ "$current" = "$mode $uid $gid" ]; then
        return
    fi
    run chown "$uid:$gid" "$path"
    run chmod "$mode" "$path"
}

# A directory with this mode and owner. Parents that are missing (under --root) are made 0755
# root:root, as on a system; existing ones are left as they are.
ensure_dir() {
    local path=$1 mode=$2 uid=$3 gid=$4
    if [ -d "$path" ]; then
        ensure_attrs "$path" "$mode" "$uid" "$gid"
        note "$path: there ($mode, owner $uid:$gid)"
    else
        run mkdir -p "$path"
        [ "$DRY_RUN" -eq 1 ] || ensure_attrs "$path" "$mode" "$uid" "$gid"
    fi
}

# Put the file NEW at DEST with this mode, owned by root, unless it is there already. Sets
# WROTE to 1 if it wrote DEST. (A status would do, but a function called as a condition runs
# without `set -e`, and a failed write must stop the script.)
WROTE=0
put_file() {
    local new=$1 dest=$2 mode=$3
    WROTE=0
    if [ -f "$dest" ] && cmp -s "$new" "$dest"; then
        [ "$DRY_RUN" -eq 1 ] || ensure_attrs "$dest" "$mode" 0 0
        note "$dest: unchanged"
        return
    fi
    [ -d "$(dirname "$dest")" ] || run mkdir -p "$(dirname "$dest")"
    run install -m "$mode" -o 0 -g 0 "$new" "$dest"
    WROTE=1
}

step_packages() {
    say "Debian packages"
    # python3-venv for the venv; libusb-1.0-0 for nfcpy's USB readers (through libusb1).
    local wanted=(python3-venv libusb-1.0-0) missing=() pkg updated=0
    [ "$BUILD_TOOLS" -eq 0 ] || wanted+=(python3-dev gcc)
    if [ -n "$ROOT" ]; then
        note "skipped under --root: would make sure of ${wanted[*]} (and python3-lgpio where the archive has it)"
        return
    fi
    for pkg in "${wanted[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    # gpiozero drives the pins through lgpio, which Raspberry Pi OS packages (plain Debian does
    # not): taken from the archive where it has it, and seen by the venv (--system-site-packages).
    local optional=python3-lgpio
    if ! dpkg-query -W -f='${Status}' "$optional" 2>/dev/null | grep -q "install ok installed"; then
        # A fresh image has no package lists yet (they may be compressed: *_Packages.lz4).
        if ! compgen -G "/var/lib/apt/lists/*_Packages*" >/dev/null; then
            run apt-get -o DPkg::Lock::Timeout=600 update -qq
            updated=1
        fi
        if apt-cache show "$optional" >/dev/null 2>&1; then
            missing+=("$optional")
        else
            warn "$optional is not in this machine's archives (Raspberry Pi OS has it): gpiozero \
will need another pin library, or use its own native one"
        fi
    fi
    if [ ${#missing[@]} -eq 0 ]; then
        note "installed already: ${wanted[*]}"
        return
    fi
    [ "$updated" -eq 1 ] || run apt-get -o DPkg::Lock::Timeout=600 update -qq
    run env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
        --no-install-recommends "${missing[@]}"
}

HAFEN_UID=""
HAFEN_GID=""
step_user() {
    say "System user hafen"
    local entry
    entry=$(passwd_entry hafen)
    if [ -n "$entry" ]; then
        note "user hafen: there ($entry)"
    else
        local group_args=(--user-group)
        # A hafen group left from an earlier install: join it rather than fail.
        [ -z "$(group_entry hafen)" ] || group_args=(--gid hafen)
        run useradd "${ACCOUNT_TOOL_ARGS[@]}" --system "${group_args[@]}" --home-dir "$STATE_DIR" \
            --no-create-home --shell /usr/sbin/nologin --comment "hafen door agent" hafen
        entry=$(passwd_entry hafen)
    fi
    if [ -n "$entry" ]; then
        HAFEN_UID=$(cut -d: -f3 <<<"$entry")
        HAFEN_GID=$(cut -d: -f4 <<<"$entry")
    fi
    # The unit's SupplementaryGroups: GPIO pins, serial ports (CO2 sensor, PN532 on a UART),
    # USB devices. Raspberry Pi OS has them all; creating one here would hide a wrong machine.
    local group line members
    for group in gpio dialout plugdev; do
        line=$(group_entry "$group")
        if [ -z "$line" ]; then
            warn "group $group does not exist on this machine: hafen is not added to it. The unit's \
SupplementaryGroups= names it, so systemd will not start the agent until it exists (Raspberry Pi \
OS has it)."
            continue
        fi
        members=,$(cut -d: -f4 <<<"$line"),
        if [[ "$members" == *,hafen,* ]]; then
            note "hafen is in group $group"
        else
            run usermod "${ACCOUNT_TOOL_ARGS[@]}" --append --groups "$group" hafen
        fi
    done
}

step_directories() {
    say "Directories"
    local uid=${HAFEN_UID:-hafen} gid=${HAFEN_GID:-hafen}
    # The card key and the broker's secrets live in the config: root writes, the agent reads.
    ensure_dir "$(at "$CONFIG_DIR")" 750 0 "$gid"
    # The store (members' ids, events): the agent's alone. The unit's StateDirectoryMode= keeps it so.
    ensure_dir "$(at "$STATE_DIR")" 700 "$uid" "$gid"
    ensure_dir "$(at /opt/hafen)" 755 0 0
}

# What pip installs, and a fingerprint of it: the same fingerprint as last time means the venv
# already holds exactly this, and pip is not run (a second run needs no network).
source_spec() {
    if [ -z "$FROM" ]; then
        SPEC="hafen[edge]${VERSION:+==$VERSION}"
        FINGERPRINT="index $SPEC"
    elif [ -d "$FROM" ]; then
        SPEC="${FROM}[edge]"
        FINGERPRINT=""  # a source tree may have changed: pip builds and installs it every time
    else
        SPEC="${FROM}[edge]"
        FINGERPRINT="wheel $(sha256sum "$FROM" | cut -d' ' -f1) $(basename "$FROM")"
    fi
}

VENV_CHANGED=0
step_venv() {
    say "hafen in $VENV"
    local venv stamp python=/usr/bin/python3
    venv=$(at "$VENV")
    stamp="$venv/.hafen-installed-from"
    source_spec
    "$python" -I -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
        || die "hafen needs Python 3.11 or newer; $python is $("$python" --version)"
    if [ ! -x "$venv/bin/python" ]; then
        # System site packages: the Pi's pin library (python3-lgpio) comes from apt.
        run "$python" -I -m venv --system-site-packages "$venv"
        VENV_CHANGED=1
    else
        note "venv: there"
    fi
    if [ -n "$FINGERPRINT" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$FINGERPRINT" ] \
        && [ -x "$venv/bin/hafen" ]; then
        note "hafen: installed already from $FINGERPRINT"
        return
    fi
    if [ -n "$FROM" ] && [ -f "$FROM" ] && [ -x "$venv/bin/hafen" ]; then
        # pip keeps an installed hafen of the wheel's version even if the wheel differs.
        run "$venv/bin/python" -I -m pip install --quiet --no-deps --force-reinstall "$FROM"
    fi
    run "$venv/bin/python" -I -m pip install --quiet "$SPEC" \
        || die "pip could not install $SPEC. If a dependency had to be compiled, run me again \
with --with-build-tools; offline, give --from a wheel."
    VENV_CHANGED=1
    if [ "$DRY_RUN" -eq 0 ]; then
        if [ -n "$FINGERPRINT" ]; then printf '%s\n' "$FINGERPRINT" >"$stamp"; else rm -f "$stamp"; fi
        note "installed: hafen $("$venv/bin/hafen" version)"
    fi
}

step_command() {
    say "The hafen command on PATH"
    local link
    link=$(at "$COMMAND_LINK")
    if [ -L "$link" ] && [ "$(readlink "$link")" = "$VENV/bin/hafen" ]; then
        note "$link: there"
    elif [ -e "$link" ] || [ -L "$link" ]; then
        warn "$link exists and is not the link to $VENV/bin/hafen: left as it is"
    else
        [ -d "$(dirname "$link")" ] || run mkdir -p "$(dirname "$link")"
        run ln -s "$VENV/bin/hafen" "$link"
    fi
}

# nfcpy's USB readers (nfc/clf/device.py, usb_device_map): vendor, product, name.
NFC_READERS=(
    "054c 0193 Sony PN531 board"
    "04cc 0531 Philips PN531 board, SCM SCL3710"
    "04cc 2533 NXP PN533 board"
    "04e6 5591 SCM SCL3711"
    "04e6 5593 SCM SCL3712"
    "054c 02e1 Sony RC-S330, RC-S360, RC-S370"
    "054c 06c1 Sony RC-S380/S"
    "054c 06c3 Sony RC-S380/P"
    "072f 2200 ACS ACR122U"
)

step_reader() {
    say "NFC reader: udev rule and kernel drivers"
    local rule="$WORK/rule" blacklist="$WORK/blacklist" reader vendor product name
    {
        echo "# Written by hafen's provisioning/install.sh: the USB NFC readers nfcpy drives, for the"
        echo "# door agent's group alone (nfcpy opens them through libusb, as the hafen user)."
        for reader in "${NFC_READERS[@]}"; do
            read -r vendor product name <<<"$reader"
            echo "# $name"
            echo "SUBSYSTEM==\"usb\", ENV{DEVTYPE}==\"usb_device\", ATTR{idVendor}==\"$vendor\", \
ATTR{idProduct}==\"$product\", GROUP=\"hafen\", MODE=\"0660\""
        done
    } >"$rule"
    cat >"$blacklist" <<'EOF'
# Written by hafen's provisioning/install.sh. The kernel's NFC drivers would claim the door's
# reader before nfcpy can (nfcpy then reports it "busy"): keep them from loading.
blacklist pn533_usb
blacklist port100
EOF
    put_file "$rule" "$(at "$UDEV_RULE")" 644
    local rule_changed=$WROTE
    put_file "$blacklist" "$(at "$BLACKLIST")" 644
    if [ -n "$ROOT" ]; then
        note "skipped under --root: unloading pn533_usb and port100, reloading udev's rules"
        return
    fi
    local module
    for module in pn533_usb port100; do
        if [ -d "/sys/module/$module" ]; then
            run modprobe -r "$module" || warn "could not unload $module: unplug the reader or reboot"
            rule_changed=1
        fi
    done
    if [ "$rule_changed" -eq 1 ] && command -v udevadm >/dev/null && [ -S /run/udev/control ]; then
        run udevadm control --reload-rules
        # A reader plugged in already gets the rule's group now, not at the next plug.
        run udevadm trigger --action=change --subsystem-match=usb
    fi
}

UNIT_CHANGED=0
step_unit() {
    say "systemd unit $UNIT"
    local venv shipped dest
    venv=$(at "$VENV")
    dest=$(at "/etc/systemd/system/$UNIT")
    if [ ! -x "$venv/bin/python" ]; then
        note "would install $UNIT from the installed package's data"
        return
    fi
    # The unit that ships with the code just installed (package data of the wheel).
    shipped=$("$venv/bin/python" -I -c \
        'import importlib.resources as r; print(r.files("provisioning") / "systemd" / "hafen-edge.service")')
    [ -f "$shipped" ] || die "the installed hafen carries no $UNIT (looked for $shipped)"
    put_file "$shipped" "$dest" 644
    UNIT_CHANGED=$WROTE
    if [ -n "$ROOT" ]; then
        note "skipped under --root: systemctl daemon-reload"
    elif [ -d /run/systemd/system ]; then
        [ "$UNIT_CHANGED" -eq 0 ] || run systemctl daemon-reload
    else
        note "systemd is not running here (a container or an image build): no daemon-reload"
    fi
    local systemctl=(systemctl)
    [ -z "$ROOT" ] || systemctl=(systemctl "--root=$ROOT")
    if [ "$("${systemctl[@]}" is-enabled "$UNIT" 2>/dev/null)" = enabled ]; then
        note "$UNIT: enabled"
    else
        run "${systemctl[@]}" enable "$UNIT"
    fi
}

step_start() {
    say "Start"
    if [ ! -f "$(at "$CONFIG_DIR/edge.toml")" ]; then
        note "$CONFIG_DIR/edge.toml does not exist yet, so the agent is not started. Next, enrol"
        note "this door with the hub (it writes the config), then start the agent:"
        note ""
        note "    hafen provision enrol https://HUB TOKEN"
        note "    systemctl start $UNIT"
        return
    fi
    if [ -n "$ROOT" ]; then
        note "skipped under --root: would start $UNIT ($CONFIG_DIR/edge.toml exists)"
    elif [ ! -d /run/systemd/system ]; then
        note "systemd is not running here: $UNIT starts at the next boot"
    elif [ $((UNIT_CHANGED + VENV_CHANGED)) -gt 0 ] && systemctl -q is-active "$UNIT"; then
        # A running agent keeps the old code until it restarts.
        run systemctl restart "$UNIT"
    else
        run systemctl start "$UNIT"
    fi
}

printf 'Installing the hafen door agent%s%s\n' "${ROOT:+ into $ROOT}" \
    "$([ "$DRY_RUN" -eq 0 ] || echo ' (dry run: nothing is changed)')"
step_packages
step_user
step_directories
step_venv
step_command
step_reader
step_unit
step_start
printf '\nDone.\n'
