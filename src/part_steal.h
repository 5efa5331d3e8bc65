/* The parts of an all-step product that a team's threads may take over from each other (``all_steps.pxd``,
 * ``_packed_gemm``).
 *
 * Each thread starts on its own part of C (rows i0:end, panels p0:p1) and runs it k-block after k-block, claiming
 * its rows group by group under its part's lock.  A thread that has finished takes the far end of the part with the
 * most work left: rows x:end from the owner's current k-block on, rows the owner has not claimed in that k-block.
 * Every C element is still summed by one thread, k-block after k-block in order, so the bits do not depend on who
 * runs it.  On a machine whose cores run at different speeds (a busy neighbour on one core's SMT sibling), the
 * static cut waits for the slowest core; here the fast cores take over its rows.
 *
 * Without OpenMP (or in a team OpenMP gives one thread) the parts run one after the other: the first, done, may take
 * over rows of a part that has not started, and never waits for one.  The locks are then no-ops.
 */
#ifndef RNNFAST_PART_STEAL_H
#define RNNFAST_PART_STEAL_H

#include <stddef.h>
#include <stdlib.h>

#ifdef _OPENMP
#include <omp.h>
typedef omp_lock_t rnnfast_part_lock;
#define RNNFAST_LOCK_INIT(l) omp_init_lock(l)
#define RNNFAST_LOCK_DESTROY(l) omp_destroy_lock(l)
#define RNNFAST_LOCK(l) omp_set_lock(l)
#define RNNFAST_UNLOCK(l) omp_unset_lock(l)
#else
typedef int rnnfast_part_lock;
#define RNNFAST_LOCK_INIT(l) ((void)(l))
#define RNNFAST_LOCK_DESTROY(l) ((void)(l))
#define RNNFAST_LOCK(l) ((void)(l))
#define RNNFAST_UNLOCK(l) ((void)(l))
#endif

typedef struct {
    rnnfast_part_lock lock;
    ptrdiff_t i0;   /* the part's first row: its rows i0:end run every k-block from k0 on */
    ptrdiff_t next; /* the first row not yet claimed in k-block k0 */
    ptrdiff_t end;  /* one past the part's last row; a thread taking rows over lowers it */
    ptrdiff_t p0, p1;
    ptrdiff_t k0;   /* the depth of the k-block its owner is in */
    int active;     /* its owner has not finished it */
    int started;    /* its owner has claimed rows of it: it is running, so a thread may wait for it to move on */
} rnnfast_part_state;

static inline rnnfast_part_state *rnnfast_part_states_new(int n)
{
    rnnfast_part_state *s = (rnnfast_part_state *)calloc((size_t)(n > 0 ? n : 1), sizeof(rnnfast_part_state));
    int i;
    if (s != NULL)
        for (i = 0; i < n; i++)
            RNNFAST_LOCK_INIT(&s[i].lock);
    return s;
}

static inline void rnnfast_part_states_free(rnnfast_part_state *s, int n)
{
    int i;
    if (s == NULL)
        return;
    for (i = 0; i < n; i++)
        RNNFAST_LOCK_DESTROY(&s[i].lock);
    free(s);
}

static inline void rnnfast_part_lock_set(rnnfast_part_state *s) { RNNFAST_LOCK(&s->lock); }
static inline void rnnfast_part_lock_unset(rnnfast_part_state *s) { RNNFAST_UNLOCK(&s->lock); }

/* A pause in a thief's wait for an owner to move on to its next k-block. */
static inline void rnnfast_spin_pause(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* For tests (each compiled module keeps its own): thread ``rnnfast_late_thread`` of every product's team starts
 * late, so that the others take its rows over; and the rows taken over so far. */
static int rnnfast_late_thread = -1;
static double rnnfast_late_seconds = 0;
static long rnnfast_rows_taken = 0;

/* The late thread (tests) waits, at most ``rnnfast_late_seconds``, until another thread has taken rows of its part
 * ``s[tid]`` over, or no other part is running: on a slow build (sanitizers) a fixed delay could end before the
 * others finish, and then nothing is left worth taking.  Never in a team of one thread (its parts run in turn). */
static inline void rnnfast_start_late(int tid, rnnfast_part_state *s, int n)
{
#ifdef _OPENMP
    double t0;
    ptrdiff_t end0 = 0;
    int i, running, taken;
    if (tid != rnnfast_late_thread || rnnfast_late_seconds <= 0 || omp_get_num_threads() < 2)
        return;
    if (s != NULL) {
        RNNFAST_LOCK(&s[tid].lock);
        end0 = s[tid].end;
        RNNFAST_UNLOCK(&s[tid].lock);
    }
    t0 = omp_get_wtime();
    while (omp_get_wtime() - t0 < rnnfast_late_seconds) {
        if (s != NULL) {
            RNNFAST_LOCK(&s[tid].lock);
            taken = s[tid].end < end0;
            RNNFAST_UNLOCK(&s[tid].lock);
            running = 0;
            for (i = 0; i < n; i++) {
                if (i == tid)
                    continue;
                RNNFAST_LOCK(&s[i].lock);
                running |= s[i].active;
                RNNFAST_UNLOCK(&s[i].lock);
            }
            if (taken || !running)
                return;
        }
        rnnfast_spin_pause();
    }
#else
    (void)tid;
    (void)s;
    (void)n;
#endif
}

static inline void rnnfast_count_taken(ptrdiff_t rows)
{
#ifdef _OPENMP
#pragma omp atomic
#endif
    rnnfast_rows_taken += (long)rows;
}

/* Sets the late thread (-1: none) and its delay; returns the rows taken over since the last call, and restarts
 * the count. */
static inline long rnnfast_take_over_probe(int late_thread, double seconds)
{
    long taken = rnnfast_rows_taken;
    rnnfast_rows_taken = 0;
    rnnfast_late_thread = late_thread;
    rnnfast_late_seconds = seconds;
    return taken;
}

#endif
