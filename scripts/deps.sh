#!/bin/sh
# Installs what psdm-socket needs on Debian 12, and only what is missing.
#
#   scripts/deps.sh build|test|fuzz|bench|demo|all
#
# Debian packages: installed with apt-get when run as root; otherwise the missing
# ones are named and the script exits 1. npm packages (the Socket.IO clients used by
# the tests; the socket.io server and kafkajs of make bench's Node peer): installed from
# package-lock.json into ./node_modules, which git ignores.
set -eu

cd "$(dirname "$0")/.."

BUILD_PKGS="cmake g++ make pkg-config apache2-dev libapr1-dev libaprutil1-dev libwebsockets-dev librdkafka-dev libcjson-dev libcmocka-dev libcurl4-openssl-dev libsystemd-dev libssl-dev liburing-dev"
RUN_PKGS="apache2-bin media-types kcat libwebsockets-evlib-ev"
TEST_PKGS="python3 python3-pytest python3-socketio python3-websocket python3-requests curl openssl chromium clang-format python3-prometheus-client debhelper lintian fakeroot dpkg-dev libapache2-mod-auth-openidc"
BENCH_PKGS="gunicorn python3-eventlet python3-flask python3-flask-socketio python3-kafka libssl-dev"
# The libFuzzer targets (make fuzz; make test runs each briefly): clang, and clang's runtime
# with libFuzzer and the sanitizers, which clang only recommends.
FUZZ_PKGS="clang libclang-rt-14-dev"

want=""
npm_needed=no
for group in "${@:-build}"; do
    case "$group" in
        build) want="$want $BUILD_PKGS" ;;
        test)  want="$want $BUILD_PKGS $RUN_PKGS $TEST_PKGS $FUZZ_PKGS"; npm_needed=yes ;;
        fuzz)  want="$want $BUILD_PKGS $FUZZ_PKGS" ;;
        demo)  want="$want $BUILD_PKGS $RUN_PKGS" ;;
        bench) want="$want $BUILD_PKGS $RUN_PKGS $TEST_PKGS $BENCH_PKGS"; npm_needed=yes ;;
        all)   want="$want $BUILD_PKGS $RUN_PKGS $TEST_PKGS $BENCH_PKGS $FUZZ_PKGS"; npm_needed=yes ;;
        *) echo "deps.sh: unknown group '$group' (build, test, fuzz, bench, demo, all)" >&2; exit 2 ;;
    esac
done

missing=""
for p in $want; do
    case " $missing " in *" $p "*) continue ;; esac
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    [ "$status" = "install ok installed" ] || missing="$missing $p"
done
# npm comes with some nodejs builds (NodeSource) and separately on stock Debian.
if [ "$npm_needed" = yes ] && ! command -v npm >/dev/null 2>&1; then
    missing="$missing nodejs npm"
fi
missing=$(echo $missing)

if [ -n "$missing" ]; then
    if [ "$(id -u)" -eq 0 ]; then
        echo "deps: installing Debian packages: $missing"
        export DEBIAN_FRONTEND=noninteractive
        # An apt cache that was never refreshed has no candidates; refresh once.
        if ! apt-get install -y --no-install-recommends $missing; then
            apt-get update
            apt-get install -y --no-install-recommends $missing
        fi
    else
        echo "deps: missing Debian packages: $missing" >&2
        echo "deps: run as root:  apt-get install $missing   (or: sudo make deps)" >&2
        exit 1
    fi
fi

if [ "$npm_needed" = yes ]; then
    # Reinstall only when the lock file changed since the last install.
    if [ ! -f node_modules/.package-lock.json ] || ! cmp -s package-lock.json node_modules/.psdm-lock-stamp; then
        echo "deps: installing npm packages into ./node_modules"
        npm ci --no-audit --no-fund --loglevel=error
        cp package-lock.json node_modules/.psdm-lock-stamp
    fi
fi
