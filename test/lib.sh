# test/lib.sh — shared by test/demo, test/check and the benchmarks: set the
# machine up (packages, build, install), start the Twilio emulator and a
# throwaway PostgreSQL cluster, and clean both up on exit.
#
# Source it; then call tn_setup, tn_start_emulator, tn_start_cluster.

TN_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# PG_MAJOR picks Debian's PostgreSQL /usr/lib/postgresql/N; PG_CONFIG may
# name another installation (a private copy, so that parallel work does not
# share one installed extension)
PG_MAJOR=${PG_MAJOR:-15}
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/$PG_MAJOR/bin/pg_config}
PGBIN=$(dirname "$PG_CONFIG")
export PATH="$PGBIN:$PATH"

# Credentials the emulator accepts; the token doubles as a marker that the
# secret tests look for in logs and errors.
TN_ACCOUNT_SID=AC0123456789abcdef0123456789abcdef
TN_AUTH_TOKEN=tok3n-s3cret-0f-the-test-account
TN_API_KEY=SK00000000000000000000000000000001
TN_API_SECRET=ap1-s3cret-0f-the-test-key

# The unprivileged user that runs PostgreSQL (it refuses to run as root).
if [ "$(id -u)" = 0 ]; then TN_PG_USER=postgres; else TN_PG_USER=$(id -un); fi

TN_CLEANUP=()
tn_cleanup() {
    local i
    for ((i=${#TN_CLEANUP[@]}-1; i>=0; i--)); do eval "${TN_CLEANUP[i]}" >/dev/null 2>&1 || true; done
    TN_CLEANUP=()
}
trap tn_cleanup EXIT
trap 'exit 130' INT TERM

tn_log() { printf '== %s\n' "$*" >&2; }

# Run a command as the PostgreSQL user.
tn_as_pg() {
    if [ "$(id -u)" = 0 ]; then runuser -u "$TN_PG_USER" -- env PATH="$PATH" "$@"; else "$@"; fi
}

# Install what is missing, build and install the extension, and the
# emulator's test dependencies.  Idempotent and quiet when all is there.
tn_setup() {
    local pkgs=(postgresql-$PG_MAJOR postgresql-server-dev-$PG_MAJOR postgresql-contrib
                libcurl4-openssl-dev libipc-run-perl libfaketime curl make gcc ca-certificates openssl python3)
    local missing=() p sudo=
    [ "$(id -u)" = 0 ] || sudo=sudo
    # a PostgreSQL that test/versions built from source (17, 18: not in
    # bookworm) is there already; its packages are not asked of apt
    if [ -e "$PGBIN/../.tn-built-from-source" ]; then
        local keep=()
        for p in "${pkgs[@]}"; do
            case $p in
                postgresql-"$PG_MAJOR"|postgresql-server-dev-"$PG_MAJOR"|postgresql-contrib) ;;
                *) keep+=("$p") ;;
            esac
        done
        pkgs=("${keep[@]}")
    fi
    for p in "${pkgs[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    command -v node >/dev/null && command -v npm >/dev/null || missing+=(nodejs npm)
    if [ ${#missing[@]} -gt 0 ]; then
        tn_log "installing ${missing[*]}"
        $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
        $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >&2
    fi
    # the emulator's tests need node --test-concurrency (Node 20.10+);
    # Debian 12's own nodejs is 18, so say so plainly rather than fail later
    node -e 'const [a, b] = process.versions.node.split(".").map(Number);
             process.exit(a > 20 || (a === 20 && b >= 10) ? 0 : 1)' \
        || { tn_log "Node.js 20.10 or later is required (found $(node --version))"; return 1; }
    id "$TN_PG_USER" >/dev/null 2>&1 || $sudo useradd --system --create-home "$TN_PG_USER"

    tn_log "building twilio_numbers"
    make -C "$TN_ROOT" -s PG_CONFIG="$PG_CONFIG" >&2
    $sudo make -C "$TN_ROOT" -s PG_CONFIG="$PG_CONFIG" install >&2
}

# A benchmark's scratch directory, readable by the PostgreSQL user and
# removed on exit; sets work.
tn_bench_workdir() {
    work=$(mktemp -d /tmp/tn-bench.XXXXXX)
    chmod 755 "$work"
    TN_CLEANUP+=("rm -rf $work")
}

# Start the emulator on a free port; sets EMU_URL and EMU_PID.
tn_start_emulator() {
    local dir out line i
    dir=$(mktemp -d /tmp/tn-emu.XXXXXX)
    out="$dir/stdout"
    "$TN_ROOT/test/twilio-emulator" --port 0 --account-sid "$TN_ACCOUNT_SID" \
        --auth-token "$TN_AUTH_TOKEN" --api-key "$TN_API_KEY" --api-secret "$TN_API_SECRET" \
        "$@" >"$out" 2>"$dir/stderr" &
    EMU_PID=$!
    TN_CLEANUP+=("kill $EMU_PID; rm -rf $dir")
    for ((i=0; i<200; i++)); do
        line=$(grep -m1 'listening on' "$out" 2>/dev/null || true)
        [ -n "$line" ] && break
        kill -0 "$EMU_PID" 2>/dev/null || { cat "$dir/stderr" >&2; return 1; }
        sleep 0.05
    done
    EMU_URL=${line##* }
    [ -n "$EMU_URL" ] || { tn_log "emulator did not start"; return 1; }
    export EMU_URL
}

# TN_FAKETIME='2028-02-29 23:30:00 UTC' runs the next cluster under that
# clock (libfaketime, as a constant offset so every process of the cluster,
# forked or exec'd, agrees); the emulator keeps the real time.
tn_clock() {
    TN_CLOCK=()
    [ -n "${TN_FAKETIME:-}" ] || return 0
    local lib=/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1 at
    [ -e "$lib" ] || lib=$(dpkg -L libfaketime 2>/dev/null | grep -m1 '/libfaketime\.so\.1$')
    at=$(date -d "$TN_FAKETIME" +%s) || return 1
    TN_CLOCK=(env LD_PRELOAD="$lib" FAKETIME="+$((at - $(date +%s)))" FAKETIME_DONT_FAKE_MONOTONIC=1)
}

# initdb and start a throwaway cluster with the extension preloaded and the
# emulator as Twilio; sets PGHOST, PGPORT, PGUSER, PGDATA_DIR.
# Extra postgresql.conf lines may be passed as arguments.
tn_start_cluster() {
    local dir line
    tn_clock || { tn_log "TN_FAKETIME=$TN_FAKETIME is not a date"; return 1; }
    # no TCP: the port only names the socket file in this private directory
    local port=5432
    dir=$(mktemp -d /tmp/tn-pg.XXXXXX)
    TN_CLEANUP+=("rm -rf $dir")
    chmod 755 "$dir"
    [ "$(id -u)" = 0 ] && chown "$TN_PG_USER" "$dir"
    # UTF-8 whatever the caller's locale: expected outputs hold non-ASCII text
    tn_as_pg initdb -D "$dir/data" -A trust -U postgres --no-sync --locale=C.UTF-8 --encoding=UTF8 \
        >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; return 1; }
    {
        echo "listen_addresses = ''"
        echo "port = $port"
        echo "unix_socket_directories = '$dir'"
        echo "fsync = off"
        echo "shared_preload_libraries = 'twilio_numbers'"
        echo "twilio_numbers.api_url = '$EMU_URL'"
        echo "twilio_numbers.pricing_url = '$EMU_URL'"
        echo "twilio_numbers.trunking_url = '$EMU_URL'"
        echo "twilio_numbers.numbers_url = '$EMU_URL'"
        echo "twilio_numbers.account_sid = '$TN_ACCOUNT_SID'"
        echo "twilio_numbers.auth_token = '$TN_AUTH_TOKEN'"
        echo "twilio_numbers.retry_backoff_ms = 50"
        echo "log_line_prefix = '%m [%p] %q%u@%d '"
        for line in "$@"; do echo "$line"; done
    } >>"$dir/data/postgresql.conf"
    TN_CLEANUP+=("tn_as_pg pg_ctl -D $dir/data -m immediate stop")
    tn_as_pg "${TN_CLOCK[@]}" pg_ctl -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null \
        || { cat "$dir/server.log" >&2; return 1; }
    export PGHOST=$dir PGPORT=$port PGUSER=postgres
    PGDATA_DIR=$dir/data
    PG_SERVER_LOG=$dir/server.log
}
