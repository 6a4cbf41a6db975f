//! What the checks of a run share through their target: data that many
//! checks would otherwise each read and parse again (a kernel's module
//! index), kept as long as the target object, like
//! [`Target::accounts`](super::Target::accounts).

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

/// A map from a type to its one shared value, filled on first use.
///
/// ```
/// use std::sync::Mutex;
/// use nodecheck_core::target::Memo;
///
/// #[derive(Default)]
/// struct Seen(Mutex<u32>);
///
/// let memo = Memo::default();
/// *memo.get::<Seen>().0.lock().unwrap() += 1;
/// *memo.get::<Seen>().0.lock().unwrap() += 1;
/// assert_eq!(*memo.get::<Seen>().0.lock().unwrap(), 2);
/// memo.leak_at_exit();
/// assert_eq!(*memo.get::<Seen>().0.lock().unwrap(), 0);
/// ```
#[derive(Default)]
pub struct Memo {
    values: Mutex<HashMap<TypeId, Arc<dyn Any + Send + Sync>>>,
}

impl Memo {
    /// The value of type `T`, created with `T::default()` on first use.
    /// Keep the type private to its module: the type is the key.
    pub fn get<T: Any + Send + Sync + Default>(&self) -> Arc<T> {
        let mut values = self.values.lock().unwrap_or_else(PoisonError::into_inner);
        let value = values
            .entry(TypeId::of::<T>())
            .or_insert_with(|| Arc::new(T::default()))
            .clone();
        drop(values);
        // The entry for `TypeId::of::<T>()` always holds a `T`.
        value
            .downcast::<T>()
            .unwrap_or_else(|_| Arc::new(T::default()))
    }

    /// Lets go of every value without freeing it, for a process about to
    /// exit: the exit returns the memory at once, where dropping a
    /// whole-/usr scan's caches (every parsed ELF object, every search)
    /// takes a millisecond on one thread after the checks are done. Later
    /// [`get`](Memo::get)s start afresh. So a memo holds plain data only:
    /// nothing whose drop must run (a temporary file, a child process).
    pub fn leak_at_exit(&self) {
        let mut values = self.values.lock().unwrap_or_else(PoisonError::into_inner);
        std::mem::forget(std::mem::take(&mut *values));
    }
}

impl std::fmt::Debug for Memo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self
            .values
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len();
        write!(f, "Memo({n} values)")
    }
}
