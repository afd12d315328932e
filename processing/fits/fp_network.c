/*
 * fp_network.c - comparator networks (Batcher's merge-exchange, Knuth
 * 5.2.2 Algorithm M) applied to whole arrays at once: wire k is the array
 * at base + k * stride, and each comparator is a pixel-wise min/max of two
 * arrays, which the compiler vectorises. A median network keeps only the
 * comparators that feed the middle wires.
 */
#include <string.h>

#ifdef __SSE__
#include <xmmintrin.h>
#endif

#include "fp__internal.h"

static void fp_network_add(fp_network *net, int a, int b)
{
    net->a[net->n_pairs] = (unsigned char)a;
    net->b[net->n_pairs] = (unsigned char)b;
    net->n_pairs++;
}

int fp_network_sort(fp_network *net, int n)
{
    memset(net, 0, sizeof *net);
    if (n < 1 || n > FP_NETWORK_MAX_WIRES)
        return -1;
    net->n_wires = n;
    int t = 0;
    while ((1 << t) < n)
        t++;
    for (int p = t > 0 ? 1 << (t - 1) : 0; p > 0; p >>= 1) {
        int q = 1 << (t - 1), r = 0, d = p;
        for (;;) {
            for (int i = 0; i + d < n; i++)
                if ((i & p) == r)
                    fp_network_add(net, i, i + d);
            if (q == p)
                break;
            d = q - p;
            q >>= 1;
            r = p;
        }
    }
    return 0;
}

int fp_network_median(fp_network *net, int n)
{
    if (fp_network_sort(net, n) != 0)
        return -1;
    /* walk back from the outputs, keeping what the middle wires depend on */
    unsigned char needed[FP_NETWORK_MAX_WIRES] = {0};
    needed[(n - 1) / 2] = needed[n / 2] = 1;
    int kept = net->n_pairs;
    for (int p = net->n_pairs - 1; p >= 0; p--) {
        int a = net->a[p], b = net->b[p];
        if (!needed[a] && !needed[b])
            continue;
        needed[a] = needed[b] = 1;
        kept--;
        net->a[kept] = (unsigned char)a;
        net->b[kept] = (unsigned char)b;
    }
    memmove(net->a, net->a + kept, (size_t)(net->n_pairs - kept));
    memmove(net->b, net->b + kept, (size_t)(net->n_pairs - kept));
    net->n_pairs -= kept;
    return 0;
}

/* One comparator over len pixels: a keeps the smaller, b the larger
 * (a[i] < b[i] ? a[i] : b[i] and a[i] < b[i] ? b[i] : a[i], exactly what
 * SSE's minps(a, b) and maxps(b, a) compute, NaN and signed zeros
 * included; compilers do not if-convert the scalar form by themselves). */
static void fp_compare_exchange(float *restrict a, float *restrict b, size_t len)
{
    size_t i = 0;
#ifdef __SSE__
    for (; i + 4 <= len; i += 4) {
        __m128 x = _mm_loadu_ps(a + i), y = _mm_loadu_ps(b + i);
        _mm_storeu_ps(a + i, _mm_min_ps(x, y));
        _mm_storeu_ps(b + i, _mm_max_ps(y, x));
    }
#endif
    for (; i < len; i++) {
        float x = a[i], y = b[i];
        a[i] = x < y ? x : y;
        b[i] = x < y ? y : x;
    }
}

void fp_network_apply(const fp_network *net, float *base, size_t stride, size_t len)
{
    for (int p = 0; p < net->n_pairs; p++)
        fp_compare_exchange(base + net->a[p] * stride, base + net->b[p] * stride, len);
}

void fp_network_median_of(const fp_network *net, const float *base, size_t stride, size_t len, float *out)
{
    int n = net->n_wires;
    const float *lo = base + (size_t)((n - 1) / 2) * stride, *hi = base + (size_t)(n / 2) * stride;
    if (n % 2) {
        memcpy(out, hi, len * sizeof *out);
        return;
    }
    for (size_t i = 0; i < len; i++)
        out[i] = 0.5f * (lo[i] + hi[i]);
}
