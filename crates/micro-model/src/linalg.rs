//! Row-major matrix products on top of the `gemm` crate (f32 and f64 kernels, optionally on the
//! rayon pool).

use crate::float::Float;
use gemm::Parallelism;

/// The dot product of two f32 vectors (a head's reward r_k = w_k . h).
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// How an operand is stored relative to its mathematical shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Stored as its shape says, row-major.
    N,
    /// Stored transposed (a mathematical [m, k] operand held as [k, m] row-major).
    T,
}

/// Products below this many multiply-adds run on the calling thread: spawning costs more.
// Measured on 2 cores: batch-32 router products (3M multiply-adds) ran slower split in two.
const PARALLEL_MIN_WORK: usize = 1 << 24;

/// `c[m, n] = a[m, k] . b[k, n]`, or `c += ...` when `accumulate`. `a` and `b` may be stored
/// transposed (`Op::T`). `threads` > 1 lets the kernel use the rayon pool for large products.
#[allow(clippy::too_many_arguments)]
pub fn matmul<T: Float>(
    c: &mut [T],
    a: &[T],
    op_a: Op,
    b: &[T],
    op_b: Op,
    m: usize,
    k: usize,
    n: usize,
    accumulate: bool,
    threads: usize,
) {
    assert!(
        c.len() >= m * n && a.len() >= m * k && b.len() >= k * n,
        "matmul: operand too short"
    );
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            c[..m * n].fill(T::zero());
        }
        return;
    }
    let (a_rs, a_cs) = match op_a {
        Op::N => (k as isize, 1),
        Op::T => (1, m as isize),
    };
    let (b_rs, b_cs) = match op_b {
        Op::N => (n as isize, 1),
        Op::T => (1, k as isize),
    };
    let par = if threads > 1 && m * n * k >= PARALLEL_MIN_WORK {
        Parallelism::Rayon(threads)
    } else {
        Parallelism::None
    };
    // SAFETY: the lengths were checked above against the strides used: every index the kernel
    // forms is < m*k for a, < k*n for b and < m*n for c; c does not alias a or b (&mut vs &).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            a.as_ptr(),
            a_cs,
            a_rs,
            b.as_ptr(),
            b_cs,
            b_rs,
            T::one(),
            T::one(),
            false,
            false,
            false,
            par,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(a: &[f64], b: &[f64], m: usize, k: usize, n: usize) -> Vec<f64> {
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] = (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum();
            }
        }
        c
    }

    fn transpose(a: &[f64], r: usize, c: usize) -> Vec<f64> {
        let mut t = vec![0.0; r * c];
        for i in 0..r {
            for j in 0..c {
                t[j * r + i] = a[i * c + j];
            }
        }
        t
    }

    #[test]
    fn every_layout_matches_the_naive_product() {
        let (m, k, n) = (5, 7, 3);
        let a: Vec<f64> = (0..m * k).map(|i| (i as f64 * 0.37).sin()).collect();
        let b: Vec<f64> = (0..k * n).map(|i| (i as f64 * 0.11).cos()).collect();
        let want = naive(&a, &b, m, k, n);
        let (at, bt) = (transpose(&a, m, k), transpose(&b, k, n));
        for (aa, oa) in [(&a, Op::N), (&at, Op::T)] {
            for (bb, ob) in [(&b, Op::N), (&bt, Op::T)] {
                let mut c = vec![1.0; m * n];
                matmul(&mut c, aa, oa, bb, ob, m, k, n, true, 1);
                for (x, w) in c.iter().zip(&want) {
                    assert!(
                        (x - (w + 1.0)).abs() < 1e-12,
                        "{oa:?}{ob:?}: {x} vs {}",
                        w + 1.0
                    );
                }
                matmul(&mut c, aa, oa, bb, ob, m, k, n, false, 1);
                for (x, w) in c.iter().zip(&want) {
                    assert!((x - w).abs() < 1e-12);
                }
            }
        }
    }
}
