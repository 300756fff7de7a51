/* backends/sentinel.h — placeholder until the sentinel module lands. */
#ifndef REDSNANO_BACKENDS_SENTINEL_H
#define REDSNANO_BACKENDS_SENTINEL_H
int sentinel_start(void);
void sentinel_stop(void);
#endif
