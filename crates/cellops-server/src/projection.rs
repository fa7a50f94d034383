//! Read models ("projections") rebuilt from the ledger, registered by type.
//!
//! A feature module (QC, training, orders, …) owns its read model: it implements
//! [`Projection`], registers it in [`crate::routes::projections`], and its handlers reach it
//! with [`crate::AppState::read_model`]. The server feeds every record to every projection in
//! ledger order (`AppState::sync_blocking`), so a read model is always a pure function of the
//! ledger prefix it has seen.

use cellops_ledger::Record;
use std::any::{Any, TypeId};
use std::sync::Mutex;

/// A read model: folds ledger records, in order, into queryable state.
pub trait Projection: Send + 'static {
    /// Applies one record. Records of types this projection does not know are ignored.
    /// Must not fail: a record the projection cannot read is logged and skipped.
    fn apply(&mut self, record: &Record);
}

trait AnyProjection: Projection {
    fn as_any_mut(&mut self) -> &mut dyn Any;
}

impl<T: Projection> AnyProjection for T {
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

/// The registered read models, at most one per type.
#[derive(Default)]
pub struct Projections {
    list: Vec<(TypeId, Mutex<Box<dyn AnyProjection>>)>,
}

impl Projections {
    /// Registers `projection`. Panics when one of the same type is already registered
    /// (a wiring mistake found by every test).
    pub fn with<T: Projection>(mut self, projection: T) -> Projections {
        let id = TypeId::of::<T>();
        assert!(
            self.list.iter().all(|(t, _)| *t != id),
            "projection {} registered twice",
            std::any::type_name::<T>()
        );
        self.list.push((id, Mutex::new(Box::new(projection))));
        self
    }

    /// Runs `f` on the read model of type `T` under its lock.
    ///
    /// Panics when `T` is not registered (a wiring mistake found by every test).
    pub fn with_model<T: Projection, R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        let id = TypeId::of::<T>();
        let (_, cell) =
            self.list.iter().find(|(t, _)| *t == id).unwrap_or_else(|| {
                panic!("projection {} not registered", std::any::type_name::<T>())
            });
        let mut guard = cell.lock().expect("projection lock");
        let model = guard
            .as_any_mut()
            .downcast_mut::<T>()
            .expect("type id matches");
        f(model)
    }

    /// Feeds `records` to every projection.
    pub fn apply_all(&self, records: &[Record]) {
        for (_, cell) in &self.list {
            let mut model = cell.lock().expect("projection lock");
            for r in records {
                model.apply(r);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Count(u64);
    impl Projection for Count {
        fn apply(&mut self, _: &Record) {
            self.0 += 1;
        }
    }

    #[derive(Default)]
    struct Other;
    impl Projection for Other {
        fn apply(&mut self, _: &Record) {}
    }

    #[test]
    fn models_are_found_by_type() {
        let p = Projections::default().with(Count::default()).with(Other);
        p.apply_all(&[]);
        assert_eq!(p.with_model(|c: &mut Count| c.0), 0);
    }

    #[test]
    #[should_panic(expected = "registered twice")]
    fn a_type_registers_once() {
        let _ = Projections::default().with(Other).with(Other);
    }
}
