//! Rotary position embeddings with Hugging Face's `rotate_half` layout (the first and second
//! halves of each head are the two rotated coordinates), including Llama 3 frequency scaling.

use candle_core::{Device, Tensor};

use super::config::RopeScaling;

/// Inverse frequencies `theta^(-2i/d)` for `i < d/2`, scaled as configured.
///
/// Computed in f32 like the reference implementation, so that angles agree to the last bit
/// that matters at the 1e-4 tolerance of the golden tests.
pub fn inv_freq(head_dim: usize, theta: f64, scaling: RopeScaling) -> Vec<f32> {
    let base = theta as f32;
    let plain = (0..head_dim / 2).map(|i| 1.0 / base.powf((2 * i) as f32 / head_dim as f32));
    match scaling {
        RopeScaling::None => plain.collect(),
        RopeScaling::Linear { factor } => plain.map(|f| f / factor as f32).collect(),
        RopeScaling::Llama3 {
            factor,
            low_freq_factor,
            high_freq_factor,
            original_max_position_embeddings,
        } => plain
            .map(|f| {
                llama3_scale(
                    f as f64,
                    factor,
                    low_freq_factor,
                    high_freq_factor,
                    original_max_position_embeddings,
                ) as f32
            })
            .collect(),
    }
}

/// Llama 3.1's rule: wavelengths shorter than `old_len / high` stay, longer than
/// `old_len / low` are divided by `factor`, and those in between interpolate smoothly.
fn llama3_scale(freq: f64, factor: f64, low: f64, high: f64, old_len: f64) -> f64 {
    let wavelen = 2.0 * std::f64::consts::PI / freq;
    if wavelen < old_len / high {
        freq
    } else if wavelen > old_len / low {
        freq / factor
    } else {
        let smooth = (old_len / wavelen - low) / (high - low);
        (1.0 - smooth) * freq / factor + smooth * freq
    }
}

/// Cosine and sine tables, each [seq_len, head_dim / 2], as `candle_nn::rotary_emb::rope` takes.
pub fn tables(
    inv_freq: &[f32],
    seq_len: usize,
    device: &Device,
) -> candle_core::Result<(Tensor, Tensor)> {
    let half = inv_freq.len();
    let mut cos = Vec::with_capacity(seq_len * half);
    let mut sin = Vec::with_capacity(seq_len * half);
    for pos in 0..seq_len {
        for &f in inv_freq {
            let angle = pos as f32 * f;
            cos.push(angle.cos());
            sin.push(angle.sin());
        }
    }
    Ok((
        Tensor::from_vec(cos, (seq_len, half), device)?,
        Tensor::from_vec(sin, (seq_len, half), device)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const OLD: f64 = 8192.0;

    fn scaled(freq: f64) -> f64 {
        llama3_scale(freq, 8.0, 1.0, 4.0, OLD)
    }

    #[test]
    fn llama3_keeps_short_wavelengths_and_divides_long_ones() {
        let short = 2.0 * std::f64::consts::PI / 100.0; // wavelength 100 < 8192 / 4
        assert_eq!(scaled(short), short);
        let long = 2.0 * std::f64::consts::PI / 20_000.0; // wavelength 20000 > 8192 / 1
        assert!((scaled(long) - long / 8.0).abs() < 1e-18);
    }

    #[test]
    fn llama3_interpolation_is_continuous_at_both_band_edges() {
        let at = |wavelen: f64| 2.0 * std::f64::consts::PI / wavelen;
        let eps = 1e-6;
        let hi = OLD / 4.0;
        let lo = OLD / 1.0;
        assert!((scaled(at(hi - eps)) - scaled(at(hi + eps))).abs() < 1e-9);
        assert!((scaled(at(lo - eps)) - scaled(at(lo + eps))).abs() < 1e-9);
    }

    #[test]
    fn rotation_at_position_zero_is_identity_and_angles_grow_linearly() {
        let f = inv_freq(8, 10_000.0, RopeScaling::None);
        assert_eq!(f[0], 1.0);
        assert!((f[1] - 0.1).abs() < 1e-7);
        let (cos, sin) = tables(&f, 3, &Device::Cpu).unwrap();
        let cos = cos.to_vec2::<f32>().unwrap();
        let sin = sin.to_vec2::<f32>().unwrap();
        assert!(cos[0].iter().all(|&c| c == 1.0) && sin[0].iter().all(|&s| s == 0.0));
        assert!((sin[2][0] - 2f32.sin()).abs() < 1e-7);
        let lin = inv_freq(8, 10_000.0, RopeScaling::Linear { factor: 2.0 });
        assert!((lin[1] - f[1] / 2.0).abs() < 1e-9);
    }
}
