#!/bin/sh
# bench/smtp/run.sh - builds a release tree with -Dbench=true (marmot and
# the load client bench-smtp-load) and runs the SMTP benchmark of issue 4
# (bench/README.md): Marmot vs Postfix -> LMTP -> Dovecot, at concurrency
# 1, 8 and 32 with 4 KiB and 100 KiB messages, with bench-smtp-load
# (per-transaction latency) and Postfix's smtp-source. Arguments go to
# bench/smtp/bench-smtp.py, e.g.
#   bench/smtp/run.sh                          # the full run (~5 min)
#   bench/smtp/run.sh --conc 32 --sizes 4096   # one configuration
#   bench/smtp/run.sh --messages 3000 -d /srv  # more mail, other disk
# BUILD (default build-bench) names the build directory; the report is
# written to $BUILD/bench-smtp-report.md (+ .json) and printed.
# Needs root (Postfix and Dovecot run as their own users; marmot init
# --user marmot) and the Debian packages postfix, dovecot-core and
# dovecot-lmtpd (scripts/install-deps.sh installs them).
set -eu
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build-bench}
for tool in smtp-source smtp-sink postfix dovecot; do
	if ! command -v "$tool" >/dev/null 2>&1 &&
		[ ! -x "/usr/sbin/$tool" ]; then
		echo "run.sh: $tool not found: run scripts/install-deps.sh" >&2
		exit 1
	fi
done
if [ "$(id -u)" -ne 0 ]; then
	echo "run.sh: must run as root (private Postfix and Dovecot instances)" >&2
	exit 1
fi
sh bench/release-build.sh "$BUILD" src/cli/marmot bench/bench-smtp-load
dir=
case " $* " in
*" -d "* | *" --dir "*) ;;
*) dir="--dir $BUILD" ;;
esac
exec /usr/bin/python3 bench/smtp/bench-smtp.py \
	--marmot "$BUILD/src/cli/marmot" --load "$BUILD/bench/bench-smtp-load" \
	--report "$BUILD/bench-smtp-report.md" $dir "$@"
