#!/bin/sh
# bench/imap/run.sh - builds a release marmot and runs the IMAP benchmark
# of issue 6 (bench/README.md, bench/imap/README.md): Marmot vs a private
# Debian Dovecot over IMAPS on loopback with the same generated messages:
# login + SELECT + FETCH 1:* (FLAGS ENVELOPE), SEARCH TEXT, UID FETCH 1:*
# BODY[] throughput and PSS per IDLE connection. Arguments go to
# bench/imap/bench-imap.py, e.g.
#   bench/imap/run.sh                              # 10,000 messages, 1,000 IDLE
#   bench/imap/run.sh --messages 2000 --idle 200   # quicker
# BUILD (default build-bench) names the build directory; the report is
# written to $BUILD/bench-imap-report.md (+ .json) and printed.
# Runs as root (marmot init --user marmot; Dovecot's login and mail users
# are dovenull and dovecot) or as a normal user; needs dovecot-imapd
# (scripts/install-deps.sh installs it).
set -eu
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build-bench}
if [ ! -x /usr/sbin/dovecot ] || [ ! -x /usr/lib/dovecot/imap ]; then
	echo "run.sh: Dovecot (dovecot-imapd) not found: run scripts/install-deps.sh" >&2
	exit 1
fi
sh bench/release-build.sh "$BUILD" src/cli/marmot
/usr/bin/python3 bench/imap/bench-imap.py --marmot "$BUILD/src/cli/marmot" \
	--json "$BUILD/bench-imap-report.json" "$@" >"$BUILD/bench-imap-report.md"
cat "$BUILD/bench-imap-report.md"
