#!/bin/sh
# $BROWSER for the tests: the real headless Chromium, driven through the provider's pages (browser.mjs).
exec node "$(dirname "$0")/browser.mjs" "$1"
