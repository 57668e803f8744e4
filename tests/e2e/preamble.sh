# Sourced first by every end-to-end script, as
#   . "$(dirname "$0")/preamble.sh"
# The trees (from the environment make check sets: HT_TOP_BUILDDIR is
# required), the hypertest program, fail(), and the build's plugins and
# function program (a program of its own, no libtool wrapper: it links the
# core's archive, not libhypertest.so) for the hypertest runs.
set -u
top_build=${HT_TOP_BUILDDIR:?}
tests_src=${HT_TESTS_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
tests_build=${HT_TESTS_BUILDDIR:-$top_build/tests}
hypertest="$top_build/cli/hypertest"
fail() { echo "FAIL: $*"; exit 1; }
export HYPERTEST_PLUGIN_PATH="$top_build/plugins/.libs"
export HYPERTEST_FUNCTION_PROGRAM="$top_build/cli/hypertest-function"
# The local provider's default functionDir is in the user's cache: one
# cache per script, emptied when the script starts again, never $HOME's.
export XDG_CACHE_HOME="$tests_build/cache/$(basename "$0" .sh)"
[ -d "$XDG_CACHE_HOME" ] && chmod -R u+rwx "$XDG_CACHE_HOME" 2>/dev/null
rm -rf "$XDG_CACHE_HOME"

# signal_timed OUT SIGNAL WAIT_FILE WAIT_TEXT [LOCK] -- COMMAND...: start
# COMMAND (SIGINT and SIGTERM at their defaults, whoever started us) with
# its output in OUT, wait until WAIT_TEXT comes in what WAIT_FILE gains from
# then on (OUT itself, a log, a file a listener appends to), a second more
# (well inside the call that blocks), send SIGNAL and wait at most 30 s for
# the exit.  LOCK, when given, is a file held locked (flock) meanwhile.
# Prints the exit status and the seconds from the signal to the exit; fails
# saying why when WAIT_TEXT never comes (180 s) or COMMAND hangs.  Needs
# python3 ($py when set).
signal_timed() {
	"${py:-python3}" - "$@" <<'PY'
import fcntl, os, signal, subprocess, sys, time
out, sig, wait_file, wait_text = sys.argv[1:5]
rest = sys.argv[5:]
sep = rest.index("--")
lock, cmd = (rest[0] if sep == 1 else None), rest[sep + 1:]
held = None
if lock:
    held = open(lock, "rb")
    fcntl.flock(held, fcntl.LOCK_EX)
def defaults():
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
def size(path):
    try:
        return os.path.getsize(path)
    except OSError:
        return 0
def came(path, start, text):
    try:
        with open(path, "rb") as f:
            f.seek(start)
            return text.encode() in f.read()
    except OSError:
        return False
with open(out, "wb") as f:
    start = size(wait_file)
    p = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, preexec_fn=defaults)
deadline = time.time() + 180
while time.time() < deadline and p.poll() is None:
    if came(wait_file, start, wait_text):
        break
    time.sleep(0.05)
else:
    p.kill()
    sys.exit("never saw %r in %s (exit %s)" % (wait_text, wait_file, p.poll()))
time.sleep(1.0)
t0 = time.time()
p.send_signal(getattr(signal, sig))
try:
    rc = p.wait(30)
except subprocess.TimeoutExpired:
    p.kill()
    p.wait()
    sys.exit("still running 30 s after %s" % sig)
print(rc, "%.2f" % (time.time() - t0))
PY
}
