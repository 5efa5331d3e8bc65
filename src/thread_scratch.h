/* Scratch memory that outlives a call, one block per thread and slot.
 *
 * The all-step products pack their operands into a buffer of about a MiB per thread.  Taken with
 * malloc and given back at every call, it sat at the top of glibc's heap, which glibc trims (hands
 * back to the kernel) once the free top passes its threshold: each call then faulted its pages in
 * and zeroed them again, and dragged the arrays allocated after it (the layers' outputs) along.
 * Here a thread keeps its block, grown when a call needs more, and frees it when the thread ends
 * (a pthread key's destructor).  Slots keep apart the buffers a thread may hold at the same time.
 * One copy per compiled module (static): each module keeps its own blocks.  Without POSIX threads
 * (MSVC) a block is allocated per call and ``rnnfast_scratch_done`` frees it, as before.
 *
 * Blocks start on a cache line (RNNFAST_SCRATCH_ALIGN): glibc's large blocks start 16 bytes past one, and
 * the micro-kernel's 64-byte loads of a packed panel then each straddle two lines (bench/RESULTS.md).
 */
#ifndef RNNFAST_THREAD_SCRATCH_H
#define RNNFAST_THREAD_SCRATCH_H

#include <stdlib.h>

#define RNNFAST_SCRATCH_ALIGN 64

#ifdef _WIN32
#include <malloc.h>
static inline void *rnnfast_thread_scratch(int slot, size_t bytes)
{
    (void)slot;
    return _aligned_malloc(bytes > 0 ? bytes : 1, RNNFAST_SCRATCH_ALIGN);
}
static inline void rnnfast_scratch_done(void *block) { _aligned_free(block); }
#else
#include <pthread.h>

#define RNNFAST_SCRATCH_SLOTS 2

typedef struct {
    void *block[RNNFAST_SCRATCH_SLOTS];
    size_t bytes[RNNFAST_SCRATCH_SLOTS];
} rnnfast_scratch_t;

static pthread_key_t rnnfast_scratch_key;
static pthread_once_t rnnfast_scratch_once = PTHREAD_ONCE_INIT;
static int rnnfast_scratch_key_ok = 0;

static void rnnfast_scratch_release(void *p)
{
    rnnfast_scratch_t *s = (rnnfast_scratch_t *)p;
    for (int i = 0; i < RNNFAST_SCRATCH_SLOTS; i++)
        free(s->block[i]);
    free(s);
}

static void rnnfast_scratch_make_key(void)
{
    rnnfast_scratch_key_ok = pthread_key_create(&rnnfast_scratch_key, rnnfast_scratch_release) == 0;
}

/* At least ``bytes`` of this thread's scratch in ``slot`` (0 .. RNNFAST_SCRATCH_SLOTS - 1); its contents
 * are undefined.  NULL if memory runs out: the caller reports it as it would a failed malloc. */
static inline void *rnnfast_thread_scratch(int slot, size_t bytes)
{
    rnnfast_scratch_t *s;
    pthread_once(&rnnfast_scratch_once, rnnfast_scratch_make_key);
    if (!rnnfast_scratch_key_ok || slot < 0 || slot >= RNNFAST_SCRATCH_SLOTS)
        return NULL;
    s = (rnnfast_scratch_t *)pthread_getspecific(rnnfast_scratch_key);
    if (s == NULL) {
        s = (rnnfast_scratch_t *)calloc(1, sizeof *s);
        if (s == NULL || pthread_setspecific(rnnfast_scratch_key, s) != 0) {
            free(s);
            return NULL;
        }
    }
    if (s->bytes[slot] < bytes) {
        void *block = NULL;
        free(s->block[slot]);
        if (posix_memalign(&block, RNNFAST_SCRATCH_ALIGN, bytes > 0 ? bytes : 1) != 0)
            block = NULL;
        s->block[slot] = block;
        s->bytes[slot] = block != NULL ? bytes : 0;
    }
    return s->block[slot];
}

/* The block stays with its thread. */
static inline void rnnfast_scratch_done(void *block) { (void)block; }
#endif

#endif
