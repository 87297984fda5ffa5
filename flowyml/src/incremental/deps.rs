//! [`Deps`]: what a node's closure sees of its dependencies.

use std::any::{Any, type_name};
use std::sync::Arc;

use crate::error::{Error, Result};

/// A node's value, shared by the graph and by every reader; never copied.
pub(crate) type Value = Arc<dyn Any + Send + Sync>;

/// One input of a node: the dependency's name, its value and the name of
/// its type (for error messages).
pub(crate) struct Input<'a> {
    pub(crate) name: &'a str,
    pub(crate) value: &'a Value,
    pub(crate) type_name: &'static str,
}

/// The values of a node's declared dependencies, typed on access.
///
/// A node's closure receives `&Deps` rather than the graph itself, so it
/// can only read what it declared (an undeclared read is an error, not a
/// silent missing edge) and the graph stays free to run it in parallel.
///
/// ```
/// use flowyml::IncrementalComputation;
///
/// let mut inc = IncrementalComputation::new();
/// inc.register("load_data", &[], |_| Ok(vec![1.0_f64, f64::NAN, 3.0]))?;
/// inc.register("clean_data", &["load_data"], |deps| {
///     let raw: &Vec<f64> = deps.get("load_data")?;
///     Ok(raw.iter().copied().filter(|x| !x.is_nan()).collect::<Vec<f64>>())
/// })?;
/// assert_eq!(*inc.compute::<Vec<f64>>("clean_data")?, vec![1.0, 3.0]);
/// # Ok::<(), flowyml::Error>(())
/// ```
pub struct Deps<'a> {
    pub(crate) node: &'a str,
    pub(crate) inputs: &'a [Input<'a>],
}

impl<'a> Deps<'a> {
    fn input(&self, name: &str) -> Result<&Input<'a>> {
        self.inputs
            .iter()
            .find(|i| i.name == name)
            .ok_or_else(|| Error::UndeclaredDependency {
                node: self.node.to_owned(),
                dep: name.to_owned(),
            })
    }

    /// The value of dependency `name`.
    ///
    /// # Errors
    /// [`Error::UndeclaredDependency`] if `name` is not among the node's
    /// declared dependencies, [`Error::NodeType`] if its value is not a `T`.
    pub fn get<T: Any + Send + Sync>(&self, name: &str) -> Result<&'a T> {
        let input = self.input(name)?;
        input
            .value
            .downcast_ref::<T>()
            .ok_or_else(|| type_error::<T>(name, input.type_name))
    }

    /// The value of dependency `name`, shared (e.g. to keep it in the
    /// node's own value without copying it).
    ///
    /// # Errors
    /// As [`get`](Self::get).
    pub fn get_arc<T: Any + Send + Sync>(&self, name: &str) -> Result<Arc<T>> {
        let input = self.input(name)?;
        Arc::clone(input.value)
            .downcast::<T>()
            .map_err(|_| type_error::<T>(name, input.type_name))
    }

    /// The name of the node being computed.
    pub fn node(&self) -> &str {
        self.node
    }

    /// The names of the declared dependencies, in declaration order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.inputs.iter().map(|i| i.name)
    }
}

pub(crate) fn type_error<T>(node: &str, found: &'static str) -> Error {
    Error::NodeType {
        node: node.to_owned(),
        expected: type_name::<T>(),
        found,
    }
}

impl std::fmt::Debug for Deps<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deps")
            .field("node", &self.node)
            .field("deps", &self.names().collect::<Vec<_>>())
            .finish()
    }
}
