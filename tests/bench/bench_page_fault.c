/*
 * bench_page_fault: the CPU a process pays the first time it writes a page
 * of fresh anonymous memory (a minor page fault) on this machine, the cost
 * that a growing heap adds to every request that grows it (docs/
 * performance.md, bench_uws: a queued job's memory). Each round maps PAGES
 * pages, writes one byte to each (the faults), then writes them all again
 * (the same stores, no fault: the reference), and prints the CPU time
 * (getrusage, user + system) per page of both; then min / median / max of
 * the rounds' difference.
 *
 *   build/tests/bench/bench_page_fault [ROUNDS [PAGES]]   # 5 50000
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "test_util.h"

/* CPU seconds to write one byte of each of n pages at p */
static double touch(volatile char *p, size_t n, size_t page)
{
    double t0 = tu_cpu_seconds();
    for (size_t i = 0; i < n; i++) {
        p[i * page] = (char)i;
    }
    return tu_cpu_seconds() - t0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 5;
    long pages = argc > 2 ? atol(argv[2]) : 50000;
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    if (rounds < 1 || rounds > 1000 || pages < 1000 || pages > 10000000) {
        fprintf(stderr, "usage: bench_page_fault [ROUNDS (1-1000) [PAGES (1000-10000000)]]\n");
        return 2;
    }
    double *cost = calloc((size_t)rounds, sizeof *cost);
    if (cost == NULL) {
        return 1;
    }
    for (int r = 0; r < rounds; r++) {
        size_t n = (size_t)pages;
        char *p = mmap(NULL, n * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) {
            perror("mmap");
            return 1;
        }
        double first = touch(p, n, page) / (double)n * 1e6;
        double again = touch(p, n, page) / (double)n * 1e6;
        munmap(p, n * page);
        cost[r] = first - again;
        printf("round %d: %ld pages, first write %.2f us a page, again %.3f us: a fault %.2f us\n", r + 1,
               pages, first, again, cost[r]);
    }
    qsort(cost, (size_t)rounds, sizeof *cost, cmp_double);
    printf("a minor page fault: %.2f / %.2f / %.2f us of CPU (min / median / max of %d rounds)\n", cost[0],
           cost[rounds / 2], cost[rounds - 1], rounds);
    free(cost);
    return 0;
}
