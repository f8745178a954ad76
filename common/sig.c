#include <string.h>

#include "sig.h"

volatile sig_atomic_t lm_interrupted = 0;
volatile sig_atomic_t lm_signal_number = 0;

static void on_signal(int sig)
{
    lm_interrupted = 1;
    lm_signal_number = sig;
}

void lm_signals_init(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    /* no SA_RESTART: blocking calls return EINTR so loops notice at once */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}
