#!/bin/sh
# coral .deb: create the service user and its state directory; on an
# upgrade, restart a running service so the new binary serves.
set -e
case "$1" in
configure|"")
	if entry=$(getent passwd coral); then
		# Only a system account of ours: a person's own login named coral
		# must not become a public-facing daemon's user (nor be deleted on
		# purge).
		uid=$(echo "$entry" | cut -d: -f3)
		home=$(echo "$entry" | cut -d: -f6)
		sys_max=$(awk '$1 == "SYS_UID_MAX" { print $2 }' /etc/login.defs 2>/dev/null)
		if [ "$uid" -gt "${sys_max:-999}" ] || [ "$home" != /var/lib/coral ]; then
			echo "coral: a user named coral already exists (uid $uid, home $home) and is not Coral's service account." >&2
			echo "coral: rename or remove that account, then run: sudo dpkg --configure coral" >&2
			exit 1
		fi
	elif getent group coral >/dev/null; then
		useradd --system --gid coral --home-dir /var/lib/coral --no-create-home \
			--shell /usr/sbin/nologin --comment "Coral CDN node" coral
	else
		useradd --system --user-group --home-dir /var/lib/coral --no-create-home \
			--shell /usr/sbin/nologin --comment "Coral CDN node" coral
	fi
	# systemd creates it too (StateDirectory); `coral serve` run by hand needs it now.
	install -d -o coral -g coral -m 0700 /var/lib/coral
	if [ -d /run/systemd/system ]; then
		systemctl daemon-reload >/dev/null || true
		if [ -n "$2" ]; then
			# An upgrade ($2: the version replaced): the old binary would
			# otherwise serve until the next reboot.
			systemctl try-restart coral.service >/dev/null 2>&1 || true
		fi
	fi
	if [ -z "$2" ]; then
		echo "coral: installed. Review /etc/coral/coral.toml, then: sudo systemctl enable --now coral"
	fi
	;;
esac
exit 0
