// Package desktop tests what a volunteer sees, with real parts: a real
// `coral` process, its real window on an X server (Xvfb) read back by
// screen capture and OCR (xwd, tesseract), the status page rendered by
// headless Chromium, and `coral` started where no display works. The tools
// come from packaging/install-deps.sh; a missing one fails the test with
// the package to install. CORAL_SHOTS=dir keeps the screenshots (`make
// screenshots` puts them in the README's assets).
package desktop
