/* backends/health.h — placeholder until the health module lands. */
#ifndef REDSNANO_BACKENDS_HEALTH_H
#define REDSNANO_BACKENDS_HEALTH_H
int health_start(void);
void health_stop(void);
#endif
