/* backends/health.c — placeholder until the health module lands. */
#include "backends/health.h"
int health_start(void) { return 0; }
void health_stop(void) { }
