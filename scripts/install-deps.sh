#!/bin/bash
# Installs the Debian 12 packages Marmot needs to build, test and run, and
# creates the system user the roles drop to. Idempotent: when everything is
# already installed it does not touch apt at all. Must run as root.
# --demo (scripts/demo.sh) leaves out the peers only the tests and
# benchmarks run (nsd, Postfix, Dovecot).
set -euo pipefail

PACKAGES=(
	build-essential meson ninja-build pkg-config
	libssl-dev libsodium-dev libsqlite3-dev libcmocka-dev libidn2-dev zlib1g-dev
	libzstd-dev libicu-dev libunbound-dev
	openssl ca-certificates python3 swaks libnet-ssleay-perl sqlite3 procps iproute2
	clang-14 libclang-rt-14-dev clang-format curl git
	libgmime-3.0-dev libcurl4-openssl-dev libpsl-dev publicsuffix libjansson-dev
	libexpat1-dev zlib1g-dev dns-root-data
)
# Test peers: tests/integration/dnsserver.py (nsd, ldns-signzone),
# postfix_mx.py and bench/smtp (Postfix, Dovecot), dovecot.py (the IMAP
# reference of test_imap_dovecot.py and bench/imap), all run as private
# instances; test_pop3.py and test_imap_clients.py drive mutt, mbsync
# (isync) and fetchmail (and curl, above) against Marmot.
PEERS=(nsd ldnsutils postfix dovecot-core dovecot-lmtpd dovecot-imapd
	python3-dkim python3-spf python3-dnspython mutt isync fetchmail)
if [ "${1:-}" != "--demo" ]; then
	PACKAGES+=("${PEERS[@]}")
fi

if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps.sh: must run as root (it installs packages with apt-get and creates the 'marmot' user); try: sudo $0" >&2
	exit 1
fi

missing=()
for pkg in "${PACKAGES[@]}"; do
	status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$pkg" 2>/dev/null || true)
	case "$status" in
	ii*) ;;
	*) missing+=("$pkg") ;;
	esac
done

if [ "${#missing[@]}" -eq 0 ]; then
	echo "install-deps.sh: all ${#PACKAGES[@]} packages already installed"
else
	echo "install-deps.sh: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	# Postfix and Dovecot are only peers for the tests
	# (tests/integration/postfix_mx.py) and bench/smtp, which start
	# private instances: no system mail service is configured.
	echo "postfix postfix/main_mailer_type select No configuration" |
		debconf-set-selections
	apt-get update
	apt-get install -y --no-install-recommends "${PACKAGES[@]}" </dev/null
	# Where the install started the system Postfix, Dovecot or nsd (ports
	# 25, 143, 53, ...), stop and disable them: nothing here uses them.
	for svc in postfix dovecot nsd; do
		if [ -d /run/systemd/system ]; then
			systemctl disable --now "$svc" >/dev/null 2>&1 || true
		elif [ -x "/etc/init.d/$svc" ]; then
			"/etc/init.d/$svc" stop >/dev/null 2>&1 || true
		fi
	done
fi

if ! id -u marmot >/dev/null 2>&1; then
	echo "install-deps.sh: creating system user 'marmot'"
	useradd --system --home-dir /var/lib/marmot --shell /usr/sbin/nologin marmot
fi
