#!/bin/bash
# Installs the build dependencies, builds Marmot with ASan+UBSan in
# build-test/ and runs the whole test suite (unit tests, fuzz corpus
# replays, integration tests). The last line printed is our own count,
# exactly "N passed, M failed" (see scripts/test-summary.py); the exit code
# is non-zero if anything failed or nothing ran.
set -uo pipefail
cd "$(dirname "$0")/.."

BUILD=build-test

fail() {
	echo "test.sh: $*" >&2
	echo "0 passed, 1 failed"
	exit 1
}

if [ "$(id -u)" -eq 0 ]; then
	bash scripts/install-deps.sh </dev/null || fail "installing dependencies failed"
else
	echo "test.sh: not root, not installing packages (the integration tests that need root will be skipped)" >&2
fi

if [ -d "$BUILD" ] && [ -f "$BUILD/build.ninja" ]; then
	meson setup --reconfigure "$BUILD" -Db_sanitize=address,undefined \
		|| fail "meson setup --reconfigure $BUILD failed"
else
	rm -rf "$BUILD"
	meson setup "$BUILD" -Db_sanitize=address,undefined \
		|| fail "meson setup $BUILD failed"
fi
ninja -C "$BUILD" || fail "the build failed (ninja -C $BUILD)"

# The release configuration (-O3, FORTIFY) sees warnings the sanitizer
# build does not (maybe-uninitialized, unused results); it must build
# cleanly too, since scripts/demo.sh uses it.
if [ -f build-release/build.ninja ]; then
	meson setup --reconfigure build-release --buildtype=release >/dev/null \
		|| fail "meson setup build-release failed"
else
	meson setup build-release --buildtype=release >/dev/null \
		|| fail "meson setup build-release failed"
fi
ninja -C build-release || fail "the release build failed (ninja -C build-release)"

rm -f "$BUILD/meson-logs/testlog.json"
meson test -C "$BUILD" --print-errorlogs --num-processes 2 </dev/null
meson_rc=$?
echo "test.sh: meson test exited with $meson_rc; counting individual results"

if [ ! -s "$BUILD/meson-logs/testlog.json" ]; then
	fail "meson wrote no $BUILD/meson-logs/testlog.json"
fi
/usr/bin/python3 scripts/test-summary.py "$BUILD/meson-logs/testlog.json"
