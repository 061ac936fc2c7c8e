#!/bin/sh
# bench/store/run.sh - builds a release tree with -Dbench=true and runs the
# store benchmark (bench/README.md). Arguments go to bench-store:
#   bench/store/run.sh [-n MESSAGES] [-q QUERIES] [-d DIR] [-s SEED]
# BUILD (default build-bench) names the build directory. DIR (default: the
# build directory) should be on the disk the store will live on: every
# blob and commit is fsynced, so the file system matters.
set -eu
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build-bench}
# -Dwerror=false: a new compiler's warning must not stop a measurement.
if [ -f "$BUILD/build.ninja" ]; then
	meson setup --reconfigure "$BUILD" --buildtype=release -Dbench=true \
		-Dtests=disabled -Dwerror=false >/dev/null
else
	meson setup "$BUILD" --buildtype=release -Dbench=true \
		-Dtests=disabled -Dwerror=false >/dev/null
fi
ninja -C "$BUILD" bench/bench-store >/dev/null
case " $* " in
*" -d "*) exec "$BUILD/bench/bench-store" "$@" ;;
*) exec "$BUILD/bench/bench-store" -d "$BUILD" "$@" ;;
esac
