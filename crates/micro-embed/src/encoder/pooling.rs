//! From token states to one vector per sequence: mean, CLS, max or mean/sqrt(len), then the
//! optional L2 normalisation.

use super::st_config::Pooling;

/// Pools the packed states `[sum of lens, dim]` of sequences of lengths `lens` into `out`
/// (`[lens.len(), dim]`).
pub fn pool(
    states: &[f32],
    lens: &[usize],
    dim: usize,
    pooling: Pooling,
    normalize: bool,
    out: &mut [f32],
) {
    let mut start = 0;
    for (&len, dst) in lens.iter().zip(out.chunks_exact_mut(dim)) {
        let rows = &states[start * dim..(start + len) * dim];
        start += len;
        match pooling {
            Pooling::Cls => dst.copy_from_slice(&rows[..dim]),
            Pooling::Max => {
                dst.fill(f32::NEG_INFINITY);
                for row in rows.chunks_exact(dim) {
                    for (d, v) in dst.iter_mut().zip(row) {
                        *d = d.max(*v);
                    }
                }
            }
            Pooling::Mean | Pooling::MeanSqrtLen => {
                dst.fill(0.0);
                for row in rows.chunks_exact(dim) {
                    for (d, v) in dst.iter_mut().zip(row) {
                        *d += v;
                    }
                }
                let div = if pooling == Pooling::Mean {
                    len as f32
                } else {
                    (len as f32).sqrt()
                };
                dst.iter_mut().for_each(|d| *d /= div.max(1e-9));
            }
        }
        if normalize {
            // As torch's F.normalize: divide by max(norm, 1e-12).
            let norm = dst.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
            dst.iter_mut().for_each(|d| *d /= norm);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_pooling_mode_matches_its_definition() {
        // Two sequences of lengths 2 and 1, dim 2.
        let states = [1.0, 4.0, 3.0, 0.0, -2.0, 5.0];
        let lens = [2, 1];
        let mut out = [0.0; 4];
        pool(&states, &lens, 2, Pooling::Mean, false, &mut out);
        assert_eq!(out, [2.0, 2.0, -2.0, 5.0]);
        pool(&states, &lens, 2, Pooling::Cls, false, &mut out);
        assert_eq!(out, [1.0, 4.0, -2.0, 5.0]);
        pool(&states, &lens, 2, Pooling::Max, false, &mut out);
        assert_eq!(out, [3.0, 4.0, -2.0, 5.0]);
        pool(&states, &lens, 2, Pooling::MeanSqrtLen, false, &mut out);
        assert!((out[0] - 4.0 / 2f32.sqrt()).abs() < 1e-6);
        pool(&states, &lens, 2, Pooling::Mean, true, &mut out);
        assert!(
            (out[0] - 0.5f32.sqrt()).abs() < 1e-6
                && (out[2] * out[2] + out[3] * out[3] - 1.0).abs() < 1e-6
        );
    }
}
