#!/usr/bin/env bash
# make-seeds.sh - (re)make the generated seeds of tests/fuzz/seeds: tar
# layers, an ELF library and ld.so caches.  The text seeds are kept as
# written.  Run from anywhere; needs tar, gzip, gcc and ldconfig.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
s=$here/seeds
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
tarc() { tar --format=gnu --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$1" -cf - "${@:2}"; }

# unpack: plain, gzip, whiteouts, links, modes
mkdir -p "$s/unpack" && cd "$tmp" && mkdir l1 l2 l3
mkdir -p l1/etc l1/usr/bin l1/a/target && echo hi >l1/etc/hosts && echo x >l1/usr/bin/tool
chmod 755 l1/usr/bin/tool && chmod 777 l1/a/target && ln -s ../etc/hosts l1/usr/hosts-link
ln -s /etc l1/abs-link && ln l1/etc/hosts l1/etc/hosts-hard
tarc l1 etc usr a abs-link >"$s/unpack/layers.tar"
tarc l1 etc usr >l1.tar && gzip -9n <l1.tar >"$s/unpack/layer.tar.gz"
mkdir -p l2/etc && touch l2/etc/.wh.hosts l2/.wh.usr l2/etc/.wh..wh..opq
tarc l2 . >l2.tar
{ cat l1.tar; printf '\n----\n'; cat l2.tar; } >"$s/unpack/two-layers-whiteouts"
ln -s target l3/link && mkdir l3/dir && echo y >l3/dir/f && chmod 4755 l3/dir/f
tarc l3 link dir >"$s/unpack/symlink-and-setuid.tar"

# elf: a small shared library with a soname, a runpath and a dependency
mkdir -p "$s/elf"
printf 'int f(void); int f(void) { return 1; }\n' >lib.c
gcc -shared -fPIC -s -o "$s/elf/libsmall.so" -Wl,-soname,libsmall.so.1 -Wl,-rpath,'$ORIGIN/../lib' -Wl,-z,nodeflib -lm lib.c
gcc -m32 -shared -fPIC -s -o "$s/elf/libsmall32.so" lib.c 2>/dev/null || true

# ldcache: a cache of a handful of libraries
mkdir -p "$s/ldcache" libs
cp "$s/elf/libsmall.so" libs/libsmall.so.1
for l in libz.so.1 libm.so.6; do cp -L "/usr/lib/$(gcc -print-multiarch)/$l" libs/ 2>/dev/null || true; done
printf '%s\n' "$tmp/libs" >ld.so.conf
ldconfig -X -C "$s/ldcache/small.cache" -f ld.so.conf -r / 2>/dev/null ||
	ldconfig -X -C "$s/ldcache/small.cache" -f "$tmp/ld.so.conf"
