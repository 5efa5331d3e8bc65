/* Whether this build has OpenMP, answerable without linking libgomp when it doesn't. */
#ifndef RNNFAST_OMP_HELPERS_H
#define RNNFAST_OMP_HELPERS_H
#ifdef _OPENMP
#include <omp.h>
static int rnnfast_openmp_enabled(void) { return 1; }
static int rnnfast_openmp_version(void) { return _OPENMP; }
static int rnnfast_omp_max_threads(void) { return omp_get_max_threads(); }
#else
static int rnnfast_openmp_enabled(void) { return 0; }
static int rnnfast_openmp_version(void) { return 0; }
static int rnnfast_omp_max_threads(void) { return 1; }
#endif
#endif
