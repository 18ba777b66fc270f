//! The models `micro eval` compares: `--model [LABEL=]DIR` (repeatable) and `--models DIR` (a
//! folder of model folders), labelled and loaded against the cache they are evaluated on.

use crate::error::{EvalError, Result};
use crate::NamedModel;
use micro_cache::EmbeddingCache;
use micro_model::MixtureModel;
use std::path::{Path, PathBuf};

/// (label, folder) for every model given, in order; labels must be unique.
pub fn model_specs(specs: &[String], dir: Option<&Path>) -> Result<Vec<(String, PathBuf)>> {
    let mut out: Vec<(String, PathBuf)> = specs.iter().map(|s| parse_spec(s)).collect();
    if let Some(dir) = dir {
        let entries = std::fs::read_dir(dir).map_err(|e| EvalError::io(dir, e))?;
        let mut found: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.join(micro_model::CONFIG_FILE).is_file())
            .collect();
        found.sort();
        if found.is_empty() {
            return Err(EvalError::NoModelIn {
                path: dir.to_path_buf(),
            });
        }
        out.extend(found.into_iter().map(|p| (folder_name(&p), p)));
    }
    if out.is_empty() {
        return Err(EvalError::NoModel);
    }
    for (i, (label, _)) in out.iter().enumerate() {
        if out[..i].iter().any(|(l, _)| l == label) {
            return Err(EvalError::SameLabel {
                label: label.clone(),
            });
        }
    }
    Ok(out)
}

/// `LABEL=DIR` or `DIR` (labelled by its folder name). A path that exists as given is a path,
/// even with an `=` in it.
pub fn parse_spec(s: &str) -> (String, PathBuf) {
    match s.split_once('=') {
        Some((label, dir)) if !label.is_empty() && !Path::new(s).exists() => {
            (label.to_string(), PathBuf::from(dir))
        }
        _ => (folder_name(Path::new(s)), PathBuf::from(s)),
    }
}

/// The last component of `p` (all of it when there is none).
pub fn folder_name(p: &Path) -> String {
    p.file_name().map_or_else(
        || p.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// Loads each (label, folder) and checks that it fits `cache`.
pub fn load_models(specs: &[(String, PathBuf)], cache: &EmbeddingCache) -> Result<Vec<NamedModel>> {
    specs
        .iter()
        .map(|(label, dir)| {
            let model = MixtureModel::load(dir).map_err(|cause| EvalError::LoadModel {
                label: label.clone(),
                path: dir.clone(),
                cause: Box::new(cause),
            })?;
            model
                .check_cache(&cache.meta)
                .map_err(|cause| EvalError::Mismatch {
                    model: label.clone(),
                    cause,
                })?;
            let load_error = |cause| EvalError::LoadModel {
                label: label.clone(),
                path: dir.clone(),
                cause: Box::new(cause),
            };
            let evidence = micro_model::Evidence::load(dir).map_err(load_error)?;
            let users = micro_route::UserStates::load(dir).map_err(|cause| EvalError::Stage2 {
                model: label.clone(),
                budget: 0,
                run: 0,
                cause: Box::new(cause),
            })?;
            Ok(NamedModel {
                label: label.clone(),
                model,
                evidence,
                users,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_specs_take_labels_and_folder_names() {
        assert_eq!(
            parse_spec("micro=/m/a"),
            ("micro".to_string(), PathBuf::from("/m/a"))
        );
        assert_eq!(
            parse_spec("/m/single"),
            ("single".to_string(), PathBuf::from("/m/single"))
        );
        assert_eq!(folder_name(Path::new("/")), "/");
        let dup = model_specs(&["x=/a".into(), "x=/b".into()], None)
            .unwrap_err()
            .to_string();
        assert!(dup.contains("labelled `x`"), "{dup}");
        let none = model_specs(&[], None).unwrap_err();
        assert!(matches!(none, EvalError::NoModel));
        // A library error names no flag of the CLI (the CLI and Python name the models their way).
        assert!(
            !none.to_string().contains("--") && !dup.contains("--"),
            "{none} / {dup}"
        );
    }

    #[test]
    fn a_models_folder_lists_its_model_sub_folders_in_order() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["b", "a", "not-a-model"] {
            std::fs::create_dir(dir.path().join(name)).unwrap();
        }
        for name in ["b", "a"] {
            std::fs::write(dir.path().join(name).join(micro_model::CONFIG_FILE), "{}").unwrap();
        }
        let specs = model_specs(&["x=/m".into()], Some(dir.path())).unwrap();
        let labels: Vec<&str> = specs.iter().map(|(l, _)| l.as_str()).collect();
        assert_eq!(labels, ["x", "a", "b"]);
        let empty = tempfile::tempdir().unwrap();
        let e = model_specs(&[], Some(empty.path()))
            .unwrap_err()
            .to_string();
        assert!(e.contains("no sub-folder holds a model"), "{e}");
    }
}
