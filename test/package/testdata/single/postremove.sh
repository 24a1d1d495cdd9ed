#!/bin/sh
# coral .deb: "remove" keeps the cache, keys and config; "purge" removes
# them and the service user -- only Coral's own system account: a person's
# login that happens to be named coral (which postinst refused to use) stays.
set -e
case "$1" in
purge)
	rm -rf /var/lib/coral /etc/coral
	if entry=$(getent passwd coral); then
		uid=$(echo "$entry" | cut -d: -f3)
		home=$(echo "$entry" | cut -d: -f6)
		sys_max=$(awk '$1 == "SYS_UID_MAX" { print $2 }' /etc/login.defs 2>/dev/null)
		if [ "$uid" -le "${sys_max:-999}" ] && [ "$home" = /var/lib/coral ]; then
			userdel coral >/dev/null 2>&1 || true
			if getent group coral >/dev/null; then
				groupdel coral >/dev/null 2>&1 || true
			fi
		fi
	fi
	;;
esac
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null || true
fi
exit 0
