//! Opening the device a backbone runs on (encoders and decoders alike), and the precision its
//! weights are loaded in.

use candle_core::{DType, Device};

use crate::DeviceKind;

/// The dtype of a decoder's weights and activations.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Precision {
    /// f32 on the CPU (what the golden files are checked in), bf16 on a GPU.
    #[default]
    Auto,
    F32,
    Bf16,
    /// For GPUs without bf16 (compute capability below 8.0).
    F16,
}

impl Precision {
    /// The dtype this precision means on `device`.
    pub fn dtype(self, device: &Device) -> DType {
        match self {
            Precision::Auto if device.is_cpu() => DType::F32,
            Precision::Auto | Precision::Bf16 => DType::BF16,
            Precision::F32 => DType::F32,
            Precision::F16 => DType::F16,
        }
    }
}

impl std::str::FromStr for Precision {
    type Err = micro_data::UnknownValue;
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(Precision::Auto),
            "f32" | "fp32" | "float32" => Ok(Precision::F32),
            "bf16" | "bfloat16" => Ok(Precision::Bf16),
            "f16" | "fp16" | "float16" => Ok(Precision::F16),
            _ => Err(micro_data::UnknownValue::new(
                "precision",
                s,
                "auto, f32, bf16 or f16",
            )),
        }
    }
}

/// Why a device cannot be opened: what is missing (this build's CUDA support, the driver, a
/// library, or the device itself) and what to do.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error(
        "device cuda:{ordinal}: this micro was built without CUDA support; build one with `bash scripts/build-cuda.sh` (see docs/gpu.md)"
    )]
    NoCuda { ordinal: usize },
    #[error(
        "cannot open CUDA device {ordinal}: {cause} (is there such a GPU? `nvidia-smi -L` lists them)"
    )]
    Open {
        ordinal: usize,
        cause: candle_core::Error,
    },
    /// `missing` names the driver or library that could not be loaded.
    #[error(
        "cannot open CUDA device {ordinal}: {missing} (on a machine with an NVIDIA GPU and its driver, put CUDA 13's cuBLAS, cuRAND and NVRTC libraries on LD_LIBRARY_PATH; see docs/gpu.md)"
    )]
    Libraries { ordinal: usize, missing: String },
}

/// The candle device for `kind`.
pub fn open(kind: DeviceKind) -> Result<Device, DeviceError> {
    let DeviceKind::Cuda(ordinal) = kind else {
        return Ok(Device::Cpu);
    };
    if !candle_core::utils::cuda_is_available() {
        return Err(DeviceError::NoCuda { ordinal });
    }
    match open_cuda_quietly(ordinal) {
        Ok(Ok(device)) => Ok(device),
        Ok(Err(cause)) => Err(DeviceError::Open { ordinal, cause }),
        Err(message) => Err(DeviceError::Libraries {
            ordinal,
            missing: missing_library(&message),
        }),
    }
}

/// `Device::new_cuda`, with a panic turned into its message. The CUDA build loads the driver and
/// libraries when a device is first opened, and cudarc panics when one cannot be found; the
/// panic hook is silenced meanwhile so that the user sees one clear error instead of a trace.
fn open_cuda_quietly(ordinal: usize) -> Result<candle_core::Result<Device>, String> {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let result = std::panic::catch_unwind(|| Device::new_cuda(ordinal));
    std::panic::set_hook(hook);
    result.map_err(|payload| {
        payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "the CUDA libraries failed to load".into())
    })
}

/// cudarc's "Unable to dynamically load the \"cuda\" shared library - searched for ..." as
/// "no CUDA driver found (libcuda.so ...)", other libraries by name; anything else as it is.
fn missing_library(message: &str) -> String {
    let name = message
        .strip_prefix("Unable to dynamically load the \"")
        .and_then(|rest| rest.split_once('"'))
        .map(|(name, _)| name);
    match name {
        Some("cuda") => "no NVIDIA driver found (libcuda.so.1 could not be loaded)".into(),
        Some(lib) => format!("the CUDA library lib{lib}.so could not be loaded"),
        None => message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precision_parses_and_auto_is_f32_on_the_cpu() {
        assert_eq!("BF16".parse::<Precision>(), Ok(Precision::Bf16));
        assert_eq!("fp16".parse::<Precision>(), Ok(Precision::F16));
        assert!("int8".parse::<Precision>().is_err());
        assert_eq!(Precision::Auto.dtype(&Device::Cpu), DType::F32);
        assert_eq!(Precision::Bf16.dtype(&Device::Cpu), DType::BF16);
    }

    #[test]
    fn a_missing_driver_is_named_as_such() {
        let m = "Unable to dynamically load the \"cuda\" shared library - searched for library names: [\"libcuda.so\"].";
        assert!(
            missing_library(m).contains("no NVIDIA driver"),
            "{}",
            missing_library(m)
        );
        let m = "Unable to dynamically load the \"cublas\" shared library - searched for ...";
        assert!(missing_library(m).contains("libcublas.so"));
        assert_eq!(missing_library("other"), "other");
    }

    #[test]
    fn the_cpu_always_opens_and_cuda_without_the_feature_says_how_to_build_it() {
        assert!(open(DeviceKind::Cpu).unwrap().is_cpu());
        if !candle_core::utils::cuda_is_available() {
            let e = open(DeviceKind::Cuda(0)).unwrap_err();
            assert!(matches!(e, DeviceError::NoCuda { ordinal: 0 }), "{e}");
            let e = e.to_string();
            assert!(
                e.contains("without CUDA support") && e.contains("build-cuda.sh"),
                "{e}"
            );
        }
    }
}
