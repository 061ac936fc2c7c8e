#!/bin/sh
# bench/release-build.sh BUILD TARGET... - sets up (or reconfigures) the
# release tree BUILD with -Dbench=true and builds the ninja targets named,
# for the bench/*/run.sh scripts. -Dwerror=false: a new compiler's warning
# must not stop a measurement.
set -eu
BUILD=$1
shift
if [ -f "$BUILD/build.ninja" ]; then
	meson setup --reconfigure "$BUILD" --buildtype=release -Dbench=true \
		-Dtests=disabled -Dwerror=false >/dev/null
else
	meson setup "$BUILD" --buildtype=release -Dbench=true \
		-Dtests=disabled -Dwerror=false >/dev/null
fi
ninja -C "$BUILD" "$@" >/dev/null
