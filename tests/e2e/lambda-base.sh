# Sourced by the scripts that run a busybox root in a sandbox of bubblewrap
# (after preamble.sh, with $tmp set): skips (77) where the sandbox cannot
# run, then builds $tmp/base, an OCI layout of a base image whose root is
# nothing but a static busybox (as bin/busybox and bin/sh), for $arch (the
# machine's); $other is the other architecture.  The sandbox needs a user
# namespace (isolation "lambda": --uid) unless the script sets
# base_userns=no first (isolation "image").
for tool in python3 bwrap; do
	command -v "$tool" >/dev/null 2>&1 || { echo "$tool not found: skipped"; exit 77; }
done
busybox=/bin/busybox
# static: an ELF file without a PT_INTERP program header
file_is_static() { python3 - "$1" <<'PY'
import struct, sys
d = open(sys.argv[1], "rb").read()
assert d[:4] == b"\x7fELF" and d[4] == 2 and d[5] == 1  # 64-bit little-endian
phoff, = struct.unpack_from("<Q", d, 32)
phentsize, phnum = struct.unpack_from("<HH", d, 54)
types = [struct.unpack_from("<I", d, phoff + i * phentsize)[0] for i in range(phnum)]
sys.exit(1 if 3 in types else 0)
PY
}
[ -x "$busybox" ] && file_is_static "$busybox" ||
	{ echo "no static busybox (Debian package busybox-static): skipped"; exit 77; }
if [ "${base_userns:-yes}" = no ]; then
	# bubblewrap must be able to make namespaces here
	bwrap --ro-bind / / true 2>/dev/null || { echo "bwrap cannot run here: skipped"; exit 77; }
else
	# bubblewrap must be able to make user namespaces here (--uid needs one)
	bwrap --unshare-user --uid 993 --ro-bind / / true 2>/dev/null ||
		{ echo "bwrap cannot create a user namespace here: skipped"; exit 77; }
fi

case $(uname -m) in
x86_64) arch=amd64 other=arm64 ;;
aarch64) arch=arm64 other=amd64 ;;
*) echo "no architecture name for $(uname -m): skipped"; exit 77 ;;
esac

mkdir -p "$tmp/root/bin"
cp "$busybox" "$tmp/root/bin/busybox" && cp "$busybox" "$tmp/root/bin/sh" || fail "copy busybox"
python3 "$tests_src/projects/runtime/make-layout.py" "$tmp/root" "$tmp/base" "$arch" || fail "base layout"
