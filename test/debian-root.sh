# test/debian-root.sh — a fresh, minimal Debian 12 (bookworm) root to try the
# project in as a newcomer would, for test/fresh-debian and test/package.
# Source it after setting TN_ROOT_NAME (the log prefix), refresh and keep
# (0/1) and SRC (the checkout whose HEAD is cloned into the root); it
# debootstraps (cached), copies a pristine root to $R, mounts /proc, /sys and
# a private /dev, clones HEAD to $R/root/twilio_numbers, and defines
# run COMMAND… (one command in the root, with `env -i`, as root, no standard
# input; its exit status, wall time and last line appended to results).
# Everything is unmounted and removed on exit (unless keep=1).
#
# The root comes from debootstrap (--variant=minbase) over the mirror the
# machine's own apt uses, and is cached in $TN_FRESH_CACHE (default
# /var/cache/twilio-numbers/fresh-debian); every run starts from a pristine
# copy of it.  The chroot's apt gets the machine's Debian sources and its
# proxy / Valid-Until settings, and the machine's own CA certificates
# (/usr/local/share/ca-certificates), so that it reaches the same mirror and
# npm registry the machine does.

SUITE=bookworm
CACHE=${TN_FRESH_CACHE:-/var/cache/twilio-numbers/fresh-debian}
LIMIT_S=${TN_FRESH_LIMIT_S:-5400}	# per command
CHROOT_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

log() { printf '== %s: %s\n' "$TN_ROOT_NAME" "$*" >&2; }
die() { log "$*"; exit 1; }

[ "$(id -u)" = 0 ] || die "run it as root (debootstrap, chroot and mount need root)"

# The URI the machine's apt uses for SUITE (one-line .list or deb822 .sources).
apt_uri() {	# apt_uri SUITE
    local f
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        awk -v s="$1" '$1 == "deb" { l = $0; sub(/\[[^]]*\]/, "", l); split(l, w, " ")
                                     if (w[3] == s) { print w[2]; exit } }' "$f"
    done
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        awk -v s="$1" 'BEGIN { RS = ""; FS = "\n" }
            { uri = ""; suites = ""; types = ""; enabled = "yes"
              for (i = 1; i <= NF; i++) {
                  if ($i ~ /^URIs:/) { uri = $i; sub(/^URIs:[ \t]*/, "", uri); sub(/[ \t].*/, "", uri) }
                  if ($i ~ /^Suites:/) { suites = $i; sub(/^Suites:/, "", suites) }
                  if ($i ~ /^Types:/) types = $i
                  if ($i ~ /^Enabled:[ \t]*no/) enabled = "no" }
              if (enabled == "yes" && types ~ /(^|[ \t])deb([ \t]|$)/ && (" " suites " ") ~ (" " s " ")) { print uri; exit } }' "$f"
    done
}
MIRROR=$(apt_uri "$SUITE" | head -n1)
MIRROR=${MIRROR:-http://deb.debian.org/debian}
SECURITY=$(apt_uri "$SUITE-security" | head -n1)
SECURITY=${SECURITY:-http://deb.debian.org/debian-security}

command -v debootstrap >/dev/null || {
    log "installing debootstrap"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap >&2 \
        || { DEBIAN_FRONTEND=noninteractive apt-get update -q >&2 \
             && DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap >&2; } \
        || die "could not install debootstrap (apt-get install debootstrap): see the lines above"
}

# The pristine root, debootstrapped once and kept.
mkdir -p "$CACHE"
stamp="debootstrap --variant=minbase $SUITE $MIRROR"
if [ $refresh = 1 ] || [ ! -d "$CACHE/root" ] || [ "$(cat "$CACHE/root.stamp" 2>/dev/null)" != "$stamp" ]; then
    log "debootstrap --variant=minbase $SUITE from $MIRROR (cached in $CACHE)"
    rm -rf --one-file-system "$CACHE/root.tmp"
    debootstrap --variant=minbase "$SUITE" "$CACHE/root.tmp" "$MIRROR" >"$CACHE/debootstrap.log" 2>&1 \
        || { tail -n 20 "$CACHE/debootstrap.log" >&2; die "debootstrap failed: see $CACHE/debootstrap.log"; }
    rm -rf --one-file-system "$CACHE/root"
    mv "$CACHE/root.tmp" "$CACHE/root"
    echo "$stamp" >"$CACHE/root.stamp"
fi

work=$(mktemp -d /var/tmp/tn-fresh-debian.XXXXXX)
R=$work/root
mounted=()
running=	# the command running in the root (its timeout's pid)

# Processes still running inside the root (ours: started by this script).
inside() {
    local p
    for p in /proc/[0-9]*; do
        [ "$(readlink "$p/root" 2>/dev/null)" = "$R" ] && echo "${p#/proc/}"
    done
    return 0
}

cleanup() {
    local i pids
    [ -z "$running" ] || kill "$running" 2>/dev/null || true
    pids=$(inside)
    if [ -n "$pids" ]; then
        kill $pids 2>/dev/null || true
        sleep 2
        pids=$(inside)
        [ -z "$pids" ] || kill -9 $pids 2>/dev/null || true
    fi
    for ((i=${#mounted[@]}-1; i>=0; i--)); do
        umount "${mounted[i]}" 2>/dev/null || umount -l "${mounted[i]}" 2>/dev/null \
            || log "could not unmount ${mounted[i]}"
    done
    mounted=()
    if grep -q " $R/" /proc/mounts || grep -q " $R " /proc/mounts; then
        log "something is still mounted under $R: left in place"
    elif [ $keep = 1 ]; then
        log "root kept: $R"
    else
        rm -rf --one-file-system "$R"
    fi
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

mnt() {	# mnt TARGET mount-arguments…
    local target=$1
    shift
    mkdir -p "$target"
    mount "$@" "$target"
    mounted+=("$target")
}

log "copying the pristine root to $R"
cp -a "$CACHE/root" "$R"

# apt: the machine's Debian mirror (and security), proxy and date checks.
{
    echo "deb $MIRROR $SUITE main"
    echo "deb $MIRROR $SUITE-updates main"
    echo "deb $SECURITY $SUITE-security main"
} >"$R/etc/apt/sources.list"
for f in /etc/apt/apt.conf /etc/apt/apt.conf.d/*; do
    [ -f "$f" ] && grep -qiE 'proxy|Check-Valid-Until|Check-Date' "$f" && cp "$f" "$R/etc/apt/apt.conf.d/"
done
# the network as the machine sees it: name service and its own CAs
cp -L /etc/resolv.conf "$R/etc/resolv.conf"
cp /etc/hosts "$R/etc/hosts"
if ls /usr/local/share/ca-certificates/*.crt >/dev/null 2>&1; then
    mkdir -p "$R/usr/local/share/ca-certificates"
    cp /usr/local/share/ca-certificates/*.crt "$R/usr/local/share/ca-certificates/"
fi

# the checkout: a clone of this worktree's HEAD
head=$(git -C "$SRC" rev-parse HEAD)
[ -z "$(git -C "$SRC" status --porcelain --untracked-files=no)" ] \
    || log "note: $SRC has uncommitted changes; the root gets HEAD ${head:0:12} without them"
git clone -q --no-checkout "$SRC" "$R/root/twilio_numbers"
git -C "$R/root/twilio_numbers" checkout -q --detach "$head"

# what PostgreSQL and the tools need: /proc, /sys, a private /dev
mnt "$R/proc" -t proc proc
mnt "$R/sys" -t sysfs -o ro sysfs
mnt "$R/dev" -t tmpfs -o mode=755,nosuid tmpfs
for d in null:1:3 zero:1:5 full:1:7 random:1:8 urandom:1:9 tty:5:0; do
    IFS=: read -r n major minor <<<"$d"
    mknod -m 666 "$R/dev/$n" c "$major" "$minor"
done
ln -s /proc/self/fd "$R/dev/fd"
ln -s /proc/self/fd/0 "$R/dev/stdin"
ln -s /proc/self/fd/1 "$R/dev/stdout"
ln -s /proc/self/fd/2 "$R/dev/stderr"
mnt "$R/dev/pts" -t devpts -o newinstance,ptmxmode=0666,mode=620 devpts
ln -s pts/ptmx "$R/dev/ptmx"
mnt "$R/dev/shm" -t tmpfs -o mode=1777,nosuid,nodev tmpfs

# The machine's proxy variables, if it has any (the registries may need them).
proxy_env=()
for v in http_proxy https_proxy no_proxy HTTP_PROXY HTTPS_PROXY NO_PROXY; do
    [ -n "${!v:-}" ] && proxy_env+=("$v=${!v}")
done

results=()
run() {	# run [--label LABEL] COMMAND…: one command in the root, as a newcomer types it
    local label=
    if [ "$1" = --label ]; then label=$2; shift 2; fi
    local name="$*" start rc logf last
    logf="$work/$(echo "$name" | tr -c 'A-Za-z0-9\n' '_').log"
    log "$name (log: $logf)"
    start=$(date +%s)
    # in the background, so that a signal to this script ends it at once
    timeout -k 30 "$LIMIT_S" chroot "$R" /usr/bin/env -i PATH="$CHROOT_PATH" HOME=/root "${proxy_env[@]}" \
        /bin/bash -c 'cd /root/twilio_numbers && exec "$@"' fresh-debian "$@" </dev/null >"$logf" 2>&1 &
    running=$!
    rc=0
    wait "$running" || rc=$?
    running=
    last=$(grep -v '^[[:space:]]*$' "$logf" | tail -n1)
    results+=("${label:-${2:-$1}}: exit $rc in $(( $(date +%s) - start )) s, last line: $last")
    printf '%s\n' "${results[-1]}" >&2
    return $rc
}

