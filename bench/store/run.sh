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
sh bench/release-build.sh "$BUILD" bench/bench-store
case " $* " in
*" -d "*) exec "$BUILD/bench/bench-store" "$@" ;;
*) exec "$BUILD/bench/bench-store" -d "$BUILD" "$@" ;;
esac
