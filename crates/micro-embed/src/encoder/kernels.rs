//! The numeric kernels of the encoder forward pass: matrix products (the `gemm` crate), layer
//! norm, GELU and softmax, written over plain slices so buffers can be reused between batches.

use rayon::prelude::*;

/// A row-major matrix view: `rows x cols` values starting at `ptr`, rows `stride` apart.
#[derive(Clone, Copy)]
pub struct View {
    pub ptr: *const f32,
    pub rows: usize,
    pub cols: usize,
    pub stride: usize,
}

/// `out[m, n] (+)= a[m, k] * b[k, n]`, all row-major; `accumulate` adds to what `out` holds
/// (used to fuse the bias: `out` is pre-filled with it).
///
/// # Safety
/// The views must point to live memory of their extent and `out` must not alias `a` or `b`.
#[allow(clippy::too_many_arguments)]
pub unsafe fn matmul(
    a: View,
    b: View,
    out: *mut f32,
    out_stride: usize,
    accumulate: bool,
    threads: usize,
) {
    debug_assert_eq!(a.cols, b.rows);
    let par = if threads > 1 {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    };
    gemm::gemm(
        a.rows,
        b.cols,
        a.cols,
        out,
        1,
        out_stride as isize,
        accumulate,
        a.ptr,
        1,
        a.stride as isize,
        b.ptr,
        1,
        b.stride as isize,
        1.0f32,
        1.0f32,
        false,
        false,
        false,
        par,
    );
}

/// `out[m, n] = scale * a[m, k] * b[n, k]^T`, for attention scores (b is the keys, row-major).
///
/// # Safety
/// As [`matmul`].
pub unsafe fn matmul_bt(a: View, b: View, scale: f32, out: *mut f32, out_stride: usize) {
    debug_assert_eq!(a.cols, b.cols);
    gemm::gemm(
        a.rows,
        b.rows,
        a.cols,
        out,
        1,
        out_stride as isize,
        false,
        a.ptr,
        1,
        a.stride as isize,
        b.ptr,
        b.stride as isize,
        1,
        0.0f32,
        scale,
        false,
        false,
        false,
        gemm::Parallelism::None,
    );
}

/// Fills each `cols`-wide row of `out` with `bias`.
pub fn fill_rows(out: &mut [f32], bias: &[f32]) {
    out.par_chunks_mut(bias.len() * 64).for_each(|chunk| {
        for row in chunk.chunks_exact_mut(bias.len()) {
            row.copy_from_slice(bias);
        }
    });
}

/// `x = LayerNorm(x + residual)` row by row (`residual` may be empty to skip the addition).
pub fn add_layer_norm(x: &mut [f32], residual: &[f32], gamma: &[f32], beta: &[f32], eps: f32) {
    let cols = gamma.len();
    let rows_per_task = 32;
    x.par_chunks_mut(cols * rows_per_task)
        .enumerate()
        .for_each(|(t, chunk)| {
            let start = t * rows_per_task * cols;
            let res = if residual.is_empty() {
                &[][..]
            } else {
                &residual[start..start + chunk.len()]
            };
            layer_norm_rows(chunk, res, gamma, beta, eps);
        });
}

/// Compiles `$body` a second time for AVX2+FMA and picks that copy when the CPU has them, so
/// its loops vectorise 8 wide and `mul_add` is one instruction (the crate itself is built for
/// baseline x86-64, where `mul_add` is a libm call: 26% of a profile before this).
macro_rules! simd_dispatch {
    ($name:ident => $body:ident ($($arg:ident : $ty:ty),*)) => {
        fn $name($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2,fma")]
                unsafe fn fast($($arg: $ty),*) {
                    $body($($arg),*)
                }
                if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
                    // SAFETY: the CPU has the features `fast` is compiled for.
                    return unsafe { fast($($arg),*) };
                }
            }
            $body($($arg),*)
        }
    };
}

simd_dispatch!(layer_norm_rows => layer_norm_rows_body(x: &mut [f32], residual: &[f32], gamma: &[f32], beta: &[f32], eps: f32));
simd_dispatch!(gelu_chunk => gelu_body(x: &mut [f32]));
simd_dispatch!(softmax_rows_dispatch => softmax_body(x: &mut [f32], cols: usize));

#[inline(always)]
fn layer_norm_rows_body(x: &mut [f32], residual: &[f32], gamma: &[f32], beta: &[f32], eps: f32) {
    let cols = gamma.len();
    for (r, row) in x.chunks_exact_mut(cols).enumerate() {
        if !residual.is_empty() {
            for (v, res) in row.iter_mut().zip(&residual[r * cols..(r + 1) * cols]) {
                *v += res;
            }
        }
        let n = cols as f32;
        let mean = sum8(row, |v| v) / n;
        let var = sum8(row, |v| (v - mean) * (v - mean)) / n;
        let inv = 1.0 / (var + eps).sqrt();
        for ((v, g), b) in row.iter_mut().zip(gamma).zip(beta) {
            *v = (*v - mean) * inv * g + b;
        }
    }
}

/// Sum of `f(v)` in 8 independent lanes (a plain f32 sum is sequential and never vectorises).
#[inline(always)]
fn sum8(x: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    let mut acc = [0.0f32; 8];
    let chunks = x.chunks_exact(8);
    let rest = chunks.remainder();
    for c in chunks {
        for i in 0..8 {
            acc[i] += f(c[i]);
        }
    }
    acc.iter().sum::<f32>() + rest.iter().map(|&v| f(v)).sum::<f32>()
}

/// Maximum in 8 lanes.
#[inline(always)]
fn max8(x: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; 8];
    let chunks = x.chunks_exact(8);
    let rest = chunks.remainder();
    for c in chunks {
        for i in 0..8 {
            acc[i] = acc[i].max(c[i]);
        }
    }
    acc.iter()
        .chain(rest)
        .copied()
        .fold(f32::NEG_INFINITY, f32::max)
}

/// The exact (erf) GELU of BERT's `hidden_act = "gelu"`, in place.
pub fn gelu(x: &mut [f32]) {
    x.par_chunks_mut(16 * 1024).for_each(gelu_chunk);
}

#[inline(always)]
fn gelu_body(x: &mut [f32]) {
    for v in x.iter_mut() {
        *v = 0.5 * *v * (1.0 + erf(*v * std::f32::consts::FRAC_1_SQRT_2));
    }
}

/// The tanh approximation of GELU (`gelu_new`), in place.
pub fn gelu_tanh(x: &mut [f32]) {
    let c = (2.0f32 / std::f32::consts::PI).sqrt();
    x.par_chunks_mut(16 * 1024).for_each(|chunk| {
        for v in chunk.iter_mut() {
            *v = 0.5 * *v * (1.0 + (c * (*v + 0.044715 * *v * *v * *v)).tanh());
        }
    });
}

/// erf for f32 to a few ulp: the rational approximation of Eigen/XLA's `generic_fast_erf_float`,
/// branch-free so the loop vectorises.
#[inline(always)]
pub fn erf(x: f32) -> f32 {
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let mut p = -2.726_142_3e-10_f32;
    p = p.mul_add(x2, 2.770_681_4e-8);
    p = p.mul_add(x2, -2.101_023_6e-6);
    p = p.mul_add(x2, -5.692_506e-5);
    p = p.mul_add(x2, -7.349_906_4e-4);
    p = p.mul_add(x2, -2.954_6e-3);
    p = p.mul_add(x2, -1.609_603_3e-2);
    p *= x;
    let mut q = -1.456_607_2e-5_f32;
    q = q.mul_add(x2, -2.133_740_5e-4);
    q = q.mul_add(x2, -1.682_827e-3);
    q = q.mul_add(x2, -7.373_329_2e-3);
    q = q.mul_add(x2, -1.426_473_9e-2);
    p / q
}

/// Softmax of each `cols`-wide row, in place.
pub fn softmax_rows(x: &mut [f32], cols: usize) {
    softmax_rows_dispatch(x, cols)
}

#[inline(always)]
fn softmax_body(x: &mut [f32], cols: usize) {
    for row in x.chunks_exact_mut(cols) {
        let max = max8(row);
        for v in row.iter_mut() {
            *v = exp(*v - max);
        }
        let inv = 1.0 / sum8(row, |v| v);
        for v in row.iter_mut() {
            *v *= inv;
        }
    }
}

/// e^x for f32 to about 1 ulp (Cephes' `expf`: range reduction by ln 2, degree-6 polynomial),
/// branch-free so loops over it vectorise; inputs below -87 give 0.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    let x = x.clamp(-87.0, 88.0);
    let n = (x * std::f32::consts::LOG2_E + 0.5).floor();
    let r = n.mul_add(-0.693_359_4, x);
    let r = n.mul_add(2.121_944_4e-4, r);
    let mut p = 1.987_569_1e-4_f32;
    p = p.mul_add(r, 1.398_2e-3);
    p = p.mul_add(r, 8.333_452e-3);
    p = p.mul_add(r, 4.166_579_6e-2);
    p = p.mul_add(r, 1.666_666_5e-1);
    p = p.mul_add(r, 5e-1);
    let y = (p * r).mul_add(r, r) + 1.0;
    let scale = f32::from_bits(((n as i32 + 127) as u32) << 23);
    y * scale
}

#[cfg(test)]
mod tests {
    use super::*;

    /// erf by its Maclaurin series in f64 (converges fast for |x| <= 3).
    fn erf_series(x: f64) -> f64 {
        let mut term = x;
        let mut sum = x;
        for n in 1..200 {
            term *= -x * x / n as f64;
            sum += term / (2 * n + 1) as f64;
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    }

    #[test]
    fn erf_matches_its_series_to_float_precision() {
        for i in -300..=300 {
            let x = i as f64 / 100.0;
            let got = erf(x as f32) as f64;
            assert!(
                (got - erf_series(x)).abs() < 3e-7,
                "erf({x}) = {got}, series {}",
                erf_series(x)
            );
        }
        assert!((erf(10.0) - 1.0).abs() < 1e-6 && (erf(-10.0) + 1.0).abs() < 1e-6);
    }

    #[test]
    fn exp_matches_std_to_a_few_ulp() {
        for i in -8700..=8800 {
            let x = i as f32 / 100.0;
            let (got, want) = (exp(x), x.exp());
            assert!(
                (got - want).abs() <= want * 4e-7,
                "exp({x}) = {got}, std {want}"
            );
        }
        assert!(exp(-1000.0) < 1e-37 && exp(-1000.0) >= 0.0);
    }

    #[test]
    fn matmul_agrees_with_the_naive_product() {
        let (m, k, n) = (7, 5, 3);
        let a: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i as f32 * 0.11).cos()).collect();
        let mut out = vec![1.0; m * n];
        unsafe {
            matmul(
                View {
                    ptr: a.as_ptr(),
                    rows: m,
                    cols: k,
                    stride: k,
                },
                View {
                    ptr: b.as_ptr(),
                    rows: k,
                    cols: n,
                    stride: n,
                },
                out.as_mut_ptr(),
                n,
                true,
                1,
            );
        }
        let mut bt = vec![0.0; m * m];
        unsafe {
            let v = View {
                ptr: a.as_ptr(),
                rows: m,
                cols: k,
                stride: k,
            };
            matmul_bt(v, v, 0.5, bt.as_mut_ptr(), m);
        }
        for i in 0..m {
            for j in 0..n {
                let want: f32 = 1.0 + (0..k).map(|t| a[i * k + t] * b[t * n + j]).sum::<f32>();
                assert!((out[i * n + j] - want).abs() < 1e-5);
            }
            for j in 0..m {
                let want: f32 = 0.5 * (0..k).map(|t| a[i * k + t] * a[j * k + t]).sum::<f32>();
                assert!((bt[i * m + j] - want).abs() < 1e-5);
            }
        }
    }

    #[test]
    fn layer_norm_and_softmax_have_their_defining_properties() {
        let mut x: Vec<f32> = (0..8).map(|i| i as f32).collect();
        let res = vec![1.0; 8];
        add_layer_norm(&mut x, &res, &[1.0; 4], &[0.0; 4], 1e-12);
        for row in x.chunks(4) {
            let mean: f32 = row.iter().sum::<f32>() / 4.0;
            let var: f32 = row.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / 4.0;
            assert!(mean.abs() < 1e-6 && (var - 1.0).abs() < 1e-5);
        }
        let mut s = vec![0.0, (2.0f32).ln(), 1000.0, 1000.0];
        softmax_rows(&mut s, 2);
        assert!((s[0] - 1.0 / 3.0).abs() < 1e-6 && (s[1] - 2.0 / 3.0).abs() < 1e-6);
        assert_eq!(&s[2..], &[0.5, 0.5]);
    }
}
