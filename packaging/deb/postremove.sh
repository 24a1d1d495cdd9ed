#!/bin/sh
# coral .deb: "remove" keeps the cache, keys and config; "purge" removes
# them and the service user.
set -e
case "$1" in
purge)
	rm -rf /var/lib/coral /etc/coral
	if getent passwd coral >/dev/null; then
		userdel coral >/dev/null 2>&1 || true
	fi
	if getent group coral >/dev/null; then
		groupdel coral >/dev/null 2>&1 || true
	fi
	;;
esac
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null || true
fi
exit 0
