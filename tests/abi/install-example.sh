#!/bin/sh
# make install into a temporary root, then build examples/plugin against the
# installed headers alone (pkg-config) and load it through the installed
# `hypertest plugins`.
set -u
top_build=${HT_TOP_BUILDDIR:?}
top_src=${HT_TOP_SRCDIR:?}
tmp=$(mktemp -d /tmp/ht-install-XXXXXX) || exit 1
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

command -v pkg-config >/dev/null 2>&1 || { echo "pkg-config not found"; exit 77; }
make -C "$top_build" install DESTDIR="$tmp/root" >"$tmp/install.log" 2>&1 ||
	{ tail -30 "$tmp/install.log"; fail "make install"; }
prefix=$(sed -n 's/^prefix=//p' "$top_build/pkgconfig/hypertest.pc")
libdir=$(sed -n 's/^libdir=//p' "$top_build/pkgconfig/hypertest.pc" | sed "s|\${exec_prefix}|$prefix|")
root=$tmp/root

for f in "$prefix/include/hypertest/hypertest.h" "$prefix/include/hypertest/plugin.h" \
	"$prefix/include/hypertest/common.h" "$libdir/pkgconfig/hypertest.pc" \
	"$prefix/bin/hypertest" "$prefix/bin/hypertest-function" \
	"$libdir/hypertest/plugins/provider-local.so" "$libdir/hypertest/plugins/runner-command.so" \
	"$prefix/share/man/man1/hypertest.1" "$prefix/share/man/man3/libhypertest.3" \
	"$prefix/share/man/man5/hypertest.config.5" "$prefix/share/man/man7/hypertest-plugin.7" \
	"$prefix/share/hypertest/hypertest-events.schema.json"; do
	[ -e "$root$f" ] || fail "not installed: $f"
done
ls "$root$libdir"/libhypertest.so* >/dev/null 2>&1 || fail "libhypertest.so not installed"

# Build the example with nothing but the installed headers.
cp -R "$top_src/examples/plugin" "$tmp/plugin"
chmod -R u+w "$tmp/plugin"
rm -f "$tmp/plugin/provider-dryrun.so"
PKG_CONFIG_PATH="$root$libdir/pkgconfig" PKG_CONFIG_SYSROOT_DIR="$root" \
	make -C "$tmp/plugin" >"$tmp/build.log" 2>&1 || { cat "$tmp/build.log"; fail "example build"; }
grep -q -- "-I$root$prefix/include" "$tmp/build.log" || { cat "$tmp/build.log"; fail "the example did not use the installed headers"; }
mkdir "$tmp/plugins"
cp "$tmp/plugin/provider-dryrun.so" "$tmp/plugins/"

LD_LIBRARY_PATH="$root$libdir" HYPERTEST_PLUGIN_PATH="$tmp/plugins" \
	"$root$prefix/bin/hypertest" plugins >"$tmp/plugins.out" 2>&1 || { cat "$tmp/plugins.out"; fail "hypertest plugins"; }
cat "$tmp/plugins.out"
grep "dryrun" "$tmp/plugins.out" | grep -q "loaded" || fail "the example plugin was not loaded"
grep -q "$tmp/plugins/provider-dryrun.so" "$tmp/plugins.out" || fail "its path is not shown"
echo "ok"
exit 0
