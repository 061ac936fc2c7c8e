#!/bin/bash
# Checks that every C file under src/ and tests/ is formatted as
# .clang-format says (clang-format 14, Debian's). Prints TAP: one line per
# file, so a failure names the file; run `clang-format -i FILE` to fix it.
cd "$(dirname "$0")/.." || exit 1
if ! command -v clang-format >/dev/null 2>&1; then
	echo "1..0 # SKIP clang-format is not installed"
	exit 0
fi
mapfile -t files < <(git ls-files 'src/*.c' 'src/*.h' 'tests/*.c' 2>/dev/null ||
	find src tests -name '*.[ch]' | sort)
echo "1..${#files[@]}"
rc=0
n=0
for f in "${files[@]}"; do
	n=$((n + 1))
	out=$(clang-format --dry-run "$f" 2>&1 | grep -c 'warning:')
	if [ "$out" -eq 0 ]; then
		echo "ok $n - $f"
	else
		echo "not ok $n - $f: $out lines differ from clang-format"
		rc=1
	fi
done
exit $rc
