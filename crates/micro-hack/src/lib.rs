//! Build-time only: see Cargo.toml. Unifies dependency features across the workspace.
