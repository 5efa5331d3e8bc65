/* Ctrl-C inside a long kernel call.
 *
 * CPython's SIGINT handler only sets a flag that the interpreter reads between
 * bytecodes, so a kernel running without the GIL would otherwise finish its
 * whole call first.  Each kernel module chains a C handler in front of the one
 * in place at import (CPython's): it counts the signal and passes it on.  The
 * kernels look at the count between windows of time steps and stop early; the
 * Python wrapper then raises KeyboardInterrupt.  A later signal.signal(SIGINT,
 * ...) replaces the chain, which only turns the early stop off.
 *
 * The count is static: one per extension module, each with its own handler in
 * the chain, so no state is shared between modules.
 */
#ifndef RNNFAST_INTERRUPT_H
#define RNNFAST_INTERRUPT_H

#if defined(_WIN32)
/* No sigaction on Windows: there a kernel call runs to its end and Ctrl-C is seen after it. */
static inline int rnnfast_install_sigint(void) { return 0; }
static inline long rnnfast_interrupt_mark(void) { return 0; }
static inline int rnnfast_interrupted_since(long mark) { (void)mark; return 0; }
#else

#include <signal.h>
#include <string.h>

static volatile sig_atomic_t rnnfast_sigint_count = 0;
static struct sigaction rnnfast_prev_sigint;
static int rnnfast_sigint_installed = 0;

static void rnnfast_on_sigint(int sig, siginfo_t *info, void *context) {
    rnnfast_sigint_count = rnnfast_sigint_count + 1;
    if (rnnfast_prev_sigint.sa_flags & SA_SIGINFO) {
        if (rnnfast_prev_sigint.sa_sigaction) rnnfast_prev_sigint.sa_sigaction(sig, info, context);
    } else if (rnnfast_prev_sigint.sa_handler == SIG_DFL) {
        /* The default action (terminate): restore it and deliver the signal again. */
        sigaction(SIGINT, &rnnfast_prev_sigint, NULL);
        raise(sig);
    } else if (rnnfast_prev_sigint.sa_handler != SIG_IGN) {
        rnnfast_prev_sigint.sa_handler(sig);
    }
}

static inline int rnnfast_install_sigint(void) {
    struct sigaction ours;
    if (rnnfast_sigint_installed) return 0;
    if (sigaction(SIGINT, NULL, &rnnfast_prev_sigint) != 0) return -1;
    if (!(rnnfast_prev_sigint.sa_flags & SA_SIGINFO) && rnnfast_prev_sigint.sa_handler == SIG_IGN)
        return 0;  /* SIGINT ignored: nothing to count */
    memset(&ours, 0, sizeof ours);
    ours.sa_sigaction = rnnfast_on_sigint;
    ours.sa_flags = SA_SIGINFO | SA_ONSTACK | (rnnfast_prev_sigint.sa_flags & SA_RESTART);
    sigemptyset(&ours.sa_mask);
    if (sigaction(SIGINT, &ours, NULL) != 0) return -1;
    rnnfast_sigint_installed = 1;
    return 1;
}

static inline long rnnfast_interrupt_mark(void) { return (long)rnnfast_sigint_count; }
static inline int rnnfast_interrupted_since(long mark) { return (long)rnnfast_sigint_count != mark; }

#endif /* _WIN32 */
#endif
