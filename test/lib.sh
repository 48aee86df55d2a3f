# test/lib.sh — shared by test/demo, test/check and the benchmarks: set the
# machine up (packages, build, install), start the Twilio emulator and a
# throwaway PostgreSQL cluster, and clean both up on exit.
#
# Source it; then call tn_setup, tn_start_emulator, tn_start_cluster.  A
# set-up step that fails ends with one line, "== set-up failed: …", saying
# what failed and what to do, and returns 1.

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

# The last line of a failed set-up step: what failed and what to do.
tn_setup_failed() { tn_log "set-up failed: $*"; return 1; }

# Run a command as the PostgreSQL user, in the current directory if that
# user may enter it and in / otherwise (the checkout may be under /root:
# PostgreSQL's tools complain about a working directory they cannot enter).
tn_as_pg() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u "$TN_PG_USER" -- sh -c 'cd "$0" 2>/dev/null || cd /; exec "$@"' "$PWD" env PATH="$PATH" "$@"
    else
        "$@"
    fi
}

# The emulator and its tests need Node.js 18.20.1 or later (Debian 12's
# nodejs 18.20.4 is enough): node --test-concurrency came in 18.19, Prism
# 5.14 (the contract run) declares 18.20.1.
tn_check_node() {
    local found
    found=$(node --version 2>/dev/null) \
        || { tn_setup_failed "no node on PATH: Node.js 18.20.1 or later is required; install Debian's nodejs and npm (apt-get install nodejs npm), then run this again"; return 1; }
    node -e 'const [a, b, c] = process.versions.node.split(".").map(Number);
             process.exit(a > 18 || (a === 18 && (b > 20 || (b === 20 && c >= 1))) ? 0 : 1)' \
        || { tn_setup_failed "Node.js 18.20.1 or later is required, found $found ($(command -v node)): install Debian 12's nodejs (18.20.4) or a newer one first on PATH, then run this again"; return 1; }
}

# Install what is missing, build and install the extension, and the
# emulator's test dependencies.  Idempotent and quiet when all is there.
tn_setup() {
    local pkgs=(postgresql-$PG_MAJOR postgresql-server-dev-$PG_MAJOR postgresql-contrib
                libcurl4-openssl-dev libipc-run-perl libfaketime curl make gcc ca-certificates openssl python3
                python3-psycopg2)
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
        $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2 \
            || { tn_setup_failed "apt-get update (to install ${missing[*]}): see the lines above; check the machine's apt sources and network, then run this again"; return 1; }
        $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >&2 \
            || { tn_setup_failed "apt-get install ${missing[*]}: see the lines above; install them by hand, then run this again"; return 1; }
    fi
    tn_check_node || return 1
    if ! id "$TN_PG_USER" >/dev/null 2>&1; then
        $sudo useradd --system --create-home "$TN_PG_USER" \
            || { tn_setup_failed "useradd $TN_PG_USER (the user that runs PostgreSQL): see the lines above"; return 1; }
    fi

    # TN_USE_INSTALLED=1 (the package's autopkgtest): test what a package
    # installed, without building or installing anything
    if [ "${TN_USE_INSTALLED:-}" = 1 ]; then
        [ -e "$("$PG_CONFIG" --sharedir)/extension/twilio_numbers.control" ] \
            || { tn_setup_failed "TN_USE_INSTALLED=1 but twilio_numbers is not installed for $PG_CONFIG: install the postgresql-$PG_MAJOR-twilio-numbers package first"; return 1; }
        tn_log "testing the installed twilio_numbers $(sed -n "s/^default_version *= *'\(.*\)'/\1/p" "$("$PG_CONFIG" --sharedir)/extension/twilio_numbers.control") ($("$PG_CONFIG" --pkglibdir)/twilio_numbers.so)"
        return 0
    fi
    tn_log "building twilio_numbers"
    # objects built against another PostgreSQL's headers are not reused
    if [ "$(cat "$TN_ROOT/src/.built-with" 2>/dev/null)" != "$PG_CONFIG" ]; then
        make -C "$TN_ROOT" -s PG_CONFIG="$PG_CONFIG" clean >&2
        echo "$PG_CONFIG" >"$TN_ROOT/src/.built-with"
    fi
    make -C "$TN_ROOT" -s PG_CONFIG="$PG_CONFIG" WERROR=1 >&2 \
        || { tn_setup_failed "make (building twilio_numbers with $PG_CONFIG): see make's messages above; fix them, then run this again"; return 1; }
    $sudo make -C "$TN_ROOT" -s PG_CONFIG="$PG_CONFIG" install >&2 \
        || { tn_setup_failed "make install (into $("$PG_CONFIG" --pkglibdir) and $("$PG_CONFIG" --sharedir)/extension): see the lines above"; return 1; }
}

# The emulator's test dependencies (npm ci of test/emulator/package-lock.json,
# unless node_modules was installed from it already).
tn_setup_emulator_deps() {
    "$TN_ROOT/test/emulator/run-tests" --install-only \
        || tn_setup_failed "npm ci (the emulator's test dependencies, test/emulator/package-lock.json): see npm's messages above; the npm registry must be reachable (npm config get registry), then run this again"
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
        if ! kill -0 "$EMU_PID" 2>/dev/null; then
            cat "$dir/stderr" >&2
            tn_setup_failed "starting the Twilio emulator (test/twilio-emulator): it exited; see its messages above"
            return 1
        fi
        sleep 0.05
    done
    EMU_URL=${line##* }
    if [ -z "$EMU_URL" ]; then
        cat "$dir/stderr" >&2
        tn_setup_failed "starting the Twilio emulator (test/twilio-emulator): no ready line within 10 s; see its messages above"
        return 1
    fi
    export EMU_URL
}

# TN_FAKETIME='2028-02-29 23:30:00 UTC' runs the next cluster under that
# clock (libfaketime, as a constant offset so every process of the cluster,
# forked or exec'd, agrees); the emulator keeps the real time.
tn_clock() {
    TN_CLOCK=()
    [ -n "${TN_FAKETIME:-}" ] || return 0
    tn_faketime_sweep
    TN_CLEANUP+=("tn_faketime_sweep")
    local lib=/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1 at
    [ -e "$lib" ] || lib=$(dpkg -L libfaketime 2>/dev/null | grep -m1 '/libfaketime\.so\.1$')
    at=$(date -d "$TN_FAKETIME" +%s) || return 1
    # an offset, "+N" seconds ahead or "-N" behind
    local offset=$((at - $(date +%s)))
    [ "$offset" -ge 0 ] && offset="+$offset"
    TN_CLOCK=(env LD_PRELOAD="$lib" FAKETIME="$offset" FAKETIME_DONT_FAKE_MONOTONIC=1)
}

# libfaketime keeps a shared-memory file per process in /dev/shm and leaves
# it behind when the process is killed (as a cluster's are at an immediate
# stop); a new process that gets a dead one's pid then fails to start.
# Remove those of processes that are gone.
tn_faketime_sweep() {
    local f pid
    for f in /dev/shm/faketime_shm_* /dev/shm/sem.faketime_sem_*; do
        [ -e "$f" ] || continue
        pid=${f##*_}
        [ -d "/proc/$pid" ] || rm -f "$f" 2>/dev/null || true
    done
}

# initdb and start a throwaway cluster with the extension preloaded and the
# emulator as Twilio; sets PGHOST, PGPORT, PGUSER, PGDATA_DIR.
# Extra postgresql.conf lines may be passed as arguments.
tn_start_cluster() {
    local dir line
    tn_clock || { tn_setup_failed "TN_FAKETIME=$TN_FAKETIME is not a date"; return 1; }
    # no TCP: the port only names the socket file in this private directory
    local port=5432
    dir=$(mktemp -d /tmp/tn-pg.XXXXXX)
    TN_CLEANUP+=("rm -rf $dir")
    chmod 755 "$dir"
    [ "$(id -u)" = 0 ] && chown "$TN_PG_USER" "$dir"
    # UTF-8 whatever the caller's locale: expected outputs hold non-ASCII text
    tn_as_pg initdb -D "$dir/data" -A trust -U postgres --no-sync --locale=C.UTF-8 --encoding=UTF8 \
        >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; tn_setup_failed "initdb (a throwaway cluster in $dir): see its messages above"; return 1; }
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
        echo "twilio_numbers.messaging_url = '$EMU_URL'"
        echo "twilio_numbers.account_sid = '$TN_ACCOUNT_SID'"
        echo "twilio_numbers.auth_token = '$TN_AUTH_TOKEN'"
        echo "twilio_numbers.retry_backoff_ms = 50"
        echo "log_line_prefix = '%m [%p] %q%u@%d '"
        for line in "$@"; do echo "$line"; done
    } >>"$dir/data/postgresql.conf"
    TN_CLEANUP+=("tn_as_pg pg_ctl -D $dir/data -m immediate stop")
    tn_as_pg "${TN_CLOCK[@]}" pg_ctl -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null \
        || { cat "$dir/server.log" >&2 2>/dev/null || true
             tn_setup_failed "starting the throwaway cluster (pg_ctl start): see its messages and the server log above"; return 1; }
    export PGHOST=$dir PGPORT=$port PGUSER=postgres
    PGDATA_DIR=$dir/data
    PG_SERVER_LOG=$dir/server.log
}

# The cluster the README's story runs in (test/demo, test/check readme): the
# settings the README's Install section gives, the worker in postgres, and
# the short intervals that let the workers settle between two examples; then
# CREATE EXTENSION, as Install says.
tn_readme_cluster() {
    tn_start_cluster "twilio_numbers.database = 'postgres'" \
        "twilio_numbers.markup_percent = 20" \
        "twilio_numbers.worker_interval_ms = 100" \
        "twilio_numbers.queue_retry_base_ms = 100" \
        "twilio_numbers.queue_retry_max_ms = 1000" \
        "twilio_numbers.hosted_poll_ms = 100" \
        "twilio_numbers.hosted_poll_max_ms = 400" || return 1
    psql -X -q -d postgres -c 'CREATE EXTENSION twilio_numbers' >/dev/null \
        || { tn_setup_failed "CREATE EXTENSION twilio_numbers in the README's cluster: see the lines above"; return 1; }
}

# What the README's story finds at Twilio, made with Twilio's own API: the
# reseller's SIP trunk and a subaccount for a customer of its own; and a
# customer's German bundle, approved (the emulator's control stands in for
# Twilio's reviewers).
tn_readme_twilio() {
    curl -sf -u "$TN_ACCOUNT_SID:$TN_AUTH_TOKEN" -X POST "$EMU_URL/v1/Trunks" \
            -d FriendlyName='Acme PBX' >/dev/null \
        && curl -sf -u "$TN_ACCOUNT_SID:$TN_AUTH_TOKEN" -X POST "$EMU_URL/2010-04-01/Accounts.json" \
            -d FriendlyName='Globex subaccount' >/dev/null \
        && curl -sf -X POST -H 'Content-Type: application/json' "$EMU_URL/_emulator/bundles" \
            -d '{"iso_country": "DE", "number_type": "local", "end_user_type": "business", "friendly_name": "Muster GmbH"}' \
            >/dev/null \
        && curl -sf -u "$TN_ACCOUNT_SID:$TN_AUTH_TOKEN" -X POST "$EMU_URL/v1/Services" \
            -d FriendlyName='Acme Dental reminders' >/dev/null \
        && curl -sf -u "$TN_ACCOUNT_SID:$TN_AUTH_TOKEN" -X POST "$EMU_URL/v1/Services" \
            -d FriendlyName='Acme Dental marketing' >/dev/null \
        || { tn_setup_failed "creating the README's trunk, subaccount, bundle and Messaging Services at the emulator (curl $EMU_URL)"; return 1; }
}
