#!/bin/sh
# coral .deb: on an upgrade from the single coral package of before the
# split (the one that had the window: it owns the menu entry), say where the
# window went; upgraded alone, coral runs headless.
set -e
if [ "$1" = upgrade ] &&
	dpkg-query -S /usr/share/applications/net.coralcdn.coral.desktop 2>/dev/null | grep -q '^coral:'; then
	echo "coral: this coral runs headless, without the window; the window is now in the coral-desktop package: sudo apt install coral-desktop"
fi
exit 0
