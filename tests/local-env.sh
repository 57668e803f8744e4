# Sourced by the end-to-end scripts that run the `local` provider from the
# build tree: the build's plugins, and the function program itself rather
# than libtool's wrapper script (with the build's library beside it).
# Needs top_build set.
export HYPERTEST_PLUGIN_PATH="$top_build/plugins/.libs"
if [ -x "$top_build/cli/.libs/hypertest-function" ]; then
	export HYPERTEST_FUNCTION_PROGRAM="$top_build/cli/.libs/hypertest-function"
	export LD_LIBRARY_PATH="$top_build/libhypertest/.libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
else
	export HYPERTEST_FUNCTION_PROGRAM="$top_build/cli/hypertest-function"
fi
