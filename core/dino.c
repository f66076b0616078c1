/* dino.c — the DINO loss, its centre and its schedules. */
#include "dino.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* out = softmax(scale · (x − shift)) for one row; returns log Σ exp (of the scaled, shifted row,
 * before normalising) so callers can form log-probabilities. */
static double softmax_row(float *out, const float *x, const float *shift, float scale, int K)
{
    float mx = -INFINITY;
    for (int k = 0; k < K; k++) {
        out[k] = (x[k] - (shift ? shift[k] : 0.0f)) * scale;
        mx = out[k] > mx ? out[k] : mx;
    }
    double sum = 0.0;
    for (int k = 0; k < K; k++) {
        out[k] = expf(out[k] - mx);
        sum += out[k];
    }
    float inv = (float)(1.0 / sum);
    for (int k = 0; k < K; k++) out[k] *= inv;
    return mx + log(sum);
}

/* KL(softmax(t/τ) ‖ softmax(c/τ)) for one row, from the centre's log Σ exp; p is scratch (K). */
static double kl_row(float *p, const float *t, const float *c, double log_c_sum, float tau, int K)
{
    double log_t_sum = softmax_row(p, t, NULL, 1.0f / tau, K), kl = 0.0;
    for (int k = 0; k < K; k++)
        if (p[k] > 0.0f) kl += p[k] * (((double)t[k] - c[k]) / tau - log_t_sum + log_c_sum);
    return kl > 0.0 ? kl : 0.0;
}

/* The cross-entropy of every student row against the teacher targets q of the other views, its
 * gradient, and the statistics (entropy of q, KL of each q row to prior). */
static void loss_from_targets(const float *q, const float *student, float *dstudent, int B,
                              int n_teacher, int n_student, int K, float tau_s, float *p,
                              struct dino_stats *stats)
{
    int pairs = n_teacher * n_student - (n_teacher < n_student ? n_teacher : n_student);
    double loss = 0.0;
    float g = 1.0f / ((float)pairs * (float)B * tau_s);
    for (int v = 0; v < n_student; v++) {
        int partners = n_teacher - (v < n_teacher ? 1 : 0);
        for (int b = 0; b < B; b++) {
            size_t row = ((size_t)v * B + b) * K;
            double lse = softmax_row(p, student + row, NULL, 1.0f / tau_s, K);
            float *ds = dstudent + row;
            for (int k = 0; k < K; k++) ds[k] = (float)partners * p[k];
            for (int i = 0; i < n_teacher; i++) {
                if (i == v) continue;
                const float *qr = q + ((size_t)i * B + b) * K;
                const float *sr = student + row;
                double ce = 0.0;
                for (int k = 0; k < K; k++) {
                    ce -= qr[k] * (sr[k] / tau_s - lse);
                    ds[k] -= qr[k];
                }
                loss += ce;
            }
            for (int k = 0; k < K; k++) ds[k] *= g;
        }
    }
    if (stats) stats->loss = loss / ((double)pairs * B);
}

static double row_entropy(const float *q, int K)
{
    double h = 0.0;
    for (int k = 0; k < K; k++)
        if (q[k] > 0.0f) h -= q[k] * log(q[k]);
    return h;
}

int dino_loss(const float *teacher, const float *student, const float *center, float *dstudent,
              int B, int n_teacher, int n_student, int K, float tau_t, float tau_s,
              struct dino_stats *stats)
{
    float *q = malloc(sizeof(float) * ((size_t)n_teacher * B * K + 2 * (size_t)K));
    if (!q) return -1;
    float *p = q + (size_t)n_teacher * B * K, *prior = p + K;
    double log_prior_sum = softmax_row(prior, center, NULL, 1.0f / tau_t, K);
    double entropy = 0.0, kl = 0.0;
    for (int r = 0; r < n_teacher * B; r++) {
        const float *tr = teacher + (size_t)r * K;
        float *qr = q + (size_t)r * K;
        softmax_row(qr, tr, center, 1.0f / tau_t, K);
        entropy += row_entropy(qr, K);
        kl += kl_row(p, tr, center, log_prior_sum, tau_t, K);
    }
    loss_from_targets(q, student, dstudent, B, n_teacher, n_student, K, tau_s, p, stats);
    if (stats) {
        stats->teacher_entropy = entropy / ((double)n_teacher * B);
        stats->teacher_kl = kl / ((double)n_teacher * B);
    }
    free(q);
    return 0;
}

void dino_sinkhorn(const float *teacher, int rows, int K, float tau, int iters, float *q)
{
    size_t n = (size_t)rows * K;
    float mx = -INFINITY;
    for (size_t i = 0; i < n; i++) mx = teacher[i] > mx ? teacher[i] : mx;
    double sum = 0.0;
    for (size_t i = 0; i < n; i++) sum += q[i] = expf((teacher[i] - mx) / tau);
    for (size_t i = 0; i < n; i++) q[i] = (float)(q[i] / sum);
    for (int it = 0; it < iters; it++) {
        /* every prototype gets 1/K of the mass, then every row 1/rows */
        for (int k = 0; k < K; k++) {
            double c = 0.0;
            for (int r = 0; r < rows; r++) c += q[(size_t)r * K + k];
            float f = c > 0.0 ? (float)(1.0 / (c * K)) : 0.0f;
            for (int r = 0; r < rows; r++) q[(size_t)r * K + k] *= f;
        }
        for (int r = 0; r < rows; r++) {
            float *qr = q + (size_t)r * K;
            double c = 0.0;
            for (int k = 0; k < K; k++) c += qr[k];
            float f = c > 0.0 ? (float)(1.0 / (c * rows)) : 0.0f;
            for (int k = 0; k < K; k++) qr[k] *= f;
        }
    }
    for (size_t i = 0; i < n; i++) q[i] *= (float)rows;
}

int dino_loss_sinkhorn(const float *teacher, const float *student, float *dstudent, int B,
                       int n_teacher, int n_student, int K, float tau_t, float tau_s, int iters,
                       struct dino_stats *stats)
{
    int rows = n_teacher * B;
    float *q = malloc(sizeof(float) * ((size_t)rows * K + 2 * (size_t)K));
    if (!q) return -1;
    float *p = q + (size_t)rows * K, *mean = p + K;
    dino_sinkhorn(teacher, rows, K, tau_t, iters, q);
    loss_from_targets(q, student, dstudent, B, n_teacher, n_student, K, tau_s, p, stats);
    if (stats) {
        /* KL of each row to the batch's mean target: 0 when every image gets the same one */
        for (int k = 0; k < K; k++) {
            double c = 0.0;
            for (int r = 0; r < rows; r++) c += q[(size_t)r * K + k];
            mean[k] = (float)(c / rows);
        }
        double entropy = 0.0, kl = 0.0;
        for (int r = 0; r < rows; r++) {
            const float *qr = q + (size_t)r * K;
            entropy += row_entropy(qr, K);
            for (int k = 0; k < K; k++)
                if (qr[k] > 0.0f && mean[k] > 0.0f) kl += qr[k] * log((double)qr[k] / mean[k]);
        }
        stats->teacher_entropy = entropy / rows;
        stats->teacher_kl = kl > 0.0 ? kl / rows : 0.0;
    }
    free(q);
    return 0;
}

void dino_center_update(float *center, const float *teacher, int rows, int K, float momentum)
{
    for (int k = 0; k < K; k++) {
        double sum = 0.0;
        for (int r = 0; r < rows; r++) sum += teacher[(size_t)r * K + k];
        center[k] = center[k] * momentum + (float)(sum / rows) * (1.0f - momentum);
    }
}

/* np.linspace(a, b, n)[i] */
static double linspace_at(double a, double b, long i, long n)
{
    return n > 1 ? a + (b - a) * (double)i / (double)(n - 1) : a;
}

double dino_cosine(double base, double final, long step, long total, long warmup)
{
    assert(warmup >= 0 && warmup <= total && step >= 0);
    if (step < warmup) return linspace_at(0.0, base, step, warmup);
    if (step >= total) return final;
    double t = (double)(step - warmup) / (double)(total - warmup);
    return final + 0.5 * (base - final) * (1.0 + cos(M_PI * t));
}

struct dino_schedule_point dino_schedule_at(const struct dino_schedule *s, long step)
{
    struct dino_schedule_point p;
    long warm = s->lr_warmup < s->total ? s->lr_warmup : s->total;
    p.lr = (float)dino_cosine(s->lr, s->min_lr, step, s->total, warm);
    p.weight_decay = (float)dino_cosine(s->weight_decay, s->weight_decay_end, step, s->total, 0);
    p.teacher_momentum = (float)dino_cosine(s->momentum, 1.0, step, s->total, 0);
    p.teacher_temp = step < s->teacher_temp_warmup
                         ? (float)linspace_at(s->warmup_teacher_temp, s->teacher_temp, step,
                                              s->teacher_temp_warmup)
                         : (float)s->teacher_temp;
    p.freeze_last_layer = step < s->freeze_last_layer;
    return p;
}

int dino_koleo(const float *x, int n, int D, float weight, float *dx, double *out_loss)
{
    assert(n >= 2);
    const double eps = 1e-8;
    double loss = 0;
    /* unit rows, computed on the fly: u_i = x_i / |x_i| */
    double *norm = malloc(sizeof(double) * (size_t)n), *du = calloc((size_t)n * D, sizeof(double));
    if (!norm || !du) {
        free(norm), free(du);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        double ss = 0;
        for (int d = 0; d < D; d++) ss += (double)x[(size_t)i * D + d] * x[(size_t)i * D + d];
        norm[i] = sqrt(ss) > eps ? sqrt(ss) : eps;
    }
    for (int i = 0; i < n; i++) {
        const float *xi = x + (size_t)i * D;
        int best = -1;
        double best_dot = -INFINITY;
        for (int j = 0; j < n; j++) {
            if (j == i) continue;
            const float *xj = x + (size_t)j * D;
            double dot = 0;
            for (int d = 0; d < D; d++) dot += (double)xi[d] * xj[d];
            dot /= norm[i] * norm[j];
            if (dot > best_dot) best_dot = dot, best = j;
        }
        const float *xj = x + (size_t)best * D;
        double dist2 = 0;
        for (int d = 0; d < D; d++) {
            double diff = xi[d] / norm[i] - xj[d] / norm[best];
            dist2 += diff * diff;
        }
        double dist = sqrt(dist2);
        loss -= log(dist + eps) / n;
        /* d(−log(dist + eps)/n) / d u_i = −(u_i − u_j) / (n · dist · (dist + eps)); u_j gets the
         * opposite */
        double g = dist > 0 ? -1.0 / (n * dist * (dist + eps)) : 0.0;
        for (int d = 0; d < D; d++) {
            double diff = xi[d] / norm[i] - xj[d] / norm[best];
            du[(size_t)i * D + d] += g * diff;
            du[(size_t)best * D + d] -= g * diff;
        }
    }
    /* through the normalisation: dx = (du − u (u·du)) / |x| */
    for (int i = 0; i < n; i++) {
        const float *xi = x + (size_t)i * D;
        double udu = 0;
        for (int d = 0; d < D; d++) udu += xi[d] / norm[i] * du[(size_t)i * D + d];
        for (int d = 0; d < D; d++)
            dx[(size_t)i * D + d] +=
                (float)(weight * (du[(size_t)i * D + d] - xi[d] / norm[i] * udu) / norm[i]);
    }
    free(norm), free(du);
    *out_loss = loss;
    return 0;
}

int dino_aux_loss(const float *x, int n, int D, const float *W, const float *b, const int *target,
                  int A, float weight, float *dx, float *dW, float *db, double *loss, double *acc)
{
    float *p = malloc(sizeof(float) * (size_t)A);
    if (!p) return -1;
    double total = 0;
    int right = 0;
    for (int i = 0; i < n; i++) {
        const float *xi = x + (size_t)i * D;
        float top = -INFINITY;
        int arg = 0;
        for (int a = 0; a < A; a++) {
            float z = b[a];
            for (int d = 0; d < D; d++) z += W[(size_t)a * D + d] * xi[d];
            p[a] = z;
            if (z > top) top = z, arg = a;
        }
        double sum = 0;
        for (int a = 0; a < A; a++) sum += exp((double)(p[a] - top));
        total += log(sum) + top - p[target[i]];
        right += arg == target[i];
        /* d loss_i / d z_a = softmax_a − [a = target], scaled by weight / n */
        float scale = weight / (float)n;
        for (int a = 0; a < A; a++) {
            float g = (float)(exp((double)(p[a] - top)) / sum) - (a == target[i] ? 1.0f : 0.0f);
            g *= scale;
            db[a] += g;
            for (int d = 0; d < D; d++) {
                dW[(size_t)a * D + d] += g * xi[d];
                dx[(size_t)i * D + d] += g * W[(size_t)a * D + d];
            }
        }
    }
    free(p);
    *loss = n ? total / n : 0;
    *acc = n ? (double)right / n : 0;
    return 0;
}

void dino_defect_loss(const float *x, int n, int T, int D, const float *w, const float *b,
                      const float *target, const float *pw, float weight, float *dx, float *dw,
                      float *db, double *loss, double *acc)
{
    double total = 0, right = 0;
    for (int i = 0; i < n; i++)
        for (int t = 1; t < T; t++) {
            size_t p = (size_t)i * (T - 1) + (size_t)(t - 1);
            if (pw[p] == 0.0f) continue;
            const float *xi = x + ((size_t)i * T + t) * D;
            float z = b[0];
            for (int d = 0; d < D; d++) z += w[d] * xi[d];
            float y = target[p];
            /* BCE with logits, stable: max(z, 0) − z·y + log(1 + e^−|z|) */
            double l = (z > 0 ? z : 0) - (double)z * y + log1p(exp(-fabs((double)z)));
            total += pw[p] * l;
            right += (z > 0.0f) == (y > 0.5f) ? pw[p] : 0.0f;
            float g = weight * pw[p] * (float)(1.0 / (1.0 + exp(-(double)z)) - y);
            db[0] += g;
            float *dxi = dx + ((size_t)i * T + t) * D;
            for (int d = 0; d < D; d++) {
                dw[d] += g * xi[d];
                dxi[d] += g * w[d];
            }
        }
    *loss = total;
    *acc = right;
}

void dino_dense_loss(const float *s, const float *t, const unsigned char *mask, int n, int T, int D,
                     float weight, float *ds, double *loss)
{
    double total = 0;
    for (int i = 0; i < n; i++)
        for (int p = 1; p < T; p++) {
            if (!mask[(size_t)i * (T - 1) + (size_t)(p - 1)]) continue;
            size_t row = ((size_t)i * T + (size_t)p) * D;
            const float *si = s + row, *ti = t + row;
            double st = 0, ss = 0, tt = 0;
            for (int d = 0; d < D; d++)
                st += (double)si[d] * ti[d], ss += (double)si[d] * si[d],
                    tt += (double)ti[d] * ti[d];
            double ns = sqrt(ss) + 1e-12, nt = sqrt(tt) + 1e-12, cs = st / (ns * nt);
            total += 1.0 - cs;
            /* d(1 − cos)/ds = −(t / (|s||t|) − cos · s / |s|²) */
            float a = (float)(-weight / (ns * nt)), b = (float)(weight * cs / (ns * ns));
            float *dsi = ds + row;
            for (int d = 0; d < D; d++) dsi[d] += a * ti[d] + b * si[d];
        }
    *loss = total;
}
