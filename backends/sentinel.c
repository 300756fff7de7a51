/* backends/sentinel.c — placeholder until the sentinel module lands. */
#include "backends/sentinel.h"
int sentinel_start(void) { return 0; }
void sentinel_stop(void) { }
