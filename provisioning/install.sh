#!/usr/bin/env bash
# Install the hafen door agent on a fresh Raspberry Pi OS (Bookworm) or Debian 12 machine.
# Idempotent: every step checks first and changes only what differs, so running it again after
# a failure, or to upgrade, is safe. `install.sh --help` says how to run it.
set -euo pipefail

# Where the shipped unit expects things (systemd/hafen-edge.service): the launcher, the releases
# it runs, the config in /etc/hafen (ConfigurationDirectory=), the store in /var/lib/hafen
# (StateDirectory=). The releases are the agent's: it installs its updates itself
# (edge/updater/release_dirs.py has the layout, and writes it as this script does). The launcher
# is root's: a release that cannot start must not be able to break the way back to the last one.
#
# Root never runs, nor writes by path, anything in the agent's tree: whoever took over the agent
# (user hafen) could have changed it, or could swap a directory in it for another between root's
# check and root's use. So every step in a release, and on the links, runs as hafen (as_agent),
# and the `hafen` command on PATH, which technicians run with sudo, is root's own install
# (TOOLS), from the same wheel in the same run, apart from the releases.
readonly EDGE=/opt/hafen/edge
readonly RELEASES=$EDGE/releases
readonly LAUNCHER=/opt/hafen/launch
# Written into a release once it is complete, the last step (ReleaseDirs.complete).
readonly MARKER=.complete
# In each release install.sh made: a fingerprint of the wheel it holds.
readonly STAMP=.hafen-installed-from
# Root's own install of hafen, for the command on PATH (root:root, nothing in it writable by
# others): where installs from before releases put hafen, and the hub's units run it from, so a
# machine that is a hub too shares it. The launcher runs it only if there is no `current`.
readonly TOOLS=/opt/hafen/venv
readonly CONFIG_DIR=/etc/hafen
readonly STATE_DIR=/var/lib/hafen
readonly UNIT=hafen-edge.service
readonly UDEV_RULE=/etc/udev/rules.d/60-hafen-nfc.rules
readonly BLACKLIST=/etc/modprobe.d/hafen-nfc-blacklist.conf
readonly COMMAND_LINK=/usr/local/bin/hafen
readonly PYTHON=/usr/bin/python3
# Files it writes are meant for others to read (the releases for the agent): a technician's
# umask of 077 would leave them unreadable to the hafen user.
umask 022
# The Python it runs is the system's and the releases' alone: not modules from the directory it
# is started in, nor a PYTHONPATH of the technician's shell.
unset PYTHONPATH PYTHONHOME PYTHONSTARTUP PYTHONUSERBASE

usage() {
    cat <<'EOF'
Usage: install.sh [OPTIONS]

Installs the hafen door agent: a system user "hafen", /etc/hafen and /var/lib/hafen, the Debian
packages it needs, hafen[edge] as the agent's release (a venv in
/opt/hafen/edge/releases/VERSION, the hafen user's, which /opt/hafen/edge/current points at) and
as root's own install for the command /usr/local/bin/hafen (/opt/hafen/venv), the launcher
/opt/hafen/launch that the unit starts, the NFC reader's udev rule and kernel-driver blacklist,
and the systemd unit hafen-edge.service (enabled; started once /etc/hafen/edge.toml exists).
Run it as root; running it again changes only what differs.

Options:
  --from PATH         install hafen from a wheel file, or a source directory or sdist (built
                      into a wheel here), instead of the package index; a release installed
                      already from the same contents is not installed again
  --version VERSION   install this version of hafen from the package index. Without it (and
                      without --from), the index's newest, and only while no release is
                      current: a door the hub has updated is left on its version
  --with-build-tools  also install python3-dev and gcc, for a dependency that has no wheel
                      for this machine and must be compiled
  --root DIR          install into DIR as if it were / (for tests and image builds): no apt,
                      no udevadm, no daemon-reload or start; users are added to DIR/etc/passwd
                      and DIR/etc/group, which must exist, and the release is installed as
                      the uid they give hafen, which must be able to reach DIR. Also
                      $HAFEN_INSTALL_ROOT.
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
# What the agent's user reads from root (the wheels its release is installed from): a directory
# of root's it may read but not change. WORK stays root's alone.
SHARED=$(mktemp -d)
chmod 755 "$SHARED"
trap 'rm -rf "$WORK" "$SHARED"' EXIT

# Run a command, or under --dry-run only say it.
run() {
    if [ "$DRY_RUN" -eq 1 ]; then
        note "would run: $*"
    else
        note "+ $*"
        "$@"
    fi
}

# The agent's user runs every step in its tree (see the top): its numeric ids, which mean the
# same under --root, with no groups beyond its own and no way to gain privileges, and a clean
# environment: pip reads no configuration of the technician's (an index, a token in a URL).
AGENT_ENV=()
as_agent() {
    setpriv --reuid="$HAFEN_UID" --regid="$HAFEN_GID" --clear-groups --no-new-privs \
        env -i "${AGENT_ENV[@]}" "$@"
}
# As run, as the agent's user.
run_as_agent() {
    if [ "$DRY_RUN" -eq 1 ]; then
        note "would run as hafen: $*"
    else
        note "+ (as hafen) $*"
        as_agent "$@"
    fi
}
# Write the line $1 into the file $2, as the agent's user (the file is in its tree).
write_as_agent() {
    # shellcheck disable=SC2016 # the inner shell expands them, from its arguments
    as_agent sh -c 'printf "%s\n" "$1" >"$2"' write "$1" "$2"
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
# root:root, as on a system; existing ones are left as they are. A symbolic link in its place
# is refused: chown and chmod would follow it (the agent can put one in /opt/hafen/edge).
ensure_dir() {
    local path=$1 mode=$2 uid=$3 gid=$4
    [ ! -L "$path" ] || die "$path is a symbolic link (to $(readlink "$path")), not a directory: \
remove it, and run me again"
    if [ -d "$path" ]; then
        ensure_attrs "$path" "$mode" "$uid" "$gid"
        note "$path: there ($mode, owner $uid:$gid)"
    else
        run mkdir -p "$path"
        [ "$DRY_RUN" -eq 1 ] || ensure_attrs "$path" "$mode" "$uid" "$gid"
    fi
}

# A directory of the agent's, in its tree: made and given its mode by the agent's user. Root
# changes only its owner, if that differs (and never through a link: chown -h), since the agent
# could swap it for a link to any file between root's look at it and a chmod.
ensure_agent_dir() {
    local path=$1 mode=$2 uid=${HAFEN_UID:-hafen} gid=${HAFEN_GID:-hafen}
    [ ! -L "$path" ] || die "$path is a symbolic link (to $(readlink "$path")), not a directory: \
remove it, and run me again"
    if [ ! -d "$path" ]; then
        run_as_agent mkdir "$path"
        [ "$DRY_RUN" -eq 1 ] || run_as_agent chmod "$mode" "$path"
        return
    fi
    [ "$(stat -c '%u %g' "$path")" = "$uid $gid" ] || run chown -h "$uid:$gid" "$path"
    [ "$(stat -c '%a' "$path")" = "$mode" ] || run_as_agent chmod "$mode" "$path"
    note "$path: there ($mode, owner $uid:$gid)"
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
        AGENT_ENV=(PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 "HOME=$(at "$STATE_DIR")"
            PIP_CONFIG_FILE=/dev/null PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
            PYTHONNOUSERSITE=1)
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
    # The releases: the agent's, since its updater installs and prunes them (and the unit lets it
    # write here: ReadWritePaths=). Readable by all: code, no secrets. Root may set the owner and
    # mode of $EDGE itself: /opt/hafen is root's, so the agent cannot swap it for a link.
    ensure_dir "$(at "$EDGE")" 755 "$uid" "$gid"
    if [ "$DRY_RUN" -eq 0 ]; then
        command -v setpriv >/dev/null || die "setpriv (util-linux) is missing: the release is \
installed as the hafen user with it"
        as_agent test -w "$(at "$EDGE")" -a -x "$(at "$EDGE")" \
            || die "the hafen user (uid $uid) cannot write $(at "$EDGE"), its own: a directory \
above it is closed to it${ROOT:+ (--root $ROOT and every directory above it must be open to others: 0755 or 0711)}"
    fi
    ensure_agent_dir "$(at "$RELEASES")" 755
}

# The version the link $1 (current, previous) points at: releases/VERSION, as the updater
# writes it (ReleaseDirs._target); nothing if there is no such link.
link_version() {
    local target
    target=$(readlink "$(at "$EDGE/$1")" 2>/dev/null) || return 0
    [ "${target%/*}" != releases ] || printf '%s' "${target#releases/}"
}

# The wheel to install, what it says of itself and what it carries for root. Everything root
# installs outside the release (the launcher, the unit) is read from this wheel, never taken
# from a release on the disk: a release is the agent's once installed, and root must not run
# or install what the agent could have changed. Sets WHEEL, VERSION_TO (its version),
# FINGERPRINT (of its contents: a rebuilt wheel of the same files has the same one) and
# CARRIED (a directory with its launch.py and unit). KEEP=1: no wheel, the current release stays.
WHEEL=""
VERSION_TO=""
FINGERPRINT=""
CARRIED="$WORK/carried"
KEEP=0
step_source() {
    say "The hafen to install"
    local running spec built="$WORK/wheel"
    running=$(link_version current)
    if [ -z "$FROM" ] && [ -z "$VERSION" ] && [ -n "$running" ]; then
        note "hafen $running is current in $EDGE: kept (the hub may have updated it). To install"
        note "another version: --version VERSION, or --from a wheel."
        KEEP=1
        return
    fi
    if [ -n "$FROM" ] && [ -f "$FROM" ] && [[ "$FROM" == *.whl ]]; then
        WHEEL=$FROM
    else
        # The index's choice, or a source tree's build, as a wheel of its own: its version
        # names the release's directory, which must be known before the venv is made there
        # (pip writes the venv's path into every script it installs: it cannot be moved).
        if [ -n "$FROM" ]; then spec=$FROM; else spec="hafen${VERSION:+==$VERSION}"; fi
        note "asking pip for the wheel of $spec (into a scratch directory; nothing is installed)"
        if ! "$PYTHON" -I -m venv "$WORK/pip" >"$WORK/pip.log" 2>&1 \
            || ! "$WORK/pip/bin/python" -I -m pip wheel --quiet --disable-pip-version-check \
                --no-deps --wheel-dir "$built" "$spec" >>"$WORK/pip.log" 2>&1; then
            cat "$WORK/pip.log" >&2
            if [ "$DRY_RUN" -eq 1 ]; then
                warn "pip could not get $spec (above); the steps below are shown without it"
                return
            fi
            die "pip could not get $spec (its output is above). Offline, give --from a wheel."
        fi
        WHEEL=$(find "$built" -name 'hafen-*.whl' -print -quit)
        [ -n "$WHEEL" ] || die "pip made no hafen wheel of $spec (it made: $(ls "$built"))"
    fi
    mkdir "$CARRIED"
    local said
    said=$(read_wheel "$WHEEL" "$CARRIED") || die "$(basename "$WHEEL"): $said"
    read -r VERSION_TO FINGERPRINT <<<"$said"
    if [ -n "$VERSION" ] && [ "$VERSION_TO" != "$VERSION" ]; then
        note "(pip took $VERSION_TO for --version $VERSION)"
    fi
    note "hafen $VERSION_TO: $(basename "$WHEEL"), contents sha256:${FINGERPRINT:0:16}…"
}

# Print "VERSION FINGERPRINT" of the wheel $1 and copy the launcher and the unit it carries into
# the directory $2. The wheel is read as a zip file: nothing of it is run.
read_wheel() {
    "$PYTHON" -I - "$1" "$2" 2>&1 <<'EOF'
import hashlib, re, sys, zipfile
from pathlib import Path

# A normalised PEP 440 version: a plain directory name (no "/", no leading ".").
VERSION = (
    r"([0-9]+!)?[0-9]+(\.[0-9]+)*((a|b|rc)[0-9]+)?(\.post[0-9]+)?(\.dev[0-9]+)?"
    r"(\+[a-z0-9]+(\.[a-z0-9]+)*)?"
)
# What root installs outside the release, from the wheel: member -> file name in $2.
CARRIED = {
    "provisioning/launch.py": "launch.py",
    "provisioning/systemd/hafen-edge.service": "hafen-edge.service",
}
try:
    wheel = zipfile.ZipFile(sys.argv[1])
except (OSError, zipfile.BadZipFile) as exc:
    sys.exit(f"not a wheel ({exc})")
with wheel:
    names = wheel.namelist()
    metadata = [name for name in names if re.fullmatch(r"[^/]+\.dist-info/METADATA", name)]
    if len(metadata) != 1:
        sys.exit("not a wheel: it has no .dist-info/METADATA")
    fields = {}
    for line in wheel.read(metadata[0]).decode("utf-8", "replace").splitlines():
        if not line:
            break  # the headers end at the first empty line
        key, _, value = line.partition(": ")
        fields.setdefault(key, value.strip())
    if fields.get("Name", "").lower() != "hafen":
        sys.exit(f"not hafen's wheel but {fields.get('Name')!r}'s")
    version = fields.get("Version", "")
    if not re.fullmatch(VERSION, version):
        sys.exit(f"its version {version[:40]!r} is not a plain PEP 440 version")
    for member, name in CARRIED.items():
        if member not in names:
            sys.exit(f"hafen {version} carries no {member}: it is from before releases")
        Path(sys.argv[2], name).write_bytes(wheel.read(member))
    # The contents, not the file: the zip's times differ between two builds of the same tree.
    digest = hashlib.sha256()
    for name in sorted(names):
        digest.update(name.encode() + b"\0" + hashlib.sha256(wheel.read(name)).digest())
print(version, digest.hexdigest())
EOF
}

# The wheels of hafen[edge], for root's install and the agent's release alike, so that both are
# the same: fetched once a run, by root's own pip (TOOLS's, with the technician's pip settings),
# into SHARED, which the agent's user can read. Both installs take exactly these, with no index.
WHEELHOUSE="$SHARED/wheels"
WHEELHOUSE_MADE=0
wheelhouse() {
    [ "$WHEELHOUSE_MADE" -eq 0 ] || return 0
    WHEELHOUSE_MADE=1
    run "$(at "$TOOLS")/bin/python" -I -m pip wheel --quiet --disable-pip-version-check \
        --wheel-dir "$WHEELHOUSE" "${WHEEL:-hafen}[edge]" \
        || die "pip could not get the wheels of ${WHEEL}[edge] (its output is above). If a \
dependency had to be compiled, run me again with --with-build-tools; offline, give --from a wheel \
and have its dependencies on pip's index (PIP_FIND_LINKS)."
}
# hafen's wheel in the wheelhouse.
house_wheel() {
    printf '%s' "$WHEELHOUSE/$(basename "${WHEEL:-hafen.whl}")"
}
# pip's options for an install from the wheelhouse alone.
FROM_WHEELHOUSE=(--quiet --disable-pip-version-check --no-index --find-links "$WHEELHOUSE")

# A path under $1 that is not root's, or that others than root may write (links aside: their
# mode means nothing); nothing if there is none.
not_roots_alone() {
    find "$1" \( ! -user 0 -o \( ! -type l -perm /022 \) \) -print -quit 2>/dev/null || true
}

step_tools() {
    say "The hafen command's own install, root's: $TOOLS"
    local venv stamp foreign said
    venv=$(at "$TOOLS")
    stamp="$venv/$STAMP"
    # Root runs what is here (sudo hafen), so it must be root's alone before root runs anything
    # from it, this script's pip included; /opt/hafen above it is root's (step_directories).
    [ ! -L "$venv" ] || die "$venv is a symbolic link (to $(readlink "$venv")), not a directory: \
remove it, and run me again"
    foreign=$(not_roots_alone "$venv")
    if [ -n "$foreign" ]; then
        local why="$foreign is not root's alone (its owner or group or others may change it), and \
root runs hafen from $TOOLS: find out how it came to be, remove $TOOLS (the hub's units run from \
it too, on a hub), and run me again"
        [ "$DRY_RUN" -eq 1 ] || die "$why"
        warn "$why"
    fi
    if [ "$KEEP" -eq 1 ]; then
        if [ -x "$venv/bin/hafen" ]; then
            note "left as it is: the command is updated when I am given a version (--version,"
            note "--from), not by the hub's rollouts, which update the agent's release"
        else
            warn "$venv holds no hafen, so the command $COMMAND_LINK does not work: run me again \
with --version $(link_version current) (the version the door runs) or --from its wheel"
        fi
        return
    fi
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$FINGERPRINT" ] && [ -x "$venv/bin/hafen" ]; then
        note "installed already from the same contents"
        return
    fi
    "$PYTHON" -I -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
        || die "hafen needs Python 3.11 or newer; $PYTHON is $("$PYTHON" --version)"
    if [ -x "$venv/bin/python" ]; then
        # From before releases, or the hub's: hafen is installed into it anew, the rest kept.
        [ -f "$stamp" ] || note "$venv is there, from before releases or the hub's: hafen is \
installed into it again"
    else
        # System site packages: the Pi's pin library (python3-lgpio) comes from apt.
        run "$PYTHON" -I -m venv --system-site-packages "$venv"
    fi
    wheelhouse
    if [ -x "$venv/bin/hafen" ]; then
        # pip keeps an installed hafen of the wheel's version even if the wheel differs.
        run "$venv/bin/python" -I -m pip install "${FROM_WHEELHOUSE[@]}" --no-deps \
            --force-reinstall "$(house_wheel)"
    fi
    run "$venv/bin/python" -I -m pip install "${FROM_WHEELHOUSE[@]}" "$(house_wheel)[edge]" \
        || die "pip could not install ${WHEEL}[edge] into $venv (its output is above)"
    [ "$DRY_RUN" -eq 0 ] || return 0
    said=$("$venv/bin/hafen" version) || die "the hafen installed in $venv does not start"
    [ "$said" = "$VERSION_TO" ] || die "the hafen installed in $venv says it is $said, not \
$VERSION_TO"
    printf '%s\n' "$FINGERPRINT" >"$stamp"
    note "installed: hafen $said"
}

# A path under $1 that is not the agent's; nothing if there is none.
not_the_agents() {
    find "$1" \( ! -user "$HAFEN_UID" -o ! -group "$HAFEN_GID" \) -print -quit 2>/dev/null || true
}

RELEASE_CHANGED=0
step_release() {
    if [ "$KEEP" -eq 1 ]; then
        return
    fi
    local dest="$RELEASES/${VERSION_TO:-VERSION}" release stamp said
    say "hafen ${VERSION_TO:-(the version pip picks)} in $dest, the agent's"
    release=$(at "$dest")
    stamp="$release/$STAMP"
    # Root only looks here, and reads a line of a regular file; the agent's user does the rest.
    if [ -f "$release/$MARKER" ] && [ -f "$stamp" ] && [ ! -L "$stamp" ] \
        && [ "$(head -c 200 -- "$stamp")" = "$FINGERPRINT" ]; then
        if [ -z "$HAFEN_UID" ] || [ -z "$(not_the_agents "$release")" ]; then
            note "installed already from the same contents"
            return
        fi
        note "$dest is there from the same contents, but not all of it is hafen's: made anew"
    elif [ -f "$release/$MARKER" ]; then
        # A rebuilt wheel or a changed source tree of the same version, or the updater's
        # install: made anew in its place.
        note "$dest is there, from other contents: made anew"
    elif [ -e "$release" ] || [ -L "$release" ]; then
        note "$dest is an install that did not finish: made again from its start"
    fi
    if [ -e "$release" ] || [ -L "$release" ]; then
        run_as_agent rm -rf "$release" || die "the hafen user could not remove $release (is \
some of it not its own?): remove it (rm -rf $release), and run me again"
    fi
    wheelhouse
    # All of it as the agent's user, who owns it from the start (the updater prunes it): root
    # never runs what the agent can write (the release's pip, its hafen), nor works by path
    # in a directory the agent could swap for another meanwhile.
    run_as_agent "$PYTHON" -I -m venv --system-site-packages "$release" \
        || die "the hafen user could not make a venv in $release"
    run_as_agent "$release/bin/python" -I -m pip install "${FROM_WHEELHOUSE[@]}" \
        "$(house_wheel)[edge]" \
        || die "pip could not install ${WHEEL}[edge] into $release (its output is above)"
    RELEASE_CHANGED=1
    if [ "$DRY_RUN" -eq 1 ]; then
        note "would check its version and write its $MARKER, as hafen"
        return
    fi
    said=$(as_agent "$release/bin/hafen" version) || die "the hafen installed in $dest does not start"
    [ "$said" = "$VERSION_TO" ] || die "the hafen installed in $dest says it is $said, not \
$VERSION_TO: it is left incomplete"
    write_as_agent "$FINGERPRINT" "$stamp"
    write_as_agent "$VERSION_TO" "$release/$MARKER.new"
    # On the disk before the marker says the release is complete: a cut power leaves it
    # incomplete (made again), never complete and half written.
    run_as_agent sync -f "$release"
    run_as_agent mv -T "$release/$MARKER.new" "$release/$MARKER"
    note "installed: hafen $said"
}

# Point the link $EDGE/$1 at releases/$2 as the updater does (ReleaseDirs._link): a fresh link
# renamed over the old one (mv -T: one rename(2)), so a cut leaves the old link or the new one.
set_link() {
    local edge fresh
    edge=$(at "$EDGE")
    fresh="$edge/.$1.new"
    # As the agent's user: its directory, its links.
    if [ -e "$fresh" ] || [ -L "$fresh" ]; then run_as_agent rm -f "$fresh"; fi
    # -T: never into a directory a link of that name might point to.
    run_as_agent ln -s -T "releases/$2" "$fresh"
    run_as_agent mv -T "$fresh" "$edge/$1"
}

step_links() {
    say "The release that runs: $EDGE/current"
    local running before
    running=$(link_version current)
    if [ "$KEEP" -eq 1 ] || [ "$running" = "$VERSION_TO" ]; then
        before=$(link_version previous)
        note "current -> releases/$running: there${before:+ (previous -> releases/$before)}"
        return
    fi
    # As the updater switches (ReleaseDirs.switch_to): the one current so far becomes previous,
    # where the launcher goes back to if the new one crash-loops.
    [ -z "$running" ] || set_link previous "$running"
    set_link current "${VERSION_TO:-VERSION}"
    RELEASE_CHANGED=1
}

LAUNCHER_CHANGED=0
step_launcher() {
    say "The launcher $LAUNCHER"
    local dest
    dest=$(at "$LAUNCHER")
    if [ "$KEEP" -eq 1 ] || [ -z "$WHEEL" ]; then
        keep_carried "$dest" 755 "the launcher"
        return
    fi
    # Root's, outside the releases: the way back from a release that cannot start.
    put_file "$CARRIED/launch.py" "$dest" 755
    LAUNCHER_CHANGED=$WROTE
}

# A file that comes with the wheel, when there is no wheel: kept as it is, or missing.
keep_carried() {
    local dest=$1 mode=$2 what=$3
    WROTE=0
    if [ -f "$dest" ]; then
        [ "$DRY_RUN" -eq 1 ] || ensure_attrs "$dest" "$mode" 0 0
        note "$dest: left as it is"
    elif [ "$KEEP" -eq 1 ]; then
        warn "$dest is missing. --version $(link_version current) installs $what again from \
that release's wheel."
    else
        note "would install $what from the wheel"
    fi
}

step_command() {
    say "The hafen command on PATH"
    local link target=$TOOLS/bin/hafen
    link=$(at "$COMMAND_LINK")
    if [ -L "$link" ] && [ "$(readlink "$link")" = "$target" ]; then
        note "$link: there"
    elif [ -L "$link" ] && [ "$(readlink "$link")" = "$EDGE/current/bin/hafen" ]; then
        # What an install.sh of the first releases linked: code the agent can change, which
        # `sudo hafen` would have run as root.
        note "$link links the agent's release, which the agent can change: it now links $target"
        run ln -s -T "$target" "$link.new"
        run mv -T "$link.new" "$link"
    elif [ -e "$link" ] || [ -L "$link" ]; then
        warn "$link exists and is not the link to $target: left as it is"
    else
        [ -d "$(dirname "$link")" ] || run mkdir -p "$(dirname "$link")"
        run ln -s "$target" "$link"
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
    local dest
    dest=$(at "/etc/systemd/system/$UNIT")
    if [ "$KEEP" -eq 1 ] || [ -z "$WHEEL" ]; then
        keep_carried "$dest" 644 "$UNIT"
    else
        # The unit that ships with the code installed (package data of the wheel).
        put_file "$CARRIED/$UNIT" "$dest" 644
    fi
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
    elif [ $((UNIT_CHANGED + RELEASE_CHANGED + LAUNCHER_CHANGED)) -gt 0 ] \
        && systemctl -q is-active "$UNIT"; then
        # A running agent keeps the old code (or unit, or launcher) until it restarts.
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
step_source
step_tools
step_release
step_links
step_launcher
step_command
step_reader
step_unit
step_start
printf '\nDone.\n'
