/*
 * runners-common-src.c - the helpers of plugins/runner-common that
 * check_runner_pytest tests directly (the XML reader and what it needs),
 * compiled into the test program through this file, so that their objects
 * never mix with the plugins' in plugins/runner-common/.
 */
#include "../../plugins/runner-common/text.c"
#include "../../plugins/runner-common/options.c"
#include "../../plugins/runner-common/xml.c"
