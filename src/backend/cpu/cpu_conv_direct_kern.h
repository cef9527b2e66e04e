/* The vector kernels of cpu_conv_direct.c, written once for a vector of MN_VW floats
 * (type MN_V, MN_V_LOAD/MN_V_STORE) and included once per width; MN_K(name) gives each
 * width's copy its own name. Channel counts on the vectorised side are multiples of
 * MN_VW. No include guard: included on purpose more than once. */
/* ---- wide: few input channels, vectorised over the outputs ---- */

/* acc[o] += sum_i in_px[i] * wt[i][o] for one tap. */
MN_INLINE void MN_K(mn_wide_tap)(const float *restrict px, const float *restrict wt, int cin,
                                 int cout, float *restrict acc) {
    for (int i = 0; i < cin; i++) {
        const float v = px[i];
        const float *wr = wt + (size_t)i * (size_t)cout;
        for (int o = 0; o < cout; o += MN_VW)
            MN_V_STORE(acc + o, MN_V_LOAD(acc + o) + v * MN_V_LOAD(wr + o));
    }
}

/* One output pixel (x, y) of image `img`, taps bounds-checked. */
MN_INLINE void MN_K(mn_wide_px)(const float *img, int h, int w, int cin, int cout,
                                const float *wt, const float *bias, int y, int x, float *out) {
    float acc[MN_CPU_DIRECT_WIDE_MAX];
    for (int o = 0; o < cout; o++) acc[o] = bias ? bias[o] : 0.0f;
    for (int ky = 0; ky < 3; ky++) {
        const int iy = y + ky - 1;
        if (iy < 0 || iy >= h) continue;
        for (int kx = 0; kx < 3; kx++) {
            const int ix = x + kx - 1;
            if (ix < 0 || ix >= w) continue;
            MN_K(mn_wide_tap)(img + ((size_t)iy * (size_t)w + (size_t)ix) * (size_t)cin,
                        wt + (size_t)(ky * 3 + kx) * (size_t)cin * (size_t)cout, cin, cout,
                        acc);
        }
    }
    memcpy(out, acc, (size_t)cout * sizeof(float));
}

/* Four interior pixels x..x+3 (1 <= x, x+3 <= w-2) of row y: every kx tap is inside. */
MN_INLINE void MN_K(mn_wide_px4)(const float *img, int h, int w, int cin, int cout,
                                 const float *wt, const float *bias, int y, int x, float *out) {
    MN_V a[4][MN_CPU_DIRECT_WIDE_MAX / MN_VW];
    const int nv = cout / MN_VW;
    for (int j = 0; j < nv; j++)
        a[0][j] = a[1][j] = a[2][j] = a[3][j] =
            bias ? MN_V_LOAD(bias + MN_VW * j) : (MN_V){0};
    const size_t cz = (size_t)cin;
    for (int ky = 0; ky < 3; ky++) {
        const int iy = y + ky - 1;
        if (iy < 0 || iy >= h) continue;
        const float *r = img + ((size_t)iy * (size_t)w + (size_t)(x - 1)) * cz;
        for (int kx = 0; kx < 3; kx++) {
            const float *wtap = wt + (size_t)(ky * 3 + kx) * cz * (size_t)cout;
            const float *p = r + (size_t)kx * cz;
            for (int i = 0; i < cin; i++) {
                const float v0 = p[i], v1 = p[cz + i], v2 = p[2 * cz + i], v3 = p[3 * cz + i];
                const float *wr = wtap + (size_t)i * (size_t)cout;
                for (int j = 0; j < nv; j++) {
                    const MN_V wv = MN_V_LOAD(wr + MN_VW * j);
                    a[0][j] += v0 * wv;
                    a[1][j] += v1 * wv;
                    a[2][j] += v2 * wv;
                    a[3][j] += v3 * wv;
                }
            }
        }
    }
    for (int q = 0; q < 4; q++)
        for (int j = 0; j < nv; j++)
            MN_V_STORE(out + (size_t)q * (size_t)cout + MN_VW * j, a[q][j]);
}

MN_INLINE void MN_K(mn_wide_rows)(const float *in, int h, int w, int cin, int cout,
                                  const float *wt, const float *bias, size_t g0, size_t g1,
                                  float *out) {
    const size_t plane = (size_t)h * (size_t)w * (size_t)cin, oz = (size_t)cout;
    for (size_t g = g0; g < g1; g++) {
        const float *img = in + g / (size_t)h * plane;
        const int y = (int)(g % (size_t)h);
        float *orow = out + g * (size_t)w * oz;
        int x = 0;
        MN_K(mn_wide_px)(img, h, w, cin, cout, wt, bias, y, x++, orow);
        for (; x + 4 <= w - 1; x += 4)
            MN_K(mn_wide_px4)(img, h, w, cin, cout, wt, bias, y, x, orow + (size_t)x * oz);
        for (; x < w; x++)
            MN_K(mn_wide_px)(img, h, w, cin, cout, wt, bias, y, x, orow + (size_t)x * oz);
    }
}

/* out[0..cout) for pixel (x, y): acc[o] += in[nb][i..i+MN_VW) * wmat[o][t*cin + i..]
 * lane by lane, then the vectors and their lanes are added by a fixed tree. */
MN_INLINE void MN_K(mn_dot_px)(const float *img, int h, int w, int cin, int cout,
                               const float *wmat, const float *bias, int y, int x, float *out) {
    MN_V acc[MN_CPU_DIRECT_NARROW_MAX][MN_CPU_DIRECT_WIDE_MAX / MN_VW];
    const size_t cz = (size_t)cin, row = 9 * cz;
    const int nv = cin / MN_VW;
    for (int o = 0; o < cout; o++)
        for (int j = 0; j < nv; j++) acc[o][j] = (MN_V){0};
    for (int ky = 0; ky < 3; ky++) {
        const int iy = y + ky - 1;
        if (iy < 0 || iy >= h) continue;
        for (int kx = 0; kx < 3; kx++) {
            const int ix = x + kx - 1;
            if (ix < 0 || ix >= w) continue;
            const float *p = img + ((size_t)iy * (size_t)w + (size_t)ix) * cz;
            const size_t t = (size_t)(ky * 3 + kx) * cz;
            for (int j = 0; j < nv; j++) {
                const MN_V pv = MN_V_LOAD(p + MN_VW * j);
                for (int o = 0; o < cout; o++)
                    acc[o][j] +=
                        pv * MN_V_LOAD(wmat + (size_t)o * row + t + MN_VW * (size_t)j);
            }
        }
    }
    for (int o = 0; o < cout; o++) {
        int n = nv;
        while (n > 1 && n % 2 == 0) {
            n /= 2;
            for (int j = 0; j < n; j++) acc[o][j] += acc[o][j + n];
        }
        MN_V v = acc[o][0];
        for (int j = 1; j < n; j++) v += acc[o][j];
        float lanes[MN_VW];
        MN_V_STORE(lanes, v);
        const float sum = mn_dot_hsum(lanes, MN_VW);
        out[o] = bias ? bias[o] + sum : sum;
    }
}

MN_INLINE void MN_K(mn_dot_rows)(const float *in, int h, int w, int cin, int cout,
                                 const float *wmat, const float *bias, size_t g0, size_t g1,
                                 float *out) {
    const size_t plane = (size_t)h * (size_t)w * (size_t)cin, oz = (size_t)cout;
    for (size_t g = g0; g < g1; g++) {
        const float *img = in + g / (size_t)h * plane;
        const int y = (int)(g % (size_t)h);
        float *orow = out + g * (size_t)w * oz;
        for (int x = 0; x < w; x++)
            MN_K(mn_dot_px)(img, h, w, cin, cout, wmat, bias, y, x, orow + (size_t)x * oz);
    }
}

/* ---- dW of a narrow input ---- */

MN_INLINE void MN_K(mn_dw_rows)(const float *x, const float *dy, int h, int w, int cin, int cout,
                                size_t g0, size_t g1, float *part) {
    MN_V acc[9 * MN_CPU_DIRECT_NARROW_MAX * MN_CPU_DIRECT_WIDE_MAX / MN_VW];
    MN_V d[MN_CPU_DIRECT_WIDE_MAX / MN_VW];
    const size_t cz = (size_t)cin, oz = (size_t)cout, plane = (size_t)h * (size_t)w * cz;
    const int nv = cout / MN_VW;
    for (size_t j = 0; j < 9 * cz * (size_t)nv; j++) acc[j] = (MN_V){0};
    for (size_t g = g0; g < g1; g++) {
        const float *img = x + g / (size_t)h * plane;
        const int y = (int)(g % (size_t)h);
        const float *drow = dy + g * (size_t)w * oz;
        for (int px = 0; px < w; px++) {
            for (int j = 0; j < nv; j++) d[j] = MN_V_LOAD(drow + (size_t)px * oz + MN_VW * j);
            for (int ky = 0; ky < 3; ky++) {
                const int iy = y + ky - 1;
                if (iy < 0 || iy >= h) continue;
                for (int kx = 0; kx < 3; kx++) {
                    const int ix = px + kx - 1;
                    if (ix < 0 || ix >= w) continue;
                    const float *p = img + ((size_t)iy * (size_t)w + (size_t)ix) * cz;
                    MN_V *a = acc + (size_t)(ky * 3 + kx) * cz * (size_t)nv;
                    for (int i = 0; i < cin; i++)
                        for (int j = 0; j < nv; j++) a[i * nv + j] += p[i] * d[j];
                }
            }
        }
    }
    for (size_t ti = 0; ti < 9 * cz; ti++)
        for (int j = 0; j < nv; j++)
            for (int l = 0; l < MN_VW; l++)
                part[(size_t)(MN_VW * j + l) * 9 * cz + ti] = acc[ti * (size_t)nv + (size_t)j][l];
}

