#!/bin/sh
# coral .deb: create the service user and its state directory.
set -e
case "$1" in
configure|"")
	if ! getent passwd coral >/dev/null; then
		useradd --system --user-group --home-dir /var/lib/coral --no-create-home \
			--shell /usr/sbin/nologin --comment "Coral CDN node" coral
	fi
	# systemd creates it too (StateDirectory); `coral serve` run by hand needs it now.
	install -d -o coral -g coral -m 0700 /var/lib/coral
	if [ -d /run/systemd/system ]; then
		systemctl daemon-reload >/dev/null || true
	fi
	echo "coral: installed. Review /etc/coral/coral.toml, then: sudo systemctl enable --now coral"
	;;
esac
exit 0
