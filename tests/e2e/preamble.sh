# Sourced by the end-to-end scripts that run hypertest from the build tree:
# the build's plugins and its function program (a program of its own, no
# libtool wrapper: it links the core's archive, not libhypertest.so).
# Needs top_build set.
export HYPERTEST_PLUGIN_PATH="$top_build/plugins/.libs"
export HYPERTEST_FUNCTION_PROGRAM="$top_build/cli/hypertest-function"
