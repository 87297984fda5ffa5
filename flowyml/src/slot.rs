//! What a run keeps in an artifact's slot: a shared value, or a small
//! scalar held inline.
//!
//! Most artifacts are shared by reference count ([`Artifact`]), so that
//! the steps reading one never copy it. A scalar (a count, a flag, a
//! metric) is cheaper to copy than to share: it is kept in the slot
//! itself, which spares a run an allocation and a free per such output.
//! Which types are inline is decided by `TypeId`, which the compiler folds
//! for each concrete type, so [`Value::new`] and [`Value::get`] cost a
//! branch on the slot's variant.

use std::any::{Any, TypeId};
use std::sync::Arc;

/// A value exchanged between steps, shared by reference count: never
/// copied between the steps that read it.
pub type Artifact = Arc<dyn Any + Send + Sync>;

macro_rules! inline_values {
    ($($variant:ident($ty:ty)),* $(,)?) => {
        /// An artifact in a slot.
        #[derive(Clone)]
        pub(crate) enum Value {
            /// A shared value.
            Shared(Artifact),
            $(
                #[doc = concat!("A `", stringify!($ty), "`, inline.")]
                $variant($ty),
            )*
        }

        impl Value {
            /// `value` in a slot: inline if it is one of the scalar types.
            #[inline]
            pub(crate) fn new<T: Any + Send + Sync>(value: T) -> Value {
                let mut value = Some(value);
                $(
                    if TypeId::of::<T>() == TypeId::of::<$ty>()
                        && let Some(v) = (&mut value as &mut dyn Any).downcast_mut::<Option<$ty>>()
                        && let Some(v) = v.take()
                    {
                        return Value::$variant(v);
                    }
                )*
                Value::Shared(Arc::new(value.take().expect("not taken")))
            }

            /// The value as a `T`, if it is one.
            #[inline]
            pub(crate) fn get<T: Any>(&self) -> Option<&T> {
                match self {
                    Value::Shared(a) => a.downcast_ref(),
                    $( Value::$variant(v) => (v as &dyn Any).downcast_ref(), )*
                }
            }

            /// The value, typed only at run time.
            pub(crate) fn as_any(&self) -> &(dyn Any + Send + Sync) {
                match self {
                    Value::Shared(a) => &**a,
                    $( Value::$variant(v) => v, )*
                }
            }

            /// The value, shared (an inline one is put in an `Arc` now).
            pub(crate) fn to_artifact(&self) -> Artifact {
                match self {
                    Value::Shared(a) => Arc::clone(a),
                    $( Value::$variant(v) => Arc::new(*v), )*
                }
            }
        }
    };
}

inline_values!(
    Unit(()),
    Bool(bool),
    Char(char),
    U8(u8),
    U16(u16),
    U32(u32),
    U64(u64),
    Usize(usize),
    I8(i8),
    I16(i16),
    I32(i32),
    I64(i64),
    Isize(isize),
    F32(f32),
    F64(f64),
);

impl From<Artifact> for Value {
    fn from(artifact: Artifact) -> Self {
        Value::Shared(artifact)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalars_are_inline_and_everything_reads_back() {
        assert!(matches!(Value::new(7u64), Value::U64(7)));
        assert!(matches!(Value::new(1.5f64), Value::F64(_)));
        assert!(matches!(Value::new(vec![1u8]), Value::Shared(_)));
        assert_eq!(Value::new(7u64).get::<u64>(), Some(&7));
        assert_eq!(Value::new(7u64).get::<u32>(), None);
        assert_eq!(
            Value::new("text".to_owned())
                .get::<String>()
                .map(String::as_str),
            Some("text")
        );
        let shared = Value::new(-3i16).to_artifact();
        assert_eq!(shared.downcast_ref::<i16>(), Some(&-3));
        assert_eq!(Value::new(()).as_any().downcast_ref::<()>(), Some(&()));
    }
}
