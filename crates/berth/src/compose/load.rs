//! From `-f` files (or the default ones) to a checked project: read, parse, substitute
//! variables, check keys, merge, name the project, check references and addresses.

use super::interpolate::{self, Env};
use super::model::Project;
use super::yaml::Scalar;
use super::{merge, parse, validate, yaml};
use std::path::{Component, Path, PathBuf};

/// docker-compose 1.29's file names, looked for in the directory and then its parents.
const DEFAULT_FILES: &[&str] = &[
    "docker-compose.yml",
    "docker-compose.yaml",
    "compose.yml",
    "compose.yaml",
];
const OVERRIDE_FILES: &[&str] = &[
    "docker-compose.override.yml",
    "docker-compose.override.yaml",
    "compose.override.yml",
    "compose.override.yaml",
];

#[derive(Debug, Clone, Default)]
pub struct Options {
    pub files: Vec<PathBuf>,
    pub project_name: Option<String>,
    pub project_dir: Option<PathBuf>,
}

/// A loaded project and the warnings to print.
pub struct Loaded {
    pub project: Project,
    pub warnings: Vec<String>,
}

/// docker-compose's `normalize_name`: lower case, only `[-_a-z0-9]` kept.
pub fn normalize_name(name: &str) -> String {
    name.to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-' || *c == '_')
        .collect()
}

/// Python's `os.path.normpath` for the label: `./a/../b.yml` → `b.yml`.
fn normpath(p: &Path) -> String {
    let mut out: Vec<String> = Vec::new();
    let abs = p.is_absolute();
    for c in p.components() {
        match c {
            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
            Component::ParentDir => {
                if out.last().is_some_and(|l| l != "..") {
                    out.pop();
                } else if !abs {
                    out.push("..".into());
                }
            }
            Component::Normal(s) => out.push(s.to_string_lossy().into_owned()),
        }
    }
    let s = out.join("/");
    match (abs, s.is_empty()) {
        (true, _) => format!("/{s}"),
        (false, true) => ".".into(),
        (false, false) => s,
    }
}

fn find_default(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mut d = dir.to_path_buf();
    loop {
        let found: Vec<&str> = DEFAULT_FILES
            .iter()
            .copied()
            .filter(|f| d.join(f).is_file())
            .collect();
        if let Some(first) = found.first() {
            let mut files = vec![d.join(first)];
            let overrides: Vec<PathBuf> = OVERRIDE_FILES
                .iter()
                .map(|f| d.join(f))
                .filter(|p| p.is_file())
                .collect();
            if overrides.len() > 1 {
                return Err(format!(
                    "more than one override file found: {}",
                    overrides
                        .iter()
                        .map(|p| p.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            files.extend(overrides);
            return Ok(files);
        }
        if !d.pop() {
            return Err(format!(
                "no compose file found in {} or its parents (looked for {})",
                dir.display(),
                DEFAULT_FILES.join(", ")
            ));
        }
    }
}

/// Loads the project the options point at, with the process environment.
pub fn load(opts: &Options) -> Result<Loaded, String> {
    let cwd = std::env::current_dir().map_err(|e| format!("current directory: {e}"))?;
    let base = opts.project_dir.clone().unwrap_or_else(|| cwd.clone());
    let files: Vec<PathBuf> = if opts.files.is_empty() {
        find_default(&base)?
    } else {
        opts.files.iter().map(|f| base.join(f)).collect()
    };
    // the project directory is the first file's, as docker-compose has it
    let working_dir = match &opts.project_dir {
        Some(d) => d.clone(),
        None => files[0]
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or(cwd.clone()),
    };
    let env = Env::load(&working_dir)?;
    let labels: Vec<String> = if opts.files.is_empty() {
        files
            .iter()
            .map(|f| normpath(f.strip_prefix(&cwd).unwrap_or(f)))
            .collect()
    } else {
        opts.files.iter().map(|f| normpath(f)).collect()
    };
    let mut texts = Vec::new();
    for (f, label) in files.iter().zip(&labels) {
        let text = std::fs::read_to_string(f).map_err(|e| format!("{}: {e}", f.display()))?;
        texts.push((label.clone(), text));
    }
    let project_dir = std::path::absolute(&working_dir).unwrap_or(working_dir);
    from_texts(&texts, &project_dir, opts.project_name.as_deref(), env)
}

/// The part of [`load`] that reads nothing from disk: files as `(name, text)`.
pub fn from_texts(
    texts: &[(String, String)],
    working_dir: &Path,
    project_name: Option<&str>,
    env: Env,
) -> Result<Loaded, String> {
    let mut warnings = Vec::new();
    let mut errors = Vec::new();
    let mut models = Vec::new();
    for (name, text) in texts {
        let mut root = match yaml::parse(name, text) {
            Ok(r) => r,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        let mut unset = |v: &str| {
            let w = format!("The {v} variable is not set. Defaulting to a blank string.");
            if !warnings.contains(&w) {
                warnings.push(w);
            }
        };
        if let Err(e) = interpolate::tree(&mut root, "", &env, &mut unset) {
            errors.push(e);
            continue;
        }
        match parse::file(&root) {
            Ok(m) => models.push(m),
            Err(e) => errors.push(e),
        }
    }
    if !errors.is_empty() {
        return Err(errors.join("\n"));
    }
    let merged = merge::files(models);
    let name = project_name
        .map(str::to_string)
        .or_else(|| env.get("COMPOSE_PROJECT_NAME").map(str::to_string))
        .filter(|n| !n.is_empty())
        .or(merged.name.clone())
        .unwrap_or_else(|| {
            working_dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        });
    let name = normalize_name(&name);
    if name.is_empty() {
        return Err("the project name is empty once normalised (only a-z, 0-9, - and _ are kept): name it with -p".into());
    }
    let mut services = merged.services;
    // a variable named without a value takes it from around us, else stays unset
    for s in &mut services {
        for (k, v) in s.environment.iter_mut().flatten() {
            if *v == Scalar::Null {
                if let Some(val) = env.get(k) {
                    *v = Scalar::Str(val.to_string());
                }
            }
        }
    }
    let vol_defs: std::collections::BTreeMap<_, _> = merged.volumes.into_iter().collect();
    super::volumes::resolve(&name, working_dir, &vol_defs, &mut services)?;
    let project = Project {
        name,
        working_dir: working_dir.to_path_buf(),
        config_files: texts.iter().map(|(n, _)| n.clone()).collect(),
        services,
        networks: merged.networks.into_iter().collect(),
        volumes: vol_defs,
    };
    validate::project(&project)?;
    Ok(Loaded { project, warnings })
}
