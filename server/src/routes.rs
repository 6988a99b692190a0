//! Which function answers which path, loaded from the operator's list of functions, and reloaded from it.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use thiserror::Error;
use wasm_host_runtime::{FunctionHost, InvocationSettings, LoadError, LoadedFunction, World};

/// One function as the operator declared it: its component, its route and its manifest's grants and limits.
#[derive(Clone)]
pub struct FunctionSpec {
    /// Names the function in logs and metrics.
    pub name: String,
    /// `/PATH`: a JSON function answers `POST /PATH` exactly; an HTTP function every path under it.
    pub route: String,
    pub component: PathBuf,
    pub settings: InvocationSettings,
}

/// A function ready to be invoked.
pub struct Served {
    pub spec: FunctionSpec,
    pub function: LoadedFunction,
}

#[derive(Debug, Error)]
pub enum RouteError {
    #[error("function `{name}`")]
    Load {
        name: String,
        #[source]
        source: LoadError,
    },
    #[error("function `{name}`: the route `{route}` must start with `/` and hold no `?`, `#` or `//`")]
    BadRoute { name: String, route: String },
    #[error("functions `{first}` and `{second}` both claim the route `{route}`; give one another route in its manifest")]
    Duplicate { first: String, second: String, route: String },
}

/// The routing table: exact paths for JSON functions, path prefixes for HTTP functions (longest first).
#[derive(Default)]
pub struct Routes {
    json: HashMap<String, Arc<Served>>,
    http: Vec<(String, Arc<Served>)>,
}

/// What a path leads to.
pub enum Target<'a> {
    Json(&'a Arc<Served>),
    Http(&'a Arc<Served>),
    None,
}

impl Routes {
    /// Loads every function; the first that fails (or a route claimed twice) refuses them all.
    pub fn load(host: &FunctionHost, specs: Vec<FunctionSpec>) -> Result<Self, RouteError> {
        check(&specs)?;
        let mut served = Vec::with_capacity(specs.len());
        for spec in specs {
            let function =
                host.load_servable(&spec.component).map_err(|source| RouteError::Load { name: spec.name.clone(), source })?;
            served.push(Arc::new(Served { spec, function }));
        }
        Ok(Self::from_served(served))
    }

    /// Loads `specs` again for a reload. A function that fails to load keeps serving as it was (if it was
    /// loaded before), and the failure is returned to be reported; a function no longer listed goes.
    pub fn reload(&self, host: &FunctionHost, specs: Vec<FunctionSpec>) -> Result<(Self, Vec<RouteError>), RouteError> {
        check(&specs)?;
        let mut failures = Vec::new();
        let mut served = Vec::with_capacity(specs.len());
        for spec in specs {
            match host.load_servable(&spec.component) {
                Ok(function) => served.push(Arc::new(Served { spec, function })),
                Err(source) => {
                    if let Some(old) = self.by_name(&spec.name) {
                        served.push(old);
                    }
                    failures.push(RouteError::Load { name: spec.name, source });
                }
            }
        }
        Ok((Self::from_served(served), failures))
    }

    fn from_served(served: Vec<Arc<Served>>) -> Self {
        let mut routes = Self::default();
        for s in served {
            match s.function.world() {
                World::Function => {
                    routes.json.insert(s.spec.route.clone(), s);
                }
                World::HttpFunction => routes.http.push((s.spec.route.trim_end_matches('/').to_owned(), s)),
            }
        }
        routes.http.sort_by(|a, b| b.0.len().cmp(&a.0.len()));
        routes
    }

    fn by_name(&self, name: &str) -> Option<Arc<Served>> {
        self.json.values().chain(self.http.iter().map(|(_, s)| s)).find(|s| s.spec.name == name).cloned()
    }

    /// The function for `path`: a JSON function's exact route first, then the longest HTTP prefix.
    pub fn find(&self, path: &str) -> Target<'_> {
        if let Some(s) = self.json.get(path) {
            return Target::Json(s);
        }
        for (prefix, s) in &self.http {
            let under = path.strip_prefix(prefix.as_str()).is_some_and(|rest| rest.is_empty() || rest.starts_with('/'));
            if under {
                return Target::Http(s);
            }
        }
        Target::None
    }

    pub fn len(&self) -> usize {
        self.json.len() + self.http.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every loaded function's declaration.
    pub fn specs(&self) -> impl Iterator<Item = &FunctionSpec> {
        self.json.values().chain(self.http.iter().map(|(_, s)| s)).map(|s| &s.spec)
    }

    /// Every loaded function, for reports.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> =
            self.json.values().chain(self.http.iter().map(|(_, s)| s)).map(|s| s.spec.name.clone()).collect();
        names.sort();
        names
    }
}

fn check(specs: &[FunctionSpec]) -> Result<(), RouteError> {
    let mut seen: HashMap<String, &str> = HashMap::new();
    for spec in specs {
        let r = &spec.route;
        if !r.starts_with('/') || r.contains(['?', '#']) || r.contains("//") {
            return Err(RouteError::BadRoute { name: spec.name.clone(), route: r.clone() });
        }
        let key = if r.len() > 1 { r.trim_end_matches('/') } else { r.as_str() };
        if let Some(first) = seen.insert(key.to_owned(), &spec.name) {
            return Err(RouteError::Duplicate { first: first.to_owned(), second: spec.name.clone(), route: r.clone() });
        }
    }
    Ok(())
}
