//! The scalar type of the training math: f32 in production, f64 in the gradient checks, so the
//! finite-difference oracle runs through the very code that trains.

use std::fmt::Debug;
use std::iter::Sum;
use std::ops::{AddAssign, DivAssign, MulAssign, SubAssign};

/// A real scalar the losses, router and GEMM wrappers are generic over (`f32` or `f64`).
pub trait Float:
    num_traits::Float
    + Default
    + Debug
    + Send
    + Sync
    + Sum
    + AddAssign
    + SubAssign
    + MulAssign
    + DivAssign
    + 'static
{
    /// Converts an f64 constant (exact for f64, rounded for f32).
    fn of(x: f64) -> Self;

    /// sigma(x), without overflow for any sign.
    fn sigmoid(self) -> Self {
        if self >= Self::zero() {
            Self::one() / (Self::one() + (-self).exp())
        } else {
            let e = self.exp();
            e / (Self::one() + e)
        }
    }

    /// log sigma(x) = -log(1 + e^-x), stable for large |x|.
    fn log_sigmoid(self) -> Self {
        if self >= Self::zero() {
            -(-self).exp().ln_1p()
        } else {
            self - self.exp().ln_1p()
        }
    }
}

impl Float for f32 {
    fn of(x: f64) -> Self {
        x as f32
    }
}

impl Float for f64 {
    fn of(x: f64) -> Self {
        x
    }
}

/// log sum_k exp(v_k), exact for any magnitude; -inf for an empty or all -inf input, +inf when
/// any v_k is +inf.
pub fn log_sum_exp<T: Float>(v: &[T]) -> T {
    let m = v.iter().copied().fold(T::neg_infinity(), T::max);
    if m.is_infinite() {
        return m;
    }
    m + v.iter().map(|&x| (x - m).exp()).sum::<T>().ln()
}

/// Writes log softmax(z) into `out` (same length).
pub fn log_softmax_into<T: Float>(z: &[T], out: &mut [T]) {
    let lse = log_sum_exp(z);
    for (o, &v) in out.iter_mut().zip(z) {
        *o = v - lse;
    }
}
