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
