#!/bin/sh
# coral .deb: stop the service before its binary goes.
set -e
if [ -d /run/systemd/system ] && [ "$1" = remove ]; then
	systemctl disable --now coral.service >/dev/null 2>&1 || true
fi
exit 0
