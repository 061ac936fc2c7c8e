#!/bin/bash
# Starts a working Marmot demo on this machine: installs the dependencies,
# makes a release build in build-release/, creates demo-data/ (once: domain
# demo.test, host mail.demo.test, one user with a random password, all on
# 127.0.0.1 with ports 10000 + the standard port) and (re)starts the server
# in the background. Run it again to rebuild and restart; demo-data/ is
# reused, never overwritten. Must run as root (it installs packages).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)

BUILD=build-release
BIN="$REPO/$BUILD/src/cli/marmot"
DATA=demo-data
HOST=mail.demo.test
DOMAIN=demo.test
USER_ADDR="demo@$DOMAIN"
BASE=10000
CRED="$DATA/demo-credentials.txt"

die() {
	echo "demo.sh: $*" >&2
	exit 1
}

[ "$(id -u)" -eq 0 ] || die "must run as root (it installs packages and the server drops root to the 'marmot' user); try: sudo $0"

bash scripts/install-deps.sh --demo </dev/null

# Warnings are errors here too; scripts/test.sh compiles this same release
# configuration so that optimiser-only warnings are caught in CI first.
if [ -f "$BUILD/build.ninja" ]; then
	meson setup --reconfigure "$BUILD" --buildtype=release >/dev/null
else
	meson setup "$BUILD" --buildtype=release
fi
ninja -C "$BUILD"

# --- stop a demo that is already running -----------------------------------
demo_pid() {
	local pid
	[ -f "$DATA/marmot.pid" ] || return 1
	pid=$(cat "$DATA/marmot.pid" 2>/dev/null) || return 1
	case "$pid" in '' | *[!0-9]*) return 1 ;; esac
	# Only a live "marmot run" of this data dir counts (pids get reused).
	tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- 'run --data' || return 1
	echo "$pid"
}

if pid=$(demo_pid); then
	echo "demo.sh: stopping the running demo (pid $pid) to restart it"
	kill -TERM "$pid" 2>/dev/null || true
	for _ in $(seq 1 100); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		echo "demo.sh: pid $pid did not stop within 10 s; killing it"
		kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
		sleep 0.5
	fi
fi

# --- create the data dir (once) --------------------------------------------
if [ -e "$DATA" ]; then
	echo "demo.sh: reusing the existing $DATA/ (delete it to start afresh)"
else
	# The roles run as 'marmot' and must reach the data dir. A checkout
	# under a directory others cannot search (like /root, mode 0700) gets
	# its data in /var/lib/marmot, with demo-data a symlink to it.
	if ! runuser -u marmot -- test -x "$REPO" 2>/dev/null; then
		target=/var/lib/marmot/demo-$(echo "$REPO" | sha256sum | cut -c1-12)
		echo "demo.sh: the marmot user cannot reach $REPO (a parent is not searchable);"
		echo "demo.sh: keeping the demo data in $target, linked as $DATA"
		mkdir -p /var/lib/marmot
		chmod 0755 /var/lib/marmot
		[ ! -e "$target" ] || die "$target exists already; remove it or link $DATA to it yourself"
		ln -s "$target" "$DATA"
		init_data="$target"
	else
		init_data="$DATA"
	fi
	"$BIN" init --data "$init_data" --hostname "$HOST" --domain "$DOMAIN" \
		--listen 127.0.0.1 --port-base "$BASE" --user marmot \
		>"$REPO/.demo-init.out" || { cat "$REPO/.demo-init.out"; rm -f "$REPO/.demo-init.out"; die "marmot init failed"; }
	mv "$REPO/.demo-init.out" "$DATA/init-output.txt"
	# Letters and digits only (no 0/O/1/l/I), so the password is easy to
	# read and never looks like a command-line option.
	password=$(/usr/bin/python3 -c 'import secrets; a="ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789"; print("".join(secrets.choice(a) for _ in range(20)))')
	printf '%s\n' "$password" | "$BIN" user add "$USER_ADDR" --password-stdin --data "$DATA" \
		|| die "marmot user add $USER_ADDR failed"
	(umask 077 && printf 'user %s\npassword %s\n' "$USER_ADDR" "$password" >"$CRED")
	echo "demo.sh: created $DATA/ with user $USER_ADDR"
fi

# --- start ------------------------------------------------------------------
for port in 25 587 465 143 993 110 995 80 443; do
	p=$((BASE + port))
	if ss -Hltn "sport = :$p" 2>/dev/null | grep -q .; then
		die "port $p is in use by another program (ss -ltnp 'sport = :$p'); free it and run again"
	fi
done

setsid nohup "$BIN" run --data "$DATA" >>"$DATA/marmot.log" 2>&1 </dev/null &
pid=$!
# setsid forks when it is a process group leader already (job control);
# then $! is not the server: find it by its command line.
sleep 0.2
if ! tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- 'run --data'; then
	pid=$(pgrep -n -f -- "$BIN run --data $DATA" || true)
	[ -n "$pid" ] || die "marmot run did not start; see $DATA/marmot.log"
fi
echo "$pid" >"$DATA/marmot.pid"

ready=0
for _ in $(seq 1 150); do
	if ! kill -0 "$pid" 2>/dev/null; then
		echo "demo.sh: marmot run exited; the end of $DATA/marmot.log:" >&2
		tail -n 30 "$DATA/marmot.log" >&2
		exit 1
	fi
	if /usr/bin/python3 - "$((BASE + 993))" <<'PY' 2>/dev/null; then
import socket, ssl, sys
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
with socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=2) as s:
    with ctx.wrap_socket(s) as t:
        sys.exit(0 if t.recv(100).startswith(b"* OK") else 1)
PY
		ready=1
		break
	fi
	sleep 0.2
done
if [ "$ready" -ne 1 ]; then
	echo "demo.sh: IMAPS on 127.0.0.1:$((BASE + 993)) did not answer within 30 s; the end of $DATA/marmot.log:" >&2
	tail -n 30 "$DATA/marmot.log" >&2
	exit 1
fi

user_line=$(sed -n 's/^user //p' "$CRED" 2>/dev/null || true)
pass_line=$(sed -n 's/^password //p' "$CRED" 2>/dev/null || true)
user_line=${user_line:-$USER_ADDR}
pass_line=${pass_line:-"(unknown: $CRED is missing; set one with: $BIN user passwd $USER_ADDR --data $DATA)"}

cat <<EOF

Marmot demo is running (pid $pid), data in $DATA/, log in $DATA/marmot.log.

  user:      $user_line
  password:  $pass_line
  (kept in $CRED)

Listening on 127.0.0.1:
  SMTP         $((BASE + 25))   (STARTTLS)
  submission   $((BASE + 587))  (STARTTLS, then AUTH)
  submissions  $((BASE + 465))  (implicit TLS)
  IMAP         $((BASE + 143))  (STARTTLS)
  IMAPS        $((BASE + 993))  (implicit TLS)
  POP3         $((BASE + 110))  (STLS)
  POP3S        $((BASE + 995))  (implicit TLS)
  HTTP         $((BASE + 80))
  HTTPS        $((BASE + 443))  (implicit TLS)

The TLS certificate is self-signed for $HOST ($DATA/tls/cert.pem):
clients will warn about it, or must be told to accept it.

Try it:
  openssl s_client -connect 127.0.0.1:$((BASE + 993))
      then type:  a LOGIN $user_line <password>
  /usr/bin/python3 -c 'import imaplib,ssl; c=ssl.create_default_context(); c.check_hostname=False; c.verify_mode=ssl.CERT_NONE; m=imaplib.IMAP4_SSL("127.0.0.1",$((BASE + 993)),ssl_context=c); print(m.login("$user_line","$pass_line")); m.logout()'
  curl -k https://127.0.0.1:$((BASE + 443))/
  swaks --server 127.0.0.1:$((BASE + 25)) --to $user_line --from someone@example.net
      (inbound MX), or as the user, over submission:
  swaks --server 127.0.0.1:$((BASE + 587)) -tls --auth-user $user_line --auth-password '$pass_line' --to $user_line --from $user_line
      then see it stored:  $BUILD/src/cli/marmot store list $user_line --data $DATA
      and read it over IMAP and POP3:
  curl -k 'imaps://127.0.0.1:$((BASE + 993))/INBOX;UID=1' -u '$user_line:$pass_line'
  curl -k pop3s://127.0.0.1:$((BASE + 995))/1 -u '$user_line:$pass_line'

Thunderbird (manual configuration; accept the certificate when asked):
  incoming  IMAP  server 127.0.0.1  port $((BASE + 993))  SSL/TLS   normal password
  outgoing  SMTP  server 127.0.0.1  port $((BASE + 465))  SSL/TLS   normal password
  username  $user_line

Status:  $BUILD/src/cli/marmot status --data $DATA
Stop:    kill \$(cat $DATA/marmot.pid)
EOF
