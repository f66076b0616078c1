/* pool.h — a tiny fork-join thread pool for data-parallel compute: pool_run() runs one function on
 * every worker (the caller is worker 0) and returns when all are done. Workers sleep between runs.
 * Not reentrant: one pool_run at a time per pool. */
#ifndef INSPECTD_POOL_H
#define INSPECTD_POOL_H

struct pool;

typedef void (*pool_fn)(void *ctx, int worker, int nworkers);

/* Starts nworkers - 1 threads. Returns NULL when a thread or allocation fails. nworkers <= 1 gives
 * a pool that runs everything on the caller. */
struct pool *pool_create(int nworkers);
int pool_size(const struct pool *p);
void pool_run(struct pool *p, pool_fn fn, void *ctx);
/* Joins the threads; NULL is fine. */
void pool_destroy(struct pool *p);

/* The [begin, end) share of n items for one worker. */
static inline void pool_share(long n, int worker, int nworkers, long *begin, long *end)
{
    *begin = n * worker / nworkers;
    *end = n * (worker + 1) / nworkers;
}

#endif
