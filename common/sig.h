/* Signal handling that only sets a flag; main loops poll lm_interrupted. */
#ifndef LM_SIG_H
#define LM_SIG_H

#include <signal.h>

extern volatile sig_atomic_t lm_interrupted;   /* SIGINT or SIGTERM seen */
extern volatile sig_atomic_t lm_signal_number; /* which one */

/* Install handlers for SIGINT, SIGTERM, SIGHUP; ignore SIGPIPE (writes
 * then fail with EPIPE, which the writer reports). */
void lm_signals_init(void);

#endif
